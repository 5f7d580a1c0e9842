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

    /// Streaming read bandwidth, bytes/s: reads a `bytes`-sized buffer (≥ 1 GiB, far beyond the
    /// caches) with the SIMD dot kernel (x·x: one stream) on `threads` threads, best of `passes`.
    /// What a memory-bound decode can reach at most.
    public static func readBandwidth(bytes: Int = 1 << 30, passes: Int = 5, pool: ThreadPool) -> Double {
        let n = bytes / 4
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { buf.deallocate() }
        buf.initialize(repeating: 0.5, count: n)          // touch every page before timing
        let chunks = max(pool.threads, 1)
        let per = (n + chunks - 1) / chunks
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: chunks)
        defer { sums.deallocate() }
        var best = 0.0
        for _ in 0..<passes {
            let t0 = now()
            pool.parallelFor(chunks) { c in
                let lo = c * per, hi = min(n, lo + per)
                sums[c] = hi > lo ? ck_dot_f32(buf + lo, buf + lo, hi - lo) : 0
            }
            best = max(best, Double(n * 4) / (now() - t0))
        }
        return best
    }
}
