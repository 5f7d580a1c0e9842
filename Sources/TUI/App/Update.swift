import Chat
import Foundation

/// The Elm update: the next state and what the runtime should do. Pure: no clock, no files,
/// no engine — those arrive as Msgs and leave as Effects.
public func update(_ state: State, _ msg: Msg) -> (State, [Effect]) {
    var s = state
    var fx: [Effect] = []
    Updater.handle(&s, msg, &fx)
    return (s, fx)
}

enum Updater {
    static func handle(_ s: inout State, _ msg: Msg, _ fx: inout [Effect]) {
        switch msg {
        case .tick(let t):
            s.now = t
        case .resize(let size):
            s.size = size
        case .key(let k):
            key(&s, k, &fx)
        case .backend(let e):
            backend(&s, e, &fx)
        case .sessionCreated(let id):
            s.conversation.id = id
        case .sessionOpened(let c, let warnings):
            if let g = s.generation { fx.append(.cancel(g.id)); s.generation = nil }
            s.conversation = c
            s.selected = nil
            s.scroll = 0
            s.editing = nil
            if let id = c.persona, let p = s.personas.first(where: { $0.id == id }), p.id != s.persona?.id {
                choose(&s, p, &fx, keepConversation: true)
            }
            note(&s, warnings.first ?? "opened «\(c.title)» (\(c.path.count) messages)", error: !warnings.isEmpty)
        case .sessionsListed(let list, let errors):
            if case .sessions(var l) = s.overlay {
                l.sessions = list
                l.loading = false
                l.index = min(l.index, max(list.count - 1, 0))
                s.overlay = .sessions(l)
            }
            if let e = errors.first { note(&s, e, error: true) }
        case .failed(let text):
            note(&s, text, error: true)
        case .choosePersona(let id):
            if let p = s.personas.first(where: { $0.id == id }) {
                choose(&s, p, &fx)
            } else {
                note(&s, "no persona '\(id)' (F2 lists them)", error: true)
            }
        case .addAdapter(let path, let scale):
            addAdapter(&s, path, scale: scale, &fx)
        }
    }

    static func note(_ s: inout State, _ text: String, error: Bool = false) {
        s.notice = Notice(text: text, kind: error ? .error : .info, at: s.now)
    }

    // MARK: keys

    static func key(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        if s.notice?.kind == .error { s.notice = nil }   // an error stays until the next key
        switch k {
        case .ctrl("q"):
            quit(&s, &fx); return
        case .ctrl("c"):
            if s.generation != nil { stop(&s, &fx) } else { quit(&s, &fx) }
            return
        case .resize:
            return
        default: break
        }
        if let o = s.overlay {
            overlay(&s, o, k, &fx)
            return
        }
        switch k {
        case .f(1):
            s.overlay = .help(0)
        case .char("?") where s.focus != .input:
            s.overlay = .help(0)
        case .escape:
            if s.generation != nil {
                stop(&s, &fx)
            } else if s.editing != nil {
                s.editing = nil
                s.input = InputEditor()
            } else if s.focus != .input {
                s.focus = .input
            } else {
                s.notice = nil
            }
        case .tab:
            s.focus = Focus.allCases[(Focus.allCases.firstIndex(of: s.focus)! + 1) % Focus.allCases.count]
            enterFocus(&s)
        case .backTab:
            s.focus = Focus.allCases[(Focus.allCases.firstIndex(of: s.focus)! + Focus.allCases.count - 1) % Focus.allCases.count]
            enterFocus(&s)
        case .f(2), .ctrl("p"):
            let list = PersonaGroups.filtered(s.personas, "")
            s.overlay = .personas(PersonaPicker(filter: "", index: list.firstIndex { $0.id == s.persona?.id } ?? 0))
        case .f(3), .ctrl("s"):
            s.overlay = .sessions(SessionList())
            fx.append(.listSessions)
        case .ctrl("n"):
            newSession(&s, &fx)
        case .f(4):
            s.focus = .adapters
        case .f(5), .ctrl("r"):
            retry(&s, &fx)
        case .f(6), .ctrl("t"):
            extend(&s, &fx)
        case .f(7), .ctrl("x"):
            editLast(&s)
        case .f(8):
            let i = s.themes.firstIndex { $0.id == s.theme.id } ?? -1
            if !s.themes.isEmpty {
                s.theme = s.themes[(i + 1) % s.themes.count]
                note(&s, "theme: \(s.theme.name)")
            }
        case .altLeft, .ctrlLeft:
            swipe(&s, -1, &fx)
        case .altRight, .ctrlRight:
            swipe(&s, +1, &fx)
        case .pageUp:
            scroll(&s, by: max(View.layout(s).history.height - 2, 1))
        case .pageDown:
            scroll(&s, by: -max(View.layout(s).history.height - 2, 1))
        default:
            switch s.focus {
            case .input: inputKey(&s, k, &fx)
            case .history: historyKey(&s, k, &fx)
            case .sliders: sliderKey(&s, k, &fx)
            case .adapters: adapterKey(&s, k, &fx)
            }
        }
    }

