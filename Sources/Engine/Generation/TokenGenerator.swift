/// transformers `generate` for one prompt, one event at a time: greedy or sampled tokens as they
/// come, or — with beams — the best sequence once the search is over. The synchronous iterator
/// under the AsyncStream (`stream()`); the CLI and tests call `next()` directly.
///
/// The session: tokens it already holds that start the prompt are reused (only the rest is run).
/// Afterwards it holds the prompt and every generated token but the last, which was never fed
/// (beams: the prompt only); after a cancel, the same — its tokens and cache always agree.
///
/// With a `DraftModel` (or else `promptLookupTokens`), a forward also runs the tokens it guesses come
/// next; the logits each gives are kept, and while the picks follow the guesses no forward runs at all.
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
    /// Prompt lookup: guessed tokens already fed after the last picked one, and `ahead[i]`, the logits
    /// after `drafts[i]` — right for the next pick only while the picks follow the guesses.
    private var drafts: [Int32] = []
    private var ahead: [[Float]] = []
    private let lookup: PromptLookup
    private let draftModel: DraftModel?
    /// With `settings.logprobs`: one entry per generated token so far, in order (beams: none).
    public var logprobs: [TokenLogprob] { decoder.logprobs }

    /// `session`: nil for a new one sized prompt + max_new_tokens. `draft`: guesses from a smaller model
    /// sharing the tokenizer (in place of prompt lookup; sequences without beams).
    public init(model: any LanguageModel, tokenizer: any Tokenizer, prompt: [Int32],
                settings: GenerationSettings, session: ModelSession? = nil, draft: DraftModel? = nil) throws(GenerationError) {
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
        lookup = PromptLookup(maxDraft: settings.promptLookupTokens)   // step() runs only without beams
        draftModel = draft
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
            try step()
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

    /// Logits for the next pick: the kept ones when the last pick was the next guess, else a forward of
    /// the last pick and the new guesses (the guesses that were not picked are dropped from the session).
    private func step() throws(GenerationError) {
        let last = decoder.generated.last!
        if let d = drafts.first {
            if d == last {
                drafts.removeFirst()
                logits = ahead.removeFirst()
                decoder.stats.acceptedDraftTokens += 1
                return
            }
            session.truncate(to: session.count - drafts.count)
            drafts = []
            ahead = []
        }
        // a guess is worth running only if the picks it could stand for fit max_new_tokens and the session
        let room = min(decoder.maxNew - decoder.generated.count - 1, session.capacity - session.count - 1)
        let guess: [Int32]
        if let draftModel {
            let (t0, f0) = (draftModel.seconds, draftModel.forwards)
            guess = try draftModel.draft(decoder.sequence, limit: room, vocab: model.vocabSize)
            decoder.stats.draftModelSeconds += draftModel.seconds - t0
            decoder.stats.draftModelForwards += draftModel.forwards - f0
        } else {
            guess = lookup.draft(decoder.sequence, limit: room)
        }
        guard !guess.isEmpty else {
            logits = try forward([last])
            return
        }
        let rows = try forward([last] + guess, logits: .all)
        let v = rows.count / (guess.count + 1)
        logits = Array(rows[0..<v])
        ahead = (1...guess.count).map { Array(rows[($0 * v)..<(($0 + 1) * v)]) }
        drafts = guess
        decoder.stats.draftTokens += guess.count
        decoder.stats.draftSteps += 1
    }

    private func forward(_ tokens: [Int32], logits wanted: LogitsWanted = .last) throws(GenerationError) -> [Float] {
        do {
            decoder.stats.forwards += 1
            return try model.forward(tokens, session: session, logits: wanted)
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
        // guesses run ahead of the picks (and the last pick, if it was one) leave the session
        if settings.numBeams == 1 { session.truncate(to: prompt.count + max(decoder.generated.count - 1, 0)) }
        drafts = []
        ahead = []
        // beams: the tokens come out together after the search, which is the decoding time
        return decoder.finish(reason, eos: id, stop: stop, sequences: sequences,
                              decodeSeconds: settings.numBeams > 1 ? beamSeconds : nil)
    }
}
