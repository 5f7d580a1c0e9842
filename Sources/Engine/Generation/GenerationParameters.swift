import Foundation

/// What transformers' `early_stopping` allows: stop as soon as `num_beams` hypotheses are done
/// (`true`), stop when the heuristic says no running beam can beat them (`false`), or only when
/// that is certain (`"never"`). BeamHypotheses.is_done, 4.30.
public enum EarlyStopping: Sendable, Equatable, Codable {
    case yes, heuristic, never

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = b ? .yes : .heuristic
        } else if try c.decode(String.self) == "never" {
            self = .never
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected true, false or \"never\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .yes: try c.encode(true)
        case .heuristic: try c.encode(false)
        case .never: try c.encode("never")
        }
    }

    /// "true", "false" or "never" (the CLI and YAML spelling).
    public init?(_ text: String) {
        switch text.lowercased() {
        case "true", "yes", "1": self = .yes
        case "false", "no", "0": self = .heuristic
        case "never": self = .never
        default: return nil
        }
    }
}

/// One layer of decoding settings, every field optional: generation_config.json, then a persona,
/// then the user's sliders, each overriding the one before (`merged(over:)`). Field names and
/// meanings are transformers' `generate` keywords (CodingKeys), so a persona's YAML and
/// generation_config.json decode straight into it.
public struct GenerationParameters: Sendable, Equatable, Decodable {
    public var maxNewTokens: Int?
    /// Total length (prompt + new) limit, used only when maxNewTokens is unset (transformers' rule).
    public var maxLength: Int?
    public var minNewTokens: Int?
    /// Minimum total length (prompt included) before EOS is allowed.
    public var minLength: Int?
    public var doSample: Bool?
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    public var noRepeatNgramSize: Int?
    /// Yanyi's: no unit of 1–4 tokens repeats more than this many times in a row in a reply (RunGuard).
    public var maxRepeatRun: Int?
    public var numBeams: Int?
    public var lengthPenalty: Double?
    public var earlyStopping: EarlyStopping?
    /// How many finished sequences to return, best first (beams only; the n-best list).
    public var numReturnSequences: Int?
    public var eosTokenId: OneOrMany<Int>?
    public var beginSuppressTokens: [Int]?
    /// Text that ends the reply when it appears in the decoded output (stripped from it).
    public var stop: [String]?
    public var seed: UInt64?
    /// Speculative decoding by prompt lookup: up to this many draft tokens per forward (0 = off).
    /// transformers' keyword; the output does not change (see GenerationSettings.promptLookupTokens).
    public var promptLookupNumTokens: Int?

    enum CodingKeys: String, CodingKey {
        case maxNewTokens = "max_new_tokens"
        case maxLength = "max_length"
        case minNewTokens = "min_new_tokens"
        case minLength = "min_length"
        case doSample = "do_sample"
        case temperature
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case repetitionPenalty = "repetition_penalty"
        case noRepeatNgramSize = "no_repeat_ngram_size"
        case maxRepeatRun = "max_repeat_run"
        case numBeams = "num_beams"
        case lengthPenalty = "length_penalty"
        case earlyStopping = "early_stopping"
        case numReturnSequences = "num_return_sequences"
        case eosTokenId = "eos_token_id"
        case beginSuppressTokens = "begin_suppress_tokens"
        case stop
        case seed
        case promptLookupNumTokens = "prompt_lookup_num_tokens"
    }

    public init() {}

    /// `self` over `base`: every field set here wins, the rest come from `base`.
    public func merged(over base: GenerationParameters) -> GenerationParameters {
        var m = base
        if let v = maxNewTokens { m.maxNewTokens = v }
        if let v = maxLength { m.maxLength = v }
        if let v = minNewTokens { m.minNewTokens = v }
        if let v = minLength { m.minLength = v }
        if let v = doSample { m.doSample = v }
        if let v = temperature { m.temperature = v }
        if let v = topK { m.topK = v }
        if let v = topP { m.topP = v }
        if let v = minP { m.minP = v }
        if let v = repetitionPenalty { m.repetitionPenalty = v }
        if let v = noRepeatNgramSize { m.noRepeatNgramSize = v }
        if let v = maxRepeatRun { m.maxRepeatRun = v }
        if let v = numBeams { m.numBeams = v }
        if let v = lengthPenalty { m.lengthPenalty = v }
        if let v = earlyStopping { m.earlyStopping = v }
        if let v = numReturnSequences { m.numReturnSequences = v }
        if let v = eosTokenId { m.eosTokenId = v }
        if let v = beginSuppressTokens { m.beginSuppressTokens = v }
        if let v = stop { m.stop = v }
        if let v = seed { m.seed = v }
        if let v = promptLookupNumTokens { m.promptLookupNumTokens = v }
        return m
    }

    /// generation_config.json < persona < user.
    public static func layered(model: GenerationParameters, persona: GenerationParameters?,
                               user: GenerationParameters?) -> GenerationParameters {
        var p = model
        if let persona { p = persona.merged(over: p) }
        if let user { p = user.merged(over: p) }
        return p
    }

    /// The model folder's defaults: generation_config.json (every generate keyword it has), with the
    /// EOS ids of config.json or the tokenizer when it names none (what transformers falls back to).
    public static func defaults(for folder: ModelFolder) throws(LoadError) -> GenerationParameters {
        var p = try JSONFile.decodeIfPresent(GenerationParameters.self,
                                             from: joinPath(folder.path, "generation_config.json")) ?? GenerationParameters()
        if p.eosTokenId == nil {
            if let e = folder.config.eosTokenId {
                p.eosTokenId = e
            } else if let e = folder.tokenizer.specials.eos {
                p.eosTokenId = OneOrMany([Int(e)])
            }
        }
        return p
    }

