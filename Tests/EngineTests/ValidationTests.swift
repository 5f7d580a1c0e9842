import Foundation
import Testing
@testable import Engine

/// Validation at load (issue 15, item 2): configs in range and consistent, adapter configs that
/// agree with their tensors, weights finite; and at run time, non-finite logits stop the reply
/// with one line. Every case is an input that used to load and end in NaN logits or a wrong scale.
@Suite struct ValidationTests {
    static let fixtures = ForwardReferenceTests.fixtures

    // MARK: - config.json (ModelFolder.open: `yanyi inspect` and loading share it)

    @Test(arguments: [
        ("llama/safetensors", "rms_norm_eps", "-1", ["rms_norm_eps", "-1", "positive finite"]),
        ("llama/safetensors", "rms_norm_eps", "0", ["rms_norm_eps", "positive finite"]),
        ("llama/safetensors", "rms_norm_eps", "1e-60", ["rms_norm_eps", "fp32"]),
        ("llama/safetensors", "rope_theta", "0", ["rope_theta", "positive finite"]),
        ("llama/safetensors", "rope_theta", "-10000", ["rope_theta"]),
        ("llama/safetensors", "hidden_size", "0", ["hidden_size", "is 0", "positive integer"]),
        ("llama/safetensors", "vocab_size", "-1", ["vocab_size", "is -1"]),
        ("llama/safetensors", "num_hidden_layers", "0", ["num_hidden_layers", "is 0"]),
        ("llama/safetensors", "intermediate_size", "-64", ["intermediate_size"]),
        ("llama/safetensors", "num_attention_heads", "0", ["num_attention_heads", "is 0"]),
        ("llama/safetensors", "num_attention_heads", "5", ["num_attention_heads", "5 does not divide hidden_size 32"]),
        ("llama/safetensors", "num_attention_heads", "32", ["head_dim 1", "multiple of 2"]),
        ("llama/safetensors", "num_key_value_heads", "3", ["num_key_value_heads", "3 does not divide num_attention_heads 4"]),
        ("llama/safetensors", "max_position_embeddings", "0", ["max_position_embeddings", "is 0"]),
        ("llama/safetensors", "max_position_embeddings", "1099511627776", ["max_position_embeddings", "at most"]),
        ("llama/safetensors", "bos_token_id", "5000", ["bos_token_id", "5000", "outside the vocabulary (vocab_size 1001)"]),
        ("llama/safetensors", "eos_token_id", "[2, -3]", ["eos_token_id", "-3"]),
        ("llama/safetensors", "pad_token_id", "1001", ["pad_token_id", "1001"]),
        ("chatglm/safetensors", "layernorm_epsilon", "-1", ["layernorm_epsilon", "-1", "positive finite"]),
        ("chatglm/safetensors", "num_layers", "0", ["num_layers", "is 0"]),
        ("chatglm/safetensors", "inner_hidden_size", "0", ["inner_hidden_size", "is 0"]),
        ("chatglm/safetensors", "num_attention_heads", "16", ["head_dim 2", "2-D rotary", "multiple of 4"]),
        ("chatglm/safetensors", "gmask_token_id", "5000", ["gmask_token_id", "outside the vocabulary"]),
        ("chatglm/safetensors", "mask_token_id", "1001", ["must differ"]),
        ("chatglm/safetensors", "vocab_size", "-1", ["vocab_size", "is -1"]),
        ("baichuan/safetensors", "rms_norm_eps", "-1", ["rms_norm_eps"]),
    ])
    func badConfigValuesAreRefusedByName(model: String, key: String, json: String, words: [String]) throws {
        let dir = try ModelFolderTests.copy(model)
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        try ModelFolderTests.editConfig(dir) { $0[key] = value }
        ModelFolderTests.expectError(dir, file: "config.json", words)
    }

