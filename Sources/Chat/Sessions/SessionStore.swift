import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let posixWrite = Glibc.write
#else
private let posixWrite = Darwin.write
#endif

/// An append-only session file: one event per line, each line written with one `write` and
/// made durable with `fsync` before `append` returns. A crash can only ever tear the line being
/// written; everything before it is on disk.
public final class SessionLog: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()

    /// Opens (creating if needed) `path` for appending. When the file ends in a torn line (a
    /// crash mid-write), a newline is added first so new events start on a line of their own;
    /// the torn fragment stays in the file and readers skip it.
    public init(path: String) throws(ChatError) {
        let existed = FileManager.default.fileExists(atPath: path)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChatError(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
        self.fd = fd
        self.path = path
        if existed, let last = Self.lastByte(path), last != 0x0A {
            try write([0x0A])
        }
        if !existed { Self.syncDirectory(of: path) }   // so the new file's name survives a crash too
    }

    deinit { close(fd) }

    public func append(_ event: SessionEvent) throws(ChatError) {
        try write(event.line())
    }

    /// Raw bytes, written whole then fsynced.
    func write(_ bytes: [UInt8]) throws(ChatError) {
        lock.lock()
        defer { lock.unlock() }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChatError(path, "write failed (\(String(cString: strerror(errno))))")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw ChatError(path, "fsync failed (\(String(cString: strerror(errno))))") }
    }

    static func lastByte(_ path: String) -> UInt8? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let end = try? h.seekToEnd(), end > 0 else { return nil }
        try? h.seek(toOffset: end - 1)
        return (try? h.read(upToCount: 1))?.first
    }

    static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { _ = fsync(d); close(d) }
    }
}

/// A conversation and the log it is saved to: every change is written (and fsynced) before it
/// is applied, so what is on screen is always on disk.
public final class Session: @unchecked Sendable {
    public private(set) var conversation: Conversation
    public let log: SessionLog
    /// Problems met while reading the log back (torn or unreadable lines that were skipped).
    public let warnings: [String]
    private let clock: @Sendable () -> Date

    init(conversation: Conversation, log: SessionLog, warnings: [String], clock: @escaping @Sendable () -> Date) {
        self.conversation = conversation
        self.log = log
        self.warnings = warnings
        self.clock = clock
    }

    public var id: String { conversation.id }

    public func record(_ event: SessionEvent) throws(ChatError) {
        try log.append(event)
        conversation.apply(event)
    }

    /// Adds a message after `parent` (default: the end of the path) and returns it.
    @discardableResult
    public func add(_ role: Message.Role, _ text: String, after parent: String?? = .none, persona: String? = nil,
                    template: String? = nil, adapters: [String]? = nil, greeting: Bool = false,
                    partial: Bool = false) throws(ChatError) -> Message {
        let p: String? = parent ?? conversation.head?.id
        let m = Message(id: conversation.nextMessageID, parent: p, role: role, text: text,
                        persona: persona ?? conversation.persona, time: clock().timeIntervalSince1970,
                        template: template, adapters: adapters, greeting: greeting ? true : nil,
                        partial: partial ? true : nil)
        try record(.message(m))
        return m
    }

    /// Another version of `id` (a retry's new reply, an edited question): same parent, selected.
    @discardableResult
    public func addAlternative(to id: String, text: String, persona: String? = nil, template: String? = nil,
                               adapters: [String]? = nil, partial: Bool = false) throws(ChatError) -> Message {
        guard let old = conversation.message(id) else { throw ChatError(log.path, "no message '\(id)' to add an alternative to") }
        return try add(old.role, text, after: .some(old.parent), persona: persona ?? old.persona, template: template,
                       adapters: adapters, greeting: old.greeting == true, partial: partial)
    }
}

/// A summary line for the session list.
public struct SessionSummary: Sendable, Equatable {
    public var id: String
    public var title: String
    public var persona: String?
    public var created: Double
    /// Time of the newest message (created when there is none).
    public var updated: Double
    public var messageCount: Int
    public var origin: SessionEvent.Origin?
}

/// Sessions kept as `<directory>/<id>.jsonl`. The directory is the caller's choice (the CLI
/// picks it); nothing here reads the environment.
public struct SessionStore: Sendable {
    public let directory: String
    private let clock: @Sendable () -> Date

