import Engine
import Foundation

/// The chat in plain lines: each input line is a message or a slash command, replies stream out
/// as they are generated. Reads and writes through closures, so `yanyi chat --plain` passes
/// stdin/stdout and tests pass a script and a string.
public final class LineChat {
    public let controller: ChatController
    private let readLine: () -> String?
    private let write: (String) -> Void
    /// The user's name in saved Markdown transcripts.
    public var userName = "你"
    /// `/stats on`: a line of figures after each reply (tokens, speed, forwards, prompt-lookup or draft-model guesses).
    public var showStats = false

    public init(controller: ChatController, read: @escaping () -> String?, write: @escaping (String) -> Void) {
        self.controller = controller
        self.readLine = read
        self.write = write
    }

    public static let help = """
        Type a message to send it. Commands:
          /persona ID               switch persona (the next reply uses its template, model and adapters)
          /personas                 list personas
          /scene ID ID …            a scene: these personas in one conversation (/scene off ends it)
          /next [NAME]              in a scene: the next speaker (or NAME) speaks without your words
          /adapter load DIR[=S]     load an adapter (folder under the models root), multiplier S in 0–2
          /adapter unload DIR       unload an adapter
          /adapter scale DIR S      change an adapter's multiplier
          /adapters                 list active adapters
          /set [KEY [VALUE]]        show settings, or set one (VALUE default clears): \(SamplingOverrides.keys.joined(separator: ", "))
          /user [NAME [| DESCRIPTION]]   who you are in role-play ({{user}}; kept for every session)
          /note [N] TEXT            author's note N messages from the end (default \(AuthorsNote.defaultDepth)); /note off removes it
          /lore [NAME …]            lorebooks (Personas/lore/) attached to this conversation; /lore off detaches
          /retry                    another reply to the last question (the old one stays: /swipe)
          /continue                 more of the last reply
          /edit TEXT                replace the last message (no new reply)
          /reask TEXT               ask the last question again in other words (the old one stays: /swipe)
          /undo                     remove the last message
          /swipe next|prev          show another alternative of the last message
          /save [markdown|jsonl|sillytavern] PATH   export the conversation (sillytavern: its chat JSONL)
          /new                      start a new conversation
          /branch                   a new saved conversation from here (the old one stays)
          /sessions                 list saved conversations;  /resume ID  opens one
          /search TEXT              find saved conversations by what was said
          /rename TITLE             rename this conversation;  /delete ID  deletes a saved one
          /stats on|off             a line of figures after each reply (tok/s, forwards, prompt-lookup or draft-model guesses)
          /help                     this list
          /quit                     leave
        """

    /// Reads and handles lines until `/quit` or the end of input.
    public func run() {
        showStart()
        while let line = readLine() {
            if !handle(line) { break }
        }
    }

    /// The persona and its greeting (or the conversation so far, after a resume).
    public func showStart() {
        let p = controller.persona
        say("[\(p.name) · \(p.id) · \(p.template)]  /help lists commands")
        for m in controller.conversation.path { show(m) }
    }

    /// Handles one line; false when the chat should end.
    @discardableResult
    public func handle(_ line: String) -> Bool {
        let text = line.trimmingCharacters(in: CharacterSet(charactersIn: "\r\n"))
        if text.pythonStripped.isEmpty { return true }
        guard text.hasPrefix("/") else {
            replyCommand(.send(text))
            return true
        }
        let parts = text.dropFirst().split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let name = parts.first.map(String.init) ?? ""
        let rest = parts.count > 1 ? String(parts[1]).pythonStripped : ""
        do throws(ChatError) {
            switch name {
            case "quit", "exit", "q": return false
            case "help", "?": say(Self.help)
            case "persona": try personaCommand(rest)
            case "personas": listPersonas()
            case "scene":
                if rest.isEmpty {
                    let cast = controller.cast
                    note(cast.isEmpty ? "no scene" : "scene: " + cast.map { "\($0.name) (\($0.id))" }.joined(separator: ", "))
                } else {
                    try controller.setScene(rest == "off" ? [] : rest.split(separator: " ").map(String.init))
                    let cast = controller.cast
                    note(cast.isEmpty ? "scene ended" : "scene: " + cast.map(\.name).joined(separator: "、"))
                }
            case "next": replyCommand(.next(rest.isEmpty ? nil : rest))
            case "adapter": try adapterCommand(rest)
            case "adapters": listAdapters()
            case "set": try setCommand(rest)
            case "stats":
                guard rest == "on" || rest == "off" else { throw ChatError("", "usage: /stats on|off") }
                showStats = rest == "on"
                note("figures after each reply: \(rest)")
            case "retry": replyCommand(.retry)
            case "continue": replyCommand(.continueReply)
            case "reask":
                guard !rest.isEmpty else { throw ChatError("", "usage: /reask TEXT") }
                replyCommand(.reask(rest))
            case "branch":
                for n in try controller.branch() { note(n) }
                note("branched into \(controller.sessionID ?? "?")")
            case "sessions": listSessions()
            case "search":
                guard !rest.isEmpty else { throw ChatError("", "usage: /search TEXT") }
                let hits = try controller.store.search(rest)
                if hits.isEmpty { note("nothing found") }
                for h in hits { say("  \(h.session.id)  \(h.message ?? "title")  \(h.snippet)") }
            case "rename":
                try controller.renameSession(rest)
                note("renamed: \(controller.conversation.title)")
            case "delete":
                guard !rest.isEmpty else { throw ChatError("", "usage: /delete ID (/sessions lists them)") }
                try controller.deleteSession(rest)
                note("deleted \(rest)")
            case "resume":
                guard !rest.isEmpty else { throw ChatError("", "usage: /resume ID (/sessions lists them)") }
                for n in try controller.resume(rest) { note(n) }
                note("resumed \(rest)")
                for m in controller.conversation.path { show(m) }
            case "edit":
                guard !rest.isEmpty else { throw ChatError("", "usage: /edit TEXT") }
                let m = try controller.editLast(rest)
                note("edited \(m.id)")
                show(m)
            case "undo":
                let m = try controller.removeLast()
                note("removed \(m.id): \(preview(m.text))")
            case "swipe":
                guard rest == "next" || rest == "prev" else { throw ChatError("", "usage: /swipe next|prev") }
                let (m, i, n) = try controller.swipe(rest == "next" ? 1 : -1)
                note("alternative \(i) of \(n)")
                show(m)
            case "save": try saveCommand(rest)
            case "user": try userCommand(rest)
            case "note": try noteCommand(rest)
            case "lore": try loreCommand(rest)
            case "new":
                try controller.newSession()
                note("new conversation (saved once something is said)")
                for m in controller.conversation.path { show(m) }
            default:
                throw ChatError("", "unknown command /\(name) (/help lists them)")
            }
        } catch {
            say("error: \(error.description)")
        }
        return true
    }

