import Foundation

/// One row of the side panel: a setting, its range and step, and how to read and write it.
public struct SliderSpec: Sendable {
    public enum ID: Equatable, Sendable {
        /// A runtime setting (SamplingOverrides.keys).
        case setting(String)
        /// The scale of adapter number n in the adapter list.
        case adapter(Int)
    }
    public var id: ID
    public var label: String
    var lower: Double
    /// nil: the model's context less one (max new tokens).
    var upper: Double?
    var increment: Double
    /// Drawn on a log scale (max tokens: 1 … the context).
    var logScale = false

    static func s(_ key: String, _ label: String, _ lo: Double, _ hi: Double?, _ step: Double, log: Bool = false) -> SliderSpec {
        SliderSpec(id: .setting(key), label: label, lower: lo, upper: hi, increment: step, logScale: log)
    }

    static let doSample = s("do_sample", "do sample", 0, 1, 1)

    /// Every sampling value the runtime takes, in the order of `SamplingOverrides.keys` where it matters.
    static let settings: [SliderSpec] = [
        s("max_history", "max history", -1, 50, 1), doSample, s("num_beams", "beams", 1, 8, 1),
        s("temperature", "temperature", 0, 2, 0.05), s("top_p", "top-p", 0.05, 1, 0.05), s("top_k", "top-k", 0, 200, 1),
        s("min_p", "min-p", 0, 1, 0.01), s("repetition_penalty", "rep. penalty", 1, 2, 0.05),
        s("no_repeat_ngram_size", "no-repeat n", 0, 10, 1), s("max_repeat_run", "max run", 0, 10, 1), s("length_penalty", "length pen.", -2, 2, 0.1),
        s("max_new_tokens", "max tokens", 1, nil, 8, log: true), s("seed", "seed", 0, 99999, 1),
        s("prompt_lookup_num_tokens", "lookup", 0, 7, 1),   // the engine's PromptLookup.maxTokens
    ]

    /// The settings, then one scale per adapter.
    static func all(_ s: State) -> [SliderSpec] {
        settings + s.adapters.indices.map { i in
            SliderSpec(id: .adapter(i), label: TextLayout.clip("⚙ " + s.adapters[i].name, width: 13), lower: 0, upper: 2, increment: 0.05)
        }
    }

    func range(_ s: State) -> ClosedRange<Double> { lower...max(upper ?? Double((s.contextLength ?? 2048) - 1), lower) }

    /// The value shown; nil where the setting has none (a random seed).
    func value(_ s: State) -> Double? {
        switch id {
        case .adapter(let i): return i < s.adapters.count ? Double(s.adapters[i].multiplier) : 0
        case .setting(let key):
            guard let t = s.setting(key) else { return nil }
            switch t {
            case "true": return 1
            case "false": return 0
            case "all": return -1
            default: return Double(t)
            }
        }
    }

    /// One step up (+1) or down (−1) from the value shown.
    func step(_ d: Int, _ s: inout State, _ fx: inout [Effect]) {
        let r = range(s)
        guard let v = value(s) else { set(r.lowerBound, &s, &fx); return }
        set(v + Double(d) * increment, &s, &fx)
    }

    /// Sets the value, snapped to the step grid and clamped to the range: the runtime's user
    /// layer for a setting, the adapter's scale for an adapter. Shown at once.
    func set(_ x: Double, _ s: inout State, _ fx: inout [Effect]) {
        let r = range(s)
        let snapped = ((x - r.lowerBound) / increment).rounded() * increment + r.lowerBound
        let v = min(max((snapped * 100).rounded() / 100, r.lowerBound), r.upperBound)
        switch id {
        case .adapter(let i):
            guard i < s.adapters.count else { return }
            s.adapters[i].multiplier = Float(v)
            fx.append(.scaleAdapter(s.adapters[i].path, Float(v)))
        case .setting(let key):
            let text: String
            switch key {
            case "do_sample": text = v >= 0.5 ? "true" : "false"
            case "temperature", "top_p", "min_p", "repetition_penalty", "length_penalty": text = String(format: "%g", v)
            default: text = String(Int(v))
            }
            if let i = s.settings.firstIndex(where: { $0.key == key }) {
                s.settings[i].value = key == "max_history" && v < 0 ? "all" : text
                s.settings[i].layer = .user
            }
            fx.append(.set(key, text))
        }
    }

    /// Back to what the layers below the user's give (an adapter: the persona's scale).
    func reset(_ s: inout State, _ fx: inout [Effect]) {
        switch id {
        case .setting(let key): fx.append(.set(key, "default"))
        case .adapter(let i):
            guard i < s.adapters.count, let p = s.persona,
                  let ref = p.adapters.first(where: { $0.path == s.adapters[i].path }) else { return }
            set(ref.scale, &s, &fx)
        }
    }

    /// Where the bar's end is, 0–1 (a value beyond the range, from a persona file, fills it).
    func fraction(_ s: State) -> Double {
        let r = range(s)
        guard let v = value(s), r.upperBound > r.lowerBound else { return 0 }
        let f = logScale ? log2(max(v, r.lowerBound) / r.lowerBound) / log2(r.upperBound / r.lowerBound)
                         : (v - r.lowerBound) / (r.upperBound - r.lowerBound)
        return f.isFinite ? min(max(f, 0), 1) : 0
    }

    func text(_ s: State) -> String {
        guard let v = value(s) else {
            if case .setting(let key) = id { return s.setting(key) ?? "–" }
            return "–"
        }
        switch id {
        case .adapter: return String(format: "%.2f", v)
        case .setting(let key):
            switch key {
            case "do_sample": return v >= 0.5 ? "on" : "off"
            case "top_k", "min_p", "no_repeat_ngram_size", "max_repeat_run", "prompt_lookup_num_tokens": if v == 0 { return "off" }
            case "max_history": if v < 0 { return "all" }
            default: break
            }
            return v == v.rounded() && abs(v) >= 1 || v == 0 ? String(Int(v)) : String(format: "%.2f", v)
        }
    }

    /// Whether the user set it (the layer shows as a mark beside the value).
    func isUserValue(_ s: State) -> Bool {
        guard case .setting(let key) = id else { return false }
        return s.settings.first { $0.key == key }?.layer == .user
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
            let barWidth = inner.width - 13 - valueWidth - 2
            var x = inner.x + 13
            if barWidth >= 3 {
                let fraction = spec.fraction(s)
                let filled = Int((fraction * Double(barWidth)).rounded())
                buf.put(String(repeating: "━", count: filled), x: x, y: y, style: Style(.accent, bg: bg))
                buf.put(String(repeating: "─", count: barWidth - filled), x: x + filled, y: y, style: Style(.border, bg: bg))
                x += barWidth + 1
            }
            let mark = spec.isUserValue(s) ? "•" : " "
            let shown = String(repeating: " ", count: max(0, valueWidth - value.displayWidth)) + value + mark
            buf.put(shown, x: x, y: y, style: Style(.foreground, bg: bg, bold: focused), limit: inner.right)
        }
    }
}
