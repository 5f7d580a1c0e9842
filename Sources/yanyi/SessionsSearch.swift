import ArgumentParser
import Chat
import Foundation

/// `yanyi sessions search TEXT`: sessions whose title or messages contain TEXT, one line per
/// hit: session id, message id (`title` when the title matched), last activity, snippet.
struct SessionsSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find sessions whose title or messages contain TEXT.")

    @OptionGroup var where_: SessionsOptions

    @Argument(help: "Text to find (a substring; Latin letters match either case).")
    var text: String

    @Option(help: "At most this many hits.")
    var limit = 50

    func validate() throws {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("give some text to search for") }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let store = where_.open()
        do {
            let hits = try store.search(text, limit: limit)
            if hits.isEmpty { print("no session contains \(text.debugDescription)") }
            for h in hits {
                print("\(h.session.id)  \(h.message ?? "title")  \(SessionSummary.dateText(h.session.updated))  \(h.snippet)")
            }
        } catch {
            fail(error.description)
        }
    }
}
