import Foundation

/// adapter_config.json as PEFT writes it (0.3 through 0.10): the fields Yanyi reads.
public struct AdapterConfig: Decodable, Sendable {
    public var peftType: String?
    public var r: Int
    public var loraAlpha: Double
    public var targetModules: TargetModules?
    public var layersToTransform: OneOrMany<Int>?    // PEFT ≥ 0.4: only these layer indices
    public var layersPattern: OneOrMany<String>?     // the name before the layer index ("layers", "h", …)
    public var bias: String?
    public var fanInFanOut: Bool?
    public var useRslora: Bool?
    public var useDora: Bool?
    public var rankPattern: [String: Int]?
    public var alphaPattern: [String: Double]?
    public var modulesToSave: [String]?
    public var enableLora: [Bool]?                // PEFT ≤ 0.2 MergedLinear
    public var baseModelNameOrPath: String?

    enum CodingKeys: String, CodingKey {
        case peftType = "peft_type", r, loraAlpha = "lora_alpha", targetModules = "target_modules", bias
        case layersToTransform = "layers_to_transform", layersPattern = "layers_pattern"
        case fanInFanOut = "fan_in_fan_out", useRslora = "use_rslora", useDora = "use_dora"
        case rankPattern = "rank_pattern", alphaPattern = "alpha_pattern", modulesToSave = "modules_to_save"
        case enableLora = "enable_lora", baseModelNameOrPath = "base_model_name_or_path"
    }

    /// `target_modules` as PEFT reads it: a list of module names, or one string that is a regular
    /// expression the whole module path must match.
    public enum TargetModules: Decodable, Sendable, Equatable {
        case names([String])
        case regex(String)

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .regex(s) } else { self = .names(try c.decode([String].self)) }
        }

        public var description: String {
            switch self {
            case .names(let n): return "[" + n.joined(separator: ", ") + "]"
            case .regex(let r): return "regex \"\(r)\""
            }
        }
    }

    /// The largest |scale| (lora_alpha / r, or / sqrt(r)) accepted. Trained adapters sit far below
    /// (RulaiGPT 8, the cosplay and CuteGPT adapters 2); a larger one only multiplies B·A·x towards
    /// fp32's range (lora_alpha 1e30 turns every logit into NaN).
    public static let maxScale: Double = 1000

    /// PEFT's pattern lookup: a key applies to a module whose name is the key or ends in ".key";
    /// the most specific (longest) key wins.
    static func lookup<T>(_ pattern: [String: T]?, _ module: String) -> T? {
        guard let pattern else { return nil }
        return pattern.filter { module == $0.key || module.hasSuffix("." + $0.key) }
            .max { $0.key.count < $1.key.count }?.value
    }

    /// The rank PEFT gives `module`: its rank_pattern entry, else r.
    public func rank(for module: String) -> Int { Self.lookup(rankPattern, module) ?? r }

    /// lora_alpha / r (rsLoRA: lora_alpha / sqrt(r)), with the module's rank/alpha pattern.
    public func scale(for module: String) -> Float { Float(scaleValue(for: module)) }

    func scaleValue(for module: String) -> Double {
        let r = Double(rank(for: module))
        let alpha = Self.lookup(alphaPattern, module) ?? loraAlpha
        return useRslora == true ? alpha / r.squareRoot() : alpha / r
    }

    /// Whether PEFT (0.10's `check_target_module_exists`) puts a LoRA layer on `module` (a path
    /// like `model.layers.3.self_attn.q_proj`): a regex string must match the whole path; a list
    /// entry must be the path or its last dotted components; with a list, layers_to_transform
    /// keeps only the layers it names (the index after layers_pattern, else after any name).
    public func targets(_ module: String) -> Bool {
        switch targetModules {
        case nil:
            return false
        case .regex(let pattern)?:
            return Self.fullMatch(pattern, module)
        case .names(let names)?:
            if names.contains(module) { return true }
            guard names.contains(where: { module.hasSuffix("." + $0) }) else { return false }
            guard let wanted = layersToTransform?.values, !wanted.isEmpty else { return true }
            guard let index = layerIndex(module) else { return false }
            return wanted.contains(index)
        }
    }

    /// The layer index in `module`: the number after a layers_pattern component (PEFT: after any
    /// component when there is no pattern) that is followed by more of the path.
    func layerIndex(_ module: String) -> Int? {
        let parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let patterns = layersPattern?.values.filter { !$0.isEmpty } ?? []
        // PEFT's re.match(r".*\.{pattern}\.(\d+)\.") is greedy: the last match wins.
        for i in stride(from: parts.count - 2, through: 1, by: -1) {
            guard let n = Int(parts[i]), n >= 0, parts[i].allSatisfy(\.isASCII) else { continue }
            if patterns.isEmpty || patterns.contains(parts[i - 1]) { return n }
        }
        return nil
    }

    static func fullMatch(_ pattern: String, _ text: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$") else { return false }
        return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// What adapter_config.json alone can be wrong about; `refuse` names the file.
    func check(_ refuse: (String) -> LoadError) throws(LoadError) {
        if let t = peftType, t.uppercased() != "LORA" { throw refuse("peft_type \(t) is not supported (only LORA)") }
        if let b = bias, b != "none" { throw refuse("bias \"\(b)\" is not supported (only \"none\")") }
        if useDora == true { throw refuse("use_dora is not supported") }
        if let m = modulesToSave, !m.isEmpty { throw refuse("modules_to_save \(m) is not supported") }
        if enableLora != nil {
            throw refuse("enable_lora (old PEFT MergedLinear, which assumes a Q|K|V block split) is not supported; re-save with PEFT ≥ 0.3")
        }
        guard r > 0 else { throw refuse("r is \(r); it must be a positive integer") }
        guard loraAlpha.isFinite, loraAlpha > 0 else { throw refuse("lora_alpha is \(loraAlpha); it must be a positive finite number") }
        for (key, v) in (rankPattern ?? [:]).sorted(by: { $0.key < $1.key }) where v <= 0 {
            throw refuse("rank_pattern \(key.quoted) is \(v); it must be a positive integer")
        }
        for (key, v) in (alphaPattern ?? [:]).sorted(by: { $0.key < $1.key }) where !(v.isFinite && v > 0) {
            throw refuse("alpha_pattern \(key.quoted) is \(v); it must be a positive finite number")
        }
        switch targetModules {
        case nil:
            throw refuse("target_modules is missing: it says which modules the adapter is for")
        case .names(let names)?:
            if names.isEmpty { throw refuse("target_modules is empty: it says which modules the adapter is for") }
            for t in names where ["embed_tokens", "word_embeddings", "lm_head"].contains(where: t.contains) {
                throw refuse("LoRA on \(t) (embedding or lm_head) is not supported")
            }
        case .regex(let pattern)?:
            if pattern.isEmpty { throw refuse("target_modules is empty: it says which modules the adapter is for") }
            if (try? NSRegularExpression(pattern: pattern)) == nil {
                throw refuse("target_modules \(pattern.quoted) is not a regular expression Yanyi can read")
            }
        }
        if let l = layersToTransform?.values, let bad = l.first(where: { $0 < 0 }) {
            throw refuse("layers_to_transform holds \(bad); layer indices are ≥ 0")
        }
    }
}
