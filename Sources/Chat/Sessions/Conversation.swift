import Foundation

/// One message of a conversation. Messages form a tree: a message's alternatives (retries,
/// edits, "swipes") are its siblings under the same parent, and any message can be a branch point.
public struct Message: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable { case user, assistant, system }

    /// Unique within its session (`m1`, `m2`, …).
    public var id: String
    /// nil for a first message.
    public var parent: String?
    public var role: Role
    public var text: String
    /// The persona that spoke (assistant) or was spoken to (user).
    public var persona: String?
    /// Seconds since 1970.
    public var time: Double
    /// What produced a reply, for the record: template and adapters with scales.
    public var template: String?
    public var adapters: [String]?
    /// A persona's greeting (shown, but history only when the persona says so).
    public var greeting: Bool?
    /// A reply cut short (cancelled, or the engine failed mid-reply): what came before it stopped.
    public var partial: Bool?

    public init(id: String, parent: String?, role: Role, text: String, persona: String? = nil, time: Double,
                template: String? = nil, adapters: [String]? = nil, greeting: Bool? = nil, partial: Bool? = nil) {
        self.id = id
        self.parent = parent
        self.role = role
        self.text = text
        self.persona = persona
        self.time = time
        self.template = template
        self.adapters = adapters
        self.greeting = greeting
        self.partial = partial
    }
}

/// A conversation as the event log describes it: every message ever written (nothing is
/// overwritten), which child is selected under each message, and so the active path.
/// Pure value; `apply` is the only way it changes, so replaying a log rebuilds it exactly.
public struct Conversation: Sendable, Equatable {
    public var id: String
    public var title: String
    public var created: Double
    /// The persona the next reply uses.
    public var persona: String?
    /// The session and message this one was branched from.
    public var origin: SessionEvent.Origin?
    /// All messages in the order they were written.
    public private(set) var messages: [Message] = []
    private var index: [String: Int] = [:]
    /// Selected child per parent id ("" for the first level).
    private var selected: [String: String] = [:]
    private var removed: Set<String> = []

    public init(id: String, title: String, created: Double, persona: String?, origin: SessionEvent.Origin? = nil) {
        self.id = id
        self.title = title
        self.created = created
        self.persona = persona
        self.origin = origin
    }

    public func message(_ id: String) -> Message? { index[id].map { messages[$0] } }

    /// Children of a message (nil: first-level messages), oldest first, removed ones left out.
    public func children(of id: String?) -> [Message] {
        messages.filter { $0.parent == id && !removed.contains($0.id) }
    }

    /// The alternatives of a message: it and its siblings, oldest first.
    public func alternatives(of id: String) -> [Message] {
        guard let m = message(id) else { return [] }
        return children(of: m.parent)
    }

    /// The messages shown: from the first level down, following the selected child (or the
    /// newest when none was selected) until a message with no children.
    public var path: [Message] {
        var out: [Message] = []
        var parent: String? = nil
        while true {
            let kids = children(of: parent)
            guard !kids.isEmpty else { return out }
            let pick = selected[parent ?? ""].flatMap { s in kids.first { $0.id == s } } ?? kids[kids.count - 1]
            out.append(pick)
            parent = pick.id
        }
    }

    /// The last message on the path: where the next message goes.
    public var head: Message? { path.last }

    /// The id the next message will get.
    public var nextMessageID: String { "m\(messages.count + 1)" }

    /// The path as prompt history: user and assistant messages (system notes left out; greetings
    /// only with `includeGreetings`), stopping before `id` when given.
    public func utterances(upTo id: String? = nil, includeGreetings: Bool = true) -> [Utterance] {
        var out: [Utterance] = []
        for m in path {
            if let id, m.id == id { break }
            if m.greeting == true && !includeGreetings { continue }
            switch m.role {
            case .user: out.append(.user(m.text))
            case .assistant: out.append(.assistant(m.text))
            case .system: break
            }
        }
        return out
    }

    public mutating func apply(_ event: SessionEvent) {
        switch event {
        case .header(let h):
            id = h.id
            title = h.title
            created = h.created
            persona = h.persona
            origin = h.origin
        case .message(let m):
            guard index[m.id] == nil else { return }   // a replayed duplicate changes nothing
            index[m.id] = messages.count
            messages.append(m)
            select(m.id)
        case .select(let id):
            select(id)
        case .rename(let t):
            title = t
        case .persona(let p):
            persona = p
        case .edit(let id, let text):
            if let i = index[id] { messages[i].text = text }
        case .remove(let id):
            removed.insert(id)
        }
    }

    /// Makes `id` and its ancestors the selected children on their levels.
    private mutating func select(_ id: String) {
        var cur = message(id)
        while let m = cur {
            selected[m.parent ?? ""] = m.id
            cur = m.parent.flatMap { message($0) }
        }
    }
}
