import Chat

/// The Elm update: the next state and what the runtime should do. Pure: no clock, no files,
/// no engine — those arrive as Msgs and leave as Effects. Keys go through `Keymap`: the focused
/// part's section first, then the keys that work anywhere; each part has its own update.
public func update(_ state: State, _ msg: Msg) -> (State, [Effect]) {
    var s = state
    var fx: [Effect] = []
    Updater.handle(&s, msg, &fx)
    return (s, fx)
}

enum Updater {
    static func handle(_ s: inout State, _ msg: Msg, _ fx: inout [Effect]) {
        switch msg {
        case .tick(let t): s.now = t
        case .resize(let size): s.size = size
        case .key(let k): key(&s, k, &fx)
        default: RuntimeUpdate.handle(&s, msg, &fx)
        }
    }

    static func note(_ s: inout State, _ text: String, error: Bool = false) {
        s.notice = Notice(text: text, kind: error ? .error : .info, at: s.now)
    }

    static func key(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        if s.notice?.kind == .error { s.notice = nil }   // an error stays until the next key
        if k == .resize { return }
        // Quitting and stopping work over any overlay.
        if let a = Keymap.action(k, in: Keymap.anywhere), a == .quit || a == .stopOrQuit {
            anywhere(&s, a, &fx)
            return
        }
        if let o = s.overlay {
            OverlayUpdate.key(&s, o, k, &fx)
            return
        }
        if let a = Keymap.action(k, in: Keymap.section(s.focus)) {
            let handled: Bool
            switch s.focus {
            case .input: handled = InputUpdate.action(&s, a, k, &fx)
            case .history: handled = HistoryUpdate.action(&s, a, &fx)
            case .sliders: handled = SliderUpdate.action(&s, a, &fx)
            case .adapters: handled = AdapterUpdate.action(&s, a, &fx)
            }
            if handled { return }
        }
        if let a = Keymap.action(k, in: Keymap.anywhere) {
            anywhere(&s, a, &fx)
        } else if s.focus == .input {
            InputUpdate.edit(&s, k)
        }
    }

    static func anywhere(_ s: inout State, _ a: Keymap.Action, _ fx: inout [Effect]) {
        switch a {
        case .help: s.overlay = .help(0)
        case .escape:
            if s.generation != nil {
                stop(&s, &fx)
            } else if s.editing != nil {
                s.editing = nil
                s.input = InputEditor()
                note(&s, "edit cancelled")
            } else if s.focus != .input {
                s.focus = .input
            } else {
                s.notice = nil
            }
        case .focusNext, .focusPrevious:
            let all = Focus.allCases
            let d = a == .focusNext ? 1 : all.count - 1
            s.focus = all[(all.firstIndex(of: s.focus)! + d) % all.count]
            if s.focus == .history { s.selected = s.path.isEmpty ? nil : s.path.count - 1 }
        case .personas:
            let list = PersonaGroups.filtered(s.personas, "")
            s.overlay = .personas(PersonaPicker(filter: "", index: list.firstIndex { $0.id == s.persona?.id } ?? 0))
        case .sessions:
            s.overlay = .sessions(SessionList())
            fx.append(.listSessions)
        case .newSession:
            if s.generation != nil { stop(&s, &fx) }
            s.editing = nil
            s.selected = nil
            s.scroll = 0
            fx.append(.newSession)
            note(&s, "new conversation")
        case .adapterPanel: s.focus = .adapters
        case .retry: Turns.retry(&s, &fx)
        case .continueReply: Turns.extend(&s, &fx)
        case .editLast: Turns.editLast(&s)
        case .swipePrevious: Turns.swipe(&s, -1, &fx)
        case .swipeNext: Turns.swipe(&s, +1, &fx)
        case .scrollUp: scroll(&s, by: max(View.layout(s).history.height - 2, 1))
        case .scrollDown: scroll(&s, by: -max(View.layout(s).history.height - 2, 1))
        case .nextTheme:
            let i = s.themes.firstIndex { $0.id == s.theme.id } ?? -1
            if !s.themes.isEmpty {
                s.theme = s.themes[(i + 1) % s.themes.count]
                note(&s, "theme: \(s.theme.name)")
            }
        case .nextSpeaker:
            guard !s.conversation.cast.isEmpty else { note(&s, "no scene: mark personas in the picker (F2, Ctrl-T) first"); return }
            guard Turns.canGenerate(&s) else { return }
            Turns.start(&s, .reply, .next(nil), &fx)
        case .authorsNote:
            let n = s.conversation.note
            s.overlay = .roleplay(.note, InputEditor(n.map { "\($0.depth) \($0.text)" } ?? ""))
        case .userProfile:
            s.overlay = .roleplay(.user, InputEditor(s.user.description.isEmpty ? s.user.name : "\(s.user.name) | \(s.user.description)"))
        case .attachLore:
            s.overlay = .roleplay(.lore, InputEditor(s.conversation.lore.joined(separator: " ")))
        case .stopOrQuit:
            if s.generation != nil { stop(&s, &fx) } else { quit(&s, &fx) }
        case .quit: quit(&s, &fx)
        default: break
        }
    }

