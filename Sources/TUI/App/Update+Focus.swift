import Chat
import Foundation

/// The input line: sending, ↑/↓ through what was sent, and the text editor shared by every field.
enum InputUpdate {
    static func action(_ s: inout State, _ a: Keymap.Action, _ k: Key, _ fx: inout [Effect]) -> Bool {
        switch a {
        case .send: submit(&s, &fx)
        case .inputEarlier:
            guard s.input.onFirstLine else { s.input.verticalMove(-1); return true }
            walkHistory(&s, -1)
        case .inputLater:
            guard s.input.onLastLine else { s.input.verticalMove(+1); return true }
            walkHistory(&s, +1)
        case .help:
            guard s.input.isEmpty else { return false }
            s.overlay = .help(0)
        case .quitIfEmpty:
            guard s.input.isEmpty else { return false }
            Updater.quit(&s, &fx)
        default: return false
        }
        return true
    }

    static func edit(_ s: inout State, _ k: Key) {
        if TextField.apply(k, to: &s.input, multiline: true) { s.historyIndex = nil }
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

    /// Enter: the runtime records the question and answers it (while editing: asks the last
    /// question again). When it cannot be sent the text stays in the line.
    static func submit(_ s: inout State, _ fx: inout [Effect]) {
        let typed = s.input.string
        guard !typed.allSatisfy({ $0.isWhitespace }) else { return }
        guard Turns.canGenerate(&s) else { return }
        if s.inputHistory.last != typed { s.inputHistory.append(typed) }
        s.historyIndex = nil
        s.input = InputEditor()
        let action: ReplyAction = s.editing != nil ? .reask(typed) : .send(typed)
        s.editing = nil
        Turns.start(&s, .reply, action, &fx)
    }
}

/// Keys every text field shares (the input line, the adapter dialog, the value dialog).
enum TextField {
    enum LineKey: Equatable { case cancel, submit(String), edited }

    /// A one-line field of a dialog: Esc cancels, Enter submits the text trimmed, other keys edit.
    static func line(_ k: Key, _ e: inout InputEditor) -> LineKey {
        switch k {
        case .escape: return .cancel
        case .enter: return .submit(e.string.trimmingCharacters(in: .whitespaces))
        default:
            apply(k, to: &e, multiline: false)
            return .edited
        }
    }

    /// Applies an editing key; false when it is not one.
    @discardableResult
    static func apply(_ k: Key, to e: inout InputEditor, multiline: Bool) -> Bool {
        switch k {
        case .char(let c): e.insert(String(c))
        case .paste(let text): e.insert(multiline ? text : text.replacingOccurrences(of: "\n", with: " "))
        case .altEnter, .ctrl("j"): if multiline { e.insert("\n") } else { return false }
        case .backspace: e.backspace()
        case .delete: e.deleteForward()
        case .left: e.left()
        case .right: e.right()
        case .home, .ctrl("a"): e.home()
        case .end, .ctrl("e"): e.end()
        case .ctrl("u"): e.killToStart()
        case .ctrl("k"): e.killToEnd()
        case .ctrl("w"): e.deleteWord()
        case .ctrl("d"): e.deleteForward()
        default: return false
        }
        return true
    }
}

/// The history pane: selecting messages, swiping, branching.
enum HistoryUpdate {
    static func action(_ s: inout State, _ a: Keymap.Action, _ fx: inout [Effect]) -> Bool {
        let n = s.path.count
        guard n > 0 else { return a == .help ? { s.overlay = .help(0); return true }() : false }
        var sel = min(s.selected ?? n - 1, n - 1)
        switch a {
        case .selectPrevious: sel = max(sel - 1, 0)
        case .selectNext: sel = min(sel + 1, n - 1)
        case .selectFirst: sel = 0
        case .selectLast: sel = n - 1
        case .swipePrevious, .swipeNext:
            s.selected = sel
            Turns.swipe(&s, a == .swipeNext ? 1 : -1, &fx)
            return true
        case .retry: Turns.retry(&s, &fx); return true
        case .continueReply: Turns.extend(&s, &fx); return true
        case .editLast: Turns.editLast(&s); return true
        case .help: s.overlay = .help(0); return true
        case .branch:
            if s.sessionID == nil {
                Updater.note(&s, "nothing saved yet to branch from")
            } else {
                fx.append(.branch(nil, at: s.path[sel].id))
            }
            return true
        default: return false
        }
        s.selected = sel
        if sel == n - 1 { s.scroll = 0 } else { keepSelectedVisible(&s) }
        return true
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
}

/// The sliders: each moves one setting of the runtime's user layer (or an adapter's scale).
enum SliderUpdate {
    static func action(_ s: inout State, _ a: Keymap.Action, _ fx: inout [Effect]) -> Bool {
        let specs = SliderSpec.all(s)
        s.sliderIndex = min(s.sliderIndex, specs.count - 1)
        let spec = specs[s.sliderIndex]
        switch a {
        case .sliderPrevious: s.sliderIndex = max(s.sliderIndex - 1, 0)
        case .sliderNext: s.sliderIndex = min(s.sliderIndex + 1, specs.count - 1)
        case .decrease: spec.step(-1, &s, &fx)
        case .increase: spec.step(+1, &s, &fx)
        case .minimum: spec.set(spec.range(s).lowerBound, &s, &fx)
        case .maximum: spec.set(spec.range(s).upperBound, &s, &fx)
        case .toggleSample:
            let on = s.setting("do_sample") == "true"
            SliderSpec.doSample.set(on ? 0 : 1, &s, &fx)
        case .typeValue:
            guard case .setting(let key) = spec.id else { return false }
            var e = InputEditor()
            e.set(s.setting(key) ?? "")
            s.overlay = .settingValue(key: key, e)
        case .resetValue: spec.reset(&s, &fx)
        case .help: s.overlay = .help(0)
        default: return false
        }
        return true
    }
}

/// The adapter panel: load, unload, enable, scale — each a runtime call.
enum AdapterUpdate {
    static func action(_ s: inout State, _ a: Keymap.Action, _ fx: inout [Effect]) -> Bool {
        let i = min(s.adapterIndex, max(s.adapters.count - 1, 0))
        let has = !s.adapters.isEmpty
        switch a {
        case .adapterPrevious: s.adapterIndex = max(i - 1, 0)
        case .adapterNext: s.adapterIndex = min(i + 1, max(s.adapters.count - 1, 0))
        case .loadAdapter: s.overlay = .adapterPath(InputEditor(), pick: s.availableAdapters.isEmpty ? nil : 0)
        case .unloadAdapter:
            guard has else { return true }
            fx.append(.unloadAdapter(s.adapters[i].path))
        case .toggleAdapter:
            guard has else { return true }
            s.adapters[i].enabled.toggle()
            fx.append(.enableAdapter(s.adapters[i].path, s.adapters[i].enabled))
        case .decrease, .increase:
            guard has else { return true }
            let d: Float = a == .decrease ? -0.05 : 0.05
            let v = min(max(((s.adapters[i].multiplier + d) * 100).rounded() / 100, 0), 2)
            s.adapters[i].multiplier = v
            fx.append(.scaleAdapter(s.adapters[i].path, v))
        case .help: s.overlay = .help(0)
        default: return false
        }
        return true
    }
}