    static func enterFocus(_ s: inout State) {
        if s.focus == .history { s.selected = s.path.isEmpty ? nil : s.path.count - 1 }
    }

    static func quit(_ s: inout State, _ fx: inout [Effect]) {
        if let g = s.generation { fx.append(.cancel(g.id)) }
        s.quit = true
        fx.append(.quit)
    }

    static func scroll(_ s: inout State, by n: Int) {
        let l = View.layout(s)
        let total = HistoryPane.lines(s, width: l.history.width - 1).count
        s.scroll = max(0, min(s.scroll + n, max(total - l.history.height, 0)))
    }

    // MARK: input line

    static func inputKey(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        switch k {
        case .char(let c): s.input.insert(String(c)); s.historyIndex = nil
        case .paste(let text): s.input.insert(text); s.historyIndex = nil
        case .enter: submit(&s, &fx)
        case .altEnter, .ctrl("j"): s.input.insert("\n")
        case .backspace: s.input.backspace()
        case .delete: s.input.deleteForward()
        case .left: s.input.left()
        case .right: s.input.right()
        case .home, .ctrl("a"): s.input.home()
        case .end, .ctrl("e"): s.input.end()
        case .ctrl("u"): s.input.killToStart()
        case .ctrl("k"): s.input.killToEnd()
        case .ctrl("w"): s.input.deleteWord()
        case .ctrl("d"): if s.input.isEmpty { quit(&s, &fx) } else { s.input.deleteForward() }
        case .up:
            if s.input.onFirstLine { walkHistory(&s, -1) } else { s.input.verticalMove(-1) }
        case .down:
            if s.input.onLastLine { walkHistory(&s, +1) } else { s.input.verticalMove(+1) }
        default: break
        }
    }

    /// ↑/↓ through what was sent; past the newest comes back to the draft.
    static func walkHistory(_ s: inout State, _ d: Int) {
        guard !s.inputHistory.isEmpty else { return }
        if s.historyIndex == nil {
            guard d < 0 else { return }
            s.draft = s.input.string
            s.historyIndex = s.inputHistory.count
        }
        let i = s.historyIndex! + d
        if i >= s.inputHistory.count {
            s.historyIndex = nil
            s.input.set(s.draft)
        } else {
            s.historyIndex = max(i, 0)
            s.input.set(s.inputHistory[s.historyIndex!])
        }
    }

