import Foundation

/// A conversation's shown path as Markdown (for reading) or JSONL (one message per line, for tools).
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
}
