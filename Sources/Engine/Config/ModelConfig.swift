/// config.json, the fields Yanyi reads for LLaMA, Baichuan and ChatGLM-6B (v1).
/// Field names differ per family (`num_hidden_layers` vs ChatGLM's `num_layers`); the accessors
/// below give one view. Unknown fields are ignored, as transformers does.
public struct ModelConfig: Decodable, Sendable {
    public var architectures: [String]?
    public var modelType: String?
    public var hiddenSize: Int?
    public var intermediateSize: Int?          // LLaMA / Baichuan MLP width
    public var innerHiddenSize: Int?           // ChatGLM MLP width
    public var numHiddenLayers: Int?           // LLaMA / Baichuan
    public var numLayers: Int?                 // ChatGLM
    public var numAttentionHeads: Int?
    public var numKeyValueHeads: Int?          // GQA (absent = num_attention_heads)
    public var vocabSize: Int?
    public var rmsNormEps: Double?
    public var layernormEpsilon: Double?
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var maxPositionEmbeddings: Int?
    public var maxSequenceLength: Int?         // ChatGLM
    public var modelMaxLength: Int?            // Baichuan-13B (ALiBi) writes this instead
    public var tieWordEmbeddings: Bool?
    public var positionEncoding2D: Bool?       // ChatGLM-6B v1
    public var bosTokenId: OneOrMany<Int>?
    public var eosTokenId: OneOrMany<Int>?
    public var padTokenId: Int?
    public var maskTokenId: Int?               // ChatGLM [MASK]
    public var gmaskTokenId: Int?              // ChatGLM [gMASK]
    public var torchDtype: String?
    public var hiddenAct: String?
    public var multiQueryGroupNum: Int?        // ChatGLM2/3 only; used to name what is unsupported

    public struct RopeScaling: Decodable, Sendable, Equatable {
        public var type: String?
        public var ropeType: String?
        public var factor: Double?
        enum CodingKeys: String, CodingKey {
            case type
            case ropeType = "rope_type"
            case factor
        }
    }

    enum CodingKeys: String, CodingKey {
        case architectures
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case innerHiddenSize = "inner_hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numLayers = "num_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case vocabSize = "vocab_size"
        case rmsNormEps = "rms_norm_eps"
        case layernormEpsilon = "layernorm_epsilon"
        case ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling"
        case maxPositionEmbeddings = "max_position_embeddings"
        case maxSequenceLength = "max_sequence_length"
        case modelMaxLength = "model_max_length"
        case tieWordEmbeddings = "tie_word_embeddings"
        case positionEncoding2D = "position_encoding_2d"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case maskTokenId = "mask_token_id"
        case gmaskTokenId = "gmask_token_id"
        case torchDtype = "torch_dtype"
        case hiddenAct = "hidden_act"
        case multiQueryGroupNum = "multi_query_group_num"
    }

    public static func load(_ path: String) throws(LoadError) -> ModelConfig {
        try JSONFile.decode(ModelConfig.self, from: path)
    }

    /// Layers, whichever name the family uses.
    public var layers: Int? { numHiddenLayers ?? numLayers }
    /// MLP width, whichever name the family uses (ChatGLM defaults to 4 × hidden).
    public var mlpWidth: Int? { intermediateSize ?? innerHiddenSize ?? (modelType == "chatglm" ? hiddenSize.map { 4 * $0 } : nil) }
    public var kvHeads: Int? { numKeyValueHeads ?? numAttentionHeads }
    public var contextLength: Int? { maxPositionEmbeddings ?? maxSequenceLength ?? modelMaxLength }
}

/// generation_config.json: the decoding defaults a model folder ships with.
public struct GenerationConfig: Decodable, Sendable {
    public var bosTokenId: OneOrMany<Int>?
    public var eosTokenId: OneOrMany<Int>?
    public var padTokenId: Int?
    public var doSample: Bool?
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var repetitionPenalty: Double?
    public var maxNewTokens: Int?
    public var numBeams: Int?

    enum CodingKeys: String, CodingKey {
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case doSample = "do_sample"
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case repetitionPenalty = "repetition_penalty"
        case maxNewTokens = "max_new_tokens"
        case numBeams = "num_beams"
    }
}

/// tokenizer_config.json (+ the same keys in special_tokens_map.json).
public struct TokenizerConfig: Decodable, Sendable {
    public var tokenizerClass: String?
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    public var bosToken: TokenSpec?
    public var eosToken: TokenSpec?
    public var unkToken: TokenSpec?
    public var padToken: TokenSpec?
    public var maskToken: TokenSpec?
    public var gmaskToken: TokenSpec?          // ChatGLM
    public var endToken: TokenSpec?            // ChatGLM
    public var additionalSpecialTokens: [TokenSpec]?
    public var numImageTokens: Int?            // ChatGLM-6B: 20000 pre-slim, 0 slim
    public var removeSpace: Bool?              // ChatGLM
    public var doLowerCase: Bool?              // ChatGLM
    public var modelMaxLength: Double?         // may be 1e30 in the wild
    public var cleanUpTokenizationSpaces: Bool?

    enum CodingKeys: String, CodingKey {
        case tokenizerClass = "tokenizer_class"
        case addBosToken = "add_bos_token"
        case addEosToken = "add_eos_token"
        case bosToken = "bos_token"
        case eosToken = "eos_token"
        case unkToken = "unk_token"
        case padToken = "pad_token"
        case maskToken = "mask_token"
        case gmaskToken = "gmask_token"
        case endToken = "end_token"
        case additionalSpecialTokens = "additional_special_tokens"
        case numImageTokens = "num_image_tokens"
        case removeSpace = "remove_space"
        case doLowerCase = "do_lower_case"
        case modelMaxLength = "model_max_length"
        case cleanUpTokenizationSpaces = "clean_up_tokenization_spaces"
    }

    public init() {}

    /// special_tokens_map.json fills what tokenizer_config.json leaves out (transformers' order).
    public func merged(with map: TokenizerConfig?) -> TokenizerConfig {
        guard let map else { return self }
        var m = self
        m.bosToken = bosToken ?? map.bosToken
        m.eosToken = eosToken ?? map.eosToken
        m.unkToken = unkToken ?? map.unkToken
        m.padToken = padToken ?? map.padToken
        m.maskToken = maskToken ?? map.maskToken
        m.additionalSpecialTokens = additionalSpecialTokens ?? map.additionalSpecialTokens
        return m
    }
}
