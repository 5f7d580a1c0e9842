/// Baichuan-7B (`BaiChuanForCausalLM` / `BaichuanForCausalLM`): LLaMA's block with q, k and v
/// packed in one `W_pack` [3·hidden, hidden] whose rows are Q, then K, then V (contiguous blocks),
/// RoPE rotate-half over all of head_dim, theta 10000, untied lm_head, no biases.
enum Baichuan {
    static func load(_ m: ModelFolder, _ w: WeightLoader, pool: ThreadPool) throws(LoadError) -> any LanguageModel {
        try LlamaModel.load(m, w, pool: pool, fusedQKV: "W_pack")
    }
}
