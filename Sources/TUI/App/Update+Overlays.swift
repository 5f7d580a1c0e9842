import Chat
import Foundation

/// Overlays: help, the persona picker, the session list, the adapter and value dialogs.
enum OverlayUpdate {
    static func key(_ s: inout State, _ o: Overlay, _ k: Key, _ fx: inout [Effect]) {
        switch o {
        case .help(let n):
            switch Keymap.action(k, in: Keymap.lists) {
            case .listUp: s.overlay = .help(max(n - 1, 0))
            case .listDown: s.overlay = .help(n + 1)
            case .listPageUp: s.overlay = .help(max(n - 10, 0))
            case .listPageDown: s.overlay = .help(n + 10)
            default: s.overlay = nil
            }
        case .personas(var picker):
            let list = PersonaGroups.filtered(s.personas, picker.filter)
            let last = max(list.count - 1, 0)
            switch Keymap.action(k, in: Keymap.lists) {
            case .close: s.overlay = nil; return
            case .listUp: picker.index = max(picker.index - 1, 0)
            case .listDown: picker.index = min(picker.index + 1, last)
            case .listPageUp: picker.index = max(picker.index - 10, 0)
            case .listPageDown: picker.index = min(picker.index + 10, last)
            case .choose:
                s.overlay = nil
                if picker.marked.count >= 2 {
                    guard s.generation == nil else { Updater.note(&s, "a reply is still being written — Esc stops it"); return }
                    fx.append(.setScene(picker.marked))
                } else if picker.index < list.count {
                    choose(&s, list[picker.index], &fx)
                }
                return
            case .markForScene:
                guard picker.index < list.count else { return }
                let id = list[picker.index].id
                if let i = picker.marked.firstIndex(of: id) { picker.marked.remove(at: i) } else { picker.marked.append(id) }
            case .importCard:
                s.overlay = .cardFile(InputEditor(), exporting: nil)
                return
            case .exportCard:
                guard picker.index < list.count else { return }
                let p = list[picker.index]
                var e = InputEditor()
                e.set(p.id.replacingOccurrences(of: "/", with: "-") + ".png")
                s.overlay = .cardFile(e, exporting: p.id)
                return
            default:
                // Every other key edits the filter (n and b are letters here).
                var e = InputEditor()
                e.set(picker.filter)
                if TextField.apply(k, to: &e, multiline: false) {
                    picker.filter = e.string
                    picker.index = 0
                }
            }
            s.overlay = .personas(picker)
        case .sessions(var list):
            if let field = list.editing {
                sessionField(&s, &list, field, k, &fx)
                return
            }
            let highlighted = list.index < list.sessions.count ? list.sessions[list.index].id : nil
            let action = Keymap.action(k, in: Keymap.lists)
            if action != .deleteSession { list.confirmDelete = nil }
            switch action {
            case .searchSessions:
                list.editing = .search(InputEditor())
            case .renameSession:
                guard let id = highlighted else { return }
                var e = InputEditor()
                e.set(list.sessions[list.index].title)
                list.editing = .rename(id: id, e)
            case .deleteSession:
                guard let id = highlighted else { return }
                if list.confirmDelete == id {
                    list.confirmDelete = nil
                    list.loading = true
                    fx.append(.deleteSession(id))
                } else {
                    list.confirmDelete = id
                    Updater.note(&s, "press d again to delete \(id) for good")
                }
            case .close: s.overlay = nil; return
            case .listUp: list.index = max(list.index - 1, 0)
            case .listDown: list.index = min(list.index + 1, max(list.sessions.count - 1, 0))
            case .listPageUp: list.index = max(list.index - 10, 0)
            case .listPageDown: list.index = min(list.index + 10, max(list.sessions.count - 1, 0))
            case .choose:
                guard list.index < list.sessions.count else { return }
                s.overlay = nil
                fx.append(.resumeSession(list.sessions[list.index].id))
                return
            case .newSession:
                s.overlay = nil
                Updater.anywhere(&s, .newSession, &fx)
                return
            case .branch:
                guard list.index < list.sessions.count else { return }
                s.overlay = nil
                fx.append(.branch(list.sessions[list.index].id, at: nil))
                return
            default: break
            }
            s.overlay = .sessions(list)
        case .adapterPath(var editor, var pick):
            let n = s.availableAdapters.count
            switch k {
            case .up: if n > 0 { pick = max((pick ?? 0) - 1, 0) }
            case .down: if n > 0 { pick = min((pick ?? -1) + 1, n - 1) }
            case .tab: if let p = pick, p < n { editor.set(s.availableAdapters[p]) }
            default:
                switch TextField.line(k, &editor) {
                case .cancel: s.overlay = nil; return
                case .submit(var path):
                    s.overlay = nil
                    if path.isEmpty, let p = pick, p < n { path = s.availableAdapters[p] }
                    guard !path.isEmpty else { return }
                    fx.append(.loadAdapter(path))
                    Updater.note(&s, "loading adapter \(path)…")
                    return
                case .edited: break
                }
            }
            s.overlay = .adapterPath(editor, pick: pick)
        case .cardFile(var editor, let exporting):
            switch TextField.line(k, &editor) {
            case .cancel: s.overlay = nil
            case .submit(let path):
                s.overlay = nil
                if !path.isEmpty { fx.append(exporting.map { .exportCard($0, to: path) } ?? .importCard(path)) }
            case .edited: s.overlay = .cardFile(editor, exporting: exporting)
            }
        case .roleplay(let field, var editor):
            switch TextField.line(k, &editor) {
            case .cancel: s.overlay = nil
            case .submit(let text):
                s.overlay = nil
                fx.append(roleplayEffect(field, text))
            case .edited: s.overlay = .roleplay(field, editor)
            }
        case .settingValue(let key, var editor):
            switch TextField.line(k, &editor) {
            case .cancel: s.overlay = nil
            case .submit(let v):
                s.overlay = nil
                fx.append(.set(key, v.isEmpty ? "default" : v))
            case .edited: s.overlay = .settingValue(key: key, editor)
            }
        }
    }

