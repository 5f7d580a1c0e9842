import Foundation

/// A Hugging Face model folder as users download it: config.json (+ generation_config.json),
/// the tokenizer files and the weights. Opening it maps the weights; it reads no tensor data.
public struct ModelFolder: Sendable {
    public let path: String
    public let config: ModelConfig
    public let generation: GenerationConfig?
    public let family: ModelFamily
    /// config.json's sizes and constants, checked (ModelDimensions): what the architecture is built from.
    public let dims: ModelDimensions
    public let checkpoint: Checkpoint
    public let tokenizer: any Tokenizer

    public static func open(_ path: String) throws(LoadError) -> ModelFolder {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LoadError(path, "no such folder")
        }
        guard isDir.boolValue else { throw LoadError(path, "not a folder (give the model folder, not a file in it)") }
        let configPath = joinPath(path, "config.json")
        let config = try ModelConfig.load(configPath)
        let family = try ModelFamily.detect(config, file: configPath)
        let dims = try ModelDimensions(config, family: family, file: configPath)
        let generation = try JSONFile.decodeIfPresent(GenerationConfig.self,
                                                      from: joinPath(path, "generation_config.json"))
        let checkpoint = try Checkpoint(folder: path)
        let tokenizer = try TokenizerLoader.load(folder: path)
        // ChatGLM's positions and prefix mask hinge on <sop> and [gMASK]: a tokenizer that numbers
        // them otherwise (say a pre-slim tokenizer_config.json, num_image_tokens 20000, beside a slim
        // config) would make every prompt look like context. Refuse it rather than run wrong.
        if let ids = dims.glm, let t = tokenizer as? ChatGLMTokenizer, t.sopID != ids.sop || t.gmaskID != ids.gmask {
            throw LoadError(joinPath(path, "tokenizer_config.json"),
                            "tokenizer gives <sop> = \(t.sopID), [gMASK] = \(t.gmaskID) but config.json says \(ids.sop) and \(ids.gmask) (num_image_tokens \(t.imageTokens) does not fit this checkpoint)")
        }
        return ModelFolder(path: path, config: config, generation: generation, family: family, dims: dims,
                           checkpoint: checkpoint, tokenizer: tokenizer)
    }

    /// Parameter counts by role, from the tensor table (no data read).
    public struct ParameterCounts: Sendable {
        public var linear = 0        // int8 at load
        public var embedding = 0     // float
        public var other = 0         // norms, biases: float
        public var total: Int { linear + embedding + other }
    }

    public var parameterCounts: ParameterCounts {
        var p = ParameterCounts()
        for name in checkpoint.names where !family.isIgnored(name) {
            guard let t = checkpoint.info(name) else { continue }
            if family.isLinearWeight(name, shape: t.shape) {
                p.linear += t.count
            } else if t.shape.count == 2 {
                p.embedding += t.count
            } else {
                p.other += t.count
            }
        }
        return p
    }

    /// Bytes resident after loading at int8: one byte per linear weight plus an fp32 scale per
    /// block of `block` weights; embeddings, norms and biases as fp32.
    public func int8Bytes(block: Int = 32) -> Int {
        let p = parameterCounts
        return p.linear + (p.linear + block - 1) / block * 4 + (p.embedding + p.other) * 4
    }

    /// [out, in] of every linear weight by the name adapters use (its tensor name without
    /// `.weight`), from the tensor table: an adapter's fit can be checked without loading weights.
    /// The output head is left out, as in LanguageModel.projectionShapes (no LoRA on lm_head).
    public var projectionShapes: [String: (rows: Int, cols: Int)] {
        var out: [String: (rows: Int, cols: Int)] = [:]
        for name in checkpoint.names where !family.isIgnored(name) {
            guard let t = checkpoint.info(name), family.isLinearWeight(name, shape: t.shape) else { continue }
            let module = String(name.dropLast(".weight".count))
            if module != "lm_head" { out[module] = (t.shape[0], t.shape[1]) }
        }
        return out
    }
}
