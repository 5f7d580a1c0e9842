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

/// A conversation as its events describe it: every message ever written (nothing is
/// overwritten), which child is selected under each message, and so the active path.
/// Pure value; `apply` is the only way it changes, so replaying events rebuilds it exactly.
/// Messages form a forest by construction: `apply` refuses a message whose parent is itself or
/// not yet known, and parents never change, so no chain of parents can loop.
public struct Conversation: Sendable, Equatable {
    public var id: String
    public var title: String
    public var created: Double
    /// The persona the next reply uses.
    public var persona: String?
    /// The session and message this one was branched from.
    public var origin: SessionEvent.Origin?
    /// A scene's personas in turn order (empty: one persona speaks).
    public var cast: [String] = []
    /// The author's note every prompt gets.
    public var note: AuthorsNote?
    /// Lorebooks attached to the conversation (beside the personas' own).
    public var lore: [String] = []
    /// All messages in the order they were written.
    public private(set) var messages: [Message] = []
    private var index: [String: Int] = [:]
    /// Indices of each parent's children in writing order ("" for the first level).
    private var kids: [String: [Int]] = [:]
    /// Selected child per parent id ("" for the first level).
    private(set) var selected: [String: String] = [:]
    private(set) var removed: Set<String> = []
    /// Highest n among ids `m<n>`, so a new id never reuses one (even when messages are missing).
    private var highest = 0

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
        (kids[id ?? ""] ?? []).map { messages[$0] }.filter { !removed.contains($0.id) }
    }

    /// The alternatives of a message: it and its siblings, oldest first.
    public func alternatives(of id: String) -> [Message] {
        guard let m = message(id) else { return [] }
        return children(of: m.parent)
    }

    /// The messages shown: from the first level down, following the selected child (or the
    /// newest when none was selected) until a message with no children. Bounded by the message
    /// count as well, so even a value built some other way cannot loop here.
    public var path: [Message] {
        var out: [Message] = []
        var parent: String? = nil
        while out.count < messages.count {
            let kids = children(of: parent)
            guard !kids.isEmpty else { break }
            let pick = selected[parent ?? ""].flatMap { s in kids.first { $0.id == s } } ?? kids[kids.count - 1]
            out.append(pick)
            parent = pick.id
        }
        return out
    }

    /// The last message on the path: where the next message goes.
    public var head: Message? { path.last }

    /// The id the next message will get: never one already used.
    public var nextMessageID: String { "m\(max(highest, messages.count) + 1)" }

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

    /// Why `event` would be refused, or nil when it applies: a message with an empty or
    /// duplicate id, a parent that is itself or unknown; a select, edit or remove of an unknown
    /// message.
    public func refusal(of event: SessionEvent) -> String? {
        switch event {
        case .header, .rename, .persona, .cast, .note, .lore:
            return nil
        case .message(let m):
            if m.id.isEmpty { return "a message needs an id" }
            if index[m.id] != nil { return "duplicate message id '\(m.id)'" }
            if let p = m.parent {
                if p == m.id { return "message '\(m.id)' is its own parent" }
                if index[p] == nil { return "message '\(m.id)' has an unknown parent '\(p)'" }
            }
            return nil
        case .select(let id), .edit(let id, _), .remove(let id):
            return index[id] == nil ? "no message '\(id)'" : nil
        }
    }

    /// Applies `event` unless `refusal(of:)` gives a reason; returns whether it applied.
    @discardableResult
    public mutating func apply(_ event: SessionEvent) -> Bool {
        guard refusal(of: event) == nil else { return false }
        switch event {
        case .header(let h):
            id = h.id
            title = h.title
            created = h.created
            persona = h.persona
            origin = h.origin
        case .message(let m):
            index[m.id] = messages.count
            kids[m.parent ?? "", default: []].append(messages.count)
            messages.append(m)
            if m.id.first == "m", let n = Int(m.id.dropFirst()), n > highest { highest = n }
            select(m.id)
        case .select(let id):
            select(id)
        case .rename(let t):
            title = t
        case .persona(let p):
            persona = p
        case .cast(let ids):
            cast = ids
        case .note(let n):
            note = n
        case .lore(let books):
            lore = books
        case .edit(let id, let text):
            messages[index[id]!].text = text
        case .remove(let id):
            removed.insert(id)
        }
        return true
    }

    /// Makes `id` and its ancestors the selected children on their levels.
    private mutating func select(_ id: String) {
        var cur = message(id)
        var steps = 0
        while let m = cur, steps < messages.count {
            selected[m.parent ?? ""] = m.id
            cur = m.parent.flatMap { message($0) }
            steps += 1
        }
    }

    /// Makes `nextMessageID` pass over these ids too (rows the database has but could not load).
    mutating func reserve(_ ids: [String]) {
        for id in ids where id.first == "m" {
            if let n = Int(id.dropFirst()), n > highest { highest = n }
        }
    }

    /// Sets what the database keeps beside the messages (loading only): the selection of each
    /// level and the removed messages. Entries naming unknown messages, or a child that is not
    /// under that parent, are dropped and returned as reasons.
    mutating func restore(selected stored: [String: String], removed gone: Set<String>) -> [String] {
        var problems: [String] = []
        var sel: [String: String] = [:]
        for (parent, child) in stored.sorted(by: { $0.key < $1.key }) {
            if let m = message(child), (m.parent ?? "") == parent {
                sel[parent] = child
            } else {
                problems.append("selection of '\(child)' under '\(parent)' names no such child")
            }
        }
        selected = sel
        for id in gone.sorted() where index[id] == nil { problems.append("removed message '\(id)' does not exist") }
        removed = gone.filter { index[$0] != nil }
        return problems
    }
}
