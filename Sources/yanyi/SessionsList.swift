import ArgumentParser
import Chat
import Foundation

/// `yanyi sessions ls [--json]`: one line per session, newest activity first: id, last
/// activity, persona, messages shown, title.
struct SessionsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List sessions: id, last activity, persona, messages, title (newest first).")

    @OptionGroup var where_: SessionsOptions

    @Flag(help: "One JSON array instead of lines (dates in ISO 8601).")
    var json = false

    func run() throws {
        let store = where_.open()
        let (sessions, errors) = store.list()
        for e in errors { warn(e.description) }
        if json {
            print(Self.json(sessions))
        } else {
            if sessions.isEmpty { print("\(store.path): no sessions") }
            for line in SessionSummary.table(sessions) { print(line) }
        }
    }

    static func json(_ sessions: [SessionSummary]) -> String {
        struct Item: Encodable {
            var id: String, title: String, persona: String?, created: String, updated: String, messages: Int
            var origin_session: String?, origin_message: String?
        }
        let iso = ISO8601DateFormatter()
        let items = sessions.map { s in
            Item(id: s.id, title: s.title, persona: s.persona, created: iso.string(from: Date(timeIntervalSince1970: s.created)),
                 updated: iso.string(from: Date(timeIntervalSince1970: s.updated)), messages: s.messageCount,
                 origin_session: s.origin?.session, origin_message: s.origin?.message)
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(items)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

