/// Changes to what was said, without generating: edit or remove the last message, show another
/// alternative. Each is one event in the session log (nothing is overwritten there).
extension ChatController {
    /// Replaces the text of the last message. A question gets the persona's hand-over again
    /// (cosplay: `{context}，{name}{verb}：`), as when it was sent.
    @discardableResult
    public func editLast(_ text: String) throws(ChatError) -> Message {
        try guardIdle()
        defer { endBusy() }
        guard let head = session.conversation.head else { throw ChatError("", "nothing to edit: the conversation is empty") }
        let t = head.role == .user ? persona.userUtterance(text) : text
        try session.record(.edit(id: head.id, text: t))
        return session.conversation.message(head.id)!
    }

    /// Hides the last message (it stays in the log); returns it.
    @discardableResult
    public func removeLast() throws(ChatError) -> Message {
        try guardIdle()
        defer { endBusy() }
        guard let head = session.conversation.head else { throw ChatError("", "nothing to remove: the conversation is empty") }
        try session.record(.remove(head.id))
        return head
    }

    /// Shows the alternative `step` places after (negative: before) message `id` (default: the last
    /// message). Returns the one now shown, its 1-based position and how many there are.
    @discardableResult
    public func swipe(_ step: Int, at id: String? = nil) throws(ChatError) -> (message: Message, index: Int, count: Int) {
        try guardIdle()
        defer { endBusy() }
        let c = session.conversation
        guard let m = id.flatMap({ c.message($0) }) ?? c.head else { throw ChatError("", "nothing to swipe: the conversation is empty") }
        let alts = c.alternatives(of: m.id)
        guard let i = alts.firstIndex(where: { $0.id == m.id }) else { throw ChatError("", "message \(m.id) is not shown") }
        let j = i + step
        guard alts.indices.contains(j) else {
            throw ChatError("", alts.count < 2 ? "the message has no alternatives (/retry makes one)"
                                               : "no \(step > 0 ? "next" : "previous") alternative (showing \(i + 1) of \(alts.count))")
        }
        try session.record(.select(alts[j].id))
        return (alts[j], j + 1, alts.count)
    }
}
