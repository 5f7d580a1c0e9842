import Foundation

/// One row of the side panel: a setting, its range and step, and how to read and write it.
public struct SliderSpec: Sendable {
    public enum ID: Equatable, Sendable {
        case maxHistory, doSample, beams, temperature, topP, topK, repetitionPenalty, maxTokens
        /// The scale of adapter number n in the adapter list.
        case adapter(Int)
    }
    public var id: ID
    public var label: String
    public var range: ClosedRange<Double>
    public var step: Double

    static let settings: [SliderSpec] = [
        SliderSpec(id: .maxHistory, label: "max history", range: 0...50, step: 1),
        SliderSpec(id: .doSample, label: "do sample", range: 0...1, step: 1),
        SliderSpec(id: .beams, label: "beams", range: 1...8, step: 1),
        SliderSpec(id: .temperature, label: "temperature", range: 0...2, step: 0.05),
        SliderSpec(id: .topP, label: "top-p", range: 0.05...1, step: 0.05),
        SliderSpec(id: .topK, label: "top-k", range: 0...200, step: 5),
        SliderSpec(id: .repetitionPenalty, label: "rep. penalty", range: 1...2, step: 0.05),
        SliderSpec(id: .maxTokens, label: "max tokens", range: 16...4096, step: 16),
    ]

    /// The eight settings, then one scale per adapter.
    static func all(_ s: State) -> [SliderSpec] {
        settings + s.adapters.indices.map { i in
            SliderSpec(id: .adapter(i), label: TextLayout.clip("⚙ " + s.adapters[i].name, width: 13), range: 0...2, step: 0.05)
        }
    }

    func value(_ s: State) -> Double {
        let v = s.sliders
        switch id {
        case .maxHistory: return Double(v.maxHistory)
        case .doSample: return v.doSample ? 1 : 0
        case .beams: return Double(v.beams)
        case .temperature: return v.temperature
        case .topP: return v.topP
        case .topK: return Double(v.topK)
        case .repetitionPenalty: return v.repetitionPenalty
        case .maxTokens: return Double(v.maxTokens)
        case .adapter(let i): return i < s.adapters.count ? s.adapters[i].scale : 0
        }
    }

    /// Sets the value, snapped to the step grid and clamped to the range.
    func set(_ x: Double, in s: inout State) {
        let snapped = ((x - range.lowerBound) / step).rounded() * step + range.lowerBound
        let v = min(max((snapped * 100).rounded() / 100, range.lowerBound), range.upperBound)
        switch id {
        case .maxHistory: s.sliders.maxHistory = Int(v)
        case .doSample: s.sliders.doSample = v >= 0.5
        case .beams: s.sliders.beams = Int(v)
        case .temperature: s.sliders.temperature = v
        case .topP: s.sliders.topP = v
        case .topK: s.sliders.topK = Int(v)
        case .repetitionPenalty: s.sliders.repetitionPenalty = v
        case .maxTokens: s.sliders.maxTokens = Int(v)
        case .adapter(let i): if i < s.adapters.count { s.adapters[i].scale = v }
        }
    }

    /// Where the bar's end is, 0–1; max tokens on a log scale (16 … 4096 spans powers of two).
    func fraction(_ s: State) -> Double {
        let v = value(s), lo = range.lowerBound, hi = range.upperBound
        if id == .maxTokens { return log2(v / lo) / log2(hi / lo) }
        return (v - lo) / (hi - lo)
    }

    func text(_ s: State) -> String {
        let v = value(s)
        switch id {
        case .doSample: return v >= 0.5 ? "on" : "off"
        case .topK: return v == 0 ? "off" : String(Int(v))
        case .maxHistory, .beams, .maxTokens: return String(Int(v))
        case .temperature, .topP, .repetitionPenalty, .adapter: return String(format: "%.2f", v)
        }
    }
}

/// The side panel's sliders: label, bar and exact value; the focused row highlighted.
enum SliderPanel {
    static func render(_ s: State, into buf: inout CellBuffer, area: Rect) {
        let inner = Frame.draw(into: &buf, area: area, title: "Sliders · 参数", focused: s.focus == .sliders)
        let specs = SliderSpec.all(s)
        guard inner.height > 0 else { return }
        let index = min(s.sliderIndex, specs.count - 1)
        let first = max(0, min(index - inner.height + 1, specs.count - inner.height))
        for (row, i) in (first..<specs.count).prefix(inner.height).enumerated() {
            let spec = specs[i]
            let y = inner.y + row
            let focused = s.focus == .sliders && i == index
            let bg: Role = focused ? .selection : .background
            if focused { buf.fill(Rect(x: inner.x - 1, y: y, width: inner.width + 2, height: 1), style: Style(.foreground, bg: bg)) }
            let label = TextLayout.fit(spec.label, width: 12) + " "
            buf.put(label, x: inner.x, y: y, style: Style(focused ? .foreground : .muted, bg: bg, bold: focused))
            let value = spec.text(s)
            let valueWidth = 5
            let barWidth = inner.width - 13 - valueWidth - 1
            var x = inner.x + 13
            if barWidth >= 3 {
                let fraction = spec.fraction(s)
                let filled = Int((fraction * Double(barWidth)).rounded())
                buf.put(String(repeating: "━", count: filled), x: x, y: y, style: Style(.accent, bg: bg))
                buf.put(String(repeating: "─", count: barWidth - filled), x: x + filled, y: y, style: Style(.border, bg: bg))
                x += barWidth + 1
            }
            let shown = String(repeating: " ", count: max(0, valueWidth - value.displayWidth)) + value
            buf.put(shown, x: x, y: y, style: Style(.foreground, bg: bg, bold: focused), limit: inner.right)
        }
    }
}
