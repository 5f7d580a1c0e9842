/// transformers' LogitsProcessorList + LogitsWarper list for one `generate` call, in its order:
/// processors (repetition penalty, no-repeat n-gram, min_length, min_new_tokens, begin-suppress)
/// on every path; warpers (temperature, top-k, top-p, then min-p as 4.39 adds it) only when
/// sampling. With beams, warpers keep at least 2 tokens (min_tokens_to_keep), as there.
public struct SamplerChain: Sendable {
    public var processors: [any LogitTransform] = []
    public var warpers: [any LogitTransform] = []

    public init(processors: [any LogitTransform] = [], warpers: [any LogitTransform] = []) {
        self.processors = processors
        self.warpers = warpers
    }

    /// The chain `generate` builds for these settings and a prompt of `promptLength` tokens.
    public init(_ s: GenerationSettings, promptLength: Int) {
        if s.repetitionPenalty != 1 { processors.append(RepetitionPenalty(s.repetitionPenalty)) }
        if s.noRepeatNgramSize > 0 { processors.append(NoRepeatNGram(size: s.noRepeatNgramSize)) }
        if s.maxRepeatRun > 0 { processors.append(RunGuard(maxRun: s.maxRepeatRun, start: promptLength)) }
        if s.minLength > 0 && !s.eos.isEmpty { processors.append(SuppressEOSUntil(length: s.minLength, eos: s.eos)) }
        if s.minNewTokens > 0 && !s.eos.isEmpty {
            processors.append(SuppressEOSUntil(length: promptLength + s.minNewTokens, eos: s.eos))
        }
        if !s.beginSuppressTokens.isEmpty {
            processors.append(SuppressAtBegin(tokens: s.beginSuppressTokens, beginIndex: promptLength))
        }
        guard s.doSample else { return }
        let keep = s.numBeams > 1 ? 2 : 1
        if s.temperature != 1 { warpers.append(Temperature(s.temperature)) }
        if s.topK != 0 { warpers.append(TopK(s.topK, minTokensToKeep: keep)) }
        if s.topP < 1 { warpers.append(TopP(s.topP, minTokensToKeep: keep)) }
        if s.minP > 0 { warpers.append(MinP(s.minP, minTokensToKeep: keep)) }
    }

    public func process(_ scores: inout [Float], ids: [Int32]) {
        for t in processors { t.apply(&scores, ids: ids) }
    }

    public func warp(_ scores: inout [Float], ids: [Int32]) {
        for t in warpers { t.apply(&scores, ids: ids) }
    }

    /// Greedy or one sampled token for the next position of `ids`, from raw logits.
    public func pick(_ logits: [Float], ids: [Int32], sample: Bool, rng: inout SamplerRNG) -> Int32 {
        var scores = logits
        process(&scores, ids: ids)
        return pick(processed: scores, ids: ids, sample: sample, rng: &rng)
    }

    /// `pick` after the processors: `scores` are `process(logits)` (a caller that also wants
    /// the processed distribution, for logprobs, runs the processors once).
    public func pick(processed scores: [Float], ids: [Int32], sample: Bool, rng: inout SamplerRNG) -> Int32 {
        guard sample else { return TokenPicker.argmax(scores) }
        var warped = scores
        warp(&warped, ids: ids)
        return TokenPicker.sample(warped, rng: &rng)
    }
}
