/// transformers `generate` for one prompt, one event at a time: greedy or sampled tokens as they
/// come, or — with beams — the best sequence once the search is over. The synchronous iterator
/// under the AsyncStream (`stream()`); the CLI and tests call `next()` directly.
///
/// The session: tokens it already holds that start the prompt are reused (only the rest is run).
/// Afterwards it holds the prompt and every generated token but the last, which was never fed
/// (beams: the prompt only); after a cancel, the same — its tokens and cache always agree.
public final class TokenGenerator: @unchecked Sendable {
    public let model: any LanguageModel
    public let tokenizer: any Tokenizer
    public let prompt: [Int32]
    public let settings: GenerationSettings
    public let session: ModelSession
    /// Set from any thread; checked before every forward.
    public let cancellation = CancellationFlag()

    private var decoder: SequenceDecoder
    private var logits: [Float] = []
    private var beamQueue: [Int32] = []                    // beams: the best sequence, still to hand out
    private var beamEnding: (FinishReason, Int32?) = (.maxNewTokens, nil)
    private var sequences: [ScoredSequence] = []
    private var started = false
    private var finished = false
    private var beamSeconds = 0.0
    /// With `settings.logprobs`: one entry per generated token so far, in order (beams: none).
    public var logprobs: [TokenLogprob] { decoder.logprobs }

    /// `session`: nil for a new one sized prompt + max_new_tokens.
    public init(model: any LanguageModel, tokenizer: any Tokenizer, prompt: [Int32],
                settings: GenerationSettings, session: ModelSession? = nil) throws(GenerationError) {
        try settings.validate()
        guard !prompt.isEmpty else { throw GenerationError("the prompt has no tokens") }
        let s = session ?? model.makeSession(capacity: min(model.contextLength, prompt.count + settings.maxNewTokens))
        guard prompt.count <= s.capacity else {
            throw GenerationError("the prompt's \(prompt.count) tokens exceed the session's capacity of \(s.capacity)")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.settings = settings
        self.session = s
        decoder = SequenceDecoder(prompt: prompt, settings: settings, tokenizer: tokenizer, capacity: s.capacity)
    }

    public func cancel() { cancellation.cancel() }

    /// The next event; nil after `.finished`.
    public func next() throws(GenerationError) -> GenerationEvent? {
        if finished { return nil }
        if !started {
            started = true
            decoder.start()
            if cancellation.isCancelled { return finish(.cancelled) }
            try prefill()
            if settings.numBeams > 1 { try runBeams() }
        } else if let (reason, id, stop) = decoder.ending {
            return finish(reason, eos: id, stop: stop)
        } else if cancellation.isCancelled {
            return finish(.cancelled)
        } else if settings.numBeams == 1 {
            logits = try forward([decoder.generated.last!])
        }
        let id: Int32
        if settings.numBeams > 1 {
            // the search is over: hand out the best sequence, then how the search ended
            guard !beamQueue.isEmpty else { return finish(beamEnding.0, eos: beamEnding.1) }
            id = beamQueue.removeFirst()
        } else {
            id = decoder.pick(logits)
        }
        return decoder.emit(id, decides: settings.numBeams == 1)
    }

    // MARK: - Steps

    private func prefill() throws(GenerationError) {
        // reuse what the session holds of the prompt; at least one token must run for logits
        let common = min(commonPrefix(session.tokens, prompt), prompt.count - 1)
        session.truncate(to: common)
        decoder.stats.reusedPromptTokens = session.count
        let tp = Measure.now()
        logits = try forward(Array(prompt[session.count...]))
        decoder.stats.prefillSeconds = Measure.now() - tp
    }

    private func forward(_ tokens: [Int32]) throws(GenerationError) -> [Float] {
        do {
            decoder.stats.forwards += 1
            return try model.forward(tokens, session: session, logits: .last)
        } catch {
            throw GenerationError(error.description)
        }
    }

    private func runBeams() throws(GenerationError) {
        var s = settings
        let maxNew = decoder.maxNew
        s.maxNewTokens = maxNew
        let search = BeamSearch(model: model, settings: s, chain: decoder.samplerChain)
        let cap = min(session.capacity, prompt.count + maxNew)
        let ts = Measure.now()
        defer { beamSeconds = Measure.now() - ts }
        let root = session, logits = logits, cancellation = cancellation
        let out = try decoder.withRNG { (rng: inout SamplerRNG) throws(GenerationError) in
            try search.run(root: root, logits: logits, capacity: cap, rng: &rng, cancelled: { cancellation.isCancelled })
        }
        decoder.stats.beamSteps = out.steps
        decoder.stats.forwards += max(out.steps - 1, 0) * settings.numBeams
        sequences = out.hypotheses.map {
            ScoredSequence(tokens: Array($0.ids[prompt.count...]) + ($0.eos.map { [$0] } ?? []),
                           score: $0.score, finishedByEOS: $0.eos != nil)
        }
        beamQueue = sequences.first?.tokens ?? []
        if out.cancelled {
            beamEnding = (.cancelled, nil)
        } else if let best = out.hypotheses.first, let e = best.eos {
            beamEnding = (.eos, e)
        } else {
            beamEnding = (maxNew < settings.maxNewTokens ? .contextFull : .maxNewTokens, nil)
        }
    }

    private func finish(_ reason: FinishReason, eos id: Int32? = nil, stop: String? = nil) -> GenerationEvent {
        finished = true
        // beams: the tokens come out together after the search, which is the decoding time
        return decoder.finish(reason, eos: id, stop: stop, sequences: sequences,
                              decodeSeconds: settings.numBeams > 1 ? beamSeconds : nil)
    }
}