    /// Enter: the typed text becomes a user message (or replaces the one being edited) and a
    /// reply is requested. Nothing is lost when it cannot be sent: the text stays.
    static func submit(_ s: inout State, _ fx: inout [Effect]) {
        let typed = s.input.string
        guard !typed.allSatisfy({ $0.isWhitespace }) else { return }
        guard canGenerate(&s) else { return }
        let p = s.persona!
        let utterance = p.userUtterance(typed)
        var parent = s.conversation.head?.id
        if let id = s.editing, let old = s.conversation.message(id) { parent = old.parent }
        let m = Message(id: s.conversation.nextMessageID, parent: parent, role: .user, text: utterance, persona: p.id, time: s.now)
        var events: [SessionEvent] = []
        if s.conversation.messages.allSatisfy({ $0.role != .user }) && s.conversation.title == "新对话" {
            let title = TextLayout.clip(typed.replacingOccurrences(of: "\n", with: " "), width: 24)
            events.append(.rename(title))
        }
        events.append(.message(m))
        record(&s, events, &fx)
        if s.inputHistory.last != typed { s.inputHistory.append(typed) }
        s.historyIndex = nil
        s.input = InputEditor()
        s.editing = nil
        s.scroll = 0
        startGeneration(&s, .reply(parent: m.id), userMessage: m, prefix: "", &fx)
    }

    /// Applies events to the conversation shown and asks the runtime to save them.
    static func record(_ s: inout State, _ events: [SessionEvent], _ fx: inout [Effect]) {
        for e in events { s.conversation.apply(e) }
        fx.append(.record(events))
    }

    static func canGenerate(_ s: inout State) -> Bool {
        if s.generation != nil { note(&s, "a reply is still being written — Esc stops it"); return false }
        guard s.persona != nil else { note(&s, "no persona chosen (F2)", error: true); return false }
        switch s.model {
        case .ready: return true
        case .loading(let f, _): note(&s, "the model is still loading (\(Int(f * 100))%); your text is kept"); return false
        case .failed(let why): note(&s, "no model: " + why, error: true); return false
        }
    }

    static func startGeneration(_ s: inout State, _ kind: Generation.Kind, userMessage m: Message, prefix: String, _ fx: inout [Effect]) {
        var p = s.persona!
        p.sampling = s.sliders.sampling(over: p.sampling)
        let history = s.conversation.utterances(upTo: m.id, includeGreetings: p.history.includeGreeting)
        let id = s.nextRequestID
        s.nextRequestID += 1
        s.generation = Generation(id: id, kind: kind, persona: p, startedAt: s.now)
        fx.append(.generate(GenerationRequest(id: id, persona: p, history: history, utterance: m.text, prefix: prefix)))
    }

    /// Esc: keep what was written so far as the reply, tell the backend to stop.
    static func stop(_ s: inout State, _ fx: inout [Effect]) {
        guard let g = s.generation else { return }
        fx.append(.cancel(g.id))
        finish(&s, g, reply: g.persona.finishReply(g.text), &fx)
        note(&s, "stopped")
    }

    static func finish(_ s: inout State, _ g: Generation, reply: String, _ fx: inout [Effect]) {
        s.generation = nil
        let adapters = s.adapters.filter { $0.enabled && $0.isReady }.map { "\($0.name)×\(Format.number($0.scale))" }
        func message(parent: String) -> Message {
            Message(id: s.conversation.nextMessageID, parent: parent, role: .assistant, text: reply, persona: g.persona.id,
                    time: s.now, template: g.persona.template, adapters: adapters.isEmpty ? nil : adapters)
        }
        switch g.kind {
        case .reply(let parent), .retry(_, let parent):
            guard !reply.isEmpty else { note(&s, "the reply came back empty (Ctrl-R retries)"); return }
            record(&s, [.message(message(parent: parent))], &fx)
        case .extend(let id, let base):
            guard !reply.isEmpty else { note(&s, "nothing more to add"); return }
            record(&s, [.edit(id: id, text: base + reply)], &fx)
        }
        if s.focus == .history { s.selected = s.path.count - 1 }
    }

    /// The last reply on the path and the user message it answers, if the path ends that way.
    static func lastExchange(_ s: State) -> (user: Message, reply: Message?)? {
        let path = s.path
        guard let last = path.last else { return nil }
        if last.role == .user { return (last, nil) }
        guard last.role == .assistant, last.greeting != true, path.count >= 2, path[path.count - 2].role == .user else { return nil }
        return (path[path.count - 2], last)
    }

