/// Continuous batching: many sequences decode together, one `forwardBatch` per step (the int8
/// weights read once for all of them), each with its own session (KV cache), adapter stack and
/// `SequenceDecoder` (sampler chain, generator, stop strings, detokenizer). Sequences join (`add`)
/// and leave (`cancel`, or their end) between steps.
///
/// A step runs every decoding sequence's last sampled token, plus chunks of prompts still to
/// prefill — at most `chunk` tokens per sequence and `prefillBudget` over all of them, so a long
/// prompt admitted while others decode costs them a bounded step, not its whole prefill. A
/// sequence whose prompt is done samples from its logits in that same step. Each sequence gets
/// the tokens it would get run alone by `TokenGenerator` (int8: bit-identical logits, Batch.swift).
///
/// ChatGLM's prompt context attends both ways (Batch.swift, `invalidates`): its prompts run whole.
/// Beam search is not run here (`TokenGenerator` does it with its own batched forwards).
/// Not thread-safe: one thread adds, cancels and steps.
public final class BatchDecoder {
    public let model: any LanguageModel
    public let tokenizer: any Tokenizer
    /// Prompt tokens one sequence prefills per step.
    public var chunk: Int
    /// Prompt tokens all sequences prefill per step (ChatGLM's whole prompts may pass it).
    public var prefillBudget: Int

    /// What a step reports for one sequence.
    public enum Event {
        case token(id: Int32, text: String)
        case finished(GenerationResult)
        /// Its forward was refused (`ModelError`); it has left the batch.
        case failed(String)
    }

    /// Counters (tests assert on them instead of timing).
    public private(set) var steps = 0
    /// Forward items that ran part of a prompt (one per sequence per step).
    public private(set) var prefillChunks = 0

    private final class Running {
        let id: Int
        let session: ModelSession
        let adapters: LoRAStack
        var decoder: SequenceDecoder
        var pending: ArraySlice<Int32>        // prompt still to prefill
        var next: Int32?                      // sampled, not yet fed
        var prefillSeconds = 0.0
        init(id: Int, session: ModelSession, adapters: LoRAStack, decoder: SequenceDecoder, prompt: [Int32]) {
            self.id = id
            self.session = session
            self.adapters = adapters
            self.decoder = decoder
            pending = prompt[...]
        }
    }

    private var running: [Running] = []      // in order of arrival
    private var nextID = 0

    public init(model: any LanguageModel, tokenizer: any Tokenizer, chunk: Int = 128, prefillBudget: Int = 256) {
        precondition(chunk > 0 && prefillBudget > 0, "BatchDecoder: chunk and budget must be positive")
        self.model = model
        self.tokenizer = tokenizer
        self.chunk = chunk
        self.prefillBudget = prefillBudget
    }

    /// Sequences in the batch.
    public var count: Int { running.count }
    public var isEmpty: Bool { running.isEmpty }
    /// Sequences whose prompt is not all prefilled yet.
    public var prefilling: Int { running.filter { !$0.pending.isEmpty }.count }

    /// A new sequence for `prompt` under `adapters` (`LanguageModel.makeAdapterStack`; an empty
    /// stack is the base). Its session holds prompt + max_new_tokens (within the context length).
    /// Returns its id for `cancel` and the step events.
    public func add(prompt: [Int32], settings: GenerationSettings, adapters: LoRAStack) throws(GenerationError) -> Int {
        try settings.validate()
        guard settings.numBeams == 1 else { throw GenerationError("beam search does not run in a batch") }
        guard !prompt.isEmpty else { throw GenerationError("the prompt has no tokens") }
        let session = model.makeSession(capacity: min(model.contextLength, prompt.count + settings.maxNewTokens))
        guard prompt.count <= session.capacity else {
            throw GenerationError("the prompt's \(prompt.count) tokens exceed the session's capacity of \(session.capacity)")
        }
        var d = SequenceDecoder(prompt: prompt, settings: settings, tokenizer: tokenizer, capacity: session.capacity)
        d.start()
        let r = Running(id: nextID, session: session, adapters: adapters, decoder: d, prompt: prompt)
        nextID += 1
        running.append(r)
        return r.id
    }

    /// Ends sequence `id` now (before the next step); its `.finished` (reason cancelled), or nil
    /// if it is not in the batch.
    public func cancel(_ id: Int) -> Event? {
        guard let i = running.firstIndex(where: { $0.id == id }) else { return nil }
        let r = running.remove(at: i)
        return Self.closing(r, .cancelled)
    }

    /// One forward over the batch; each sequence's events of this step, in the batch's order.
    /// A sequence's last event is `.finished` or `.failed`; it has then left the batch.
    public func step() -> [(id: Int, event: Event)] {
        var out: [(id: Int, event: Event)] = []
        while !running.isEmpty {
            // what each sequence runs: its sampled token, or the next chunk of its prompt
            var items: [BatchItem] = [], who: [Running] = []
            var budget = prefillBudget
            let whole = model.family == .chatGLM
            for r in running {
                if let t = r.next {
                    items.append(BatchItem(tokens: [t], session: r.session, adapters: r.adapters))
                    who.append(r)
                } else if !r.pending.isEmpty && budget > 0 {
                    let n = whole ? r.pending.count : min(r.pending.count, chunk, budget)
                    budget -= n
                    items.append(BatchItem(tokens: Array(r.pending.prefix(n)), session: r.session, adapters: r.adapters))
                    who.append(r)
                }
            }
            let t0 = Measure.now()
            let logits: [[Float]]
            do {
                logits = try model.forwardBatch(items)
            } catch {
                // the sequence at fault leaves (all of them when none is named); no session
                // advanced: run the step again without it
                let bad = error.sequence.map { [who[$0]] } ?? who
                for r in bad {
                    running.removeAll { $0 === r }
                    out.append((r.id, .failed(error.description)))
                }
                continue
            }
            let seconds = Measure.now() - t0
            steps += 1
            for (k, r) in who.enumerated() {
                r.decoder.stats.forwards += 1
                if r.next == nil {
                    prefillChunks += 1
                    r.pending = r.pending.dropFirst(items[k].tokens.count)
                    r.prefillSeconds += seconds
                    if !r.pending.isEmpty { continue }
                    r.decoder.stats.prefillSeconds = r.prefillSeconds
                }
                let id = r.decoder.pick(logits[k])
                if case .token(let id, let text) = r.decoder.emit(id) { out.append((r.id, .token(id: id, text: text))) }
                r.next = id
                if let (reason, eos, stop) = r.decoder.ending {
                    running.removeAll { $0 === r }
                    out.append((r.id, Self.closing(r, reason, eos: eos, stop: stop)))
                }
            }
            break
        }
        return out
    }

    private static func closing(_ r: Running, _ reason: FinishReason, eos: Int32? = nil, stop: String? = nil) -> Event {
        if case .finished(let result) = r.decoder.finish(reason, eos: eos, stop: stop) { return .finished(result) }
        preconditionFailure("SequenceDecoder.finish returns .finished")
    }
}