    // MARK: - Commands

    private func replyCommand(_ action: ReplyAction) {
        var started = false
        do throws(ChatError) {
            let outcome = try controller.reply(action) { delta in
                // Read here, not before: in a scene the runtime picks the speaker first.
                let p = self.controller.persona
                if !started {
                    write(action == .continueReply ? "\(p.name)（续）：" : "\(p.name)：")
                    started = true
                }
                write(delta)
            }
            if !started { write("\(controller.persona.name)：") }
            write("\n")
            if !outcome.lore.isEmpty { note("世界书 · lore: " + outcome.lore.joined(separator: "、")) }
            if let e = outcome.error { say("error: \(e.description)") }
            if showStats, let s = outcome.stats { note(Self.figures(s)) }
            if outcome.partial { note(outcome.message == nil ? "cancelled before any text; nothing saved" : "cancelled: partial reply saved") }
            if !outcome.droppedForBudget.isEmpty {
                note("\(outcome.droppedForBudget.count) older messages left out to fit the context")
            }
        } catch {
            if started { write("\n") }
            say("error: \(error.description)")
        }
    }

    /// `/stats on`'s line, one reply's figures (words and numbers a script can read).
    static func figures(_ s: GenerationStats) -> String {
        var line = "stats: prompt \(s.promptTokens) tokens (\(s.reusedPromptTokens) reused), "
            + String(format: "prefill %.3f s, first token %.3f s, %d tokens, %.2f tok/s, %d forwards",
                     s.prefillSeconds, s.timeToFirstToken, s.generatedTokens, s.tokensPerSecond, s.forwards)
        if s.draftModelForwards > 0 {
            line += String(format: ", draft %d/%d guesses picked in %d forwards, %d draft forwards %.3f s", s.acceptedDraftTokens,
                           s.draftTokens, s.draftSteps, s.draftModelForwards, s.draftModelSeconds)
        } else if s.draftTokens > 0 {
            line += ", lookup \(s.acceptedDraftTokens)/\(s.draftTokens) guesses picked in \(s.draftSteps) forwards"
        }
        return line
    }

    private func userCommand(_ rest: String) throws(ChatError) {
        guard !rest.isEmpty else {
            let u = controller.userProfile
            note("you are \(u.name)" + (u.description.isEmpty ? "" : " — \(u.description)"))
            return
        }
        try controller.setUserProfile(UserProfile(line: rest))
        note("you are \(controller.userProfile.name) in every conversation")
    }

    private func noteCommand(_ rest: String) throws(ChatError) {
        guard !rest.isEmpty else {
            if let n = controller.conversation.note { note("author's note at depth \(n.depth): \(n.text)") } else { note("no author's note") }
            return
        }
        if rest == "off" {
            try controller.setNote(nil)
            note("author's note removed")
            return
        }
        let n = AuthorsNote(line: rest)
        try controller.setNote(n)
        note("author's note at depth \(n?.depth ?? AuthorsNote.defaultDepth)")
    }