    static func retry(_ s: inout State, _ fx: inout [Effect]) {
        guard let (user, reply) = lastExchange(s) else { note(&s, "nothing to retry yet"); return }
        guard canGenerate(&s) else { return }
        s.scroll = 0
        if let r = reply {
            startGeneration(&s, .retry(message: r.id, parent: user.id), userMessage: user, prefix: "", &fx)
        } else {
            startGeneration(&s, .reply(parent: user.id), userMessage: user, prefix: "", &fx)
        }
    }

    static func extend(_ s: inout State, _ fx: inout [Effect]) {
        guard let (user, reply) = lastExchange(s), let r = reply else { note(&s, "no reply to continue"); return }
        guard canGenerate(&s) else { return }
        s.scroll = 0
        startGeneration(&s, .extend(message: r.id, base: r.text), userMessage: user, prefix: r.text, &fx)
    }

    static func editLast(_ s: inout State) {
        guard s.generation == nil else { note(&s, "a reply is still being written — Esc stops it"); return }
        guard let user = s.path.last(where: { $0.role == .user }) else { note(&s, "no message of yours to edit"); return }
        var text = user.text
        if let p = s.persona, p.template == "glm-cosplay", let sp = p.speaker {
            // Back to what was typed: drop the "，玄德曰：" handover the persona added.
            let handover = sp.name + sp.verb + "："
            if text.hasSuffix(handover) {
                text.removeLast(handover.count)
                if text.hasSuffix("，") { text.removeLast() }
            }
        }
        s.input.set(text)
        s.editing = user.id
        s.focus = .input
    }

    /// Shows the previous / next alternative of a message (the selected one in the history,
    /// else the last). Past the newest alternative of the last reply, a new one is generated.
    static func swipe(_ s: inout State, _ d: Int, _ fx: inout [Effect]) {
        guard s.generation == nil else { return }
        let path = s.path
        let index = s.focus == .history ? (s.selected ?? path.count - 1) : path.count - 1
        guard index >= 0, index < path.count else { return }
        let m = path[index]
        let alts = s.conversation.alternatives(of: m.id)
        let pos = alts.firstIndex { $0.id == m.id } ?? 0
        let next = pos + d
        if next >= 0 && next < alts.count {
            record(&s, [.select(alts[next].id)], &fx)
            if s.focus == .history { s.selected = min(index, s.path.count - 1) }
        } else if next == alts.count && index == path.count - 1 && m.role == .assistant && m.greeting != true {
            retry(&s, &fx)
        }
    }

    static func newSession(_ s: inout State, _ fx: inout [Effect]) {
        if let g = s.generation { fx.append(.cancel(g.id)); s.generation = nil }
        s.conversation = Conversation(id: "", title: "新对话", created: s.now, persona: s.persona?.id)
        if let p = s.persona { greet(&s, p) }
        s.editing = nil
        s.selected = nil
        s.scroll = 0
        fx.append(.closeSession)
        note(&s, "new session")
    }

    /// A fresh conversation starts with the persona's greeting (history only if the persona says so).
    static func greet(_ s: inout State, _ p: Persona) {
        guard let g = p.greetings.first else { return }
        let m = Message(id: s.conversation.nextMessageID, parent: s.conversation.head?.id, role: .assistant, text: g,
                        persona: p.id, time: s.now, greeting: true)
        s.conversation.apply(.message(m))
    }

    // MARK: personas and adapters

