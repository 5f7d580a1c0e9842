import Foundation

/// Lorebooks in the prompt: the persona's books (`lore:` names in Personas/lore/, and a card's
/// own character_book) are scanned over the conversation and the new words; what fires goes
/// before and after the character's definition (the template's preamble). Entries placed at a
/// depth among the messages go after the definition too: the templates have no place between
/// turns.
extension ChatController {
    /// The lorebooks a turn of `p` scans: the persona's (`lore:` names in Personas/lore/, a card's
    /// own character_book) and the conversation's attached ones; one line for each that could not be read.
    func lorebooks(for p: Persona) -> (books: [Lorebook], problems: [String]) {
        RoleplayPrompt.books(of: p, also: conversation.lore) { name throws(ChatError) in try lorebook(name) }
    }

    /// A lorebook of the personas folder by name, read once.
    func lorebook(_ name: String) throws(ChatError) -> Lorebook {
        if let book = lorebookCache[name] { return book }
        guard let root = options.personasRoot else { throw ChatError("", "lorebook '\(name)': no personas folder") }
        let book = try PersonaLibrary.lorebook(name, in: root)
        lorebookCache[name] = book
        return book
    }

    /// What the lorebooks give this turn (nil: none fired), and the entries that fired.
    func scanLore(_ p: Persona, history: [Utterance], utterance: String) -> (result: LoreScanner.Result?, fired: [String]) {
        guard let e = engine else { return (nil, []) }
        let (books, problems) = lorebooks(for: p)
        for line in problems { emit(.warning(line)) }
        return RoleplayPrompt.scan(books, persona: p, history: history, input: utterance, tokenizer: e.tokenizer,
                                   contextLength: e.info.contextLength)
    }

    /// Attaches lorebooks (names in the personas folder's `lore/`) to this conversation; an empty
    /// list detaches them all. Each is read first: one that cannot be read is refused by name.
    public func attachLore(_ names: [String]) throws(ChatError) {
        try exclusive { () throws(ChatError) in
            for n in names { _ = try lorebook(n) }
            try record([.lore(names)])
        }
    }
}

/// Role-play settings: the user's profile (every session) and this conversation's author's note.
extension ChatController {
    /// Sets who the user is (`{{user}}`, `{{persona}}`); saved for every later session. Greetings
    /// already shown keep their text.
    public func setUserProfile(_ p: UserProfile) throws(ChatError) {
        let name = p.name.pythonStripped
        guard !name.isEmpty else { throw ChatError("", "a user name must not be empty") }
        guard !name.contains("\n"), name.count <= 64 else { throw ChatError("", "a user name is one line of at most 64 characters") }
        let clean = UserProfile(name: name, description: p.description.pythonStripped)
        try store.setUserProfile(clean)
        userProfile = clean
        emit(.settings)
    }

    /// Sets (or with nil or empty text, removes) this conversation's author's note.
    public func setNote(_ note: AuthorsNote?) throws(ChatError) {
        let n = note.flatMap { $0.text.pythonStripped.isEmpty ? nil : $0 }
        if let n, !(0...1000).contains(n.depth) { throw ChatError("", "an author's note depth is 0–1000 messages from the end, not \(n.depth)") }
        try exclusive { () throws(ChatError) in try record([.note(n)]) }
        emit(.settings)
    }
}