    /// What a role-play line asks for: `[depth] text` (empty: no note), `name | description`,
    /// lorebook names separated by spaces (none: detach).
    static func roleplayEffect(_ field: RoleplayField, _ text: String) -> Effect {
        switch field {
        case .note: .setNote(AuthorsNote(line: text))
        case .user: .setUser(UserProfile(line: text))
        case .lore: .attachLore(text.split(separator: " ").map(String.init))
        }
    }

    /// The search or title line at the bottom of the session list.
    static func sessionField(_ s: inout State, _ list: inout SessionList, _ field: SessionList.Field, _ k: Key, _ fx: inout [Effect]) {
        var e: InputEditor
        switch field {
        case .search(let x): e = x
        case .rename(_, let x): e = x
        }
        switch TextField.line(k, &e) {
        case .cancel:
            list.editing = nil
        case .submit(let text):
            list.editing = nil
            switch field {
            case .search:
                list.loading = true
                list.index = 0
                fx.append(text.isEmpty ? .listSessions : .searchSessions(text))
            case .rename(let id, _):
                guard !text.isEmpty else { break }
                list.loading = true
                fx.append(.renameSession(id, text))
            }
        case .edited:
            switch field {
            case .search: list.editing = .search(e)
            case .rename(let id, _): list.editing = .rename(id: id, e)
            }
        }
        s.overlay = .sessions(list)
    }

    static func choose(_ s: inout State, _ p: Persona, _ fx: inout [Effect]) {
        guard s.generation == nil else { Updater.note(&s, "a reply is still being written — Esc stops it"); return }
        fx.append(.switchPersona(p.id))
        if p.id != s.persona?.id { Updater.note(&s, "switching to \(p.name)…") }
    }
}

