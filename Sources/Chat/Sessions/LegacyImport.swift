import Foundation
import GRDB

/// The one-time import of the JSONL session files earlier versions wrote (`<id>.jsonl`, one
/// `SessionEvent` per line). A damaged line costs only itself: it is reported as `file:line:
/// why` and its raw bytes are appended to `rejected/<file name>` beside the database; the rest
/// of the file still imports, every message under its own id. The legacy files are only read.
enum LegacyImport {
    struct Plan {
        /// nil when the file holds nothing to import.
        var conversation: Conversation?
        /// Texts that edits replaced.
        var history: [SessionSchema.Edit] = []
        /// Raw lines kept aside (without their newline).
        var rejected: [Data] = []
        var notices: [String] = []
    }

    enum Parsed {
        case blank
        /// With the names of fields the format does not have (a damaged key reads as one).
        case event(SessionEvent, unknownFields: [String])
        case bad(String)
    }

    /// What importing `data` (the contents of `file`) gives, before anything is written.
    /// `fallbackID` and `fallbackTime` name and date the session when no header is readable.
    static func plan(_ data: Data, file: String, fallbackID: String, fallbackTime: Double) -> Plan {
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        let torn = data.last != 0x0A && !data.isEmpty
        if !torn { lines.removeLast() }   // the empty piece after the final newline
        let parsed = lines.indices.map { parse(lines[$0], lastAndTorn: torn && $0 == lines.count - 1) }

        var plan = Plan()
        func reject(_ i: Int, _ why: String) {
            plan.notices.append("\(file):\(i + 1): \(why)")
            plan.rejected.append(Data(lines[i]))
        }
        let headerAt = parsed.firstIndex { if case .event(.header, _) = $0 { true } else { false } }
        var conv: Conversation
        if let headerAt, case .event(.header(let h), _) = parsed[headerAt], !h.id.isEmpty {
            conv = Conversation(id: h.id, title: h.title, created: h.created, persona: h.persona, origin: h.origin)
        } else {
            let messages = parsed.compactMap { if case .event(.message(let m), _) = $0 { m } else { nil } }
            if headerAt == nil && !parsed.contains(where: { if case .event = $0 { true } else { false } }) {
                for (i, p) in parsed.enumerated() { if case .bad(let why) = p { reject(i, why) } }
                if plan.notices.isEmpty { plan.notices.append("\(file): \(data.isEmpty ? "empty" : "no events in the file"); nothing to import") }
                return plan
            }
            conv = Conversation(id: fallbackID, title: fallbackID, created: messages.first?.time ?? fallbackTime,
                                persona: messages.last { $0.persona != nil }?.persona)
            plan.notices.append("\(file): no readable session header (or an empty id); the session takes its id and title from the file name")
        }

        var firstLine: [String: Int] = [:]
        var seen: [String] = []
        var moved: [String: String?] = [:]   // a parent that is not there → where its children went
        var latest = conv.created
        for (i, p) in parsed.enumerated() {
            guard case .event(let e, let unknownFields) = p else {
                if case .bad(let why) = p { reject(i, why) }
                continue
            }
            if let headerAt, i <= headerAt {
                if i < headerAt { reject(i, "comes before the session header (line \(headerAt + 1))") }
                continue
            }
            // A line that imports with a repair is still reported and kept aside, once.
            var notes = unknownFields.isEmpty ? [] : ["unknown field\(unknownFields.count == 1 ? "" : "s") "
                                                      + unknownFields.map { "'\($0)'" }.joined(separator: ", ") + " ignored"]
            switch e {
            case .header:
                reject(i, "a second session header")
                continue
            case .message(var m):
                seen.append(m.id)
                if m.id.isEmpty { reject(i, "a message with an empty id"); continue }
                if let first = firstLine[m.id] { reject(i, "duplicate message id '\(m.id)' (first on line \(first))"); continue }
                if m.parent == m.id { reject(i, "message '\(m.id)' is its own parent"); continue }
                if let parent = m.parent, conv.message(parent) == nil {
                    // Its parent's line was damaged, or comes later (a cycle): keep the message
                    // where the old app put a new one, the end of the shown path, and say so.
                    let to: String? = moved[parent] ?? conv.head?.id
                    moved[parent] = to
                    notes.append("message '\(m.id)' has an unknown parent '\(parent)' (a damaged or later line); imported under "
                                 + (to.map { "'\($0)'" } ?? "the first level") + " instead")
                    m.parent = to
                }
                conv.apply(.message(m))
                firstLine[m.id] = i + 1
                latest = max(latest, m.time)
            case .select(let id), .remove(let id):
                guard conv.message(id) != nil else { reject(i, "no message '\(id)'"); continue }
                conv.apply(e)
            case .edit(let id, _):
                guard let old = conv.message(id) else { reject(i, "no message '\(id)'"); continue }
                plan.history.append(.init(message: id, text: old.text, replaced: latest))
                conv.apply(e)
            case .rename, .persona, .cast, .note, .lore:
                conv.apply(e)
            }
            if !notes.isEmpty { reject(i, notes.joined(separator: "; ")) }
        }
        conv.reserve(seen)
        plan.conversation = conv
        return plan
    }

