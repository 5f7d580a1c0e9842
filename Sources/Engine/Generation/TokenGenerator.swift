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

    private let chain: SamplerChain
    private var rng: SamplerRNG
    private let eos: Set<Int32>
    private let maxNew: Int                 // max_new_tokens, less if the session cannot hold them
    private var detokenizer: StreamingDetokenizer
    private var stops: StopStringMatcher
    private var ids: [Int32]                // prompt + generated
    private var generated: [Int32] = []
    private var logits: [Float] = []
    private var ending: (FinishReason, Int32?, String?)?   // set by the token that ends the reply
    private var beamQueue: [Int32] = []                    // beams: the best sequence, still to hand out
    private var beamEnding: (FinishReason, Int32?) = (.maxNewTokens, nil)
    private var sequences: [ScoredSequence] = []
    private var started = false
    private var finished = false
    private var stats = GenerationStats()
    /// With `settings.logprobs`: one entry per generated token so far, in order (beams: none).
    public private(set) var logprobs: [TokenLogprob] = []
    private var t0 = 0.0, firstTokenAt = 0.0, lastTokenAt = 0.0, beamSeconds = 0.0

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
        chain = SamplerChain(settings, promptLength: prompt.count)
        rng = settings.seed.map { SamplerRNG(seed: $0) } ?? SamplerRNG()
        eos = Set(settings.eos)
        // n generated tokens need prompt + n - 1 positions (the last is never fed)
        maxNew = min(settings.maxNewTokens, s.capacity - prompt.count + 1)
        detokenizer = tokenizer.makeStreamingDecoder()
        stops = StopStringMatcher(settings.stopStrings)
        ids = prompt
        stats.promptTokens = prompt.count
    }

    public func cancel() { cancellation.cancel() }

    /// The next event; nil after `.finished`.
    public func next() throws(GenerationError) -> GenerationEvent? {
        if finished { return nil }
        if !started {
            started = true
            t0 = Measure.now()
            if cancellation.isCancelled { return finish(.cancelled) }
            try prefill()
            if settings.numBeams > 1 { try runBeams() }
        } else if let (reason, id, stop) = ending {
            return finish(reason, eos: id, stop: stop)
        } else if cancellation.isCancelled {
            return finish(.cancelled)
        } else if settings.numBeams == 1 {
            logits = try forward([generated.last!])
        }
        let id: Int32
        if settings.numBeams > 1 {
            // the search is over: hand out the best sequence, then how the search ended
            guard !beamQueue.isEmpty else { return finish(beamEnding.0, eos: beamEnding.1) }
            id = beamQueue.removeFirst()
        } else if let n = settings.logprobs {
            var scores = logits
            chain.process(&scores, ids: ids)
            id = chain.pick(processed: scores, ids: ids, sample: settings.doSample, rng: &rng)
            logprobs.append(TokenLogprob(scores: scores, chosen: id, top: n))
        } else {
            id = chain.pick(logits, ids: ids, sample: settings.doSample, rng: &rng)
        }
        return emit(id)
    }

    // MARK: - Steps

    private func prefill() throws(GenerationError) {
        // reuse what the session holds of the prompt; at least one token must run for logits
        let common = min(commonPrefix(session.tokens, prompt), prompt.count - 1)
        session.truncate(to: common)
        stats.reusedPromptTokens = session.count
        let tp = Measure.now()
        logits = try forward(Array(prompt[session.count...]))
        stats.prefillSeconds = Measure.now() - tp
    }

    private func forward(_ tokens: [Int32]) throws(GenerationError) -> [Float] {
        do {
            stats.forwards += 1
            return try model.forward(tokens, session: session, logits: .last)
        } catch {
            throw GenerationError(error.description)
        }
    }

    private func runBeams() throws(GenerationError) {
        var s = settings
        s.maxNewTokens = maxNew
        let search = BeamSearch(model: model, settings: s, chain: chain)
        let cap = min(session.capacity, prompt.count + maxNew)
        let ts = Measure.now()
        defer { beamSeconds = Measure.now() - ts }
        let out = try search.run(root: session, logits: logits, capacity: cap, rng: &rng,
                                 cancelled: { cancellation.isCancelled })
        stats.beamSteps = out.steps
        stats.forwards += max(out.steps - 1, 0) * settings.numBeams
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

    /// Records `id` and returns its event; decides whether the sequence ends with it.
    private func emit(_ id: Int32) -> GenerationEvent {
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
            if settings.numBeams == 1 { ending = (.eos, id, nil) }
        } else {
            let (shown, stop) = stops.push(detokenizer.push(id))
            text = shown
            if let stop { ending = (.stopString, nil, stop) }
        }
        if settings.numBeams == 1 && ending == nil && generated.count >= maxNew {
            ending = (maxNew < settings.maxNewTokens ? .contextFull : .maxNewTokens, nil, nil)
        }
        return .token(id: id, text: text)
    }

    private func finish(_ reason: FinishReason, eos id: Int32? = nil, stop: String? = nil) -> GenerationEvent {
        finished = true
        var rest = ""
        if reason != .stopString { rest = stops.push(detokenizer.flush()).text + stops.flush() }
        stats.generatedTokens = generated.count
        // beams: the tokens come out together after the search, which is the decoding time
        stats.decodeSeconds = settings.numBeams > 1 ? beamSeconds : generated.isEmpty ? 0 : lastTokenAt - firstTokenAt
        return .finished(GenerationResult(reason: reason, eos: id, stopString: stop, tokens: generated,
                                          text: stops.emitted, remainingText: rest, sequences: sequences,
                                          stats: stats))
    }
}
