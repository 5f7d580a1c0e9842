import Foundation

/// The bottom line: model, precision, persona, adapters with scales, live tok/s, time to first
/// token, context used / limit.
enum StatusLine {
    static func parts(_ s: State) -> [String] {
        var parts: [String] = []
        switch s.model {
        case .ready(let m): parts.append("\(m.name) · \(m.precision)")
        case .loading(let f, _): parts.append("\(s.modelName) · loading \(Int(f * 100))%")
        case .failed: parts.append("\(s.modelName) · not loaded")
        }
        if let p = s.persona { parts.append(HistoryPane.title(p)) }
        let active = s.adapters.filter { $0.enabled }
        parts.append(active.isEmpty ? "no adapter" : active.map { "\($0.name)×\(Format.number(Double($0.multiplier)))" }.joined(separator: " "))
        if let g = s.generation {
            parts.append(g.tokensPerSecond.map { String(format: "%.1f tok/s", $0) } ?? "– tok/s")
            parts.append(g.firstTokenAt.map { "TTFT " + Format.seconds($0 - g.startedAt) } ?? "TTFT …")
            if let p = g.promptTokens, let c = g.contextLimit { parts.append("ctx \(p + g.tokens)/\(c)") }
        } else if let r = s.lastReply {
            parts.append(String(format: "%.1f tok/s", r.tokensPerSecond))
            if let t = r.timeToFirstText { parts.append("TTFT " + Format.seconds(t)) }
            parts.append("ctx \(r.contextUsed)/\(r.contextLimit)")
        }
        return parts
    }

    static func render(_ s: State, into buf: inout CellBuffer, y: Int) {
        let style = Style(.foreground, bg: .selection)
        buf.fill(Rect(x: 0, y: y, width: buf.columns, height: 1), style: style)
        let help = " F1 help "
        var x = 1
        // Parts that do not fit whole are left out (never cut mid-word); help goes first.
        for (i, p) in parts(s).enumerated() {
            let sep = i > 0 ? " │ " : ""
            if x + sep.displayWidth + p.displayWidth > buf.columns - 1 { break }
            x += buf.put(sep, x: x, y: y, style: Style(.border, bg: .selection))
            x += buf.put(p, x: x, y: y, style: i == 0 ? Style(.primary, bg: .selection, bold: true) : style)
        }
        if x + help.displayWidth < buf.columns {
            buf.put(help, x: buf.columns - help.displayWidth, y: y, style: Style(.muted, bg: .selection))
        }
    }
}

/// The line above the status line: the model's load progress, else the latest notice or error.
enum NoticeLine {
    static func render(_ s: State, into buf: inout CellBuffer, y: Int) {
        buf.fill(Rect(x: 0, y: y, width: buf.columns, height: 1), style: .plain)
        if let n = s.notice, n.kind == .error || s.now - n.at < 8 {
            let style = n.kind == .error ? Style(.error, bold: true) : Style(.muted)
            buf.put((n.kind == .error ? "✗ " : "· ") + TextLayout.clip(n.text.replacingOccurrences(of: "\n", with: " "), width: buf.columns - 3),
                    x: 1, y: y, style: style)
            return
        }
        if case .loading(let fraction, let eta) = s.model {
            ProgressBar.render(label: "loading \(s.modelName)", fraction: fraction, eta: eta, into: &buf, x: 1, y: y, width: buf.columns - 2)
        }
    }
}

/// `label [█████░░░░░]  48%  ETA 3 s`.
enum ProgressBar {
    static func render(label: String, fraction: Double, eta: Double?, into buf: inout CellBuffer, x: Int, y: Int, width: Int) {
        let f = min(max(fraction, 0), 1)
        let tail = String(format: " %3d%%", Int(f * 100)) + (eta.map { "  ETA " + Format.seconds($0) } ?? "")
        var cx = x
        cx += buf.put(TextLayout.clip(label, width: max(width / 3, 8)) + " ", x: cx, y: y, style: Style(.muted))
        let barWidth = max(width - (cx - x) - tail.displayWidth - 2, 4)
        let filled = Int((f * Double(barWidth)).rounded())
        cx += buf.put("[", x: cx, y: y, style: Style(.border))
        cx += buf.put(String(repeating: "█", count: filled), x: cx, y: y, style: Style(.primary))
        cx += buf.put(String(repeating: "░", count: barWidth - filled), x: cx, y: y, style: Style(.border))
        cx += buf.put("]", x: cx, y: y, style: Style(.border))
        buf.put(tail, x: cx, y: y, style: Style(.foreground), limit: x + width)
    }
}

/// Row 0: the app, the session and whom you talk to.
enum HeaderLine {
    static func render(_ s: State, into buf: inout CellBuffer) {
        buf.fill(Rect(x: 0, y: 0, width: buf.columns, height: 1), style: .plain)
        // Whom you talk to has priority; the session title gets what room is left.
        var right = 0
        if let p = s.persona {
            let who = "与 " + p.name + "（" + (p.book ?? PersonaGroups.label(p)) + "）对话 "
            right = who.displayWidth
            buf.put(who, x: buf.columns - right, y: 0, style: Style(paint: p.accent.flatMap(Paint.init) ?? .role(.accent), bold: true))
        }
        var x = 1
        x += buf.put("演义 Yanyi", x: x, y: 0, style: Style(.primary, bold: true))
        let title = "  " + s.conversation.title + (s.conversation.id.isEmpty ? "" : "  [\(s.conversation.id)]")
        buf.put(TextLayout.clip(title, width: max(buf.columns - right - x - 2, 0)), x: x, y: 0, style: Style(.muted))
    }
}
