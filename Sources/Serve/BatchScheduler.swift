import Chat
import Engine
import Foundation

/// Continuous batching (issue 17, item 2): one worker thread per base runs up to `maxBatch`
/// generations together through the engine's `BatchDecoder` — one forward per step for every
/// running sequence, each with its own KV cache and adapter stack, long prompts prefilled in
/// chunks between decode steps. Jobs join between steps (prepared on the worker, as
/// `SerialScheduler` does) and leave when they end or are cancelled: a cancelled job is dropped
/// before the next step. More than `maxBatch` wait in the queue; past `maxWaiting` they get 429.
///
/// What does not batch runs alone on the same worker, the batch paused meanwhile: engines that are
/// not `BatchingEngine`s (the canned one) and beam search (num_beams > 1).
public final class BatchScheduler: GenerationScheduler, @unchecked Sendable {
    public let host: any ModelHost
    /// Jobs that may wait per base (running ones not counted).
    public let maxWaiting: Int
    /// Sequences that run together per base.
    public let maxBatch: Int
    /// Prompt tokens per sequence per step, and over all sequences per step.
    public let chunk: Int, prefillBudget: Int
    /// Called when the number of waiting jobs changes (metrics).
    public var onQueueChange: (@Sendable (Int) -> Void)?
    /// Called on a worker after each step with its step count (tests hold the worker between steps).
    var afterStep: (@Sendable (Int) -> Void)?
    /// Called on a worker after each step: the sequences it ran, and those still running (metrics).
    public var onStep: (@Sendable (_ ran: Int, _ running: Int) -> Void)?

    private let workers = EngineLanes<Worker>()

    public init(host: any ModelHost, maxWaiting: Int = 64, maxBatch: Int = 8, chunk: Int = 128, prefillBudget: Int = 256) {
        precondition(maxBatch > 0 && chunk > 0 && prefillBudget > 0, "BatchScheduler: limits must be positive")
        self.host = host
        self.maxWaiting = maxWaiting
        self.maxBatch = maxBatch
        self.chunk = chunk
        self.prefillBudget = prefillBudget
    }

    public func submit(_ jobs: [GenerationJob]) throws(APIError) {
        try workers.submit(jobs, limit: maxWaiting) { Worker(base: $0, scheduler: self) }
        queueChanged()
    }

    public func cancel(_ job: GenerationJob) { workers.cancel(job) }

    public var waiting: Int { workers.waiting }

    public var loaded: [String] { workers.loaded }

    /// Steps run and prompt chunks prefilled so far, over every base (tests assert on these).
    public var counters: (steps: Int, prefillChunks: Int) {
        workers.all.reduce((0, 0)) { sum, w in
            let c = w.counters
            return (sum.0 + c.steps, sum.1 + c.prefillChunks)
        }
    }

    public func shutdown() { workers.shutdown() }

    fileprivate func queueChanged() { onQueueChange?(waiting) }

    /// A base's thread, its queue, its engine (loaded by the first job) and its batch.
    final class Worker: EngineLane, @unchecked Sendable {
        let maxBatch: Int, chunk: Int, prefillBudget: Int
        let afterStep: (@Sendable (Int) -> Void)?
        let onStep: (@Sendable (Int, Int) -> Void)?
        // guarded by cond
        private var stepCount = 0, chunkCount = 0
        // the worker thread's own
        private var decoder: BatchDecoder?
        private var active: [Int: Sequence] = [:]

        struct Sequence {
            let job: GenerationJob
            let prepared: PreparedGeneration
            var text = ""
        }

        init(base: String, scheduler: BatchScheduler) {
            maxBatch = scheduler.maxBatch
            chunk = scheduler.chunk
            prefillBudget = scheduler.prefillBudget
            afterStep = scheduler.afterStep
            onStep = scheduler.onStep
            super.init(base: base, host: scheduler.host, changed: { [weak scheduler] in scheduler?.queueChanged() })
            start()
        }

        var counters: (steps: Int, prefillChunks: Int) { cond.withLock { (stepCount, chunkCount) } }

