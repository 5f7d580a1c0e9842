import Engine
import Foundation

/// What `yanyi inspect ADAPTER_DIR [--model BASE]` prints: the adapter's targets, ranks, alphas and
/// effective scales (grouped by projection kind, since rank/alpha patterns may differ per module),
/// and whether it fits the base.
struct AdapterReport {
    let text: String
    /// False when a base was given and the adapter does not fit it.
    let fits: Bool

    init(_ a: LoRAAdapter, base: ModelFolder?, multiplier: Float = 1) {
        var out: [String] = []
        func row(_ k: String, _ v: String) { out.append(k.padding(toLength: 14, withPad: " ", startingAt: 0) + v) }
        let c = a.config
        row("adapter", a.path)
        row("weights", URL(fileURLWithPath: a.weightsFile).lastPathComponent)
        var kind = "LoRA r \(c.r), lora_alpha \(Self.number(c.loraAlpha))"
        kind += c.useRslora == true ? ", rsLoRA (alpha/sqrt(r))" : " (alpha/r)"
        if c.fanInFanOut == true { kind += ", fan_in_fan_out" }
        row("type", kind)
        if let r = c.rankPattern, !r.isEmpty { row("rank_pattern", r.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        if let al = c.alphaPattern, !al.isEmpty { row("alpha_pattern", al.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.number($0.value))" }.joined(separator: ", ")) }
        row("trained on", c.baseModelNameOrPath.flatMap { $0.isEmpty ? nil : $0 } ?? "-")
        var targets: String
        switch c.targetModules {
        case .names(let n)?: targets = n.joined(separator: ", ")
        case .regex(let r)?: targets = "regex \(r)"
        case nil: targets = "-"
        }
        if let l = c.layersToTransform?.values, !l.isEmpty {
            targets += "; layers \(l.map(String.init).joined(separator: ", "))"
            if let p = c.layersPattern?.values, !p.isEmpty { targets += " (after \(p.joined(separator: "/")))" }
        }
        row("targets", targets)

        // Modules grouped by their last name component (q_proj, W_pack, query_key_value, …).
        struct Group { var count = 0; var ranks = Set<Int>(); var scales = Set<Float>(); var params = 0 }
        var groups: [String: Group] = [:]
        for m in a.modules.values {
            let key = String(m.name.split(separator: ".").last ?? "")
            groups[key, default: Group()].count += 1
            groups[key]!.ranks.insert(m.rank)
            groups[key]!.scales.insert(m.scale)
            groups[key]!.params += m.rank * (m.inFeatures + m.outFeatures)
        }
        row("modules", "\(a.modules.count), \(InspectReport.grouped(a.modules.values.reduce(0) { $0 + $1.rank * ($1.inFeatures + $1.outFeatures) })) parameters, \(InspectReport.bytes(a.byteSize)) in memory (fp32)")
        for (name, g) in groups.sorted(by: { $0.key < $1.key }) {
            let ranks = g.ranks.sorted().map(String.init).joined(separator: "/")
            let scales = g.scales.sorted().map { Self.number(Double($0 * multiplier)) }.joined(separator: "/")
            out.append("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0)
                       + "× \(g.count)".padding(toLength: 7, withPad: " ", startingAt: 0)
                       + "rank \(ranks)   effective scale \(scales)" + (multiplier == 1 ? "" : " (× \(Self.number(Double(multiplier))))"))
        }
        var fits = true
        if let base {
            do {
                try a.check(against: base.projectionShapes)
                row("fits", "yes: every module matches a projection of \(base.path) (\(base.family.rawValue))")
            } catch {
                fits = false
                row("fits", "NO: \(error.reason)")
            }
            if let trained = c.baseModelNameOrPath, !trained.isEmpty,
               URL(fileURLWithPath: trained).lastPathComponent != URL(fileURLWithPath: base.path).lastPathComponent {
                row("warning", "trained on \(trained), not \(base.path)")
            }
        } else {
            row("fits", "not checked (give --model BASE)")
        }
        self.fits = fits
        text = out.joined(separator: "\n")
    }

    /// 2, 0.5, 0.0625: no trailing zeros.
    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(format: "%g", x)
    }
}