    static func parse(_ line: Data.SubSequence, lastAndTorn: Bool) -> Parsed {
        if line.isEmpty { return .blank }
        let incomplete = lastAndTorn ? " (an incomplete last line, written when the program stopped)" : ""
        if let at = firstInvalidUTF8(line) { return .bad("invalid UTF-8 at byte \(at + 1)\(incomplete)") }
        do {
            let data = Data(line)
            let event = try JSONDecoder().decode(SessionEvent.self, from: data)
            return .event(event, unknownFields: unknownFields(data, event))
        } catch let e as DecodingError {
            if lastAndTorn { return .bad("incomplete last line (\(line.count) bytes, written when the program stopped)") }
            return .bad(describe(e))
        } catch {
            return .bad("unreadable (\(error))")
        }
    }

    /// Fields (dotted) that no event of this type has: JSONDecoder skips them, so a damaged key
    /// would otherwise drop its value without a word.
    static func unknownFields(_ data: Data, _ event: SessionEvent) -> [String] {
        guard let top = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [] }
        let known: Set<String>
        switch event {
        case .header: known = ["type", "v", "id", "title", "created", "persona", "origin"]
        case .message: known = ["type", "message"]
        case .select, .remove: known = ["type", "id"]
        case .rename: known = ["type", "title"]
        case .persona: known = ["type", "persona"]
        case .cast: known = ["type", "personas"]
        case .note: known = ["type", "note"]
        case .lore: known = ["type", "books"]
        case .edit: known = ["type", "id", "text"]
        }
        var out = top.keys.filter { !known.contains($0) }.sorted()
        if case .message = event, let m = top["message"] as? [String: Any] {
            let fields: Set<String> = ["id", "parent", "role", "text", "persona", "time", "template", "adapters", "greeting", "partial"]
            out += m.keys.filter { !fields.contains($0) }.sorted().map { "message." + $0 }
        }
        if case .header = event, let o = top["origin"] as? [String: Any] {
            out += o.keys.filter { $0 != "session" && $0 != "message" }.sorted().map { "origin." + $0 }
        }
        return out
    }

    /// Offset of the first byte that is not part of valid UTF-8, or nil.
    static func firstInvalidUTF8(_ bytes: Data.SubSequence) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var it = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let s): offset += s.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func field(_ path: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            (path + (key.map { [$0] } ?? [])).map(\.stringValue).joined(separator: ".")
        }
        switch e {
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty { return "not valid JSON (truncated or garbage)" }
            if c.debugDescription.hasPrefix("unknown event type") { return c.debugDescription }
            return "field '\(field(c.codingPath))' has an invalid value"
        case .keyNotFound(let k, let c):
            return "missing field '\(field(c.codingPath, k))'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            return c.codingPath.isEmpty ? "not a JSON object" : "field '\(field(c.codingPath))' has the wrong type"
        @unknown default:
            return "unreadable"
        }
    }
}