    static func quit(_ s: inout State, _ fx: inout [Effect]) {
        if s.generation != nil { fx.append(.cancel) }
        s.quit = true
        fx.append(.quit)
    }

    /// Esc: the runtime stops the reply before its next token and saves what came as partial.
    static func stop(_ s: inout State, _ fx: inout [Effect]) {
        guard s.generation != nil, s.generation?.stopping == false else { return }
        s.generation!.stopping = true
        fx.append(.cancel)
        note(&s, "stopping…")
    }

    static func scroll(_ s: inout State, by n: Int) {
        let l = View.layout(s)
        let total = HistoryPane.lines(s, width: l.history.width - 1).count
        s.scroll = max(0, min(s.scroll + n, max(total - l.history.height, 0)))
    }
}

/// Replies, as the screen starts them: each asks the runtime, which decides what it means.
enum Turns {
    static func canGenerate(_ s: inout State) -> Bool {
        if s.generation != nil { Updater.note(&s, "a reply is still being written — Esc stops it"); return false }
        guard s.persona != nil else { Updater.note(&s, "no persona chosen (F2)", error: true); return false }
        switch s.model {
        case .ready: return true
        case .loading(let f, _): Updater.note(&s, "the model is still loading (\(Int(f * 100))%); your text is kept"); return false
        case .failed(let why): Updater.note(&s, "no model: " + why, error: true); return false
        }
    }

    static func start(_ s: inout State, _ kind: Generation.Kind, _ action: ReplyAction, _ fx: inout [Effect]) {
        s.scroll = 0
        s.generation = Generation(kind: kind, persona: s.persona, startedAt: s.now)
        fx.append(.reply(action))
    }

    static func retry(_ s: inout State, _ fx: inout [Effect]) {
        guard let (_, reply) = try? Rules.lastExchange(s.conversation, "retry") else { Updater.note(&s, "nothing to retry yet"); return }
        guard canGenerate(&s) else { return }
        start(&s, reply.map { .retry(message: $0.id) } ?? .reply, .retry, &fx)
    }

    static func extend(_ s: inout State, _ fx: inout [Effect]) {
        guard let (_, reply) = try? Rules.lastExchange(s.conversation, "continue"), let r = reply else {
            Updater.note(&s, "no reply to continue")
            return
        }
        guard canGenerate(&s) else { return }
        start(&s, .extend(message: r.id), .continueReply, &fx)
    }

    /// The last question back in the input line, as typed; Enter asks it again (the old one stays).
    static func editLast(_ s: inout State) {
        guard s.generation == nil else { Updater.note(&s, "a reply is still being written — Esc stops it"); return }
        guard let (q, _) = try? Rules.lastExchange(s.conversation, "edit") else { Updater.note(&s, "no question of yours to edit"); return }
        s.input.set(Rules.typedText(q, persona: q.persona.flatMap { id in s.personas.first { $0.id == id } }))
        s.editing = q.id
        s.focus = .input
        Updater.note(&s, "editing your last question — Enter asks again, Esc cancels")
    }

    /// Another alternative of a message (the selected one in the history, else the last); past
    /// the last reply's newest, a new reply.
    static func swipe(_ s: inout State, _ d: Int, _ fx: inout [Effect]) {
        guard s.generation == nil else { return }
        let path = s.path
        let index = s.focus == .history ? (s.selected ?? path.count - 1) : path.count - 1
        guard index >= 0, index < path.count else { return }
        let id = path[index].id
        if Rules.swipeMakesNewReply(s.conversation, d, at: id) {
            retry(&s, &fx)
        } else {
            fx.append(.swipe(d, at: id))
        }
    }
}
