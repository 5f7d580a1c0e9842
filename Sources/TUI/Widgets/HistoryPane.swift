import Chat
import Foundation

/// One screen line made of styled pieces.
struct StyledLine: Equatable {
    var segments: [(String, Style)]
    /// The message (index in the shown path) this line belongs to.
    var message: Int?

    static func == (a: StyledLine, b: StyledLine) -> Bool {
        a.message == b.message && a.segments.map(\.0) == b.segments.map(\.0) && a.segments.map(\.1) == b.segments.map(\.1)
    }
}

/// The conversation: each message as a header (speaker, persona group, alternatives) and its
/// text wrapped by display width; the reply being written appears as it streams.
enum HistoryPane {
    static func speaker(_ m: Message, _ s: State) -> (name: String, paint: Paint) {
        switch m.role {
        case .user: return ("你", .role(.user))
        case .system: return ("系统", .role(.system))
        case .assistant:
            if let id = m.persona, let p = s.personas.first(where: { $0.id == id }) {
                return (Self.title(p), p.accent.flatMap(Paint.init) ?? .role(.assistant))
            }
            return (m.persona ?? "助手", .role(.assistant))
        }
    }

    /// `诸葛亮 · 三国`; a persona named as its collection (RulaiGPT) once.
    static func title(_ p: Persona) -> String {
        let group = PersonaGroups.label(p)
        return p.name == group || p.name.hasPrefix(group + " ") ? p.name : p.name + " · " + group
    }

    /// Every line of the conversation at `width` cells.
    static func lines(_ s: State, width: Int) -> [StyledLine] {
        var out: [StyledLine] = []
        let (path, siblings) = PathCache.shared.path(s.conversation)
        let bodyWidth = max(width - 2, 1)
        let gen = s.generation
        for (i, m) in path.enumerated() {
            var text = m.text
            var alternatives = siblings[m.id] ?? [m]
            var position = (alternatives.firstIndex { $0.id == m.id } ?? 0) + 1
            var streaming = false
            if let g = gen {
                switch g.kind {
                case .retry(let id) where id == m.id:
                    text = g.text
                    alternatives.append(m)
                    position = alternatives.count
                    streaming = true
                case .extend(let id) where id == m.id:
                    text = m.text + g.text
                    streaming = true
                default: break
                }
            }
            if m.role == .user { text = Rules.typedText(m, persona: m.persona.flatMap { id in s.personas.first { $0.id == id } }) }
            append(message: m, index: i, text: text, alternatives: alternatives.count, position: position,
                   streaming: streaming, s, width: width, bodyWidth: bodyWidth, into: &out)
        }
        if let g = gen, case .reply = g.kind {
            let m = Message(id: "", parent: nil, role: .assistant, text: g.text, persona: g.persona?.id, time: s.now)
            append(message: m, index: nil, text: g.text, alternatives: 1, position: 1, streaming: true, s,
                   width: width, bodyWidth: bodyWidth, into: &out)
        }
        if path.isEmpty && gen == nil {
            out.append(StyledLine(segments: [("（还没有消息。输入后按 Enter 发送；F1 帮助）", Style(.muted))], message: nil))
        }
        return out
    }

    private static func append(message m: Message, index: Int?, text: String, alternatives: Int, position: Int, streaming: Bool,
                               _ s: State, width: Int, bodyWidth: Int, into out: inout [StyledLine]) {
        let selected = s.focus == .history && index != nil && index == s.selected
        let bg: Role = selected ? .selection : .background
        if m.role == .system {
            for l in WrapCache.shared.wrap(text, width: bodyWidth) {
                out.append(StyledLine(segments: [("· " + l, Style(.system, bg: bg))], message: index))
            }
            out.append(StyledLine(segments: [], message: index))
            return
        }
        let (name, paint) = speaker(m, s)
        var header: [(String, Style)] = [("▍" + name, Style(paint: paint, bg: .role(bg), bold: true))]
        if alternatives > 1 { header.append(("  ‹\(position)/\(alternatives)›", Style(.accent, bg: bg))) }
        if m.greeting == true { header.append(("  开场白", Style(.muted, bg: bg))) }
        if streaming && s.generation?.firstTokenAt == nil { header.append(("  思考中…", Style(.muted, bg: bg))) }
        out.append(StyledLine(segments: header, message: index))
        let body = Style(m.role == .user ? .foreground : .assistant)
        var wrapped = WrapCache.shared.wrap(text, width: bodyWidth)
        if streaming {
            // The caret goes at the end of the text, on a new line when the last one is full.
            if DisplayWidth.of(wrapped[wrapped.count - 1]) >= bodyWidth { wrapped.append("") }
            wrapped[wrapped.count - 1] += "▌"
        }
        for l in wrapped {
            out.append(StyledLine(segments: [("  " + l, body)], message: index))
        }
        out.append(StyledLine(segments: [], message: index))
    }