extension SessionStore {
    /// Imports every `*.jsonl` in `folder` not imported before (by name; a known name whose
    /// size or time changed is reported, not imported twice). Returns the notices.
    func importLegacy(from folder: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { return [] }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            return ["\(folder): cannot list the legacy sessions folder; its sessions were not imported"]
        }
        var notices: [String] = []
        for name in names.sorted() where name.hasSuffix(".jsonl") {
            let file = (folder as NSString).appendingPathComponent(name)
            var st = stat()
            guard stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let size = Int64(st.st_size)
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            let known: Row?
            do {
                known = try queue.read { db in
                    try Row.fetchOne(db, sql: "SELECT size, mtime, session_id FROM legacy_imports WHERE file = ?", arguments: [name])
                }
            } catch {
                notices.append("\(path): cannot read the legacy import list (\(Self.describe(error))); nothing imported")
                return notices
            }
            if let known {
                if SessionSchema.integer(known, "size") != size || SessionSchema.real(known, "mtime") != mtime {
                    let s = SessionSchema.text(known, "session_id").map { "session '\($0)'" } ?? "nothing"
                    notices.append("\(file): changed since it was imported (as \(s)); not imported again")
                    _ = try? queue.write { db in
                        try db.execute(sql: "UPDATE legacy_imports SET size = ?, mtime = ? WHERE file = ?", arguments: [size, mtime, name])
                    }
                }
                continue
            }
            notices += importLegacyFile(file, size: size, mtime: mtime).notices
        }
        return notices
    }

    /// Imports one legacy file and remembers it; the new session's id and the notices.
    /// Damaged lines go to `rejectedFolder` (default: `rejected/` beside the database).
    func importLegacyFile(_ file: String, size: Int64, mtime: Double, rejectedFolder: String? = nil) -> (session: String?, notices: [String]) {
        let name = (file as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: file) else { return (nil, ["\(file): cannot read; not imported"]) }
        var plan = LegacyImport.plan(data, file: file, fallbackID: String(name.dropLast(".jsonl".count)), fallbackTime: mtime)
        if !plan.rejected.isEmpty {
            let folder = rejectedFolder ?? ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("rejected")
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try Self.append(plan.rejected, to: (folder as NSString).appendingPathComponent(name))
            } catch {
                plan.notices.append("\(file): cannot keep the \(plan.rejected.count) damaged lines aside in \(folder) (\(error)); they are still in the file")
            }
        }
        do {
            let id = try write("cannot import \(file)") { db -> String? in
                var sessionID: String? = nil
                if var c = plan.conversation {
                    let free = try Self.freeID(c.id, db)
                    if free != c.id {
                        plan.notices.append("\(file): session id '\(c.id)' is already taken; imported as '\(free)'")
                        c.id = free
                    }
                    try SessionSchema.insert(c, history: plan.history, db)
                    sessionID = c.id
                }
                try db.execute(sql: "INSERT INTO legacy_imports (file, size, mtime, imported, session_id, rejected) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [name, size, mtime, clock().timeIntervalSince1970, sessionID, plan.rejected.count])
                return sessionID
            }
            return (id, plan.notices)
        } catch {
            return (nil, plan.notices + [error.description + " (it will be tried again next time)"])
        }
    }

    /// Appends lines (each with a newline) and fsyncs.
    static func append(_ lines: [Data], to path: String) throws(ChatError) {
        let fd = Foundation.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChatError(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
        defer { Foundation.close(fd) }
        var bytes = [UInt8]()
        for l in lines { bytes += l; bytes.append(0x0A) }
        try TranscriptExport.writeAll(fd, bytes, path: path)
    }
}
