import CKernels
import Foundation

/// What the benchmarks need from the machine: a clock, resident memory, and read bandwidth.
public enum Measure {
    /// Seconds on a monotonic clock.
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Peak resident set size of this process so far, bytes (getrusage's ru_maxrss is KiB on Linux).
    public static func peakRSS() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }

    /// Current resident set size, bytes (/proc/self/statm), or nil where unavailable.
    public static func currentRSS() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let f = s.split(separator: " ")
        guard f.count > 1, let pages = Int(f[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// A read-bandwidth probe that keeps its buffer (touched once), so passes can be interleaved with
/// the work they bound: on a shared VM the bandwidth drifts by ±10% within minutes, and a ratio
/// of two things measured minutes apart inherits that drift.
public final class BandwidthProbe {
    private let storage: AlignedStorage<Float>      // huge-page advised, like the weights
    private let n: Int
    private let pool: ThreadPool
    public private(set) var passes: [Double] = []     // bytes/s: each the best of `repeats` reads

    public init(bytes: Int = 1 << 30, pool: ThreadPool) {
        n = bytes / 4
        self.pool = pool
        storage = AlignedStorage(count: n)
        storage.pointer.initialize(repeating: 0.5, count: n)
    }

    public var byteSize: Int { n * 4 }

    /// The best of `repeats` streaming reads of the whole buffer on every thread of the pool,
    /// bytes/s (the best, so that the limit is one the machine demonstrably reached). Each repeat
    /// reads twice: a plain read (x·x) and one that prefetches 4 KiB ahead, as the int8 decode
    /// kernel does; a limit the decode kernel could beat would not be one.
    @discardableResult
    public func pass(repeats: Int = 3) -> Double {
        let chunks = max(pool.threads, 1), per = (n + chunks - 1) / chunks, buf = storage.pointer, n = n
        var sums = [Float](repeating: 0, count: chunks)
        var best = 0.0
        for _ in 0..<repeats {
            for prefetching in [false, true] {
                let t0 = Measure.now()
                sums.withUnsafeMutableBufferPointer { sums in
                    pool.parallelFor(chunks) { c in
                        let lo = c * per, hi = min(n, lo + per)
                        guard hi > lo else { sums[c] = 0; return }
                        sums[c] = prefetching ? ck_read_sum_f32(buf + lo, hi - lo) : ck_dot_f32(buf + lo, buf + lo, hi - lo)
                    }
                }
                best = max(best, Double(n * 4) / (Measure.now() - t0))
            }
        }
        passes.append(best)
        return best
    }
}

/// The middle value (mean of the two middle ones for an even count); 0 for none.
public func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
