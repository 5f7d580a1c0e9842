import Foundation

/// The conversation rules as pure functions of a conversation: what a greeting, a retry, a swipe,
/// an edit or a persona switch means, as the session events that carry it out. The runtime
/// applies them; no front end decides any of this.
public enum Rules {
    public static let untitled = "新对话"

    /// A new conversation's greetings: the first shown, the others its alternatives (swipes).
    public static func greetingEvents(_ p: Persona, in c: Conversation, now: Double, user: UserProfile = UserProfile(),
                                      greetings: [String]? = nil) -> [SessionEvent] {
        let texts = greetings ?? p.greetings(for: user)
        guard !texts.isEmpty else { return [] }
        var c = c
        var events: [SessionEvent] = []
        let parent = c.head?.id
        var firstID: String?
        for g in texts {
            let m = Message(id: c.nextMessageID, parent: parent, role: .assistant, text: g, persona: p.id, time: now, greeting: true)
            firstID = firstID ?? m.id
            c.apply(.message(m))
            events.append(.message(m))
        }
        if texts.count > 1, let firstID { events.append(.select(firstID)) }
        return events
    }

    /// The last reply and the question it answers; a question with no reply yet has none.
    public static func lastExchange(_ c: Conversation, _ what: String) throws(ChatError) -> (question: Message, reply: Message?) {
        guard let head = c.head else { throw ChatError("", "nothing to \(what): the conversation is empty") }
        if head.role == .user { return (head, nil) }
        guard head.role == .assistant, head.greeting != true, let q = head.parent.flatMap({ c.message($0) }), q.role == .user else {
            throw ChatError("", "nothing to \(what): the last message is not a reply to a question")
        }
        return (q, head)
    }

    /// The alternative `step` places after (negative: before) message `id` (default: the last).
    public static func swipe(_ c: Conversation, _ step: Int, at id: String?) throws(ChatError) -> (message: Message, index: Int, count: Int) {
        guard let m = id.flatMap({ c.message($0) }) ?? c.head else { throw ChatError("", "nothing to swipe: the conversation is empty") }
        let alts = c.alternatives(of: m.id)
        guard let i = alts.firstIndex(where: { $0.id == m.id }) else { throw ChatError("", "message \(m.id) is not shown") }
        let j = i + step
        guard alts.indices.contains(j) else {
            throw ChatError("", alts.count < 2 ? "the message has no alternatives (retry makes one)"
                                               : "no \(step > 0 ? "next" : "previous") alternative (showing \(i + 1) of \(alts.count))")
        }
        return (alts[j], j + 1, alts.count)
    }

    /// Past the newest alternative of the last reply, a swipe asks for a new one (SillyTavern's rule).
    public static func swipeMakesNewReply(_ c: Conversation, _ step: Int, at id: String?) -> Bool {
        guard step > 0, let head = c.head, let m = id.flatMap({ c.message($0) }) ?? c.head, m.id == head.id,
              m.role == .assistant, m.greeting != true else { return false }
        return c.alternatives(of: m.id).last?.id == m.id
    }

    /// What the user typed, from a question as stored (cosplay: without the `，玄德曰：` hand-over
    /// the persona added). For showing and editing.
    public static func typedText(_ m: Message, persona p: Persona?) -> String {
        guard m.role == .user, let p, p.template == "glm-cosplay", let sp = p.speaker else { return m.text }
        var text = m.text
        let handover = sp.name + sp.verb + "："
        guard text.hasSuffix(handover) else { return text }
        text.removeLast(handover.count)
        if text.hasSuffix("，") { text.removeLast() }
        // A scene's turn given without words (/next): say whose it is.
        return text.isEmpty ? "（请\(p.name)发言）" : text
    }

    /// A switch to `p` once something was said: noted in the conversation (the note never
    /// enters a prompt).
    public static func personaSwitchEvents(to p: Persona, in c: Conversation, now: Double) -> [SessionEvent] {
        let label = p.groupTitle == p.name ? p.name : "\(p.name)（\(p.groupTitle)）"
        let note = Message(id: c.nextMessageID, parent: c.head?.id, role: .system, text: "换成 \(label)", persona: p.id, time: now)
        return [.persona(p.id), .message(note)]
    }

    /// Who speaks next in a scene: a cast member the user's words name (by name or by the name the
    /// novel uses, 孔明 for 诸葛亮; the earliest mention wins), else the one after the last speaker
    /// in turn order.
    public static func nextSpeaker(_ cast: [Persona], typed: String, in c: Conversation) -> Persona? {
        guard !cast.isEmpty else { return nil }
        var best: (at: String.Index, p: Persona)?
        for p in cast {
            for name in [p.name, p.speaker?.name].compactMap({ $0 }) where !name.isEmpty {
                if let r = typed.range(of: name), best == nil || r.lowerBound < best!.at { best = (r.lowerBound, p) }
            }
        }
        if let best { return best.p }
        let last = c.path.last { $0.role == .assistant && $0.greeting != true && cast.map(\.id).contains($0.persona ?? "") }
        guard let lastID = last?.persona, let i = cast.firstIndex(where: { $0.id == lastID }) else { return cast[0] }
        return cast[(i + 1) % cast.count]
    }

    /// The note a scene's start leaves in the conversation.
    /// A scene starts (or ends): its cast, a note in the history, and the greetings that cards
    /// keep for group chats (`group_only_greetings`, each card's as alternatives of one message).
    public static func sceneEvents(_ cast: [Persona], in c: Conversation, now: Double, user: UserProfile = UserProfile()) -> [SessionEvent] {
        let note = cast.isEmpty ? "场景结束" : "场景：" + cast.map(\.name).joined(separator: "、")
        var c = c
        var events: [SessionEvent] = [.cast(cast.map(\.id)), .message(Message(id: c.nextMessageID, parent: c.head?.id, role: .system, text: note, time: now))]
        for e in events { c.apply(e) }
        for p in cast {
            guard let group = p.communityCard?.groupOnlyGreetings, !group.isEmpty else { continue }
            var q = p
            q.greetings = group
            let more = greetingEvents(q, in: c, now: now, user: user)
            for e in more { c.apply(e) }
            events += more
        }
        return events
    }

    /// A conversation's title from its first question.
    public static func title(from typed: String) -> String {
        let flat = typed.replacingOccurrences(of: "\n", with: " ").pythonStripped
        return flat.count > 24 ? String(flat.prefix(23)) + "…" : flat
    }
}

extension Persona {
    /// The collection shown beside the name: 三国, 西游, 水浒, 红楼, RulaiGPT, assistants, or the group.
    public var groupTitle: String {
        if id.lowercased().contains("rulai") || name.hasPrefix("RulaiGPT") { return "RulaiGPT" }
        switch group {
        case "sanguo": return "三国"
        case "xiyou": return "西游"
        case "shuihu": return "水浒"
        case "honglou": return "红楼"
        default: return group
        }
    }
}
