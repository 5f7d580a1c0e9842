/// The input line: a rule with its hint, then the text wrapped by display width (up to five
/// lines shown, scrolled to the cursor). Places the terminal cursor when focused.
enum InputView {
    static let maxLines = 5
    static let prefix = "› "

    /// Rows the input takes at this width (rule + text lines).
    static func height(_ s: State, width: Int) -> Int {
        1 + min(maxLines, s.input.layout(width: width - 1, prefixWidth: prefix.displayWidth).lines.count)
    }

    static func render(_ s: State, into buf: inout CellBuffer, area: Rect) {
        guard area.height >= 2 else { return }
        let focused = s.focus == .input && s.overlay == nil
        let rule = Style(focused ? .primary : .border)
        buf.fill(area, style: .plain)
        buf.put(String(repeating: "─", count: area.width), x: area.x, y: area.y, style: rule)
        let label: String
        if s.editing != nil {
            label = " 编辑上一条 · Enter 重发 · Esc 取消 "
        } else if s.generation != nil {
            label = " 回复中… Esc 停止 "
        } else {
            label = " 输入 · Enter 发送 · Alt-Enter 换行 · ↑↓ 历史 "
        }
        buf.put(label, x: area.x + 2, y: area.y, style: rule.emphasized, limit: area.right)
        let (lines, cursor) = s.input.layout(width: area.width - 1, prefixWidth: prefix.displayWidth)
        let rows = area.height - 1
        let first = max(0, min(cursor.row - rows + 1, lines.count - rows))
        for (i, line) in lines.enumerated().dropFirst(first).prefix(rows) {
            let y = area.y + 1 + i - first
            if i == 0 { buf.put(prefix, x: area.x, y: y, style: Style(.user, bold: true)) }
            buf.put(line, x: area.x + prefix.displayWidth, y: y, style: Style(.foreground), limit: area.right)
        }
        if s.input.isEmpty && s.focus != .input {
            buf.put("Esc 回到输入", x: area.x + prefix.displayWidth, y: area.y + 1, style: Style(.muted))
        }
        if focused {
            buf.cursor = (area.x + min(cursor.col, area.width - 1), area.y + 1 + cursor.row - first)
        }
    }
}

/// A one-line prompt in a box (the adapter folder to load).
enum PromptBox {
    static func render(title: String, editor: InputEditor, hint: String, into buf: inout CellBuffer, area: Rect,
                       choices: [String] = [], pick: Int? = nil) {
        let inner = Frame.draw(into: &buf, area: area, title: title)
        guard inner.height > 0 else { return }
        // Show the end of a long path.
        let text = editor.string
        var shown = text
        while shown.displayWidth > inner.width - 1 { shown.removeFirst() }
        buf.put(shown, x: inner.x, y: inner.y, style: Style(.foreground))
        let before = String(editor.text[..<editor.cursor])
        let hidden = text.count - shown.count
        buf.cursor = (inner.x + DisplayWidth.of(String(before.dropFirst(hidden))), inner.y)
        if inner.height > 1 {
            buf.put(hint, x: inner.x, y: inner.y + 1, style: Style(.muted), limit: inner.right)
        }
        // Choices below the hint, the picked one highlighted and kept in view.
        let rows = inner.height - 2
        guard rows > 0, !choices.isEmpty else { return }
        let p = pick ?? 0
        let first = max(0, min(p - rows + 1, choices.count - rows))
        for (row, i) in (first..<choices.count).prefix(rows).enumerated() {
            let selected = i == pick
            buf.put((selected ? "▸ " : "  ") + choices[i], x: inner.x, y: inner.y + 2 + row,
                    style: Style(selected ? .foreground : .muted, bg: selected ? .selection : .background), limit: inner.right)
        }
    }
}
