import CKernels
import COpenBLAS
import Foundation

/// One adapted linear layer: y += scale · B(A·x), A [rank, in] and B [out, rank] kept fp32.
public struct LoRAModule: Sendable {
    public let name: String           // the base projection, e.g. model.layers.0.self_attn.q_proj
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    public let a: [Float]             // [rank, in]
    public let b: [Float]             // [out, rank]
    public let scale: Float           // from the config (alpha/r, rsLoRA, patterns)

    /// y [n, out] += s · B(A·x) for x [n, in]: two thin products (t = x·Aᵀ [n, rank], then
    /// y += s·t·Bᵀ), never the merged [out, in] delta. Up to the row kernel's token count each token
    /// takes the lone-token path, so a forward of a few tokens (a speculative step, a short prompt)
    /// gives each the bits a forward of one gives, as the int8 projections do.
    func apply(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, multiplier: Float) {
        let s = scale * multiplier
        if s == 0 { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n * rank) { t in
            let t = t.baseAddress!                                   // [n, rank]
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    if n <= ProjectionRows.rowKernelMaxTokens {
                        for i in 0..<n {
                            let xi = x + i * inFeatures, ti = t + i * rank
                            for k in 0..<rank { ti[k] = ck_dot_f32(a.baseAddress! + k * inFeatures, xi, inFeatures) }
                            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(rank), s, b.baseAddress!, Int32(rank),
                                        ti, 1, 1, y + i * outFeatures, 1)
                        }
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rank), Int32(inFeatures), 1,
                                    x, Int32(inFeatures), a.baseAddress!, Int32(inFeatures), 0, t, Int32(rank))
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outFeatures), Int32(rank), s,
                                    t, Int32(rank), b.baseAddress!, Int32(rank), 1, y, Int32(outFeatures))
                    }
                }
            }
        }
    }

    public var byteSize: Int { (a.count + b.count) * 4 }
}

/// A PEFT LoRA adapter folder: adapter_config.json + adapter_model.safetensors or adapter_model.bin
/// (read through the restricted unpickler: an adapter from the internet never runs code).
public final class LoRAAdapter: @unchecked Sendable {
    public let path: String
    public let config: AdapterConfig
    /// The weights file it was read from (adapter_model.safetensors or .bin).
    public let weightsFile: String
    /// Adapted modules by base projection name.
    public let modules: [String: LoRAModule]

    public var byteSize: Int { modules.values.reduce(0) { $0 + $1.byteSize } }

    public init(folder: String) throws(LoadError) {
        let configPath = joinPath(folder, "adapter_config.json")
        let c = try JSONFile.decode(AdapterConfig.self, from: configPath)
        func refuse(_ what: String) -> LoadError { LoadError(configPath, what) }
        try c.check(refuse)

        let file: MappedTensorFile
        let st = joinPath(folder, "adapter_model.safetensors"), bin = joinPath(folder, "adapter_model.bin")
        if FileManager.default.fileExists(atPath: st) {
            file = try SafeTensorsFile(path: st)
        } else if FileManager.default.fileExists(atPath: bin) {
            file = try TorchArchiveFile(path: bin)
        } else {
            throw LoadError(folder, "no adapter_model.safetensors or adapter_model.bin")
        }

        // base_model.model.<module>.lora_A[.<adapter name>].weight
        var a: [String: String] = [:], b: [String: String] = [:]
        for key in file.names {
            guard key.hasPrefix("base_model.model."), key.hasSuffix(".weight") else { continue }
            let body = key.dropFirst("base_model.model.".count).dropLast(".weight".count)
            var parts = body.split(separator: ".").map(String.init)
            if parts.count >= 2, parts[parts.count - 2] == "lora_A" || parts[parts.count - 2] == "lora_B" {
                parts.removeLast()                                  // adapter name, e.g. "default"
            }
            guard let last = parts.last, last == "lora_A" || last == "lora_B" else {
                throw LoadError(file.path, "tensor \(key) is not a LoRA A/B weight; this adapter carries more than LoRA")
            }
            let module = parts.dropLast().joined(separator: ".")
            if last == "lora_A" { a[module] = key } else { b[module] = key }
        }
        guard !a.isEmpty else { throw LoadError(file.path, "no lora_A/lora_B tensors") }
        // Each module the weights adapt: selected by the config, of the config's rank, finite, and
        // at a scale a trained adapter can have. PEFT would silently leave out what the config does
        // not select, or scale by a rank the weights do not have; both are refused by name.
        var modules: [String: LoRAModule] = [:]
        for (module, aKey) in a.sorted(by: { $0.key < $1.key }) {
            guard let bKey = b[module], let ai = file.info(aKey), let bi = file.info(bKey),
                  ai.shape.count == 2, bi.shape.count == 2, bi.shape[1] == ai.shape[0] else {
                throw LoadError(file.path, "module \(module): lora_A and lora_B missing or of mismatched rank")
            }
            guard c.targets(module) else {
                var rule = "target_modules \(c.targetModules?.description ?? "-")"
                if let l = c.layersToTransform?.values, !l.isEmpty {
                    rule += " with layers_to_transform \(l)" + (c.layersPattern.map { " (layers_pattern \($0.values))" } ?? "")
                }
                throw refuse("\(URL(fileURLWithPath: file.path).lastPathComponent) has weights for \(module), which \(rule) does not select")
            }
            let rank = ai.shape[0], want = c.rank(for: module)
            guard rank == want else {
                let source = AdapterConfig.lookup(c.rankPattern, module) != nil ? "its rank_pattern entry" : "r"
                throw refuse("\(module): \(URL(fileURLWithPath: file.path).lastPathComponent) holds rank \(rank) (lora_A \(ai.shape)) but \(source) is \(want); the scale would be wrong")
            }
            let scale = c.scaleValue(for: module)
            guard scale.isFinite, abs(scale) <= AdapterConfig.maxScale else {
                throw refuse("\(module): scale lora_alpha/r = \(scale) is beyond \(Int(AdapterConfig.maxScale)); no trained adapter has it (lora_alpha \(c.loraAlpha))")
            }
            modules[module] = LoRAModule(name: module, rank: rank, inFeatures: ai.shape[1], outFeatures: bi.shape[0],
                                         a: try file.finiteFloats(aKey), b: try file.finiteFloats(bKey), scale: Float(scale))
        }
        path = folder
        config = c
        weightsFile = file.path
        self.modules = modules
    }

