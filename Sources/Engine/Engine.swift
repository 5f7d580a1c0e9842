// Engine: checkpoints, configs, tokenizers, int8 quantization, forward passes, LoRA, sampling.
// Knows nothing of personas, chat roles or terminals.
public enum Engine {
    public static let version = "0.1.0"
}