    /// What real configs write stays accepted: pad_token_id -1 (2023 LLaMA conversions), absent
    /// optional keys (defaults), and the dimensions are those the architectures build from.
    @Test func realConfigQuirksStillOpen() throws {
        let dir = try ModelFolderTests.copy("llama/safetensors")
        try ModelFolderTests.editConfig(dir) { $0["pad_token_id"] = -1; $0["rope_theta"] = nil; $0["rms_norm_eps"] = nil }
        let m = try ModelFolder.open(dir.path)
        #expect(try m.dims == ModelDimensions(m.config, family: .llama, file: "x"))
        #expect(m.dims.ropeTheta == 10000 && m.dims.normEps == 1e-6 && m.dims.context == 2048)
        let glm = try ModelFolder.open(Self.fixtures.appendingPathComponent("models/chatglm/safetensors").path)
        #expect(glm.dims.glm == ModelDimensions.GLMIds(sop: 1004, mask: 1000, gmask: 1001))
        #expect(glm.dims.mlp == 128 && glm.dims.normEps == 1e-5)
    }

    // MARK: - weights: finite, counted while they are read

    /// Writes `value` over element `index` of tensor `name` in a copied single-file safetensors folder.
    static func poke(_ dir: URL, _ name: String, index: Int = 0, f16: UInt16? = nil, f32: Float? = nil, count: Int = 1) throws {
        let path = dir.appendingPathComponent("model.safetensors").path
        let info = try SafeTensorsFile(path: path).info(name)!
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        for k in index..<(index + count) {
            if let f16 {
                let o = info.offset + 2 * k
                bytes[o] = UInt8(f16 & 0xFF); bytes[o + 1] = UInt8(f16 >> 8)
            } else if let f32 {
                let o = info.offset + 4 * k
                withUnsafeBytes(of: f32.bitPattern.littleEndian) { for i in 0..<4 { bytes[o + i] = $0[i] } }
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test(arguments: [
        // llama fixture is F16: a linear (int8: counted by the quantizer; f32: on conversion),
        // a norm weight, the embedding (kept f16: counted as it is copied).
        ("llama/safetensors", "model.layers.1.mlp.up_proj.weight", Precision.int8, UInt16(0x7E00)),
        ("llama/safetensors", "model.layers.1.mlp.up_proj.weight", Precision.f32, UInt16(0x7C00)),
        ("llama/safetensors", "model.layers.0.input_layernorm.weight", Precision.int8, UInt16(0xFC00)),
        ("llama/safetensors", "model.embed_tokens.weight", Precision.int8, UInt16(0x7E00)),
        ("baichuan/safetensors", "model.embed_tokens.weight", Precision.int8, UInt16(0x7F80)),   // BF16 +Inf
    ])
    func nonFiniteWeightsAreRefusedByName(model: String, tensor: String, precision: Precision, bits: UInt16) throws {
        let dir = try ModelFolderTests.copy(model)
        try Self.poke(dir, tensor, index: 5, f16: bits)
        do throws(LoadError) {
            _ = try ModelRegistry.load(ModelFolder.open(dir.path), precision: precision, pool: ThreadPool(threads: 2))
            Issue.record("loaded \(tensor) holding a non-finite value")
        } catch {
            #expect(error.file.hasSuffix("model.safetensors"), "\(error)")
            #expect(error.reason.contains(tensor) && error.reason.contains("NaN or infinite"), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func nonFiniteF32NormBiasIsRefused() throws {
        let dir = try ModelFolderTests.copy("chatglm/safetensors")   // F32
        try Self.poke(dir, "transformer.layers.1.post_attention_layernorm.bias", index: 3, f32: .nan)
        do throws(LoadError) {
            _ = try ModelRegistry.load(ModelFolder.open(dir.path), precision: .int8, pool: ThreadPool(threads: 1))
            Issue.record("loaded a NaN bias")
        } catch {
            #expect(error.reason.contains("post_attention_layernorm.bias") && error.reason.contains("1 of 32"), "\(error)")
        }
    }

    // MARK: - non-finite logits at run time

    /// Finite weights whose product overflows fp32 (final LayerNorm weight 3e38): the forward
    /// refuses the row, generation stops with one line, and the session keeps no poisoned entries.
    @Test(arguments: [Precision.f32, .int8])
    func nonFiniteLogitsStopTheReplyWithOneLine(precision: Precision) throws {
        let dir = try ModelFolderTests.copy("chatglm/safetensors")
        try Self.poke(dir, "transformer.final_layernorm.weight", f32: 3e38, count: 32)
        let folder = try ModelFolder.open(dir.path)
        let lm = try ModelRegistry.load(folder, precision: precision, pool: ThreadPool(threads: 2))
        let prompt: [Int32] = [342, 732, 315, 1001, 1004]
        let session = lm.makeSession(capacity: 16)
        do throws(ModelError) {
            _ = try lm.forward(prompt, session: session, logits: .last)
            Issue.record("forward returned non-finite logits")
        } catch {
            #expect(error.description.contains("not finite") && error.description.contains("position 4"), "\(error)")
        }
        #expect(session.count == 0)
        var s = GenerationSettings()
        s.maxNewTokens = 4
        s.eos = [1005]
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: prompt, settings: s)
        do throws(GenerationError) {
            _ = try g.next()
            Issue.record("generation went on with non-finite logits")
        } catch {
            #expect(error.description.contains("not finite") && !error.description.contains("\n"), "\(error)")
        }
    }

    // MARK: - adapters

    /// A scratch adapter folder: config (a dictionary) and tensors written as safetensors.
    struct Tensor { var dtype = "F32"; var shape: [Int]; var values: [Float] }

    static func writeAdapter(_ config: [String: Any], _ tensors: [String: Tensor]) throws -> String {
        let dir = ModelFolderTests.scratchRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("adapter_config.json"))
        var header: [String: Any] = [:], data: [UInt8] = []
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
            let bytes: [UInt8] = t.dtype == "F16" ? t.values.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian, Array.init) }
                                                  : t.values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
            header[name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [data.count, data.count + bytes.count]]
            data += bytes
        }
        let h = String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self)
        try Data(safetensorsBytes(h, data: data)).write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        return dir.path
    }

    static var baseConfig: [String: Any] { ["peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
                                            "bias": "none", "task_type": "CAUSAL_LM"] }

    /// LoRA A [rank, 64] and B [64, rank] for llama-trained's q_proj in `layers`, with fill values.
    static func qTensors(layers: [Int] = [0, 1, 2, 3], module: String = "q_proj", rank: Int = 8,
                         a: Float = 0.01, b: Float = 0.01, bType: String = "F32") -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for l in layers {
            let p = "base_model.model.model.layers.\(l).self_attn.\(module)"
            out[p + ".lora_A.weight"] = Tensor(shape: [rank, 64], values: (0..<(rank * 64)).map { Float($0 % 7 - 3) * a })
            out[p + ".lora_B.weight"] = Tensor(dtype: bType, shape: [64, rank], values: (0..<(rank * 64)).map { Float($0 % 5 - 2) * b })
        }
        return out
    }

    static func expectAdapterRefused(_ path: String, file suffix: String = "adapter_config.json", _ words: [String],
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        do throws(LoadError) {
            _ = try LoRAAdapter(folder: path)
            Issue.record("accepted; expected \(words)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.file.hasSuffix(suffix), "\(error)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
            for w in words { #expect(error.description.contains(w), "'\(w)' missing: \(error)", sourceLocation: sourceLocation) }
        }
    }

    static func config(_ edit: (inout [String: Any]) -> Void) -> [String: Any] {
        var c = baseConfig
        edit(&c)
        return c
    }

    @Test func theBaselineScratchAdapterLoadsAndFits() throws {
        let a = try LoRAAdapter(folder: try Self.writeAdapter(Self.baseConfig, Self.qTensors()))
        #expect(a.modules.count == 4 && a.modules.values.allSatisfy { $0.scale == 2 && $0.rank == 8 })
        let lm = try AdapterTests.model("models/llama-trained/safetensors", .int8)
        try lm.setAdapters([(a, 1)])
    }

    @Test func rankThatContradictsTheTensorsIsRefused() throws {
        for r in [16, 1_000_000_000, 4] {
            let path = try Self.writeAdapter(Self.config { $0["r"] = r }, Self.qTensors())
            Self.expectAdapterRefused(path, ["rank 8", "r is \(r)", "self_attn.q_proj"])
        }
        // `1e9` as JSON writes it: an integer value in exponent form, or refused as not an integer.
        let dir = try Self.writeAdapter(Self.baseConfig, Self.qTensors())
        let url = URL(fileURLWithPath: dir).appendingPathComponent("adapter_config.json")
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self).replacingOccurrences(of: "\"r\":8", with: "\"r\":1e9")
        #expect(text.contains("1e9"))
        try Data(text.utf8).write(to: url)
        Self.expectAdapterRefused(dir, ["r"])
        // A rank pattern that names the tensors' rank is honoured; one that contradicts them is refused.
        let patterned = try Self.writeAdapter(Self.config { $0["r"] = 16; $0["rank_pattern"] = ["q_proj": 8] }, Self.qTensors())
        #expect(try LoRAAdapter(folder: patterned).modules.values.allSatisfy { $0.scale == 2 })
        let wrongPattern = try Self.writeAdapter(Self.config { $0["rank_pattern"] = ["layers.2.self_attn.q_proj": 4] }, Self.qTensors())
        Self.expectAdapterRefused(wrongPattern, ["model.layers.2.self_attn.q_proj", "rank 8", "rank_pattern entry is 4"])
    }

    @Test func targetModulesMustSelectEveryWeight() throws {
        // Weights for q_proj, config names k_proj and v_proj only.
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = ["k_proj", "v_proj"] }, Self.qTensors()),
                                  ["model.layers.0.self_attn.q_proj", "target_modules [k_proj, v_proj]", "does not select"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = [] as [String] }, Self.qTensors()),
                                  ["target_modules is empty"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = "" }, Self.qTensors()),
                                  ["target_modules is empty"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = nil }, Self.qTensors()),
                                  ["target_modules is missing"])
        // A name is a whole dotted component: "proj" does not select q_proj (PEFT ≥ 0.4's rule).
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = ["proj"] }, Self.qTensors()),
                                  ["does not select"])
        // A string is a regular expression over the whole module path (PEFT's re.fullmatch).
        let regex = try Self.writeAdapter(Self.config { $0["target_modules"] = #".*\.(q_proj|v_proj)"# }, Self.qTensors())
        #expect(try LoRAAdapter(folder: regex).modules.count == 4)
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["target_modules"] = #".*layers\.0\..*q_proj"# }, Self.qTensors()),
                                  ["model.layers.1.self_attn.q_proj", "regex", "does not select"])
    }

    @Test func layersToTransformIsHonouredOrRefused() throws {
        // Weights for every layer, config for layers 0 and 2: the others are named.
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["layers_to_transform"] = [0, 2] }, Self.qTensors()),
                                  ["model.layers.1.self_attn.q_proj", "layers_to_transform [0, 2]", "does not select"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["layers_to_transform"] = 3; $0["layers_pattern"] = "layers" },
                                                        Self.qTensors()),
                                  ["model.layers.0.self_attn.q_proj", "layers_to_transform [3]", "layers_pattern"])
        // A pattern the paths do not have selects nothing.
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["layers_to_transform"] = [0]; $0["layers_pattern"] = "h" },
                                                        Self.qTensors(layers: [0])),
                                  ["model.layers.0.self_attn.q_proj", "does not select"])
        // Weights only where the config says: loads, and only those layers change.
        let only = try LoRAAdapter(folder: try Self.writeAdapter(Self.config { $0["layers_to_transform"] = [1, 3]; $0["layers_pattern"] = ["layers"] },
                                                                 Self.qTensors(layers: [1, 3])))
        #expect(only.modules.keys.sorted() == ["model.layers.1.self_attn.q_proj", "model.layers.3.self_attn.q_proj"])
        // PEFT's own writer puts null there (llama-all): no restriction.
        #expect(try AdapterTests.adapter("llama-all").modules.count == 28)
    }

    @Test func alphaMustBePositiveFiniteAndTheScaleBounded() throws {
        for alpha in [0, -16] as [Double] {
            Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["lora_alpha"] = alpha }, Self.qTensors()),
                                      ["lora_alpha", "positive finite"])
        }
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["lora_alpha"] = 1e30 }, Self.qTensors()),
                                  ["lora_alpha/r", "1.25e+29", "beyond 1000"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["alpha_pattern"] = ["v_proj": -1] }, Self.qTensors()),
                                  ["alpha_pattern 'v_proj'", "positive finite"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["alpha_pattern"] = ["q_proj": 1e9] }, Self.qTensors()),
                                  ["model.layers.0.self_attn.q_proj", "beyond 1000"])
        Self.expectAdapterRefused(try Self.writeAdapter(Self.config { $0["rank_pattern"] = ["q_proj": 0] }, Self.qTensors()),
                                  ["rank_pattern 'q_proj'", "positive"])
    }

    @Test func nonFiniteAdapterWeightsAreRefusedByName() throws {
        var t = Self.qTensors()
        t["base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight"]!.values[7] = .nan
        Self.expectAdapterRefused(try Self.writeAdapter(Self.baseConfig, t), file: "adapter_model.safetensors",
                                  ["model.layers.2.self_attn.q_proj.lora_A.weight", "1 NaN or infinite value"])
        t = Self.qTensors(bType: "F16")
        t["base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight"]!.values[0] = .infinity
        t["base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight"]!.values[1] = -.infinity
        Self.expectAdapterRefused(try Self.writeAdapter(Self.baseConfig, t), file: "adapter_model.safetensors",
                                  ["model.layers.3.self_attn.q_proj.lora_B.weight", "2 NaN or infinite values"])
    }

    /// Finite but huge adapter weights (fp16 B = 60000, and A = 1e30): either the logits stay
    /// finite or the forward refuses them naming the adapter — never NaN logits handed on.
    @Test func hugeAdapterWeightsNeverGiveSilentNaN() throws {
        let lm = try AdapterTests.model("models/llama-trained/safetensors", .int8)
        let prompt: [Int32] = [342, 732, 315, 265, 255, 360]
        var sawRefusal = false
        for (a, b, bType) in [(Float(0.01), Float(30000), "F16"), (1, 30000, "F16"), (1e30, 1, "F32")] {
            var t = Self.qTensors(a: a, b: b, bType: bType)
            t.merge(Self.qTensors(module: "v_proj", a: a, b: b, bType: bType)) { x, _ in x }
            let path = try Self.writeAdapter(Self.config { $0["lora_alpha"] = 8000 }, t)   // scale 1000, the bound
            let adapter = try LoRAAdapter(folder: path)
            try lm.setAdapters([(adapter, 2)])
            var logits: [Float] = []
            do throws(ModelError) {
                logits = try lm.forward(prompt, session: lm.makeSession(capacity: 16), logits: .all)
            } catch {
                sawRefusal = true
                #expect(error.description.contains("not finite") && error.description.contains(path), "\(error)")
                #expect(error.description.contains("multiplier"), "\(error)")
            }
            #expect(!logits.contains { !$0.isFinite })
        }
        #expect(sawRefusal, "A = 1e30 overflows fp32: the forward must say so")
        try lm.setAdapters([])
    }
}