    /// Every adapted module must be a projection of this base with the adapter's shape.
    public func check(against shapes: [String: (rows: Int, cols: Int)]) throws(LoadError) {
        for (name, m) in modules.sorted(by: { $0.key < $1.key }) {
            guard let s = shapes[name] else {
                throw LoadError(path, "adapter does not fit this base: it adapts \(name), which the base does not have")
            }
            guard s.rows == m.outFeatures, s.cols == m.inFeatures else {
                throw LoadError(path, "adapter does not fit this base: \(name) is [out,in] = [\(s.rows),\(s.cols)], adapter expects [\(m.outFeatures),\(m.inFeatures)]")
            }
        }
    }
}

/// The adapters active on a model, each with its user multiplier (0–2). Never touches the base
/// weights; the forward pass asks it for the deltas of each projection by name.
public final class LoRAStack: @unchecked Sendable {
    public private(set) var entries: [(adapter: LoRAAdapter, multiplier: Float)] = []
    private(set) var byModule: [String: [(LoRAModule, Float)]] = [:]
    /// Identifies the active set and scales; a KV cache built under another signature is stale.
    public private(set) var signature = ""

    public init() {}

    public func set(_ list: [(adapter: LoRAAdapter, multiplier: Float)]) {
        entries = list
        var map: [String: [(LoRAModule, Float)]] = [:]
        for (a, m) in list where m != 0 {
            for (name, module) in a.modules { map[name, default: []].append((module, m)) }
        }
        byModule = map
        signature = list.filter { $0.multiplier != 0 }
            .map { "\(ObjectIdentifier($0.adapter).hashValue)@\($0.multiplier.bitPattern)" }.joined(separator: "+")
    }

    func deltas(_ name: String) -> [(LoRAModule, Float)]? { byModule[name] }
}

/// `DIR[=SCALE]` as the command line writes an adapter: the folder and its multiplier (default 1).
public struct AdapterSpec: Equatable, Sendable {
    public var folder: String
    public var multiplier: Float

    public init(folder: String, multiplier: Float = 1) {
        self.folder = folder
        self.multiplier = multiplier
    }

    /// Parses `DIR` or `DIR=SCALE` (the last `=` splits, so folders may contain `=`); nil when the
    /// scale is not a number in 0–2.
    public static func parse(_ text: String) -> AdapterSpec? {
        guard let eq = text.lastIndex(of: "="), let m = Float(text[text.index(after: eq)...]) else {
            return text.isEmpty ? nil : AdapterSpec(folder: text)
        }
        guard (0...2).contains(m), eq > text.startIndex else { return nil }
        return AdapterSpec(folder: String(text[..<eq]), multiplier: m)
    }
}