        override func loop() {
            while true {
                cond.lock()
                while queue.isEmpty && active.isEmpty && !stopping { cond.wait() }
                if stopping {
                    cond.unlock()
                    // what runs ends as cancelled
                    for (id, s) in active {
                        s.job.cancelled.cancel()
                        if let e = decoder?.cancel(id) { deliver(id, e) }
                    }
                    return
                }
                var admitted: [GenerationJob] = []
                while active.count + admitted.count < maxBatch && !queue.isEmpty { admitted.append(queue.removeFirst()) }
                cond.unlock()
                if !admitted.isEmpty { changed() }
                for job in admitted { admit(job) }
                // cancelled sequences leave before the step
                for (id, s) in active where s.job.cancelled.isCancelled {
                    if let e = decoder?.cancel(id) { deliver(id, e) }
                }
                if let d = decoder, !d.isEmpty {
                    let ran = active.count
                    for (id, e) in d.step() { deliver(id, e) }
                    onStep?(ran, active.count)
                    cond.withLock {
                        stepCount = d.steps
                        chunkCount = d.prefillChunks
                    }
                    afterStep?(d.steps)
                }
            }
        }

        /// Prepares `job` and adds it to the batch, or runs it alone (not batchable), or ends it.
        private func admit(_ job: GenerationJob) {
            if job.cancelled.isCancelled {
                job.events.push(.finished(EngineReply(text: "", reason: .cancelled)))
                job.events.close()
                return
            }
            let e: any ReplyEngine
            let prepared: PreparedGeneration
            var stack: LoRAStack?
            do throws(APIError) {
                e = try loadedEngine()
                try checkAdapters(job, on: e)
                if let b = e as? any BatchingEngine {
                    do { stack = try b.adapterStack(job.adapters) } catch {
                        throw APIError.invalid("The adapter set could not be applied: \(error.description)", param: "adapters",
                                               code: "adapter_mismatch")
                    }
                } else {
                    try setAdapters(job, on: e)
                }
                prepared = try job.prepare(e)
            } catch {
                job.events.push(.failed(error))
                job.events.close()
                return
            }
            job.events.push(.started(prepared, queued: Measure.now() - job.submitted))
            let request = prepared.request
            let settings: GenerationSettings
            do throws(GenerationError) {
                settings = try request.parameters.resolved(promptLength: request.promptIDs.count)
            } catch {
                finish(job, prepared, EngineReply(text: "", reason: nil, error: ChatError("", error.description)))
                return
            }
            // Beam search and logprobs run through the engine's own generate (the batch waits).
            guard let b = e as? any BatchingEngine, let stack, settings.numBeams == 1, request.logprobs == nil else {
                runAlone(job, prepared, on: e)
                return
            }
            let d = decoder ?? b.makeBatchDecoder()
            d.chunk = chunk
            d.prefillBudget = prefillBudget
            decoder = d
            do throws(GenerationError) {
                let id = try d.add(prompt: request.promptIDs, settings: settings, adapters: stack)
                active[id] = Sequence(job: job, prepared: prepared)
            } catch {
                finish(job, prepared, EngineReply(text: "", reason: nil, error: ChatError("", error.description)))
            }
        }

        /// Outside the batch (canned engine, beam search, logprobs): the engine's own `generate`, the batch waiting.
        private func runAlone(_ job: GenerationJob, _ prepared: PreparedGeneration, on e: any ReplyEngine) {
            if e is any BatchingEngine {
                do throws(APIError) { try setAdapters(job, on: e) } catch {
                    finish(job, prepared, EngineReply(text: "", reason: nil, error: ChatError("", error.message)))
                    return
                }
            }
            cond.withLock { current = job }
            let reply = e.generate(prepared.request, cancelled: job.cancelled) { d in job.delta(d) }
            cond.withLock { current = nil }
            finish(job, prepared, reply)
        }

        private func finish(_ job: GenerationJob, _ prepared: PreparedGeneration, _ reply: EngineReply) {
            job.onFinish?(reply, prepared)
            job.events.push(.finished(reply))
            job.events.close()
        }

        private func deliver(_ id: Int, _ event: BatchDecoder.Event) {
            guard var s = active[id] else { return }
            switch event {
            case .token(_, let text):
                if !text.isEmpty {
                    s.text += text
                    active[id] = s
                    s.job.delta(text)
                }
            case .finished(let r):
                active[id] = nil
                if !r.remainingText.isEmpty { s.job.delta(r.remainingText) }
                finish(s.job, s.prepared, EngineReply(text: r.text, reason: r.reason, stats: r.stats, tokens: r.tokens))
            case .failed(let message):
                active[id] = nil
                finish(s.job, s.prepared, EngineReply(text: s.text, reason: nil, error: ChatError("", message)))
            }
        }
    }
}
