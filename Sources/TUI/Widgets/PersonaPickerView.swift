import Chat
import Foundation

/// How personas are grouped on screen: the four novels, RulaiGPT apart from the other
/// assistants (it is its own seed system), then anything else (imported cards) by folder.
public enum PersonaGroups {
    static let order = ["三国", "西游", "水浒", "红楼", "RulaiGPT", "assistants"]

    public static func label(_ p: Persona) -> String { p.groupTitle }

    /// Personas matching `filter` (name, id, group label, book, speaker name; case-insensitive),
    /// in display order: by group, then as the library sorted them.
    public static func filtered(_ personas: [Persona], _ filter: String) -> [Persona] {
        let f = filter.lowercased()
        let matched = personas.filter { p in
            f.isEmpty || [p.name, p.id, label(p), p.book ?? "", p.speaker?.name ?? ""].contains { $0.lowercased().contains(f) }
        }
        func rank(_ p: Persona) -> Int { order.firstIndex(of: label(p)) ?? order.count }
        return matched.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }

    /// A card's creator notes on one line (nil for YAML personas and cards without notes).
    static func creatorNotes(_ p: Persona) -> String? {
        let data = p.card?["data"] ?? p.card
        guard let notes = (data?["creator_notes"] ?? data?["creatorcomment"])?.string?.trimmingCharacters(in: .whitespacesAndNewlines), !notes.isEmpty else { return nil }
        return "✎ " + notes.replacingOccurrences(of: "\n", with: " ")
    }

    /// "sanguo-cosplay×1.0, …" or "no adapters".
    public static func adapters(_ p: Persona) -> String {
        p.adapters.isEmpty ? "no adapters" : p.adapters.map { ref in
            (ref.path.split(separator: "/").last.map(String.init) ?? ref.path) + "×" + Format.number(ref.scale)
        }.joined(separator: ", ")
    }
}

/// The persona picker overlay: a filter line, then the matching personas under group headings,
/// each with its bound adapters.
enum PersonaPickerView {
    static func render(_ picker: PersonaPicker, personas: [Persona], current: String?, into buf: inout CellBuffer, area: Rect) {
        let box = Frame.draw(into: &buf, area: area, title: "Persona · 人物 (type to filter · Enter choose · Ctrl-T mark for a scene · Ctrl-O import card · Ctrl-E export · Esc)")
        var y = box.y
        let filterStyle = Style(.foreground)
        buf.put("filter: ", x: box.x, y: y, style: Style(.muted))
        buf.put(picker.filter + "▏", x: box.x + 8, y: y, style: filterStyle, limit: box.right)
        y += 2
        let list = PersonaGroups.filtered(personas, picker.filter)
        if list.isEmpty {
            buf.put("no persona matches '\(picker.filter)'", x: box.x, y: y, style: Style(.muted))
            return
        }
        // Rows: group headings and personas; scroll so the highlighted one shows.
        var rows: [(text: String, persona: Int?)] = []
        var lastGroup = ""
        for (i, p) in list.enumerated() {
            let g = PersonaGroups.label(p)
            if g != lastGroup {
                rows.append((g + (p.book.map { $0 == g || g == "RulaiGPT" || g == "assistants" ? "" : " · " + $0 } ?? ""), nil))
                lastGroup = g
            }
            rows.append(("", i))
        }
        let index = min(max(picker.index, 0), list.count - 1)
        let visible = max(box.bottom - y, 1)
        let at = rows.firstIndex { $0.persona == index } ?? 0
        let first = max(0, min(at - visible / 2, rows.count - visible))
        for row in rows.dropFirst(first).prefix(visible) {
            if let i = row.persona {
                let p = list[i]
                let selected = i == index
                let style = selected ? Style(.foreground, bg: .selection, bold: true) : Style(.foreground)
                if selected { buf.fill(Rect(x: box.x, y: y, width: box.width, height: 1), style: style) }
                let mark = picker.marked.firstIndex(of: p.id).map { "\($0 + 1)" + (p.id == current ? "●" : " ") } ?? (p.id == current ? "● " : "  ")
                let name = TextLayout.fit(p.name, width: 12)
                var x = box.x
                x += buf.put(mark, x: x, y: y, style: style.on(selected ? .selection : .background))
                x += buf.put(name, x: x, y: y, style: Style(paint: p.accent.flatMap(Paint.init) ?? .role(.assistant), bg: selected ? .role(.selection) : .role(.background), bold: selected))
                x += buf.put(" " + TextLayout.fit(p.id, width: 22) + " ", x: x, y: y, style: Style(.muted, bg: selected ? .selection : .background))
                x += buf.put(PersonaGroups.adapters(p), x: x, y: y, style: Style(.accent, bg: selected ? .selection : .background), limit: box.right)
                if let notes = PersonaGroups.creatorNotes(p), x + 4 < box.right {
                    buf.put("  " + notes, x: x, y: y, style: Style(.muted, bg: selected ? .selection : .background), limit: box.right)
                }
            } else {
                buf.put(row.text, x: box.x, y: y, style: Style(.primary, bold: true), limit: box.right)
            }
            y += 1
        }
    }
}

