import Foundation

/// Changes to what was said, without generating, and which conversation is open. Each change is
/// events from `Rules`, recorded (nothing is overwritten in the store).
extension ChatController {
    /// Replaces the text of the last message. A question gets the persona's hand-over again
    /// (cosplay: `{context}，{name}{verb}：`), as when it was sent.
    @discardableResult
    public func editLast(_ text: String) throws(ChatError) -> Message {
        try exclusive { () throws(ChatError) -> Message in
            guard let head = conversation.head else { throw ChatError("", "nothing to edit: the conversation is empty") }
            let t = head.role == .user ? persona.userUtterance(text) : text
            try record([.edit(id: head.id, text: t)])
            return conversation.message(head.id)!
        }
    }

    /// Hides the last message (the store keeps it); returns it.
    @discardableResult
    public func removeLast() throws(ChatError) -> Message {
        try exclusive { () throws(ChatError) -> Message in
            guard let head = conversation.head else { throw ChatError("", "nothing to remove: the conversation is empty") }
            try record([.remove(head.id)])
            return head
        }
    }

    /// Shows the alternative `step` places after (negative: before) message `id` (default: the last
    /// message). Returns the one now shown, its 1-based position and how many there are.
    @discardableResult
    public func swipe(_ step: Int, at id: String? = nil) throws(ChatError) -> (message: Message, index: Int, count: Int) {
        try exclusive { () throws(ChatError) -> (message: Message, index: Int, count: Int) in
            let target = try Rules.swipe(conversation, step, at: id)
            try record([.select(target.message.id)])
            return target
        }
    }

    /// A new conversation with the current persona (its greetings shown); the old one stays saved.
    public func newSession() throws(ChatError) {
        try exclusive { () throws(ChatError) in
            startDraft()
            emitConversation()
        }
    }

    /// Opens a saved session, with the persona it was last using. A persona that no longer exists
    /// is said, with the one that replies instead. Returns notes to show.
    public func resume(_ id: String) throws(ChatError) -> [String] {
        try exclusive { () throws(ChatError) -> [String] in
            let s = try store.resume(id)
            return try open(s)
        }
    }

    /// A new session holding the path up to and including `message` (default: the last message
    /// shown) of session `id` (default: the open one), remembering where it came from.
    public func branch(_ id: String? = nil, at message: String? = nil) throws(ChatError) -> [String] {
        try exclusive { () throws(ChatError) -> [String] in
            guard let from = id ?? session?.id else { throw ChatError("", "nothing saved yet to branch from") }
            let at: String
            if let message {
                at = message
            } else {
                let c = from == session?.id ? conversation : try store.read(from).conversation
                guard let head = c.head else { throw ChatError("", "session \(from.quotedForError) has no messages to branch from") }
                at = head.id
            }
            return try open(try store.branch(from, at: at, title: nil))
        }
    }

    /// Renames session `id` (default: the open one; before anything is saved, the draft).
    public func renameSession(_ title: String, id: String? = nil) throws(ChatError) {
        let t = title.pythonStripped
        guard !t.isEmpty else { throw ChatError("", "a title cannot be empty") }
        try exclusive { () throws(ChatError) in
            if id == nil || id == session?.id {
                try record([.rename(t)])
            } else {
                try store.rename(id!, to: t)
            }
        }
    }

    /// Deletes a saved session; deleting the open one starts a new conversation.
    public func deleteSession(_ id: String) throws(ChatError) {
        try exclusive { () throws(ChatError) in
            try store.delete(id)
            if id == session?.id {
                startDraft()
                emitConversation()
            }
        }
    }

    func open(_ s: Session) throws(ChatError) -> [String] {
        var notes = s.warnings
        if let pid = s.conversation.persona, pid != persona.id {
            if let p = library.persona(pid) {
                if engine == nil {
                    persona = p
                    needsActivation = true
                } else {
                    // a model is loaded: switch now, so the adapters shown are the persona's
                    do throws(ChatError) {
                        notes += try activate(p)
                    } catch {
                        persona = p
                        needsActivation = true
                        notes.append(error.description)
                    }
                }
                emit(.persona(persona))
                emit(.settings)
            } else {
                notes.append("persona \(pid.quotedForError) of this session is gone; \(persona.name) (\(persona.id)) replies instead")
            }
        }
        session = s
        draftEvents = []
        emitConversation()
        for n in notes { emit(.notice(n)) }
        return notes
    }
}
