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
    /// One forward over several sequences (a decode step of every beam, or of every stream a server
    /// runs): each item's tokens after what its session holds, under its own adapter set (nil: the
    /// active `lora`). Returns each item's logits [vocab] of its last token, in the items' order.
    /// The weights are read once for all of them; each result is what `forward(…, logits: .last)`
    /// of that item alone gives (Batch.swift says where bit for bit). Sessions must be distinct.
    /// Sequences may join or leave between calls: nothing is kept between them but the sessions.
    /// Throws before running anything for input `forward` would refuse (`ModelError.sequence` names
    /// the item); when logits come out non-finite no session advances.
    func forwardBatch(_ items: [BatchItem]) throws(ModelError) -> [[Float]]
    /// The active LoRA adapters (none by default); the base weights are never changed.
    var lora: LoRAStack { get }
    /// [out, in] of every projection, by the name adapters use (checkpoint prefix).
    var projectionShapes: [String: (rows: Int, cols: Int)] { get }
}

extension LanguageModel {
    /// For a model that is not a decoder of its own (a wrapper, a test double): each item through
    /// `forward` in turn, under the active adapters. The architectures batch for real (Forward.swift).
    public func forwardBatch(_ items: [BatchItem]) throws(ModelError) -> [[Float]] {
        var out: [[Float]] = []
        for (i, item) in items.enumerated() {
            guard item.adapters == nil else { throw ModelError("this model runs no per-sequence adapter sets", sequence: i) }
            out.append(try forward(item.tokens, session: item.session, logits: .last))
        }
        return out
    }

    /// Activates `list` (adapter, multiplier 0–2) after checking each fits this base. Sessions
    /// built under another set re-prefill on their next forward.
    public func setAdapters(_ list: [(adapter: LoRAAdapter, multiplier: Float)]) throws(LoadError) {
        for (a, m) in list {
            guard (0...2).contains(m) else { throw LoadError(a.path, "multiplier \(m) is outside 0–2") }
            try a.check(against: projectionShapes)
        }
        lora.set(list)
    }

    /// An adapter set of its own for `BatchItem.adapters` (a server request's, a sequence's), after
    /// checking each adapter fits this base; the model's active set is not touched. Stacks holding
    /// the same adapters at the same multipliers share a signature, so their rows group together.
    public func makeAdapterStack(_ list: [(adapter: LoRAAdapter, multiplier: Float)]) throws(LoadError) -> LoRAStack {
        for (a, m) in list {
            guard (0...2).contains(m) else { throw LoadError(a.path, "multiplier \(m) is outside 0–2") }
            try a.check(against: projectionShapes)
        }
        let stack = LoRAStack()
        stack.set(list)
        return stack
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
    /// In a batched forward, the item at fault (its index in the call's items); nil otherwise.
    public let sequence: Int?
    public init(_ description: String, sequence: Int? = nil) {
        self.description = description
        self.sequence = sequence
    }
}