    /// Makes `p` the persona: its sliders and adapters; a conversation with nothing said yet
    /// starts over with its greeting, otherwise the switch is noted in the conversation.
    static func choose(_ s: inout State, _ p: Persona, _ fx: inout [Effect], keepConversation: Bool = false) {
        let previous = s.persona
        s.persona = p
        s.sliders = Sliders(p)
        s.sliderIndex = min(s.sliderIndex, SliderSpec.settings.count - 1)
        s.adapters.removeAll { $0.fromPersona }
        let root = s.modelsRoot.hasSuffix("/") ? s.modelsRoot : s.modelsRoot + "/"
        var loads: [Effect] = []
        for ref in p.adapters {
            let path = root + ref.path
            s.adapters.insert(AdapterEntry(path: path, scale: min(max(ref.scale, 0), 2), fromPersona: true), at: s.adapters.filter(\.fromPersona).count)
            loads.append(.loadAdapter(path))
        }
        s.adapterIndex = min(s.adapterIndex, max(s.adapters.count - 1, 0))
        // A persona made for another base loads it first (unless the user named the model), so
        // that its adapters are checked against the base they are for.
        if case .ready(let m) = s.model, m.precision != "canned", m.name != p.model.split(separator: "/").last.map(String.init) {
            if s.modelPinned {
                note(&s, "\(p.name) is made for Models/\(p.model); replies come from \(m.name)")
            } else {
                s.model = .loading(0, eta: nil)
                s.modelName = p.model
                fx.append(.loadModel(root + p.model))
                note(&s, "loading Models/\(p.model) for \(p.name)")
            }
        }
        fx.append(.setAdapters(activeAdapters(s)))
        fx += loads
        if keepConversation { return }
        let said = s.conversation.messages.contains { $0.role == .user }
        if !said {
            let id = s.conversation.id
            s.conversation = Conversation(id: id, title: s.conversation.title, created: s.now, persona: p.id)
            greet(&s, p)
            if !id.isEmpty { fx.append(.closeSession) }
            s.conversation.id = ""
        } else if previous?.id != p.id {
            let note = Message(id: s.conversation.nextMessageID, parent: s.conversation.head?.id, role: .system,
                               text: "换成 \(p.name)（\(PersonaGroups.label(p))）", persona: p.id, time: s.now)
            record(&s, [.persona(p.id), .message(note)], &fx)
        }
    }

    static func addAdapter(_ s: inout State, _ path: String, scale: Double, _ fx: inout [Effect]) {
        guard !path.isEmpty else { return }
        if s.adapters.contains(where: { $0.path == path }) { note(&s, "\(path) is already loaded"); return }
        s.adapters.append(AdapterEntry(path: path, scale: min(max(scale, 0), 2), fromPersona: false))
        s.adapterIndex = s.adapters.count - 1
        fx.append(.loadAdapter(path))
    }

    static func activeAdapters(_ s: State) -> [AdapterSetting] {
        s.adapters.filter { $0.enabled && $0.isReady }.map { AdapterSetting(path: $0.path, scale: $0.scale) }
    }

    // MARK: backend events

    static func backend(_ s: inout State, _ e: BackendEvent, _ fx: inout [Effect]) {
        switch e {
        case .loadProgress(let f, let eta):
            if case .loading = s.model { s.model = .loading(f, eta: eta) }
        case .loaded(let info):
            s.model = .ready(info)
            s.modelName = info.name
            var text = "\(info.name) ready (\(info.precision), context \(info.contextLength))"
            if let p = s.persona, info.precision != "canned", info.name != p.model.split(separator: "/").last.map(String.init) {
                text += "; \(p.name) is made for Models/\(p.model)"
            }
            note(&s, text)
        case .loadFailed(let why):
            s.model = .failed(why)
            note(&s, why, error: true)
        case .started(let id, let promptTokens, let contextLimit, let dropped):
            guard s.generation?.id == id else { return }
            s.generation!.promptTokens = promptTokens
            s.generation!.contextLimit = contextLimit
            if dropped > 0 { note(&s, "\(dropped) older messages left out to fit the \(contextLimit)-token context") }
        case .token(let id, let text):
            guard s.generation?.id == id else { return }
            s.generation!.text += text
            s.generation!.tokens += 1
            if s.generation!.firstTokenAt == nil { s.generation!.firstTokenAt = s.now }
            s.generation!.lastTokenAt = s.now
        case .finished(let id, let reply, let stats, _):
            guard let g = s.generation, g.id == id else { return }
            s.lastStats = stats
            finish(&s, g, reply: reply, &fx)
        case .failed(let id, let message):
            guard s.generation?.id == id else { return }
            s.generation = nil
            note(&s, message, error: true)
        case .adapterLoaded(let path, let info):
            guard let i = s.adapters.firstIndex(where: { $0.path == path }) else { return }
            s.adapters[i].status = .ready(info)
            fx.append(.setAdapters(activeAdapters(s)))
        case .adapterFailed(let path, let message):
            if let i = s.adapters.firstIndex(where: { $0.path == path }) { s.adapters[i].status = .failed(message) }
            note(&s, message, error: true)
        case .notice(let text):
            note(&s, text)
        }
    }