    private func loreCommand(_ rest: String) throws(ChatError) {
        guard !rest.isEmpty else {
            let own = controller.persona.lore
            let attached = controller.conversation.lore
            note("lorebooks: persona " + (own.isEmpty ? "none" : own.joined(separator: ", "))
                 + "; conversation " + (attached.isEmpty ? "none" : attached.joined(separator: ", ")))
            return
        }
        let names = rest == "off" ? [] : rest.split(separator: " ").map(String.init)
        try controller.attachLore(names)
        note(names.isEmpty ? "lorebooks detached" : "lorebooks attached: " + names.joined(separator: ", "))
    }

    private func personaCommand(_ id: String) throws(ChatError) {
        guard !id.isEmpty else {
            let p = controller.persona
            note("persona \(p.id) (\(p.name)), template \(p.template), model \(p.model)")
            return
        }
        let notes = try controller.switchPersona(id)
        let p = controller.persona
        note("persona \(p.id) (\(p.name)), template \(p.template)")
        for n in notes { note(n) }
    }

    private func listPersonas() {
        let current = controller.persona.id
        for p in controller.library.personas {
            say("\(p.id == current ? "*" : " ") \(p.id)  \(p.name)  [\(p.template)]")
        }
        for e in controller.library.errors { say("  (not loaded) \(e.description)") }
    }

    private func adapterCommand(_ args: String) throws(ChatError) {
        let words = args.split(separator: " ").map(String.init)
        switch (words.first, words.count) {
        case ("load", 2):
            let a = try controller.loadAdapter(words[1])
            note("adapter \(a.label)")
        case ("unload", 2):
            try controller.unloadAdapter(words[1])
            note("unloaded \(words[1])")
        case ("scale", 3):
            guard let s = Float(words[2]) else { throw ChatError("", "adapter scale must be a number from 0 to 2 (got \(words[2].quotedForError))") }
            try controller.scaleAdapter(words[1], s)
            note("adapter \(words[1])=\(formatScale(s))")
        default:
            throw ChatError("", "usage: /adapter load DIR[=SCALE] | unload DIR | scale DIR SCALE")
        }
    }

    private func listSessions() {
        let (list, errors) = controller.store.list()
        if list.isEmpty { note("no saved conversations") }
        for line in SessionSummary.table(Array(list.prefix(30))) { say("  " + line) }
        for e in errors { say("  (unreadable) \(e.description)") }
    }

    private func listAdapters() {
        if controller.adapters.isEmpty { note("no adapters active") }
        for a in controller.adapters {
            say("  \(a.label)\(a.fromPersona ? "  (persona)" : "")\(a.enabled ? "" : "  (disabled)")  \(a.summary)")
        }
    }

    private func setCommand(_ args: String) throws(ChatError) {
        let words = args.split(separator: " ", maxSplits: 1).map(String.init)
        guard let key = words.first else {
            let mine = Set(controller.overrides.entries.map(\.key))
            for s in controller.resolvedSettings { say("  \(s.key) = \(s.value)  (\(mine.contains(s.key) ? "set" : s.layer.rawValue))") }
            return
        }
        let warning = try controller.set(key, words.count > 1 ? words[1] : "default")
        note(words.count > 1 ? "\(key) = \(words[1].pythonStripped)" : "\(key) back to default")
        if let warning { note(warning) }
    }

    private func saveCommand(_ args: String) throws(ChatError) {
        var words = args.split(separator: " ", maxSplits: 1).map(String.init)
        var format = ""
        if let f = words.first, ["markdown", "md", "jsonl", "sillytavern"].contains(f) {
            format = f
            words.removeFirst()
        }
        guard let path = words.first?.pythonStripped, !path.isEmpty else {
            throw ChatError("", "usage: /save [markdown|jsonl|sillytavern] PATH")
        }
        if format.isEmpty { format = path.hasSuffix(".jsonl") ? "jsonl" : "markdown" }
        let c = controller.conversation
        var names: [String: String] = [:]
        for p in controller.library.personas { names[p.id] = p.name }
        let text: String
        switch format {
        case "jsonl": text = TranscriptExport.jsonl(c)
        case "sillytavern": text = TranscriptExport.sillyTavern(c, names: names, userName: userName)
        default: text = TranscriptExport.markdown(c, names: names, userName: userName)
        }
        try TranscriptExport.write(text, to: path)
        note("saved \(c.path.count) messages to \(path)")
    }

    // MARK: - Output

    private func show(_ m: Message) {
        let who: String
        switch m.role {
        case .user: who = userName
        case .assistant: who = m.persona.flatMap { controller.library.persona($0)?.name } ?? m.persona ?? "助手"
        case .system: who = "系统"
        }
        let text = Rules.typedText(m, persona: m.persona.flatMap { controller.library.persona($0) })
        say("\(who)：\(text)\(m.partial == true ? " […]" : "")")
    }

    private func preview(_ s: String) -> String { s.count > 30 ? String(s.prefix(30)) + "…" : s }

    private func say(_ s: String) { write(s + "\n") }
    private func note(_ s: String) { write("· " + s + "\n") }
}
