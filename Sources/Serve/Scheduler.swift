import Chat
import Engine
import Foundation

/// What a job becomes on the worker, from the loaded engine: the request to generate and how the
/// raw reply turns into the text the client gets.
public struct PreparedGeneration: Sendable {
    public var request: EngineRequest
    /// Raw text -> reply (a persona's `finishReply`); nil keeps the text as it is (raw completions).
    public var finish: (@Sendable (String) -> String)?
    /// How many characters a stream holds back so `finish` cannot change text already sent.
    public var holdBack: Int

    public init(request: EngineRequest, finish: (@Sendable (String) -> String)? = nil, holdBack: Int = 0) {
        self.request = request
        self.finish = finish
        self.holdBack = holdBack
    }
}

/// What a job reports, in order: `started` then `delta`s then `finished`; or `failed` alone.
/// Without `streams`, one empty `delta` marks the first token.
public enum JobEvent: Sendable {
    /// Out of the queue and prepared (queue wait in seconds).
    case started(PreparedGeneration, queued: Double)
    case delta(String)
    case finished(EngineReply)
    /// Never started: the engine would not load, an adapter did not fit, the prompt did not fit.
    case failed(APIError)
}

/// One generation waiting for, or running on, an engine. `prepare` runs on the engine's worker
/// (tokenizing and fitting touch the engine's tokenizer, which belongs to that thread).
public final class GenerationJob: @unchecked Sendable {
    /// Resolved base folder: which engine runs it.
    public let base: String
    /// The adapter set it runs under (resolved folders, scales).
    public let adapters: [AdapterSetting]
    public let prepare: @Sendable (any ReplyEngine) throws(APIError) -> PreparedGeneration
    /// Set by whoever gives up on the job (a client gone, a stream dropped): the engine ends it
    /// before its next token.
    public let cancelled = CancellationFlag()
    public let events = JobEvents()
    /// Whether `delta` events are wanted (a stream); a whole answer needs only the finish, and
    /// skipping the per-token hand-over keeps the engine's thread on the engine.
    public let streams: Bool
    let submitted = Measure.now()
    private let firstLock = NSLock()
    private var firstAt: Double?   // guarded by firstLock

    /// Called on the worker when a generation ends (metrics: counted whether or not anyone still reads the events).
    let onFinish: (@Sendable (EngineReply, PreparedGeneration) -> Void)?

    public init(base: String, adapters: [AdapterSetting], streams: Bool = true,
                onFinish: (@Sendable (EngineReply, PreparedGeneration) -> Void)? = nil,
                prepare: @escaping @Sendable (any ReplyEngine) throws(APIError) -> PreparedGeneration) {
        self.base = base
        self.adapters = adapters
        self.streams = streams
        self.onFinish = onFinish
        self.prepare = prepare
    }

    /// When the first text came (Measure.now() seconds), once it has.
    public var firstTokenAt: Double? { firstLock.withLock { firstAt } }

    func delta(_ d: String) {
        let first = firstLock.withLock { () -> Bool in
            if firstAt != nil { return false }
            firstAt = Measure.now()
            return true
        }
        if streams || first { events.push(.delta(streams ? d : "")) }
    }
}

/// Runs jobs on engines. The server talks to engines only through this: `SerialScheduler` runs
/// one job at a time per base; `BatchScheduler` (the default of `yanyi serve`) runs up to
/// `maxBatch` together, one forward per step for every running sequence, the routes unchanged.
public protocol GenerationScheduler: AnyObject, Sendable {
    /// Queues `jobs` in order, all or none. Throws `queue_full` (429) past the limit and 503
    /// once shut down.
    func submit(_ jobs: [GenerationJob]) throws(APIError)
    /// Ends a job: a queued one finishes as cancelled without running; a running one before its next token.
    func cancel(_ job: GenerationJob)
    /// Jobs waiting (not running), over every base.
    var waiting: Int { get }
    /// Bases whose engine is loaded.
    var loaded: [String] { get }
    /// Fails what waits, stops what runs, ends the workers.
    func shutdown()
}

