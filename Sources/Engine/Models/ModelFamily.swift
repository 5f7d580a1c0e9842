/// The architectures Yanyi runs, recognised from config.json (`architectures` first, then
/// `model_type`). Near relatives it does not run exactly (ChatGLM2/3, Baichuan-13B's ALiBi,
/// Baichuan2's NormHead, rope_scaling) are refused with the reason — never run with wrong output.
public enum ModelFamily: String, Sendable {
    case llama = "LlamaForCausalLM"
    case baichuan = "Baichuan-7B"
    case chatGLM = "ChatGLM-6B"

    public static func detect(_ c: ModelConfig, file: String) throws(LoadError) -> ModelFamily {
        let archs = c.architectures ?? []
        let type = c.modelType?.lowercased() ?? ""
        let named = archs.first ?? (type.isEmpty ? "(none)" : type)

        if archs.contains("LlamaForCausalLM") || type == "llama" {
            if let s = c.ropeScaling {
                throw LoadError(file, "rope_scaling (\(s.type ?? s.ropeType ?? "?")) is not supported; only plain RoPE is")
            }
            return .llama
        }
        if archs.contains(where: { $0 == "BaiChuanForCausalLM" || $0 == "BaichuanForCausalLM" }) || type == "baichuan" {
            if c.maxPositionEmbeddings == nil && c.modelMaxLength != nil {
                throw LoadError(file, "Baichuan-13B (ALiBi positions) is not supported; only Baichuan-7B (RoPE) is")
            }
            if c.vocabSize == 125_696 {
                throw LoadError(file, "Baichuan2 (NormHead lm_head, vocab 125696) is not supported; only Baichuan-7B is")
            }
            return .baichuan
        }
        if archs.contains(where: { $0 == "ChatGLMModel" || $0 == "ChatGLMForConditionalGeneration" }) || type == "chatglm" {
            if c.multiQueryGroupNum != nil || c.positionEncoding2D == false {
                throw LoadError(file, "ChatGLM2/ChatGLM3 is not supported; only ChatGLM-6B v1 (position_encoding_2d) is")
            }
            return .chatGLM
        }
        throw LoadError(file, "architecture \(named) is not supported; Yanyi runs LlamaForCausalLM, Baichuan-7B and ChatGLM-6B v1")
    }

    /// Whether a tensor is a linear layer's weight (int8 at load) rather than an embedding,
    /// norm or bias (kept float).
    public func isLinearWeight(_ name: String, shape: [Int]) -> Bool {
        guard shape.count == 2, name.hasSuffix(".weight") else { return false }
        return !(name.contains("embed_tokens") || name.contains("word_embeddings") || name.contains("norm"))
    }

    /// Tensors a checkpoint may carry that no forward pass reads.
    public func isIgnored(_ name: String) -> Bool {
        name.hasSuffix("rotary_emb.inv_freq")
    }
}
