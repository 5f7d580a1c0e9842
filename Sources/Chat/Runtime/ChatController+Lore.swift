import Foundation

/// Lorebooks in the prompt: the persona's books (`lore:` names in Personas/lore/, and a card's
/// own character_book) are scanned over the conversation and the new words; what fires goes
/// before and after the character's definition (the template's preamble). Entries placed at a
/// depth among the messages go after the definition too: the templates have no place between
/// turns.
extension ChatController {
    /// The persona's lorebooks, and one line for each that could not be read.
    func lorebooks(for p: Persona) -> (books: [Lorebook], problems: [String]) {
        var books: [Lorebook] = []
        var problems: [String] = []
        for name in p.lore {
            if let book = lorebookCache[name] { books.append(book); continue }
            guard let root = options.personasRoot else { problems.append("lorebook '\(name)': no personas folder"); continue }
            do {
                let book = try PersonaLibrary.lorebook(name, in: root)
                lorebookCache[name] = book
                books.append(book)
            } catch {
                problems.append(error.description)
            }
        }
        let data = p.card?["data"] ?? p.card
        if let book = data?["character_book"] {
            do {
                books.append(try Lorebook.characterBook(book, file: p.source))
            } catch {
                problems.append(error.description)
            }
        }
        return (books, problems)
    }

    /// `p` with what its lorebooks give this turn around its preamble, and the entries that fired.
    func withLore(_ p: Persona, history: [Utterance], utterance: String) -> (persona: Persona, fired: [String]) {
        guard p.promptTemplate.acceptsPreamble, let e = engine else { return (p, []) }
        let (books, problems) = lorebooks(for: p)
        for line in problems { emit(.warning(line)) }
        guard !books.isEmpty else { return (p, []) }
        let scanner = LoreScanner(tokenBudget: max(e.info.contextLength / 4, 16))
        let found = scanner.scan(books, messages: history.map(\.text) + [utterance]) {
            e.tokenizer.encode($0, addSpecialTokens: false).count
        }
        guard !found.all.isEmpty else { return (p, []) }
        let before = found.before.map(\.content)
        let after = (found.after + found.atDepth.flatMap(\.entries)).map(\.content)
        var q = p
        q.preamble = (before + [p.preamble ?? ""].filter { !$0.isEmpty } + after).joined(separator: "\n") + (p.template == "plain" || p.template == TemplateRegistry.auto ? "" : "\n")
        return (q, found.all.map { $0.comment.isEmpty ? $0.keys.first ?? "?" : $0.comment })
    }
}
