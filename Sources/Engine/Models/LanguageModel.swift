/// What every architecture offers the layers above: feed tokens into a session (its KV cache and
/// the tokens so far), get logits back. Weights are shared and read-only; a session is one sequence.
public protocol LanguageModel: AnyObject, Sendable {
    var family: ModelFamily { get }
    /// Rows of the output head (= logits per position).
    var vocabSize: Int { get }
    /// Longest sequence the positions support (config.json).
    var contextLength: Int { get }
    var precision: Precision { get }
    /// Bytes of weights held in memory (quantized linears + float embeddings, norms, biases).
    var weightBytes: Int { get }
    /// Bytes of weights one decoded token streams from memory: all but the embedding table, whose
    /// rows are looked up (what bounds decode speed).
    var bytesPerToken: Int { get }
    /// A new empty sequence whose KV cache holds `capacity` tokens (default: the context length).
    func makeSession(capacity: Int?) -> ModelSession
    /// Runs `tokens` after what the session holds; returns logits [n, vocab] (`.all`) or [vocab] (`.last`).
    func forward(_ tokens: [Int32], session: ModelSession, logits: LogitsWanted) throws(ModelError) -> [Float]
    /// The active LoRA adapters (none by default); the base weights are never changed.
    var lora: LoRAStack { get }
    /// [out, in] of every projection, by the name adapters use (checkpoint prefix).
    var projectionShapes: [String: (rows: Int, cols: Int)] { get }
}

extension LanguageModel {
    /// Activates `list` (adapter, multiplier 0–2) after checking each fits this base. Sessions
    /// built under another set re-prefill on their next forward.
    public func setAdapters(_ list: [(adapter: LoRAAdapter, multiplier: Float)]) throws(LoadError) {
        for (a, m) in list {
            guard (0...2).contains(m) else { throw LoadError(a.path, "multiplier \(m) is outside 0–2") }
            try a.check(against: projectionShapes)
        }
        lora.set(list)
    }
}

public enum LogitsWanted: Sendable { case last, all }

public enum Precision: String, Sendable, CaseIterable {
    case int8
    case f32

    /// The KV cache each path keeps: binary16 beside int8 weights, fp32 for verification.
    public var kvCache: KVPrecision { self == .int8 ? .f16 : .f32 }
}

/// Failures while running (not loading) a model.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