/// The events of one job, read by one consumer (the HTTP handler, then its response body) with
/// `next()`; pushed by the worker thread.
public final class JobEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer: [JobEvent] = []
    private var head = 0
    private var closed = false
    private var waiter: CheckedContinuation<JobEvent?, Never>?

    public init() {}

    func push(_ e: JobEvent) {
        lock.lock()
        if let w = waiter {
            waiter = nil
            lock.unlock()
            w.resume(returning: e)
        } else {
            // text a slow reader has not taken yet goes out as one piece
            if case .delta(let d) = e, head < buffer.count, case .delta(let before)? = buffer.last {
                buffer[buffer.count - 1] = .delta(before + d)
            } else {
                buffer.append(e)
            }
            lock.unlock()
        }
    }

    /// No more events; a waiting `next()` gets nil.
    func close() {
        lock.lock()
        closed = true
        let w = head == buffer.count ? waiter : nil
        if w != nil { waiter = nil }
        lock.unlock()
        w?.resume(returning: nil)
    }

    /// The next event, waiting for it; nil once the job has reported everything.
    public func next() async -> JobEvent? {
        await withCheckedContinuation { (c: CheckedContinuation<JobEvent?, Never>) in
            lock.lock()
            if head < buffer.count {
                let e = buffer[head]
                head += 1
                if head > 256 && head * 2 > buffer.count { buffer.removeFirst(head); head = 0 }
                lock.unlock()
                c.resume(returning: e)
            } else if closed {
                lock.unlock()
                c.resume(returning: nil)
            } else {
                waiter = c
                lock.unlock()
            }
        }
    }
}

/// One worker thread per base, one job at a time, first come first served: engines are not
/// thread-safe. Each job sets its adapter set before it generates; the engine keeps a KV
/// snapshot per adapter set, so requests alternating between two sets do not re-read each
/// other's prompts (and never reuse keys/values computed under another set).
public final class SerialScheduler: GenerationScheduler, @unchecked Sendable {
    public let host: any ModelHost
    /// Jobs that may wait per base (running ones not counted).
    public let maxWaiting: Int
    /// Called when the number of waiting jobs changes (metrics).
    public var onQueueChange: (@Sendable (Int) -> Void)?

    private let workers = EngineLanes<Worker>()

    public init(host: any ModelHost, maxWaiting: Int = 64) {
        self.host = host
        self.maxWaiting = maxWaiting
    }

    public func submit(_ jobs: [GenerationJob]) throws(APIError) {
        try workers.submit(jobs, limit: maxWaiting) { base in
            Worker(base: base, host: host, changed: { [weak self] in self?.queueChanged() })
        }
        queueChanged()
    }

    public func cancel(_ job: GenerationJob) { workers.cancel(job) }

    public var waiting: Int { workers.waiting }

    public var loaded: [String] { workers.loaded }

    public func shutdown() { workers.shutdown() }

    private func queueChanged() { onQueueChange?(waiting) }

    /// A base's thread, its queue and its engine (loaded by the first job): one job at a time.
    final class Worker: EngineLane, @unchecked Sendable {
        override init(base: String, host: any ModelHost, changed: @escaping @Sendable () -> Void) {
            super.init(base: base, host: host, changed: changed)
            start()
        }

        override func loop() {
            while true {
                cond.lock()
                while queue.isEmpty && !stopping { cond.wait() }
                if stopping {
                    cond.unlock()
                    return
                }
                let job = queue.removeFirst()
                current = job
                cond.unlock()
                changed()
                run(job)
                cond.withLock { current = nil }
            }
        }

        private func run(_ job: GenerationJob) {
            defer { job.events.close() }
            if job.cancelled.isCancelled {
                job.events.push(.finished(EngineReply(text: "", reason: .cancelled)))
                return
            }
            let e: any ReplyEngine
            let prepared: PreparedGeneration
            do throws(APIError) {
                e = try loadedEngine()
                try checkAdapters(job, on: e)
                try setAdapters(job, on: e)
                prepared = try job.prepare(e)
            } catch {
                job.events.push(.failed(error))
                return
            }
            job.events.push(.started(prepared, queued: Measure.now() - job.submitted))
            let reply = e.generate(prepared.request, cancelled: job.cancelled) { d in job.delta(d) }
            job.onFinish?(reply, prepared)
            job.events.push(.finished(reply))
        }
    }
}

/// The engine of `base`, loaded (a failure is the request's 503).
func loadEngine(_ base: String, host: any ModelHost) throws(APIError) -> any ReplyEngine {
    do {
        return try host.load(base) { _, _ in }
    } catch {
        throw APIError.unavailable("The model \(URL(fileURLWithPath: base).lastPathComponent) could not be loaded: \(error.description)",
                                   code: "model_load_failed")
    }
}

/// Reads and checks each adapter of `job` against the engine's base.
func checkAdapters(_ job: GenerationJob, on e: any ReplyEngine) throws(APIError) {
    for a in job.adapters {
        do { _ = try e.prepareAdapter(a.path) } catch {
            throw APIError.invalid("Adapter \(URL(fileURLWithPath: a.path).lastPathComponent) does not fit this model: \(error.description)",
                                   param: "adapters", code: "adapter_mismatch")
        }
    }
}

/// Makes `job`'s adapter set the engine's active one (a generation through `ReplyEngine.generate`).
func setAdapters(_ job: GenerationJob, on e: any ReplyEngine) throws(APIError) {
    do { try e.setAdapters(job.adapters) } catch {
        throw APIError.invalid("The adapter set could not be applied: \(error.description)", param: "adapters", code: "adapter_mismatch")
    }
}
