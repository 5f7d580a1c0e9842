import Chat
/// `view(state) -> CellBuffer`: the layout is computed from the size, never fixed.
///
///     row 0            header: app, session, persona
///     rows 1…          history pane                     │ side panel: sliders, adapters
///     …                input (rule + up to 5 lines)
///     rows-2           notice / error / load progress
///     rows-1           status line
public enum View {
    public static let minColumns = 60
    public static let minRows = 16
    /// Below this width the side panel is hidden unless focused (then it covers the history's right).
    static let sideColumns = 34
    static let sideFrom = 90

    public struct Layout: Equatable, Sendable {
        public var history: Rect
        public var side: Rect?
        public var sliders: Rect?
        public var adapters: Rect?
        public var input: Rect
        public var notice: Int
        public var status: Int
    }

    public static func layout(_ s: State) -> Layout {
        let w = s.size.columns, h = s.size.rows
        let inputHeight = InputView.height(s, width: w)
        let inputY = h - 2 - inputHeight
        let bodyHeight = inputY - 1
        var historyWidth = w
        var side: Rect?
        let wide = w >= sideFrom
        if wide || s.focus == .sliders || s.focus == .adapters {
            let sw = min(sideColumns, w / 2)
            side = Rect(x: w - sw, y: 1, width: sw, height: bodyHeight)
            if wide { historyWidth = w - sw - 1 }
        }
        var sliders: Rect?, adapters: Rect?
        if let sd = side {
            let sliderRows = min(SliderSpec.all(s).count + 2, max(sd.height - 6, 4))
            sliders = Rect(x: sd.x, y: sd.y, width: sd.width, height: sliderRows)
            adapters = Rect(x: sd.x, y: sd.y + sliderRows, width: sd.width, height: sd.height - sliderRows)
        }
        return Layout(history: Rect(x: 1, y: 1, width: historyWidth - 1, height: bodyHeight), side: side,
                      sliders: sliders, adapters: adapters,
                      input: Rect(x: 0, y: inputY, width: w, height: inputHeight), notice: h - 2, status: h - 1)
    }

    public static func isTooSmall(_ size: TerminalSize) -> Bool {
        size.columns < minColumns || size.rows < minRows
    }

    public static func render(_ s: State) -> CellBuffer {
        var buf = CellBuffer(rows: s.size.rows, columns: s.size.columns)
        if isTooSmall(s.size) {
            TooSmall.render(s, into: &buf)
            return buf
        }
        let l = layout(s)
        HeaderLine.render(s, into: &buf)
        HistoryPane.render(s, into: &buf, area: l.history)
        if let r = l.sliders { SliderPanel.render(s, into: &buf, area: r) }
        if let r = l.adapters { AdapterPanel.render(s, into: &buf, area: r) }
        InputView.render(s, into: &buf, area: l.input)
        NoticeLine.render(s, into: &buf, y: l.notice)
        StatusLine.render(s, into: &buf, y: l.status)
        let body = Rect(x: 0, y: 1, width: s.size.columns, height: l.input.y - 1 + l.input.height)
        switch s.overlay {
        case .help(let scroll):
            buf.cursor = nil
            HelpOverlay.render(scroll: scroll, into: &buf, area: buf.bounds)
        case .personas(let picker):
            buf.cursor = nil
            PersonaPickerView.render(picker, personas: s.personas, current: s.persona?.id, into: &buf,
                                     area: Frame.centred(in: body, width: 96, height: body.height - 2))
        case .sessions(let list):
            buf.cursor = nil
            SessionListView.render(list, personas: s.personas, current: s.conversation.id, into: &buf,
                                   area: Frame.centred(in: body, width: 96, height: body.height - 4))
        case .adapterPath(let editor, let pick):
            let rows = min(s.availableAdapters.count, max(body.height - 8, 0))
            PromptBox.render(title: "Load adapter · 加载 LoRA", editor: editor,
                             hint: "folder (relative to Models/) · ↑↓ pick · Tab copy · Enter load · Esc cancel", into: &buf,
                             area: Frame.centred(in: body, width: 80, height: 4 + rows), choices: s.availableAdapters, pick: pick)
        case .cardFile(let editor, let exporting):
            PromptBox.render(title: exporting.map { "Export \($0) as a card · 导出角色卡" } ?? "Import a character card · 导入角色卡",
                             editor: editor,
                             hint: exporting == nil ? "a PNG or JSON card (V1–V3) · Enter import · Esc cancel"
                                                    : "a .png (chara + ccv3) or .json (V3) file · Enter export · Esc cancel",
                             into: &buf, area: Frame.centred(in: body, width: 80, height: 4))
        case .roleplay(let field, let editor):
            let (title, hint): (String, String) = switch field {
            case .note: ("Author's note · 作者注释", "[depth] text: put into every prompt that many messages from the end (default \(AuthorsNote.defaultDepth)) · empty: none")
            case .user: ("Who you are · 你的身份", "name | description: {{user}} and {{persona}} in every conversation")
            case .lore: ("Lorebooks · 世界书", "names in Personas/lore/ (e.g. sanguo honglou) for this conversation · empty: none")
            }
            PromptBox.render(title: title, editor: editor, hint: hint + " · Enter set · Esc cancel",
                             into: &buf, area: Frame.centred(in: body, width: 96, height: 4))
        case .settingValue(let key, let editor):
            PromptBox.render(title: "Set \(key)", editor: editor, hint: "Enter set · empty or 'default': back to the layers below · Esc cancel",
                             into: &buf, area: Frame.centred(in: body, width: 80, height: 4))
        case nil:
            break
        }
        return buf
    }
}

/// The Elm view function.
public func view(_ s: State) -> CellBuffer { View.render(s) }