/// `--threads` (issue 15, item 3): bounded with one clear line, and a pool whose threads the
/// system will not start runs with those it has instead of waiting for them forever.
@Suite struct ThreadBoundTests {
    @Test func threadCountsOutsideTheBoundAreNamed() {
        #expect(ThreadPool.threadCountProblem(0)?.contains("at least 1") == true)
        #expect(ThreadPool.threadCountProblem(-3)?.contains("at least 1") == true)
        let big = ThreadPool.threadCountProblem(100_000)
        #expect(big?.contains("100000") == true && big?.contains("at most \(ThreadPool.maxThreads)") == true, "\(big ?? "nil")")
        #expect(ThreadPool.threadCountProblem(1) == nil && ThreadPool.threadCountProblem(ThreadPool.maxThreads) == nil)
        #expect(ThreadPool.threadCountProblem(ThreadPool.physicalCores) == nil)
        #expect((1...256).contains(ThreadPool.maxThreads))
        // A library caller asking for too many gets the bound, not 100,000 threads.
        #expect(ThreadPool(threads: 100_000).threads <= ThreadPool.maxThreads)
    }

    @Test(.timeLimit(.minutes(1)), arguments: [0, 1, 3])
    func workersThatCannotStartAreLeftOut(startable: Int) {
        let lock = NSLock()
        var launched = 0
        let pool = ThreadPool(threads: 8) { body in
            lock.lock(); defer { lock.unlock() }
            guard launched < startable else { return false }
            launched += 1
            Thread { body() }.start()
            return true
        }
        #expect(pool.threads == startable + 1 && pool.requested == 8)
        for n in [1, 2, 7, 64, 1000] {
            var seen = [Int](repeating: 0, count: n)
            seen.withUnsafeMutableBufferPointer { seen in
                let base = seen.baseAddress!
                pool.parallelFor(n) { base[$0] += 1 }
            }
            #expect(seen.allSatisfy { $0 == 1 }, "n = \(n)")
        }
    }
}
