import Foundation

/// What a generation yields, in order: one `.token` per generated id (EOS included, with empty
/// text), then one `.finished`.
public enum GenerationEvent: Sendable {
    /// A generated id and the text it completes (possibly empty: part of a character, a held-back
    /// possible stop string, or an EOS).
    case token(id: Int32, text: String)
    case finished(GenerationResult)
}

public enum FinishReason: String, Sendable, Equatable {
    case eos
    case stopString = "stop string"
    case maxNewTokens = "max new tokens"
    /// The session's capacity was reached before max_new_tokens.
    case contextFull = "context full"
    case cancelled
}

/// One finished sequence of a beam search (n-best list), new tokens only.
public struct ScoredSequence: Sendable, Equatable {
    /// Generated ids, with the EOS that finished it, if any (transformers writes eos_token_id[0] there).
    public var tokens: [Int32]
    /// Σ log-probs / (prompt + generated length)^length_penalty, as transformers' sequences_scores.
    public var score: Double
    public var finishedByEOS: Bool
}

public struct GenerationStats: Sendable, Equatable {
    public var promptTokens = 0
    /// Prompt tokens the session already held (not run again).
    public var reusedPromptTokens = 0
    public var prefillSeconds = 0.0
    /// From the start of generation to the first token (prefill included; for beams, the search).
    public var timeToFirstToken = 0.0
    public var generatedTokens = 0
    /// From the first token to the last (beams: the search after the prefill).
    public var decodeSeconds = 0.0
    /// Beam search: steps run (one batched forward each), and the beam tokens they ran (steps × beams,
    /// less the first step's).
    public var beamSteps = 0
    public var forwards = 0
    /// Prompt lookup or a draft model: draft tokens run, and those the sampler then picked (each one a
    /// forward saved).
    public var draftTokens = 0
    public var acceptedDraftTokens = 0
    /// Forwards that ran guesses (each costs more than a forward of one token).
    public var draftSteps = 0
    /// A draft model's forwards, and their seconds (part of the decoding time).
    public var draftModelForwards = 0
    public var draftModelSeconds = 0.0

    public init() {}

    /// Generated tokens after the first, per second of decoding (0 with fewer than two).
    public var tokensPerSecond: Double {
        generatedTokens > 1 && decodeSeconds > 0 ? Double(generatedTokens - 1) / decodeSeconds : 0
    }
}

public struct GenerationResult: Sendable {
    public var reason: FinishReason
    /// The EOS id or stop string that ended it.
    public var eos: Int32?
    public var stopString: String?
    /// Generated ids as transformers returns them (new tokens only, a final EOS kept).
    public var tokens: [Int32]
    /// The reply text: every token decoded, EOS and a stop string (and what follows it) left out.
    public var text: String
    /// Text not yet delivered in `.token` events (held back for a possible stop string or an
    /// unfinished character); a streaming reader appends it.
    public var remainingText: String
    /// Beam search: the n-best list, best first (`tokens` is its first). Empty otherwise.
    public var sequences: [ScoredSequence]
    public var stats: GenerationStats
}

/// A flag one thread sets and another polls (the generator checks it before every token).
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    public init() {}

    public func cancel() { lock.withLock { value = true } }
    public var isCancelled: Bool { lock.withLock { value } }
}
