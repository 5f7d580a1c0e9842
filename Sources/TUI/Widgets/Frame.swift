import Foundation

/// A box with a title in its top border; what panels and overlays are drawn in.
enum Frame {
    /// Draws the border (clearing the inside) and returns the inner area.
    @discardableResult
    static func draw(into buf: inout CellBuffer, area: Rect, title: String, focused: Bool = true) -> Rect {
        guard area.width >= 2, area.height >= 2 else { return Rect(x: area.x, y: area.y, width: 0, height: 0) }
        let border = Style(focused ? .primary : .border)
        buf.fill(area, style: .plain)
        let inner = area.width - 2
        buf.put("╭" + String(repeating: "─", count: inner) + "╮", x: area.x, y: area.y, style: border)
        for y in (area.y + 1)..<(area.bottom - 1) {
            buf.put("│", x: area.x, y: y, style: border)
            buf.put("│", x: area.right - 1, y: y, style: border)
        }
        buf.put("╰" + String(repeating: "─", count: inner) + "╯", x: area.x, y: area.bottom - 1, style: border)
        if !title.isEmpty && inner > 4 {
            buf.put(" " + TextLayout.clip(title, width: inner - 4) + " ", x: area.x + 2, y: area.y, style: border.emphasized)
        }
        return Rect(x: area.x + 2, y: area.y + 1, width: area.width - 4, height: area.height - 2)
    }

    /// A rectangle of at most `width`×`height` centred in `area`.
    static func centred(in area: Rect, width: Int, height: Int) -> Rect {
        let w = min(width, area.width), h = min(height, area.height)
        return Rect(x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h)
    }
}

/// Numbers as the UI shows them.
public enum Format {
    /// 1, 0.5, 0.95: no trailing zeros, at most 2 decimals.
    public static func number(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e9 { return String(Int(x)) }
        var s = String(format: "%.2f", x)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    public static func seconds(_ s: Double) -> String {
        s < 10 ? String(format: "%.2f s", s) : s < 120 ? String(format: "%.0f s", s) : String(format: "%d min", Int(s / 60))
    }
}