    public init(directory: String, clock: @escaping @Sendable () -> Date = { Date() }) throws(ChatError) {
        self.directory = directory
        self.clock = clock
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ChatError(directory, "cannot create the sessions folder")
        }
    }

    public func path(_ id: String) -> String {
        (directory.hasSuffix("/") ? directory : directory + "/") + id + ".jsonl"
    }

    /// A new session: its header is on disk before this returns.
    public func create(persona: String?, title: String = "新对话", origin: SessionEvent.Origin? = nil) throws(ChatError) -> Session {
        let now = clock()
        var id = Self.makeID(now)
        var n = 2
        while FileManager.default.fileExists(atPath: path(id)) { id = Self.makeID(now) + "-\(n)"; n += 1 }
        let header = SessionEvent.Header(id: id, title: title, created: now.timeIntervalSince1970, persona: persona, origin: origin)
        let log = try SessionLog(path: path(id))
        let s = Session(conversation: Conversation(id: id, title: title, created: header.created, persona: persona),
                        log: log, warnings: [], clock: clock)
        try s.record(.header(header))
        return s
    }

    static func makeID(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }

    /// Reads a session back. Lines that do not parse are skipped with a warning (a torn last
    /// line after a crash is expected; a bad line elsewhere costs only that line). Only a
    /// missing file or a missing header is an error.
    public func read(_ id: String) throws(ChatError) -> (conversation: Conversation, warnings: [String]) {
        let p = path(id)
        guard let data = FileManager.default.contents(atPath: p) else { throw ChatError(p, "no such session") }
        return try Self.replay(data, file: p)
    }

    static func replay(_ data: Data, file: String) throws(ChatError) -> (conversation: Conversation, warnings: [String]) {
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        let torn = data.last != 0x0A
        if !torn { lines.removeLast() }   // the empty piece after the final newline
        var warnings: [String] = []
        var conv: Conversation?
        let decoder = JSONDecoder()
        for (i, line) in lines.enumerated() {
            if line.isEmpty { continue }
            let isLast = i == lines.count - 1
            guard let event = try? decoder.decode(SessionEvent.self, from: Data(line)) else {
                warnings.append(isLast && torn
                    ? "\(file):\(i + 1): incomplete last line (\(line.count) bytes, written when the program stopped) skipped"
                    : "\(file):\(i + 1): unreadable line skipped")
                continue
            }
            if conv == nil {
                guard case .header(let h) = event else { throw ChatError(file, "line \(i + 1) comes before the session header") }
                conv = Conversation(id: h.id, title: h.title, created: h.created, persona: h.persona, origin: h.origin)
            }
            conv!.apply(event)
        }
        guard let conv else { throw ChatError(file, "no session header (empty or unreadable file)") }
        return (conv, warnings)
    }

    /// Resumes a session for writing more.
    public func resume(_ id: String) throws(ChatError) -> Session {
        let (conv, warnings) = try read(id)
        return Session(conversation: conv, log: try SessionLog(path: path(id)), warnings: warnings, clock: clock)
    }

    /// Every session, newest activity first. Unreadable files are left out (their errors are
    /// returned beside the list).
    public func list() -> (sessions: [SessionSummary], errors: [ChatError]) {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".jsonl") }
        var out: [SessionSummary] = []
        var errors: [ChatError] = []
        for f in files.sorted() {
            let id = String(f.dropLast(6))
            do {
                let (c, _) = try read(id)
                out.append(SessionSummary(id: id, title: c.title, persona: c.persona, created: c.created,
                                          updated: c.messages.map(\.time).max() ?? c.created,
                                          messageCount: c.path.count, origin: c.origin))
            } catch {
                errors.append(error)
            }
        }
        out.sort { ($0.updated, $0.id) > ($1.updated, $1.id) }
        return (out, errors)
    }

    public func rename(_ id: String, to title: String) throws(ChatError) {
        _ = try read(id)
        try SessionLog(path: path(id)).append(.rename(title))
    }

    public func delete(_ id: String) throws(ChatError) {
        let p = path(id)
        guard FileManager.default.fileExists(atPath: p) else { throw ChatError(p, "no such session") }
        do {
            try FileManager.default.removeItem(atPath: p)
        } catch {
            throw ChatError(p, "cannot delete")
        }
    }

    /// A new session holding the path of `id` up to and including `message`, remembering where
    /// it came from. The original is not touched.
    public func branch(_ id: String, at message: String, title: String? = nil) throws(ChatError) -> Session {
        let (c, _) = try read(id)
        guard let m = c.message(message) else { throw ChatError(path(id), "no message '\(message)' to branch from") }
        // The branch follows the message's own ancestry, even when another alternative is shown.
        var chain: [Message] = []
        var cur: Message? = m
        while let x = cur {
            chain.insert(x, at: 0)
            cur = x.parent.flatMap { c.message($0) }
        }
        let s = try create(persona: chain.last?.persona ?? c.persona, title: title ?? c.title + " (分支)",
                           origin: .init(session: id, message: message))
        var parent: String? = nil
        for x in chain {
            var copy = x
            copy.id = s.conversation.nextMessageID
            copy.parent = parent
            try s.record(.message(copy))
            parent = copy.id
        }
        if let p = c.persona, p != s.conversation.persona { try s.record(.persona(p)) }
        return s
    }
}
