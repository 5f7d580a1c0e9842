import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A conversation's shown path as Markdown (for reading), JSONL (one message per line, for
/// tools) or SillyTavern's chat file; `write` puts one on disk and says when it could not.
public enum TranscriptExport {
    /// `names` maps persona ids to display names (the persona id is shown when one is missing).
    public static func markdown(_ c: Conversation, names: [String: String] = [:], userName: String = "你") -> String {
        var out = "# \(c.title)\n\n"
        let date = ISO8601DateFormatter()
        date.formatOptions = [.withInternetDateTime]
        out += "- 会话：`\(c.id)`（\(date.string(from: Date(timeIntervalSince1970: c.created)))）\n"
        if let o = c.origin { out += "- 分支自：`\(o.session)` 的消息 `\(o.message)`\n" }
        out += "\n"
        for m in c.path {
            let who: String
            switch m.role {
            case .user: who = userName
            case .assistant: who = m.persona.map { names[$0] ?? $0 } ?? "助手"
            case .system: who = "系统"
            }
            let alts = c.alternatives(of: m.id).count
            var note = alts > 1 ? "（\(c.alternatives(of: m.id).firstIndex { $0.id == m.id }! + 1)/\(alts)）" : ""
            if m.partial == true { note += "（未完）" }
            out += "**\(who)**\(note)：\n\n"
            out += m.text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? ">" : "> " + $0 }
                .joined(separator: "\n") + "\n\n"
        }
        return out
    }

    /// One JSON object per message on the path: id, role, persona, text, time (+ template, adapters).
    public static func jsonl(_ c: Conversation) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return c.path.map { m in
            var copy = m
            copy.parent = nil
            return String(decoding: (try? e.encode(copy)) ?? Data(), as: UTF8.self) + "\n"
        }.joined()
    }

    /// SillyTavern's chat file (`chats/<character>/<name>.jsonl`), as its server writes it in
    /// SillyTavern/SillyTavern `src/endpoints/chats.js` (`/save`: `chat.map(JSON.stringify).join('\n')`):
    /// a header line `{user_name, character_name, create_date, chat_metadata}`, then one object
    /// per message `{name, is_user, is_system, send_date, mes, swipes, swipe_id, extra}`.
    /// `create_date` is in its `humanizedISO8601DateTime` form (`2024-1-15 @14h 03m 09s 042ms`),
    /// `send_date` in ISO 8601, which its `timestampToMoment` (public/scripts/utils.js) also reads.
    /// Alternatives become swipes; a system note gets `extra.type = "narrator"`, how SillyTavern
    /// marks a message spoken by no one.
    public static func sillyTavern(_ c: Conversation, names: [String: String] = [:], userName: String = "你") -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json(_ v: some Encodable) -> String { String(decoding: (try? e.encode(v)) ?? Data("null".utf8), as: UTF8.self) }
        // Keys in SillyTavern's own order (JSONEncoder keeps none); values encoded one by one.
        func object(_ pairs: KeyValuePairs<String, String>) -> String {
            "{" + pairs.map { json($0.key) + ":" + $0.value }.joined(separator: ",") + "}"
        }
        func persona(_ p: String?) -> String { p.map { names[$0] ?? $0 } ?? "助手" }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let character = persona(c.persona ?? c.path.last { $0.role == .assistant }?.persona)
        var out = object(["user_name": json(userName), "character_name": json(character),
                          "create_date": json(humanized(c.created)), "chat_metadata": "{}"]) + "\n"
        for m in c.path {
            let alts = c.alternatives(of: m.id)
            let name = m.role == .user ? userName : m.role == .system ? "系统" : persona(m.persona)
            out += object(["name": json(name), "is_user": json(m.role == .user), "is_system": "false",
                           "send_date": json(iso.string(from: Date(timeIntervalSince1970: m.time))), "mes": json(m.text),
                           "swipes": json(alts.map(\.text)), "swipe_id": json(alts.firstIndex { $0.id == m.id } ?? 0),
                           "extra": m.role == .system ? json(["type": "narrator"]) : "{}"]) + "\n"
        }
        return out
    }

    /// SillyTavern's `humanizedISO8601DateTime`: month, day and milliseconds unpadded, UTC here.
    static func humanized(_ t: Double) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let d = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: Date(timeIntervalSince1970: t))
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        return "\(d.year ?? 1970)-\(d.month ?? 1)-\(d.day ?? 1) @\(two(d.hour))h \(two(d.minute))m \(two(d.second))s \(two((d.nanosecond ?? 0) / 1_000_000))ms"
    }

    /// Writes `text` to `path` (created or truncated) and fsyncs it; any failure on the way
    /// (a full disk: `/dev/full`) is the error, never a silent success.
    public static func write(_ text: String, to path: String) throws(ChatError) {
        try write(Data(text.utf8), to: path)
    }

    /// The same for bytes (cards, images).
    public static func write(_ data: Data, to path: String) throws(ChatError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChatError(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
        do {
            try writeAll(fd, [UInt8](data), path: path)
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw ChatError(path, "close failed (\(String(cString: strerror(errno))))") }
    }

    /// Every byte written (retrying short writes and EINTR), then fsync. A device that cannot
    /// be synced (a terminal, a pipe: EINVAL) is not an error; anything else is.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(ChatError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChatError(path, "write failed (\(String(cString: strerror(errno))))")
            }
            done += n
        }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            throw ChatError(path, "fsync failed (\(String(cString: strerror(errno))))")
        }
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#else
private let posixWrite = Darwin.write
#endif
