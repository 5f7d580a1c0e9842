import Foundation

/// A summary line for the session list.
public struct SessionSummary: Sendable, Equatable {
    public var id: String
    public var title: String
    public var persona: String?
    public var created: Double
    /// Time of the newest message (created when there is none).
    public var updated: Double
    /// Messages on the shown path.
    public var messageCount: Int
    public var origin: SessionEvent.Origin?

    public init(id: String, title: String, persona: String?, created: Double, updated: Double, messageCount: Int,
                origin: SessionEvent.Origin? = nil) {
        self.id = id
        self.title = title
        self.persona = persona
        self.created = created
        self.updated = updated
        self.messageCount = messageCount
        self.origin = origin
    }
}

/// One search result: the session, the message that matched (nil: the title did) and the
/// matching text with some context, on one line.
public struct SessionSearchHit: Sendable, Equatable {
    public var session: SessionSummary
    public var message: String?
    public var snippet: String

    public init(session: SessionSummary, message: String?, snippet: String) {
        self.session = session
        self.message = message
        self.snippet = snippet
    }
}


extension SessionSummary {
    /// `yyyy-MM-dd HH:mm`, local time: how every session list shows a date.
    public static func dateText(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    /// One aligned line per session: id, last activity, persona, messages, title (`yanyi sessions
    /// ls` and the line chat's /sessions).
    public static func table(_ sessions: [SessionSummary]) -> [String] {
        let idWidth = sessions.map(\.id.count).max() ?? 0
        let personaWidth = sessions.map { ($0.persona ?? "-").count }.max() ?? 0
        return sessions.map { s in
            let count = String(s.messageCount)
            return [s.id.padding(toLength: idWidth + 2, withPad: " ", startingAt: 0),
                    dateText(s.updated) + "  ",
                    (s.persona ?? "-").padding(toLength: personaWidth + 2, withPad: " ", startingAt: 0),
                    String(repeating: " ", count: max(0, 4 - count.count)) + count + "  ",
                    s.title].joined()
        }
    }
}