/// What the runtime reported, onto the screen.
enum RuntimeUpdate {
    static func handle(_ s: inout State, _ msg: Msg, _ fx: inout [Effect]) {
        switch msg {
        case .loadProgress(let f, let eta):
            if case .loading = s.model {} else { s.lastReply = nil }
            s.model = .loading(f, eta: eta)
        case .loaded(let info):
            if s.model != .ready(info) { s.lastReply = nil }   // figures of another model would mislead
            s.model = .ready(info)
            s.modelName = info.name
            Updater.note(&s, "\(info.name) ready (\(info.precision), context \(info.contextLength))")
        case .loadFailed(let why):
            s.model = .failed(why)
            Updater.note(&s, why, error: true)
        case .conversation(let c, let id):
            s.conversation = c
            s.sessionID = id
            if let sel = s.selected { s.selected = c.path.isEmpty ? nil : min(sel, c.path.count - 1) }
            if s.focus == .history, s.generation == nil { s.selected = c.path.isEmpty ? nil : c.path.count - 1 }
        case .adapters(let list):
            let added = list.count > s.adapters.count && list.dropLast().map(\.path) == s.adapters.map(\.path)
            s.adapters = list
            s.adapterIndex = added ? list.count - 1 : min(s.adapterIndex, max(list.count - 1, 0))   // a new one is selected
        case .persona(let p):
            s.persona = p
        case .personas(let list):
            s.personas = list
        case .settings(let list):
            s.settings = list
        case .user(let profile):
            s.user = profile
        case .replyStarted(let promptTokens, let contextLength, let dropped):
            guard s.generation != nil else { return }
            s.generation!.promptTokens = promptTokens
            s.generation!.contextLimit = contextLength
            s.notice = nil
            if !s.generation!.lore.isEmpty { Updater.note(&s, "世界书 · lore: " + s.generation!.lore.joined(separator: "、")) }
            if dropped > 0 { Updater.note(&s, "\(dropped) older messages left out to fit the \(contextLength)-token context") }
        case .lore(let names):
            s.generation?.lore = names
        case .delta(let text):
            guard s.generation != nil else { return }
            s.generation!.text += text
            s.generation!.tokens += 1
            if s.generation!.firstTokenAt == nil { s.generation!.firstTokenAt = s.now }
            s.generation!.lastTokenAt = s.now
        case .replyFinished(let end):
            let g = s.generation
            s.generation = nil
            s.lastReply = ReplyFigures(tokensPerSecond: end.tokensPerSecond,
                                       timeToFirstText: g?.firstTokenAt.map { $0 - g!.startedAt } ?? end.timeToFirstText,
                                       contextUsed: end.promptTokens + end.newTokens, contextLimit: s.contextLength ?? 0)
            if let e = end.error {
                Updater.note(&s, e, error: true)
            } else if end.partial {
                Updater.note(&s, end.saved ? "stopped: the partial reply is saved" : "stopped before any text; nothing saved")
            } else if !end.saved {
                Updater.note(&s, "the reply came back empty (Ctrl-R retries)")
            } else if g?.stopping != true, s.notice?.text.hasPrefix("stopping") == true {
                s.notice = nil
            }
        case .replyFailed(let why):
            if let g = s.generation, g.tokens == 0, s.input.isEmpty, let typed = s.inputHistory.last {
                s.input.set(typed)   // not sent: the text comes back
            }
            s.generation = nil
            Updater.note(&s, why, error: true)
        case .notice(let text):
            Updater.note(&s, text)
        case .sessionsListed(let list, let errors, let query):
            if case .sessions(var l) = s.overlay {
                l.sessions = list
                l.query = query
                l.loading = false
                l.index = min(l.index, max(list.count - 1, 0))
                s.overlay = .sessions(l)
            }
            if let e = errors.first { Updater.note(&s, e, error: true) }
        case .failed(let text):
            Updater.note(&s, text, error: true)
        case .key, .resize, .tick:
            break
        }
    }
}