    /// Concrete settings for a prompt of `promptLength` tokens: transformers' defaults for what no
    /// layer set (temperature 1, top_k 50, top_p 1, 1 beam, length_penalty 1, early_stopping false),
    /// Yanyi's 128 for max_new_tokens. Throws a one-line message for values transformers refuses.
    public func resolved(promptLength: Int) throws(GenerationError) -> GenerationSettings {
        var s = GenerationSettings()
        if let v = maxNewTokens {
            s.maxNewTokens = v
        } else if let v = maxLength {
            s.maxNewTokens = v - promptLength
        }
        s.minNewTokens = minNewTokens ?? 0
        s.minLength = minLength ?? 0
        s.doSample = doSample ?? false
        s.temperature = temperature ?? 1
        s.topK = topK ?? 50
        s.topP = topP ?? 1
        s.minP = minP ?? 0
        s.repetitionPenalty = repetitionPenalty ?? 1
        s.noRepeatNgramSize = noRepeatNgramSize ?? 0
        s.maxRepeatRun = maxRepeatRun ?? 0
        s.numBeams = numBeams ?? 1
        s.lengthPenalty = lengthPenalty ?? 1
        s.earlyStopping = earlyStopping ?? .heuristic
        s.numReturnSequences = numReturnSequences ?? 1
        s.eos = (eosTokenId?.values ?? []).map { Int32($0) }
        s.beginSuppressTokens = (beginSuppressTokens ?? []).map { Int32($0) }
        s.stopStrings = (stop ?? []).filter { !$0.isEmpty }
        s.seed = seed
        s.promptLookupTokens = promptLookupNumTokens ?? 0
        try s.validate()
        return s
    }
}

/// Resolved decoding settings: every field has a value. Build it with
/// `GenerationParameters.resolved(promptLength:)`, or directly (tests, the bench).
public struct GenerationSettings: Sendable, Equatable {
    public var maxNewTokens = 128
    public var minNewTokens = 0
    public var minLength = 0
    public var doSample = false
    public var temperature: Float = 1
    public var topK = 50
    public var topP: Float = 1
    public var minP: Float = 0
    public var repetitionPenalty: Float = 1
    public var noRepeatNgramSize = 0
    /// 0: off.
    public var maxRepeatRun = 0
    public var numBeams = 1
    public var lengthPenalty = 1.0
    public var earlyStopping = EarlyStopping.heuristic
    public var numReturnSequences = 1
    /// Ids that end a sequence (kept in its ids, as transformers keeps them).
    public var eos: [Int32] = []
    public var beginSuppressTokens: [Int32] = []
    public var stopStrings: [String] = []
    /// nil: a fresh seed from the system generator.
    public var seed: UInt64?
    /// Report each generated token's logprob and this many most likely alternatives (0–20)
    /// through `TokenGenerator.logprobs` (greedy and sampling; not beams). nil: off, at no cost.
    public var logprobs: Int?
    /// Speculative decoding (one sequence, no beams): each forward also runs up to this many draft
    /// tokens from `PromptLookup`, and each draft the sampler then picks itself saves a forward. Every
    /// token is still picked from the model's logits for it, with the same random draws, so greedy and
    /// seeded output is what plain decoding gives wherever a forward of several tokens gives each
    /// token's logits bit for bit as a forward of one (int8 where the row kernel runs them). 0: off.
    public var promptLookupTokens = 0

    public init() {}

    /// The checks transformers makes (and a few of Yanyi's: at most 8 beams).
    public func validate() throws(GenerationError) {
        func bad(_ s: String) -> GenerationError { GenerationError(s) }
        if maxNewTokens < 1 { throw bad("max_new_tokens must be at least 1 (is \(maxNewTokens))") }
        if minNewTokens < 0 || minLength < 0 { throw bad("min_new_tokens and min_length must be ≥ 0") }
        if doSample && !(temperature > 0) { throw bad("temperature must be > 0 when sampling (is \(temperature)); turn sampling off for greedy") }
        if topK < 0 { throw bad("top_k must be ≥ 0 (0 = off)") }
        if !(0...1).contains(topP) { throw bad("top_p must be in 0–1 (is \(topP))") }
        if !(0...1).contains(minP) { throw bad("min_p must be in 0–1 (is \(minP))") }
        if !(repetitionPenalty > 0) { throw bad("repetition_penalty must be > 0 (is \(repetitionPenalty))") }
        if noRepeatNgramSize < 0 { throw bad("no_repeat_ngram_size must be ≥ 0") }
        if maxRepeatRun < 0 { throw bad("max_repeat_run must be ≥ 0 (0 = off)") }
        if !(1...8).contains(numBeams) { throw bad("num_beams must be 1–8 (is \(numBeams))") }
        if numReturnSequences < 1 || numReturnSequences > numBeams {
            throw bad("num_return_sequences must be 1–num_beams (is \(numReturnSequences), beams \(numBeams))")
        }
        if let n = logprobs, !(0...20).contains(n) { throw bad("logprobs must be 0–20 alternatives (is \(n))") }
        if !(0...PromptLookup.maxTokens).contains(promptLookupTokens) {
            throw bad("prompt_lookup_num_tokens must be 0–\(PromptLookup.maxTokens) (is \(promptLookupTokens))")
        }
    }
}

/// A decoding setting out of range, or a failure while generating; one line.
public struct GenerationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