    /// First line shown for `scroll` lines up from the bottom, clamped.
    static func firstLine(total: Int, height: Int, scroll: Int) -> Int {
        max(0, total - height - max(0, min(scroll, total - height)))
    }

    static func render(_ s: State, into buf: inout CellBuffer, area: Rect) {
        guard area.width > 2, area.height > 0 else { return }
        let all = lines(s, width: area.width - 1)
        let maxScroll = max(0, all.count - area.height)
        let scroll = min(s.scroll, maxScroll)
        let first = firstLine(total: all.count, height: area.height, scroll: scroll)
        for (row, line) in all[first...].prefix(area.height).enumerated() {
            var x = area.x
            let selected = s.focus == .history && line.message != nil && line.message == s.selected
            if selected { buf.fill(Rect(x: area.x, y: area.y + row, width: area.width - 1, height: 1), style: Style(.foreground, bg: .selection)) }
            for (text, style) in line.segments {
                var st = style
                if selected { st.bg = .role(.selection) }
                x += buf.put(text, x: x, y: area.y + row, style: st, limit: area.right - 1)
            }
        }
        // Scroll bar: where the window is in the conversation.
        if all.count > area.height {
            let h = area.height
            let thumb = max(1, h * h / all.count)
            let top = maxScroll == 0 ? 0 : (h - thumb) * (maxScroll - scroll) / maxScroll
            for y in 0..<h {
                buf.put(y >= top && y < top + thumb ? "┃" : "│", x: area.right - 1, y: area.y + y, style: Style(y >= top && y < top + thumb ? .accent : .border))
            }
            if scroll > 0 {
                let more = " ↓ \(scroll) more "
                buf.put(more, x: area.right - 1 - more.displayWidth, y: area.bottom - 1, style: Style(.accent, reverse: true))
            }
        }
    }
}

/// Wrapped message texts by (text, width). Wrapping is the costly part of drawing the history
/// (every frame while a reply streams); finished messages never change, so each is wrapped
/// once per width. The view stays a pure function: the cache only remembers results.
final class WrapCache: @unchecked Sendable {
    static let shared = WrapCache()
    private struct Key: Hashable { var text: String; var width: Int }
    private let lock = NSLock()
    private var lines: [Key: [String]] = [:]

    func wrap(_ text: String, width: Int) -> [String] {
        let key = Key(text: text, width: width)
        lock.lock()
        if let hit = lines[key] { lock.unlock(); return hit }
        lock.unlock()
        let out = TextLayout.wrap(TextLayout.printable(text), width: width).map(\.text)
        lock.lock()
        if lines.count > 20_000 { lines.removeAll(keepingCapacity: true) }
        lines[key] = out
        lock.unlock()
        return out
    }
}

/// The shown path and each shown message's alternatives, for the last conversation drawn.
/// Conversation.path walks every message per level (quadratic in the length of a chat); while
/// a reply streams the conversation does not change, so this is computed once per change.
final class PathCache: @unchecked Sendable {
    static let shared = PathCache()
    private let lock = NSLock()
    private var last: (conversation: Conversation, path: [Message], siblings: [String: [Message]])?

    func path(_ c: Conversation) -> ([Message], [String: [Message]]) {
        lock.lock()
        if let l = last, l.conversation == c { lock.unlock(); return (l.path, l.siblings) }
        lock.unlock()
        let path = c.path
        // Siblings by parent in one pass; only messages that have some are asked for exactly
        // (the conversation leaves removed ones out).
        var count: [String: Int] = [:]
        for m in c.messages { count[m.parent ?? "", default: 0] += 1 }
        var siblings: [String: [Message]] = [:]
        for m in path where (count[m.parent ?? ""] ?? 0) > 1 { siblings[m.id] = c.alternatives(of: m.id) }
        lock.lock()
        last = (c, path, siblings)
        lock.unlock()
        return (path, siblings)
    }
}
