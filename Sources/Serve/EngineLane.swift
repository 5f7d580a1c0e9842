import Chat
import Engine
import Foundation

/// What every scheduler's worker shares: a base's thread, its queue and its engine (loaded by the
/// first job), the job generating outside a batch (interrupted directly on cancel), shutdown.
/// A scheduler's worker subclasses it, writes `loop()` and calls `start()` once it is set up.
class EngineLane: @unchecked Sendable {
    let base: String
    let host: any ModelHost
    let changed: @Sendable () -> Void
    let cond = NSCondition()
    // guarded by cond
    var queue: [GenerationJob] = []
    var engine: (any ReplyEngine)?
    /// The job generating through the engine's own `generate`, if any.
    var current: GenerationJob?
    var stopping = false

    init(base: String, host: any ModelHost, changed: @escaping @Sendable () -> Void) {
        self.base = base
        self.host = host
        self.changed = changed
    }

    /// Starts the thread that runs `loop()`.
    func start() {
        let t = Thread { [self] in loop() }
        t.name = "yanyi-serve " + URL(fileURLWithPath: base).lastPathComponent
        t.stackSize = 8 << 20
        t.start()
    }

    /// The worker's own loop (the subclass's); returns when stopping.
    func loop() {}

    var waiting: Int { cond.withLock { queue.count } }
    var isLoaded: Bool { cond.withLock { engine != nil } }

    func enqueue(_ jobs: [GenerationJob], limit: Int) throws(APIError) {
        cond.lock()
        defer { cond.unlock() }
        if stopping { throw APIError.unavailable("The server is shutting down.", code: "shutting_down") }
        guard queue.count + jobs.count <= limit else {
            throw APIError.queueFull(queue.count, model: URL(fileURLWithPath: base).lastPathComponent)
        }
        queue += jobs
        cond.signal()
    }

    /// A job generating through the engine notices its flag at once (others at their next step).
    func interruptIfCurrent(_ job: GenerationJob) {
        let e = cond.withLock { current === job ? engine : nil }
        e?.interrupt()
    }

    /// Refuses what waits, cancels what generates alone, and wakes the loop to end.
    func stop() {
        cond.lock()
        stopping = true
        let dropped = queue
        queue = []
        let e = current != nil ? engine : nil
        current?.cancelled.cancel()
        cond.broadcast()
        cond.unlock()
        e?.interrupt()
        for j in dropped {
            j.events.push(.failed(.unavailable("The server is shutting down.", code: "shutting_down")))
            j.events.close()
        }
    }

    func loadedEngine() throws(APIError) -> any ReplyEngine {
        if let e = cond.withLock({ engine }) { return e }
        let e = try loadEngine(base, host: host)
        cond.withLock { engine = e }
        return e
    }
}

/// A scheduler's lanes, one per base, made on a base's first job: the bookkeeping both
/// schedulers' public calls share (submit, cancel, waiting, loaded, shutdown).
final class EngineLanes<Lane: EngineLane>: @unchecked Sendable {
    private let lock = NSLock()
    private var lanes: [String: Lane] = [:]     // guarded by lock
    private var stopped = false

    /// Queues `jobs` (one base) on their lane, made by `make` if it is the base's first.
    func submit(_ jobs: [GenerationJob], limit: Int, make: (String) -> Lane) throws(APIError) {
        guard let first = jobs.first else { return }
        lock.lock()
        if stopped {
            lock.unlock()
            throw APIError.unavailable("The server is shutting down.", code: "shutting_down")
        }
        let lane = lanes[first.base] ?? make(first.base)
        lanes[first.base] = lane
        lock.unlock()
        try lane.enqueue(jobs, limit: limit)
    }

    func cancel(_ job: GenerationJob) {
        job.cancelled.cancel()
        let lane = lock.withLock { lanes[job.base] }
        lane?.interruptIfCurrent(job)
    }

    var all: [Lane] { lock.withLock { Array(lanes.values) } }
    var waiting: Int { all.reduce(0) { $0 + $1.waiting } }
    var loaded: [String] { all.filter(\.isLoaded).map(\.base).sorted() }

    func shutdown() {
        let list = lock.withLock { () -> [Lane] in
            stopped = true
            return Array(lanes.values)
        }
        for lane in list { lane.stop() }
    }
}