    // MARK: history, sliders, adapter panel

    static func historyKey(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        let n = s.path.count
        guard n > 0 else { return }
        var sel = min(s.selected ?? n - 1, n - 1)
        switch k {
        case .up: sel = max(sel - 1, 0)
        case .down: sel = min(sel + 1, n - 1)
        case .home: sel = 0
        case .end: sel = n - 1
        case .left, .char("["): s.selected = sel; swipe(&s, -1, &fx); return
        case .right, .char("]"): s.selected = sel; swipe(&s, +1, &fx); return
        case .char("r"): retry(&s, &fx); return
        case .char("c"): extend(&s, &fx); return
        case .char("e"): editLast(&s); return
        case .char("b"):
            if s.conversation.id.isEmpty {
                note(&s, "nothing saved yet to branch from")
            } else {
                fx.append(.branchSession(s.conversation.id, at: s.path[sel].id))
            }
            return
        default: return
        }
        s.selected = sel
        if sel == n - 1 { s.scroll = 0 } else { keepSelectedVisible(&s) }
    }

    /// Scrolls so the selected message's header is on screen.
    static func keepSelectedVisible(_ s: inout State) {
        guard let sel = s.selected else { return }
        let l = View.layout(s)
        let lines = HistoryPane.lines(s, width: l.history.width - 1)
        guard let at = lines.firstIndex(where: { $0.message == sel }) else { return }
        let h = l.history.height
        let first = HistoryPane.firstLine(total: lines.count, height: h, scroll: s.scroll)
        if at < first {
            s.scroll = max(0, lines.count - h - at)
        } else if at >= first + h {
            s.scroll = max(0, lines.count - at - 1)
        }
    }

    static func sliderKey(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        let specs = SliderSpec.all(s)
        s.sliderIndex = min(s.sliderIndex, specs.count - 1)
        let spec = specs[s.sliderIndex]
        switch k {
        case .up: s.sliderIndex = max(s.sliderIndex - 1, 0)
        case .down: s.sliderIndex = min(s.sliderIndex + 1, specs.count - 1)
        case .left: spec.set(spec.value(s) - spec.step, in: &s)
        case .right: spec.set(spec.value(s) + spec.step, in: &s)
        case .home: spec.set(spec.range.lowerBound, in: &s)
        case .end: spec.set(spec.range.upperBound, in: &s)
        case .char(" ") where spec.id == .doSample: s.sliders.doSample.toggle()
        case .char("0"):
            if let p = s.persona {
                let d = Sliders(p)
                var t = s
                t.sliders = d
                spec.set(spec.value(t), in: &s)
                if case .adapter(let i) = spec.id, let ref = p.adapters.first(where: { s.adapters[i].path.hasSuffix("/" + $0.path) }) {
                    s.adapters[i].scale = ref.scale
                }
            }
        default: return
        }
        if case .adapter = spec.id, [.left, .right, .home, .end, .char("0")].contains(k) {
            fx.append(.setAdapters(activeAdapters(s)))
        }
    }

