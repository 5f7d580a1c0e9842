/// The sizes and constants an architecture is built from, read from config.json and checked once,
/// when the folder opens: `yanyi inspect` and loading see the same values and refuse the same
/// configs, each with one line naming config.json and the key. A config that passes cannot make
/// the forward pass divide by zero, take the root of a negative number or index outside the vocabulary.
public struct ModelDimensions: Sendable, Equatable {
    public var hidden: Int          // hidden_size
    public var layers: Int          // num_hidden_layers (ChatGLM: num_layers)
    public var heads: Int           // num_attention_heads
    public var kvHeads: Int         // num_key_value_heads (absent: = heads; ChatGLM-6B has no GQA)
    public var mlp: Int             // intermediate_size (ChatGLM: inner_hidden_size, default 4 × hidden)
    public var vocab: Int           // vocab_size
    public var context: Int         // max_position_embeddings (ChatGLM: max_sequence_length), default 2048
    public var normEps: Double      // rms_norm_eps (default 1e-6) or ChatGLM's layernorm_epsilon (1e-5)
    public var ropeTheta: Double    // rope_theta (default 10000; ChatGLM-6B's is fixed at 10000)
    /// ChatGLM's <sop>, [MASK], [gMASK] (bos_token_id, mask_token_id, gmask_token_id): they shape
    /// positions and the attention mask. Nil for the other families.
    public var glm: GLMIds?

    public struct GLMIds: Sendable, Equatable {
        public var sop: Int32, mask: Int32, gmask: Int32
    }

    public var headDim: Int { hidden / heads }
    public var kvDim: Int { kvHeads * headDim }

    /// Longest context Yanyi accepts from a config (16 Mi positions): beyond it a KV cache could
    /// not be allocated anyway, and such a number is a broken config, not a model.
    public static let maxContext = 1 << 24

    /// Reads and checks `c` for `family`; `file` is the config's path as the user gave it.
    public init(_ c: ModelConfig, family: ModelFamily, file: String) throws(LoadError) {
        func bad(_ key: String, _ what: String) -> LoadError { LoadError(file, "\(key) \(what)") }
        func size(_ v: Int?, _ key: String, default d: Int? = nil) throws(LoadError) -> Int {
            guard let v = v ?? d else { throw bad(key, "is missing") }
            guard v > 0 else { throw bad(key, "is \(v); it must be a positive integer") }
            return v
        }
        /// A positive, finite number that stays positive and finite in fp32 (the forward's width).
        func positive(_ v: Double?, _ key: String, default d: Double) throws(LoadError) -> Double {
            let v = v ?? d
            guard v > 0, Float(v) > 0, Float(v).isFinite else {
                throw bad(key, "is \(v); it must be a positive finite number (fp32)")
            }
            return v
        }
        let glm = family == .chatGLM
        let layersKey = glm ? "num_layers" : "num_hidden_layers"
        hidden = try size(c.hiddenSize, "hidden_size")
        layers = try size(c.layers, layersKey)
        heads = try size(c.numAttentionHeads, "num_attention_heads")
        kvHeads = try glm ? heads : size(c.numKeyValueHeads, "num_key_value_heads", default: heads)
        mlp = try glm ? size(c.innerHiddenSize, "inner_hidden_size", default: 4 * hidden)
                      : size(c.intermediateSize, "intermediate_size")
        vocab = try size(c.vocabSize, "vocab_size")
        guard vocab <= Int(Int32.max) else { throw bad("vocab_size", "is \(vocab); token ids are 32-bit") }
        let contextKey = glm ? "max_sequence_length" : c.maxPositionEmbeddings == nil && c.modelMaxLength != nil ? "model_max_length" : "max_position_embeddings"
        context = try size(glm ? c.maxSequenceLength : c.contextLength, contextKey, default: 2048)
        guard context <= Self.maxContext else { throw bad(contextKey, "is \(context); Yanyi accepts at most \(Self.maxContext)") }
        normEps = try glm ? positive(c.layernormEpsilon, "layernorm_epsilon", default: 1e-5)
                          : positive(c.rmsNormEps, "rms_norm_eps", default: 1e-6)
        ropeTheta = try glm ? 10000 : positive(c.ropeTheta, "rope_theta", default: 10000)

        guard hidden % heads == 0 else {
            throw bad("num_attention_heads", "\(heads) does not divide hidden_size \(hidden)")
        }
        guard heads % kvHeads == 0 else {
            throw bad("num_key_value_heads", "\(kvHeads) does not divide num_attention_heads \(heads)")
        }
        // Rotary turns pairs: rotate-half needs an even head_dim; ChatGLM's 2-D rotary two even halves.
        let multiple = glm ? 4 : 2
        guard headDim % multiple == 0 else {
            throw bad("hidden_size", "\(hidden) / \(heads) heads = head_dim \(headDim), which \(glm ? "2-D rotary" : "rotary") needs to be a multiple of \(multiple)")
        }

        // Special ids index the embedding: inside the vocabulary. pad_token_id -1 means none
        // (2023 LLaMA conversions write it).
        func inVocab(_ id: Int, _ key: String) throws(LoadError) {
            guard (0..<vocab).contains(id) else { throw bad(key, "is \(id), outside the vocabulary (vocab_size \(vocab))") }
        }
        for id in c.bosTokenId?.values ?? [] { try inVocab(id, "bos_token_id") }
        for id in c.eosTokenId?.values ?? [] { try inVocab(id, "eos_token_id") }
        if let p = c.padTokenId, p != -1 { try inVocab(p, "pad_token_id") }
        if let m = c.maskTokenId { try inVocab(m, "mask_token_id") }
        if let g = c.gmaskTokenId { try inVocab(g, "gmask_token_id") }
        if glm {
            guard let sop = c.bosTokenId?.values.first, let mask = c.maskTokenId, let gmask = c.gmaskTokenId else {
                throw LoadError(file, "ChatGLM config needs bos_token_id (<sop>), mask_token_id and gmask_token_id")
            }
            guard Set([sop, mask, gmask]).count == 3 else {
                throw LoadError(file, "bos_token_id (<sop>) \(sop), mask_token_id \(mask) and gmask_token_id \(gmask) must differ")
            }
            self.glm = GLMIds(sop: Int32(sop), mask: Int32(mask), gmask: Int32(gmask))
        } else {
            self.glm = nil
        }
    }
}
