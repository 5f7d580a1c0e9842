/// What one sequence's decoding keeps between forwards, whoever runs them: its sampler chain and
/// random generator, its ids so far, the detokenizer and stop-string matcher that turn ids into
/// text, when and why it ends, its stats. `TokenGenerator` (one sequence, its own forwards) and
/// `BatchDecoder` (many sequences, one forward per step) both decode through it, so a request gives
/// the same tokens — greedy, or sampled with a seed — whichever runs it, given the same logits.
public struct SequenceDecoder {
    public let settings: GenerationSettings
    public let promptLength: Int
    /// max_new_tokens, less if the session cannot hold them.
    public let maxNew: Int
    public private(set) var generated: [Int32] = []
    /// Set by the token that ends the reply (EOS, a stop string, the last allowed token).
    public private(set) var ending: (reason: FinishReason, eos: Int32?, stop: String?)?
    var stats = GenerationStats()

    private let chain: SamplerChain
    private var rng: SamplerRNG
    private let eos: Set<Int32>
    private var detokenizer: StreamingDetokenizer
    private var stops: StopStringMatcher
    private var ids: [Int32]                // prompt + generated
    private var t0 = 0.0, firstTokenAt = 0.0, lastTokenAt = 0.0

    /// `capacity`: positions the sequence's session holds (n generated tokens need prompt + n - 1).
    public init(prompt: [Int32], settings: GenerationSettings, tokenizer: any Tokenizer, capacity: Int) {
        self.settings = settings
        promptLength = prompt.count
        chain = SamplerChain(settings, promptLength: prompt.count)
        rng = settings.seed.map { SamplerRNG(seed: $0) } ?? SamplerRNG()
        eos = Set(settings.eos)
        maxNew = min(settings.maxNewTokens, capacity - prompt.count + 1)
        detokenizer = tokenizer.makeStreamingDecoder()
        stops = StopStringMatcher(settings.stopStrings)
        ids = prompt
        stats.promptTokens = prompt.count
    }

    /// Prompt and generated ids so far.
    public var sequence: [Int32] { ids }

    /// The clock starts (time to first token counts from here).
    public mutating func start() { t0 = Measure.now() }

    /// Greedy or sampled next id from raw logits, through the chain and this sequence's generator.
    /// With `settings.logprobs`, the token's log-probability (and the top alternatives) after the
    /// processors, before the warpers, is logged in `logprobs`.
    public mutating func pick(_ logits: [Float]) -> Int32 {
        guard let n = settings.logprobs else { return chain.pick(logits, ids: ids, sample: settings.doSample, rng: &rng) }
        var scores = logits
        chain.process(&scores, ids: ids)
        let id = chain.pick(processed: scores, ids: ids, sample: settings.doSample, rng: &rng)
        logprobs.append(TokenLogprob(scores: scores, chosen: id, top: n))
        return id
    }

    /// One entry per token picked with `settings.logprobs` set, in order.
    public private(set) var logprobs: [TokenLogprob] = []

    /// Beam search draws from the same generator.
    mutating func withRNG<T>(_ body: (inout SamplerRNG) throws(GenerationError) -> T) throws(GenerationError) -> T {
        try body(&rng)
    }

    var samplerChain: SamplerChain { chain }

    /// Records `id` and returns its event; decides whether the sequence ends with it (`decides`
    /// false: beams, whose end the search decided).
    public mutating func emit(_ id: Int32, decides: Bool = true) -> GenerationEvent {
        let now = Measure.now()
        if generated.isEmpty {
            firstTokenAt = now
            stats.timeToFirstToken = now - t0
        }
        lastTokenAt = now
        generated.append(id)
        ids.append(id)
        var text = ""
        if eos.contains(id) {
            if decides { ending = (.eos, id, nil) }
        } else {
            let (shown, stop) = stops.push(detokenizer.push(id))
            text = shown
            if let stop { ending = (.stopString, nil, stop) }
        }
        if decides && ending == nil && generated.count >= maxNew {
            ending = (maxNew < settings.maxNewTokens ? .contextFull : .maxNewTokens, nil, nil)
        }
        return .token(id: id, text: text)
    }

    /// The closing event. `decodeSeconds`: nil for first token to last.
    public mutating func finish(_ reason: FinishReason, eos id: Int32? = nil, stop: String? = nil,
                                sequences: [ScoredSequence] = [], decodeSeconds: Double? = nil) -> GenerationEvent {
        var rest = ""
        if reason != .stopString { rest = stops.push(detokenizer.flush()).text + stops.flush() }
        stats.generatedTokens = generated.count
        stats.decodeSeconds = decodeSeconds ?? (generated.isEmpty ? 0 : lastTokenAt - firstTokenAt)
        return .finished(GenerationResult(reason: reason, eos: id, stopString: stop, tokens: generated,
                                          text: stops.emitted, remainingText: rest, sequences: sequences,
                                          stats: stats))
    }
}