    static func adapterKey(_ s: inout State, _ k: Key, _ fx: inout [Effect]) {
        let i = min(s.adapterIndex, max(s.adapters.count - 1, 0))
        let has = !s.adapters.isEmpty
        switch k {
        case .up: s.adapterIndex = max(i - 1, 0)
        case .down: s.adapterIndex = min(i + 1, max(s.adapters.count - 1, 0))
        case .char("l"), .char("a"), .enter:
            s.overlay = .adapterPath(InputEditor())
        case .char("u"), .char("d"), .delete, .backspace:
            guard has else { return }
            let a = s.adapters.remove(at: i)
            s.adapterIndex = min(i, max(s.adapters.count - 1, 0))
            fx.append(.setAdapters(activeAdapters(s)))
            note(&s, "unloaded \(a.name)")
        case .char(" "), .char("e"):
            guard has else { return }
            s.adapters[i].enabled.toggle()
            fx.append(.setAdapters(activeAdapters(s)))
        case .left, .right:
            guard has else { return }
            let d = k == .left ? -0.05 : 0.05
            s.adapters[i].scale = min(max(((s.adapters[i].scale + d) * 100).rounded() / 100, 0), 2)
            fx.append(.setAdapters(activeAdapters(s)))
        default: break
        }
    }

    // MARK: overlays

    static func overlay(_ s: inout State, _ o: Overlay, _ k: Key, _ fx: inout [Effect]) {
        switch o {
        case .help(let n):
            switch k {
            case .up: s.overlay = .help(max(n - 1, 0))
            case .down: s.overlay = .help(n + 1)
            case .pageUp: s.overlay = .help(max(n - 10, 0))
            case .pageDown: s.overlay = .help(n + 10)
            default: s.overlay = nil
            }
        case .personas(var picker):
            let list = PersonaGroups.filtered(s.personas, picker.filter)
            switch k {
            case .escape: s.overlay = nil; return
            case .up: picker.index = max(picker.index - 1, 0)
            case .down: picker.index = min(picker.index + 1, max(list.count - 1, 0))
            case .pageUp: picker.index = max(picker.index - 10, 0)
            case .pageDown: picker.index = min(picker.index + 10, max(list.count - 1, 0))
            case .enter:
                s.overlay = nil
                if picker.index < list.count { choose(&s, list[picker.index], &fx) }
                return
            case .backspace: if !picker.filter.isEmpty { picker.filter.removeLast(); picker.index = 0 }
            case .char(let c): picker.filter.append(c); picker.index = 0
            case .paste(let t): picker.filter += t.replacingOccurrences(of: "\n", with: ""); picker.index = 0
            case .ctrl("u"): picker.filter = ""; picker.index = 0
            default: break
            }
            s.overlay = .personas(picker)
        case .sessions(var list):
            switch k {
            case .escape: s.overlay = nil; return
            case .up: list.index = max(list.index - 1, 0)
            case .down: list.index = min(list.index + 1, max(list.sessions.count - 1, 0))
            case .enter:
                guard list.index < list.sessions.count else { return }
                s.overlay = nil
                fx.append(.resumeSession(list.sessions[list.index].id))
                return
            case .char("n"):
                s.overlay = nil
                newSession(&s, &fx)
                return
            case .char("b"):
                guard list.index < list.sessions.count else { return }
                s.overlay = nil
                fx.append(.branchSession(list.sessions[list.index].id, at: ""))
                return
            default: break
            }
            s.overlay = .sessions(list)
        case .adapterPath(var editor):
            switch k {
            case .escape: s.overlay = nil; return
            case .enter:
                s.overlay = nil
                addAdapter(&s, editor.string.trimmingCharacters(in: .whitespaces), scale: 1, &fx)
                return
            case .char(let c): editor.insert(String(c))
            case .paste(let t): editor.insert(t.replacingOccurrences(of: "\n", with: ""))
            case .backspace: editor.backspace()
            case .delete: editor.deleteForward()
            case .left: editor.left()
            case .right: editor.right()
            case .home, .ctrl("a"): editor.home()
            case .end, .ctrl("e"): editor.end()
            case .ctrl("u"): editor.killToStart()
            default: break
            }
            s.overlay = .adapterPath(editor)
        }
    }
}
