import Chat
import Foundation

/// F1: every key, by section, from Keymap: two columns when the screen is wide enough,
/// scrolled with ↑/↓ when it is not tall enough.
enum HelpOverlay {
    static func lines(keyWidth: Int) -> [(String, Style)] {
        var out: [(String, Style)] = []
        for section in Keymap.sections {
            out.append((section.title, Style(.primary, bold: true)))
            for e in section.entries {
                let keys = e.keys.map(\.label).joined(separator: " ")
                out.append(("  " + TextLayout.fit(keys, width: keyWidth) + " " + e.text, Style(.foreground)))
            }
        }
        return out
    }

    static func render(scroll: Int, into buf: inout CellBuffer, area: Rect) {
        let twoColumns = area.width >= 110
        let all = lines(keyWidth: twoColumns ? 20 : 26)
        let width = twoColumns ? min(area.width - 2, 150) : min(area.width - 2, 90)
        let rowsNeeded = twoColumns ? (all.count + 1) / 2 : all.count
        let box = Frame.centred(in: area, width: width, height: rowsNeeded + 2)
        let inner = Frame.draw(into: &buf, area: box, title: "Help · 帮助 — ↑↓ scroll · any other key closes")
        guard inner.height > 0 else { return }
        let columnWidth = twoColumns ? inner.width / 2 : inner.width
        let perColumn = twoColumns ? rowsNeeded : all.count
        let first = min(max(scroll, 0), max(perColumn - inner.height, 0))
        for (i, (text, style)) in all.enumerated() {
            let col = i / perColumn
            let row = i % perColumn - first
            guard row >= 0, row < inner.height else { continue }
            buf.put(TextLayout.clip(text, width: columnWidth - 1), x: inner.x + col * columnWidth, y: inner.y + row, style: style)
        }
    }
}

/// F3: saved sessions, newest first; Enter resumes, n starts a new one, b branches.
enum SessionListView {
    static func render(_ list: SessionList, personas: [Persona], current: String, into buf: inout CellBuffer, area: Rect) {
        let frame = Frame.draw(into: &buf, area: area, title: "Sessions · 会话 — Enter resume · n new · b branch · / search · r rename · d delete · Esc")
        guard frame.height > 1 else { return }
        // The bottom line: the field being typed, else the search that narrowed the list.
        var inner = frame
        inner.height -= 1
        let bottom = frame.y + frame.height - 1
        switch list.editing {
        case .search(let e):
            buf.put("search: " + e.string + "▏", x: frame.x, y: bottom, style: Style(.foreground), limit: frame.right)
        case .rename(let id, let e):
            buf.put("title of \(id): " + e.string + "▏", x: frame.x, y: bottom, style: Style(.foreground), limit: frame.right)
        case nil:
            if let q = list.query { buf.put("found for “\(q)” (/ to search again, / then Enter for all)", x: frame.x, y: bottom, style: Style(.muted), limit: frame.right) }
        }
        if list.loading {
            buf.put("reading…", x: inner.x, y: inner.y, style: Style(.muted))
            return
        }
        if list.sessions.isEmpty {
            buf.put("no saved sessions yet (n: new session)", x: inner.x, y: inner.y, style: Style(.muted))
            return
        }
        let index = min(list.index, list.sessions.count - 1)
        let first = max(0, min(index - inner.height + 1, list.sessions.count - inner.height))
        for (row, i) in (first..<list.sessions.count).prefix(inner.height).enumerated() {
            let s = list.sessions[i]
            let y = inner.y + row
            let selected = i == index
            let bg: Role = selected ? .selection : .background
            if selected { buf.fill(Rect(x: inner.x, y: y, width: inner.width, height: 1), style: Style(.foreground, bg: bg)) }
            let who = s.persona.flatMap { id in personas.first { $0.id == id }?.name } ?? s.persona ?? "–"
            var x = inner.x
            x += buf.put(s.id == current ? "● " : list.confirmDelete == s.id ? "✗ " : "  ", x: x, y: y,
                         style: Style(list.confirmDelete == s.id ? .error : .accent, bg: bg))
            x += buf.put(TextLayout.fit(s.id, width: 18) + " ", x: x, y: y, style: Style(.muted, bg: bg))
            x += buf.put(TextLayout.fit(s.title, width: max(inner.width - 70, 10)) + " ", x: x, y: y, style: Style(.foreground, bg: bg, bold: selected))
            x += buf.put(TextLayout.fit(who, width: 10) + " ", x: x, y: y, style: Style(.assistant, bg: bg))
            x += buf.put(TextLayout.fit("\(s.messageCount) msgs", width: 8) + " ", x: x, y: y, style: Style(.muted, bg: bg))
            x += buf.put(SessionSummary.dateText(s.updated) + " ", x: x, y: y, style: Style(.muted, bg: bg))
            if s.origin != nil { buf.put("⑂", x: x, y: y, style: Style(.accent, bg: bg), limit: inner.right) }
        }
    }
}

/// Below the minimum size: say so in the middle of whatever room there is.
enum TooSmall {
    static func render(_ s: State, into buf: inout CellBuffer) {
        let lines = ["terminal too small: \(s.size.columns)×\(s.size.rows)",
                     "need at least \(View.minColumns)×\(View.minRows)",
                     "终端太小，请放大窗口"]
        let top = max(0, (buf.rows - lines.count) / 2)
        for (i, l) in lines.enumerated() where top + i < buf.rows {
            let text = TextLayout.clip(l, width: buf.columns)
            buf.put(text, x: max(0, (buf.columns - text.displayWidth) / 2), y: top + i, style: i == 0 ? Style(.error, bold: true) : Style(.muted))
        }
    }
}
