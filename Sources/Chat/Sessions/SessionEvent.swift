import Foundation

/// One line of a session log. The first line is the header; every later line changes the
/// conversation in one way. Lines are JSON objects with a `type` field.
public enum SessionEvent: Sendable, Equatable {
    case header(Header)
    case message(Message)
    /// Show this message's branch (an alternative, an earlier branch point).
    case select(String)
    case rename(String)
    /// The next reply uses this persona.
    case persona(String)
    case edit(id: String, text: String)
    /// Hide a message and what follows it from the path (it stays in the log).
    case remove(String)
    /// The personas of a scene, in turn order (empty: the scene ends).
    case cast([String])
    /// The author's note every later prompt gets (nil: none).
    case note(AuthorsNote?)
    /// Lorebooks attached to this conversation (names in the personas folder's `lore/`).
    case lore([String])

    public struct Origin: Sendable, Equatable, Codable {
        public var session: String
        public var message: String

        public init(session: String, message: String) {
            self.session = session
            self.message = message
        }
    }

    public struct Header: Sendable, Equatable {
        public var id: String
        public var title: String
        public var created: Double
        public var persona: String?
        public var origin: Origin?

        public init(id: String, title: String, created: Double, persona: String?, origin: Origin? = nil) {
            self.id = id
            self.title = title
            self.created = created
            self.persona = persona
            self.origin = origin
        }
    }

    /// Log format version written in headers.
    public static let version = 1
}

extension SessionEvent: Codable {
    private enum Keys: String, CodingKey {
        case type, v, id, title, created, persona, origin, message, text, personas, note, books
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "session":
            self = .header(Header(id: try c.decode(String.self, forKey: .id), title: try c.decode(String.self, forKey: .title),
                                  created: try c.decode(Double.self, forKey: .created),
                                  persona: try c.decodeIfPresent(String.self, forKey: .persona),
                                  origin: try c.decodeIfPresent(Origin.self, forKey: .origin)))
        case "message": self = .message(try c.decode(Message.self, forKey: .message))
        case "select": self = .select(try c.decode(String.self, forKey: .id))
        case "rename": self = .rename(try c.decode(String.self, forKey: .title))
        case "persona": self = .persona(try c.decode(String.self, forKey: .persona))
        case "edit": self = .edit(id: try c.decode(String.self, forKey: .id), text: try c.decode(String.self, forKey: .text))
        case "remove": self = .remove(try c.decode(String.self, forKey: .id))
        case "cast": self = .cast(try c.decode([String].self, forKey: .personas))
        case "note": self = .note(try c.decodeIfPresent(AuthorsNote.self, forKey: .note))
        case "lore": self = .lore(try c.decode([String].self, forKey: .books))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown event type '\(type)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .header(let h):
            try c.encode("session", forKey: .type)
            try c.encode(Self.version, forKey: .v)
            try c.encode(h.id, forKey: .id)
            try c.encode(h.title, forKey: .title)
            try c.encode(h.created, forKey: .created)
            try c.encodeIfPresent(h.persona, forKey: .persona)
            try c.encodeIfPresent(h.origin, forKey: .origin)
        case .message(let m):
            try c.encode("message", forKey: .type)
            try c.encode(m, forKey: .message)
        case .select(let id):
            try c.encode("select", forKey: .type)
            try c.encode(id, forKey: .id)
        case .rename(let t):
            try c.encode("rename", forKey: .type)
            try c.encode(t, forKey: .title)
        case .persona(let p):
            try c.encode("persona", forKey: .type)
            try c.encode(p, forKey: .persona)
        case .edit(let id, let text):
            try c.encode("edit", forKey: .type)
            try c.encode(id, forKey: .id)
            try c.encode(text, forKey: .text)
        case .remove(let id):
            try c.encode("remove", forKey: .type)
            try c.encode(id, forKey: .id)
        case .cast(let ids):
            try c.encode("cast", forKey: .type)
            try c.encode(ids, forKey: .personas)
        case .note(let n):
            try c.encode("note", forKey: .type)
            try c.encodeIfPresent(n, forKey: .note)
        case .lore(let books):
            try c.encode("lore", forKey: .type)
            try c.encode(books, forKey: .books)
        }
    }

    /// One log line: compact JSON (no raw newlines: JSON escapes them) and a newline.
    public func line() -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? e.encode(self)) ?? Data()
        return [UInt8](data) + [0x0A]
    }
}
