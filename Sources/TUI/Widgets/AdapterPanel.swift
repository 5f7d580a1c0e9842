/// The adapter panel: each adapter with on/off, scale and state; keys at the bottom.
enum AdapterPanel {
    static func render(_ s: State, into buf: inout CellBuffer, area: Rect) {
        let focused = s.focus == .adapters
        let inner = Frame.draw(into: &buf, area: area, title: "Adapters · LoRA", focused: focused)
        guard inner.height > 0 else { return }
        var y = inner.y
        let listHeight = max(inner.height - 1, 1)
        if s.adapters.isEmpty {
            buf.put("none loaded", x: inner.x, y: y, style: Style(.muted))
        }
        let index = min(s.adapterIndex, max(s.adapters.count - 1, 0))
        let rowsPer = 2
        let visible = max(listHeight / rowsPer, 1)
        let first = max(0, min(index - visible + 1, s.adapters.count - visible))
        for i in (first..<s.adapters.count).prefix(visible) {
            let a = s.adapters[i]
            let selected = focused && i == index
            let bg: Role = selected ? .selection : .background
            if selected { buf.fill(Rect(x: inner.x - 1, y: y, width: inner.width + 2, height: rowsPer), style: Style(.foreground, bg: bg)) }
            let box = a.enabled ? "[x] " : "[ ] "
            var x = inner.x
            x += buf.put(box, x: x, y: y, style: Style(a.enabled ? .accent : .muted, bg: bg))
            let scale = " ×" + String(format: "%.2f", a.multiplier)
            let nameWidth = max(inner.width - 4 - scale.displayWidth, 1)
            x += buf.put(TextLayout.fit(a.name, width: nameWidth), x: x, y: y, style: Style(.foreground, bg: bg, bold: selected))
            buf.put(scale, x: x, y: y, style: Style(.foreground, bg: bg), limit: inner.right)
            let detail = a.summary + (a.fromPersona ? " · persona" : " · by hand")
            let detailStyle = Style(.muted, bg: bg)
            if y + 1 < inner.y + listHeight {
                buf.put("    " + detail, x: inner.x, y: y + 1, style: detailStyle, limit: inner.right)
            }
            y += rowsPer
        }
        if inner.height >= 2 {
            let hint = focused ? "l load · u unload · ␣ on/off · ←→ scale" : "F4: load / unload / scale"
            buf.put(TextLayout.clip(hint, width: inner.width), x: inner.x, y: inner.bottom - 1, style: Style(.muted))
        }
    }
}
