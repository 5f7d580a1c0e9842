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

    /// Streaming read bandwidth, bytes/s: sums a `bytes`-sized buffer (≥ 1 GiB, far beyond the
    /// caches) `passes` times on `threads` threads, best pass. What a memory-bound decode can reach.
    public static func readBandwidth(bytes: Int = 1 << 30, passes: Int = 3, pool: ThreadPool) -> Double {
        let n = bytes / 8
        let buf = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        defer { buf.deallocate() }
        for i in 0..<n { buf[i] = UInt64(truncatingIfNeeded: i &* 2654435761) }   // touch every page
        let chunks = max(pool.threads, 1) * 8
        let per = (n + chunks - 1) / chunks
        let sums = UnsafeMutablePointer<UInt64>.allocate(capacity: chunks)
        defer { sums.deallocate() }
        var best = 0.0
        for _ in 0..<passes {
            let t0 = now()
            pool.parallelFor(chunks) { c in
                let lo = c * per, hi = min(n, lo + per)
                var a: UInt64 = 0, b: UInt64 = 0, d: UInt64 = 0, e: UInt64 = 0
                var i = lo
                while i + 4 <= hi {
                    a &+= buf[i]; b &+= buf[i + 1]; d &+= buf[i + 2]; e &+= buf[i + 3]
                    i += 4
                }
                while i < hi { a &+= buf[i]; i += 1 }
                sums[c] = a &+ b &+ d &+ e
            }
            let dt = now() - t0
            best = max(best, Double(n * 8) / dt)
        }
        return best
    }
}
