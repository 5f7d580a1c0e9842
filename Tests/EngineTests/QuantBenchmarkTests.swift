import CKernels
import Dispatch
import Foundation
import Testing
import Engine

/// Measurements, not tests: off unless YANYI_BENCH is set, and only meaningful in release:
///   YANYI_BENCH=1 swift test -c release --filter QuantBenchmark
/// Times are the best of several runs (the least disturbed by other load on the machine), with
/// the median beside it.
@Suite("QuantBenchmark", .enabled(if: ProcessInfo.processInfo.environment["YANYI_BENCH"] != nil), .serialized)
struct QuantBenchmarkTests {
    static func seconds(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// (best, median) of `runs` timings.
    static func time(runs: Int, _ body: () -> Void) -> (best: Double, median: Double) {
        let t = (0..<runs).map { _ in seconds(body) }.sorted()
        return (t[0], t[t.count / 2])
    }

    static func gaussians(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed
        func next() -> Double {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        return (0..<n).map { _ in Float((-2 * log(max(next(), 1e-300))).squareRoot() * cos(2 * Double.pi * next())) * scale }
    }

    static func matrix(_ rows: Int, _ cols: Int, block: Int = 32, seed: UInt64 = 1) -> Int8Matrix {
        gaussians(rows * cols, seed: seed, scale: 0.02).withUnsafeBufferPointer {
            Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block)
        }
    }

    static func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

    @Test func memoryReadBandwidth() {
        let n = (1 << 30) / 4  // 1 GiB of floats
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { buf.deallocate() }
        buf.initialize(repeating: 1, count: n)
        for threads in [1, 2] {
            let pool = ThreadPool(threads: threads)
            let t = Self.time(runs: 5) {
                pool.parallelChunks(n, alignment: 1024) { _, r in _ = ck_dot_f32(buf + r.lowerBound, buf + r.lowerBound, r.count) }
            }
            print("read 1 GiB (ck_dot_f32(p, p)), \(threads) thread(s): best \(Self.f(Double(n * 4) / t.best / 1e9)) GB/s, median \(Self.f(Double(n * 4) / t.median / 1e9)) GB/s")
        }
    }

    @Test func poolOverhead() {
        let calls = 20_000
        for threads in [1, 2] {
            let pool = ThreadPool(threads: threads)
            var sink = [Int](repeating: 0, count: 2)
            let t = Self.time(runs: 3) {
                sink.withUnsafeMutableBufferPointer { s in for _ in 0..<calls { pool.parallelFor(2) { s[$0] &+= 1 } } }
            }
            print("ThreadPool(\(threads)).parallelFor(2) empty: best \(Self.f(t.best / Double(calls) * 1e6)) µs/call, median \(Self.f(t.median / Double(calls) * 1e6))")
        }
        let box = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { box.deallocate() }
        nonisolated(unsafe) let b = box
        let t = Self.time(runs: 3) { for _ in 0..<calls { DispatchQueue.concurrentPerform(iterations: 2) { b[$0] &+= 1 } } }
        print("DispatchQueue.concurrentPerform(2) empty: best \(Self.f(t.best / Double(calls) * 1e6)) µs/call, median \(Self.f(t.median / Double(calls) * 1e6))")
    }

    /// One LLaMA-7B layer's projections (q, k, v, o: 4096x4096; gate, up: 11008x4096; down:
    /// 4096x11008) as decode runs them, rows split by the pool vs by concurrentPerform.
    @Test func decodeLayer() {
        let shapes = [(4096, 4096), (4096, 4096), (4096, 4096), (4096, 4096), (11008, 4096), (11008, 4096), (4096, 11008)]
        let mats = shapes.enumerated().map { Self.matrix($1.0, $1.1, seed: UInt64($0 + 1)) }
        let bytes = Double(mats.reduce(0) { $0 + $1.byteSize })
        let x = Self.gaussians(11008, seed: 5)
        var y = [Float](repeating: 0, count: 11008)
        let reps = 8
        for threads in [1, 2] {
            let pool = ThreadPool(threads: threads)
            let t = y.withUnsafeMutableBufferPointer { yp in
                Self.time(runs: 5) { for _ in 0..<reps { for m in mats { m.matvec(x, yp.baseAddress!, pool: pool) } } }
            }
            print("decode layer, ThreadPool(\(threads)): best \(Self.f(t.best / Double(reps) * 1e3, 3)) ms/layer (\(Self.f(bytes * Double(reps) / t.best / 1e9)) GB/s), median \(Self.f(t.median / Double(reps) * 1e3, 3)) ms")
        }
        // The same split through libdispatch, for comparison.
        let t = y.withUnsafeMutableBufferPointer { yp in
            nonisolated(unsafe) let out = yp.baseAddress!
            return Self.time(runs: 5) {
                for _ in 0..<reps {
                    for m in mats {
                        let half = m.rows / 2
                        var tmp = [Float](repeating: 0, count: m.rows)
                        tmp.withUnsafeMutableBufferPointer { tp in
                            nonisolated(unsafe) let tp = tp.baseAddress!
                            DispatchQueue.concurrentPerform(iterations: 2) { c in
                                m.withUnsafeStorage { q, s in
                                    let r0 = c == 0 ? 0 : half, n = c == 0 ? half : m.rows - half
                                    ck_q8_matvec(q.baseAddress! + r0 * m.cols, s.baseAddress! + r0 * m.blocksPerRow, x, tp + r0, n, m.cols, m.block)
                                }
                            }
                        }
                        out.update(from: tmp, count: m.rows)
                    }
                }
            }
        }
        print("decode layer, concurrentPerform(2): best \(Self.f(t.best / Double(reps) * 1e3, 3)) ms/layer (\(Self.f(bytes * Double(reps) / t.best / 1e9)) GB/s), median \(Self.f(t.median / Double(reps) * 1e3, 3)) ms")
    }

    /// Decode: 11008 x 4096 (LLaMA-7B's gate/up shape). Hot: the same matrix each call (45 MiB,
    /// inside this Xeon's large L3). Cold: 8 matrices in turn (360 MiB), streamed from DRAM.
    @Test func matvecBandwidth() {
        let rows = 11008, cols = 4096
        for block in [32, 64, 128] {
            let mats = (0..<8).map { Self.matrix(rows, cols, block: block, seed: UInt64($0 + 1)) }
            let x = Self.gaussians(cols, seed: 99)
            var y = [Float](repeating: 0, count: rows)
            for threads in [1, 2] {
                let pool = ThreadPool(threads: threads)
                for a in [Int8Matrix.Activations.f32, .int8] {
                    for cold in [false, true] {
                        let reps = 16
                        let t = y.withUnsafeMutableBufferPointer { yp in
                            Self.time(runs: 5) {
                                for i in 0..<reps { mats[cold ? i % 8 : 0].matvec(x, yp.baseAddress!, pool: pool, activations: a) }
                            }
                        }
                        let bytes = Double(mats[0].byteSize * reps)
                        print("matvec \(rows)x\(cols) B=\(block) \(a) x, \(threads) thread(s), \(cold ? "cold" : "hot "): best \(Self.f(bytes / t.best / 1e9)) GB/s (\(Self.f(t.best / Double(reps) * 1e3, 3)) ms), median \(Self.f(bytes / t.median / 1e9)) GB/s")
                    }
                }
            }
        }
    }

    /// Prefill: tokens/s for n tokens through one matrix, int8 tile kernel vs dequantize + sgemm.
    @Test func prefillThroughput() {
        print("OpenBLAS: \(BLASInfo.config) core \(BLASInfo.coreName)")
        let env = ProcessInfo.processInfo.environment
        let shapes = env["YANYI_BENCH_SHAPES"] == "small" ? [(4096, 4096)] : [(4096, 4096), (11008, 4096), (4096, 11008)]
        let methods: [Int8Matrix.MatmulMethod] = env["YANYI_BENCH_METHODS"] == "vnni" ? [.vnniGEMM] : [.int8Kernel, .dequantizeBLAS, .vnniGEMM]
        for (rows, cols) in shapes {
            let m = Self.matrix(rows, cols)
            for n in [16, 64, 512] {
                let x = Self.gaussians(n * cols, seed: 7)
                var y = [Float](repeating: 0, count: n * rows)
                for threads in [1, 2] {
                    let pool = ThreadPool(threads: threads)
                    for method in methods {
                        let t = y.withUnsafeMutableBufferPointer { yp in
                            Self.time(runs: 3) { m.matmul(x, n: n, yp.baseAddress!, pool: pool, method: method) }
                        }
                        let flops = 2 * Double(n * rows * cols)
                        print("prefill \(rows)x\(cols) n=\(n) \(method), \(threads) thread(s): best \(Self.f(Double(n) / t.best, 0)) tokens/s (\(Self.f(flops / t.best / 1e9, 1)) GFLOP/s), median \(Self.f(Double(n) / t.median, 0)) tokens/s")
                    }
                }
            }
        }
    }

    /// Few tokens (chat-sized prompts, beams, batched streams): the row kernel that streams each
    /// weight row once for all n (`matvecRows`) against the GEMMs, per n. Where they cross decides
    /// which one prefill uses for a short prompt.
    @Test func fewTokens() {
        let rows = 11008, cols = 4096
        let m = Self.matrix(rows, cols)
        let pool = ThreadPool()
        for n in [1, 2, 4, 8, 12, 16, 24, 32, 48, 64] {
            let x = Self.gaussians(n * cols, seed: 7)
            var y = [Float](repeating: 0, count: n * rows)
            var line = "few tokens \(rows)x\(cols) n=\(n), \(pool.threads) threads, ms per product (best/median):"
            y.withUnsafeMutableBufferPointer { yp in
                let rowsT = Self.time(runs: 5) { m.matvecRows(x, n: n, yp.baseAddress!, pool: pool) }
                line += " rows \(Self.f(rowsT.best * 1e3, 1))/\(Self.f(rowsT.median * 1e3, 1))"
                for method in [Int8Matrix.MatmulMethod.vnniGEMM, .int8Kernel] where method != .vnniGEMM || Int8Matrix.vnniAvailable {
                    let t = Self.time(runs: 5) { m.matmul(x, n: n, yp.baseAddress!, pool: pool, method: method) }
                    line += " \(method) \(Self.f(t.best * 1e3, 1))/\(Self.f(t.median * 1e3, 1))"
                }
            }
            print(line)
        }
    }

    @Test func prefillByBlockSize() {
        let rows = 11008, cols = 4096, n = 128, pool = ThreadPool()
        let x = Self.gaussians(n * cols, seed: 7)
        var y = [Float](repeating: 0, count: n * rows)
        for block in [32, 64, 128] {
            let m = Self.matrix(rows, cols, block: block)
            let t = y.withUnsafeMutableBufferPointer { yp in Self.time(runs: 3) { m.matmul(x, n: n, yp.baseAddress!, pool: pool) } }
            print("prefill \(rows)x\(cols) n=\(n) B=\(block), \(pool.threads) thread(s): best \(Self.f(Double(n) / t.best, 0)) tokens/s (\(Self.f(2 * Double(n * rows * cols) / t.best / 1e9, 1)) GFLOP/s), median \(Self.f(Double(n) / t.median, 0))")
        }
    }

    /// Relative RMS error of W·x against fp32 W·x (in double), for Gaussian W and x, W with weight
    /// outliers (0.1% of weights x20), and x with outlier features (1% of inputs x30).
    @Test func accuracyByBlockSize() {
        let rows = 1024, cols = 4096, pool = ThreadPool(threads: 2)
        var wOut = Self.gaussians(rows * cols, seed: 11, scale: 0.02)
        for k in stride(from: 3, to: wOut.count, by: 1000) { wOut[k] *= 20 }
        var xOut = Self.gaussians(cols, seed: 12)
        for k in stride(from: 5, to: cols, by: 100) { xOut[k] *= 30 }
        let cases: [(String, [Float], [Float])] = [
            ("gaussian W, gaussian x", Self.gaussians(rows * cols, seed: 11, scale: 0.02), Self.gaussians(cols, seed: 12)),
            ("W with outliers", wOut, Self.gaussians(cols, seed: 12)),
            ("x with outlier features", Self.gaussians(rows * cols, seed: 11, scale: 0.02), xOut),
        ]
        for (name, w, x) in cases {
            var ref = [Double](repeating: 0, count: rows)
            for r in 0..<rows { for i in 0..<cols { ref[r] += Double(w[r * cols + i]) * Double(x[i]) } }
            let refNorm = ref.reduce(0) { $0 + $1 * $1 }
            for block in [32, 64, 128] {
                let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block) }
                var line = "accuracy \(name), B=\(block):"
                for a in [Int8Matrix.Activations.f32, .int8] {
                    var y = [Float](repeating: 0, count: rows)
                    y.withUnsafeMutableBufferPointer { m.matvec(x, $0.baseAddress!, pool: pool, activations: a) }
                    let err = zip(y, ref).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }
                    line += " \(a) x rel RMS \(String(format: "%.3e", (err / refNorm).squareRoot()))"
                }
                print(line)
            }
        }
    }

    @Test func quantizeSpeed() {
        let rows = 11008, cols = 4096
        let w = Self.gaussians(rows * cols, seed: 3, scale: 0.02)
        for threads in [1, 2] {
            let pool = ThreadPool(threads: threads)
            let t = w.withUnsafeBufferPointer { wp in
                Self.time(runs: 3) { _ = Int8Matrix(quantizing: wp, rows: rows, cols: cols, pool: pool) }
            }
            print("quantize \(rows)x\(cols), \(threads) thread(s): best \(Self.f(Double(rows * cols) / t.best / 1e9)) Gweights/s")
        }
    }
}
