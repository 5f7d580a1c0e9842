// A fixed set of worker threads running one data-parallel loop at a time. Decode calls it about
// seven times per layer per token, so a call must cost microseconds: the workers are persistent,
// spin briefly on a generation counter after each job (the next projection usually follows
// within microseconds), then sleep on a condition variable.
import COpenBLAS
import Foundation
#if os(Linux)
import Synchronization
#endif

public final class ThreadPool: @unchecked Sendable {
    /// Threads taking part in each loop, the calling thread included: those asked for, less any
    /// the system would not start.
    public let threads: Int
    /// Threads asked for (never more than `maxThreads`).
    public let requested: Int
    private let shared: Shared

    private let submit = NSLock()  // one loop at a time, whoever calls

    /// The most threads a pool takes: 4 per logical CPU, at most 256. More only adds switching
    /// (each loop waits for its slowest thread) and, by the thousand, exhausts the process's
    /// thread and stack limits.
    public static let maxThreads = min(256, 4 * max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// Why `n` threads cannot be asked for, in one line for `--threads`; nil when it can.
    public static func threadCountProblem(_ n: Int) -> String? {
        if n < 1 { return "--threads must be at least 1 (got \(n))" }
        if n > maxThreads {
            return "--threads \(n) is more than this machine can use: at most \(maxThreads) (4 per logical CPU, at most 256; default \(physicalCores), the physical cores)"
        }
        return nil
    }

    /// `threads` defaults to the number of physical cores, and is clamped to 1…`maxThreads`. The
    /// pool owns all parallelism: OpenBLAS is set to one thread (process-wide), and BLAS calls are
    /// made from inside pool chunks. A worker the system cannot start (pthread_create fails) is
    /// left out: the pool runs with those it has, never waits for one that does not exist.
    public convenience init(threads: Int = ThreadPool.physicalCores) {
        self.init(threads: threads, start: ThreadPool.startThread)
    }

    /// `start` launches one worker running `body`, returning false when it cannot (tests fail it).
    init(threads: Int, start: (_ body: @escaping @Sendable () -> Void) -> Bool) {
        let wanted = min(max(threads, 1), Self.maxThreads)
        requested = wanted
        let shared = Shared()
        // Up to one worker per CPU may spin ~1 ms between jobs; more would take CPU from those working.
        // Set before any worker starts (they read it while idle); a pool that starts fewer keeps it.
        shared.spinNanos = wanted <= ProcessInfo.processInfo.activeProcessorCount ? 1_000_000 : 20_000
        var started = 0
        for w in 1..<wanted {
            guard start({ Thread.current.name = "yanyi-pool-\(w)"; shared.work(index: w) }) else { break }
            started += 1
        }
        shared.workers = started    // set before any job: run() waits for exactly these
        self.shared = shared
        self.threads = started + 1
        openblas_set_num_threads(1)
    }

    /// A detached pthread with an 8 MiB stack (as the main thread: OpenBLAS and kernels run there
    /// too); false when the system refuses it.
    static func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, 8 << 20)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        #if os(Linux)
        var tid = pthread_t()
        #else
        var tid: pthread_t?
        #endif
        let rc = pthread_create(&tid, &attr, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, arg)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(arg).release()
            return false
        }
        return true
    }

    deinit { shared.stop() }

    /// Runs body(i) for i in 0..<n in contiguous chunks, up to 8 per thread, each taken by
    /// whichever thread is free: uneven work (prefill attention, whose later queries see more
    /// positions) and a core slowed by its neighbours even out. Returns when all are done. Not
    /// reentrant: body must not call back into the same pool.
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        parallelChunks(n, perThread: 8) { _, range in for i in range { body(i) } }
    }

    /// body(i) for each row i of a forward's n tokens: on every thread from `rowsInParallelFrom` rows
    /// (a long prompt's norms, residuals, activations), in turn on this thread below it, where a job
    /// would cost more than the rows. Each row's arithmetic is the same either way.
    public func eachRow(_ n: Int, _ body: (Int) -> Void) {
        if n >= Self.rowsInParallelFrom { parallelFor(n, body) } else { for i in 0..<n { body(i) } }
    }

    public static let rowsInParallelFrom = 16

    /// Splits 0..<n into at most `threads` contiguous ranges whose inner boundaries are multiples
    /// of `alignment`, and runs body(chunk, range) for each, chunk 0 on the calling thread.
    public func parallelChunks(_ n: Int, alignment: Int = 1, perThread: Int = 1,
                               _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        precondition(alignment >= 1 && perThread >= 1, "ThreadPool: alignment \(alignment), perThread \(perThread)")
        guard n > 0 else { return }
        let units = (n + alignment - 1) / alignment
        let chunks = min(threads * perThread, units)
        let bound = { (c: Int) in min(n, (units * c / chunks) * alignment) }
        if chunks == 1 { body(0, 0..<n); return }
        withoutActuallyEscaping(body) { body in
            submit.lock()
            defer { submit.unlock() }
            shared.run(chunks: chunks, job: { c in body(c, bound(c)..<bound(c + 1)) })
        }
    }

    /// Physical cores: distinct (package, core) pairs of the online CPUs from sysfs, else from
    /// /proc/cpuinfo, never more than the CPUs this process may use.
    public static let physicalCores: Int = {
        let usable = ProcessInfo.processInfo.activeProcessorCount
        #if os(Linux)
        if let n = sysfsCores() ?? cpuinfoCores(), n > 0 { return max(1, min(n, usable)) }
        #endif
        return max(1, usable)
    }()

    static func sysfsCores() -> Int? {
        let base = "/sys/devices/system/cpu"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return nil }
        var cores = Set<String>()
        for name in names where name.hasPrefix("cpu") && Int(name.dropFirst(3)) != nil {
            let online = (try? String(contentsOfFile: "\(base)/\(name)/online", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if online == "0" { continue }
            guard let core = try? String(contentsOfFile: "\(base)/\(name)/topology/core_id", encoding: .utf8),
                  let pkg = try? String(contentsOfFile: "\(base)/\(name)/topology/physical_package_id", encoding: .utf8)
            else { continue }
            cores.insert(pkg.trimmingCharacters(in: .whitespacesAndNewlines) + ":" + core.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return cores.isEmpty ? nil : cores.count
    }

    static func cpuinfoCores() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        return parseCpuinfoCores(text)
    }

    /// Distinct "physical id"/"core id" pairs; nil when the file has no such fields (some VMs, ARM).
    static func parseCpuinfoCores(_ text: String) -> Int? {
        var cores = Set<String>(), physical = "0", sawCore = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "processor" { physical = "0" }
            if parts[0] == "physical id" { physical = parts[1] }
            if parts[0] == "core id" { cores.insert(physical + ":" + parts[1]); sawCore = true }
        }
        return sawCore ? cores.count : nil
    }

    // ---- the shared job state ------------------------------------------------------------------
    private final class Shared: @unchecked Sendable {
        let cond = NSCondition()
        let generation = Counter()  // bumped once per job; workers spin on it
        let pending = Counter()     // workers not yet done with this generation
        let next = Counter()        // next chunk to hand out (any thread takes the next free one)
        var workers = 0                  // started workers; set once, before the first job
        var spinNanos: UInt64 = 20_000   // how long a worker spins for the next job; set once, before any worker starts
        var job: ((Int) -> Void)?        // set before generation is bumped, read after
        var chunks = 0
        var stopping = false             // under cond

        /// Hand chunks 0..<chunks to whichever thread is free next (this one included), so a
        /// thread that starts late or runs slow does not hold up the rest; wait until every worker
        /// has finished with this generation (also those without a chunk, so none can still be
        /// reading `job` or `chunks` when the next call writes them). Each chunk runs exactly once.
        func run(chunks: Int, job: @escaping (Int) -> Void) {
            self.job = job
            self.chunks = chunks
            next.store(0)
            pending.store(workers)
            cond.lock()
            generation.add(1)
            cond.broadcast()
            cond.unlock()
            drain(job, chunks)
            var spins = 0
            while pending.load() > 0 {
                spins += 1
                if spins > 1_000 { sched_yield() }
            }
            self.job = nil
        }

        func work(index: Int) {
            var seen = 0
            while true {
                // Spin for the next job, then sleep until one is posted. Decode posts ~220 jobs a
                // token, and a worker that finished its chunks waits up to a chunk of the calling
                // thread's (~0.5 ms on a 7B): sleeping there costs a wake-up (tens of µs or more
                // on a virtual machine) per job. `yanyi bench` on a 7B (32 + 48 tokens), AMD EPYC,
                // 2 threads, in turn: ~20 µs of spinning 8,200–8,600 context switches a run, 1 ms
                // ~700 (3,100 with the yields below); decode 4.59 / 4.18 / 3.91 against 4.00 / 4.16 /
                // 3.94 tok/s with memory the limit (34 GB/s). Without the yields the test suite,
                // many pools in one process, ran 348 s instead of 253-263. A pool with more
                // threads than CPUs spins briefly.
                let deadline = Self.nanos() + spinNanos
                var spins = 0
                while generation.load() == seen {
                    spins += 1
                    if spins & 1023 == 0 {
                        if Self.nanos() > deadline { break }
                        sched_yield()   // lets another process's threads (other pools, tests) use this CPU meanwhile
                    }
                }
                if generation.load() == seen {
                    cond.lock()
                    while generation.load() == seen && !stopping { cond.wait() }
                    let stop = stopping
                    cond.unlock()
                    if stop { return }
                }
                seen = generation.load()
                if let job { drain(job, chunks) }
                pending.add(-1)
            }
        }

        private func drain(_ job: (Int) -> Void, _ chunks: Int) {
            while true {
                let c = next.fetchAdd(1)
                if c >= chunks { return }
                job(c)
            }
        }

        static func nanos() -> UInt64 {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
        }

        func stop() {
            cond.lock()
            stopping = true
            cond.broadcast()
            cond.unlock()
        }
    }

    /// An integer shared between threads: acquire loads, release stores. Synchronization's Atomic
    /// on Linux; a lock elsewhere (Atomic needs macOS 15, the package allows 14).
    private final class Counter: @unchecked Sendable {
        #if os(Linux)
        private let value = Atomic<Int>(0)
        func load() -> Int { value.load(ordering: .acquiring) }
        func store(_ v: Int) { value.store(v, ordering: .releasing) }
        func add(_ d: Int) { value.add(d, ordering: .acquiringAndReleasing) }
        /// Adds and returns the value before.
        func fetchAdd(_ d: Int) -> Int { value.add(d, ordering: .acquiringAndReleasing).oldValue }
        #else
        private let lock = NSLock()
        private var value = 0
        func load() -> Int { lock.lock(); defer { lock.unlock() }; return value }
        func store(_ v: Int) { lock.lock(); value = v; lock.unlock() }
        func add(_ d: Int) { lock.lock(); value += d; lock.unlock() }
        func fetchAdd(_ d: Int) -> Int { lock.lock(); defer { lock.unlock() }; let v = value; value += d; return v }
        #endif
    }
}
