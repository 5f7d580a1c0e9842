import CKernels
import Foundation
import Testing
@testable import Engine

/// Int8Matrix / F32Matrix / ThreadPool against plain Swift references.
///
/// Tolerances (u = 2^-24, sums in double are exact enough to be the truth):
/// - vs the dequantized weights: the kernels' fp32 summation error, at most
///   (cols/8 + 8) * u * sum_i |wq_i * x_i| (the bound justified in CKernelsTests).
/// - vs the original weights: that, plus the quantization error, each |w - wq| <= scale/2, so
///   |y - W·x| <= sum_i scale(i)/2 * |x_i|.
/// - int8 activations additionally round x to xs/2 per element: + sum_i |wq_i| * xs(i)/2.
@Suite("Quant matrices")
struct QuantTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 33), (3, 100), (17, 257), (20, 4109), (130, 1031)]
    static let pools = [ThreadPool(threads: 1), ThreadPool(threads: 2), ThreadPool(threads: 3)]
    /// fp32 unit roundoff.
    static let unit = 1.0 / Double(1 << 24)

    /// Row-major W·x in double, and sum |w·x| per row.
    static func reference(_ w: [Float], _ x: [Float], rows: Int, cols: Int) -> (y: [Double], mag: [Double]) {
        var y = [Double](repeating: 0, count: rows), mag = y
        for r in 0..<rows {
            for i in 0..<cols {
                let p = Double(w[r * cols + i]) * Double(x[i])
                y[r] += p
                mag[r] += abs(p)
            }
        }
        return (y, mag)
    }

    static func matvec(_ m: any LinearWeight, _ x: [Float], pool: ThreadPool) -> [Float] {
        var y = [Float](repeating: .nan, count: m.rows)
        y.withUnsafeMutableBufferPointer { m.matvec(x, $0.baseAddress!, pool: pool) }
        return y
    }

    static func matvec(_ m: Int8Matrix, _ x: [Float], pool: ThreadPool, _ a: Int8Matrix.Activations) -> [Float] {
        var y = [Float](repeating: .nan, count: m.rows)
        y.withUnsafeMutableBufferPointer { m.matvec(x, $0.baseAddress!, pool: pool, activations: a) }
        return y
    }

    static func matmul(_ m: any LinearWeight, _ x: [Float], n: Int, pool: ThreadPool) -> [Float] {
        var y = [Float](repeating: .nan, count: n * m.rows)
        y.withUnsafeMutableBufferPointer { m.matmul(x, n: n, $0.baseAddress!, pool: pool) }
        return y
    }

    static func matmul(_ m: Int8Matrix, _ x: [Float], n: Int, pool: ThreadPool, _ method: Int8Matrix.MatmulMethod) -> [Float] {
        var y = [Float](repeating: .nan, count: n * m.rows)
        y.withUnsafeMutableBufferPointer { m.matmul(x, n: n, $0.baseAddress!, pool: pool, method: method) }
        return y
    }

    static func weights(_ rows: Int, _ cols: Int, _ rng: inout SplitMix64) -> [Float] {
        var w = rng.gaussians(rows * cols, scale: 0.02)
        for k in stride(from: 7, to: w.count, by: 997) { w[k] *= 40 }  // outliers
        return w
    }

    @Test func matvecMatchesDequantizedAndOriginalWeights() {
        var rng = SplitMix64(seed: 1)
        let pool = Self.pools[1]
        for (rows, cols) in Self.shapes {
            for block in [32, 64, 128] {
                let w = Self.weights(rows, cols, &rng), x = rng.gaussians(cols)
                let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block) }
                #expect(m.nonFiniteBlocks == 0 && m.blocksPerRow == (cols + block - 1) / block)
                let counts = Int8Matrix.storageCounts(rows: rows, cols: cols, block: block)
                #expect(m.byteSize == counts.codes + counts.scales * 4)
                #expect(m.layout != .rowMajor || m.byteSize == rows * cols + rows * m.blocksPerRow * 4)
                let wq = m.dequantized()
                let (refQ, magQ) = Self.reference(wq, x, rows: rows, cols: cols)
                let (refW, _) = Self.reference(w, x, rows: rows, cols: cols)
                let scales = m.rowMajorStorage().scales
                // fp32 activations (the protocol's matvec takes int8 ones where the CPU has VNNI:
                // int8ActivationsWithinTheirBound covers those).
                let y = Self.matvec(m, x, pool: pool, .f32)
                let k = Double(cols / 8 + 8) * Self.unit
                var bad: [String] = []
                for r in 0..<rows {
                    let tight = k * magQ[r]
                    var quant = 0.0
                    for i in 0..<cols { quant += Double(scales[r * m.blocksPerRow + i / block]) / 2 * abs(Double(x[i])) }
                    if abs(Double(y[r]) - refQ[r]) > tight { bad.append("[\(r)] vs dequantized: \(y[r]) want \(refQ[r]) ± \(tight)") }
                    if abs(Double(y[r]) - refW[r]) > quant * 1.0001 + tight {
                        bad.append("[\(r)] vs fp32 W: \(y[r]) want \(refW[r]) ± \(quant)")
                    }
                }
                #expect(bad.isEmpty, "\(rows)x\(cols) B=\(block): \(bad.prefix(4))")
            }
        }
    }

    @Test func int8ActivationsWithinTheirBound() {
        var rng = SplitMix64(seed: 2)
        let pool = Self.pools[1]
        for (rows, cols) in Self.shapes {
            for block in [32, 128] {
                let w = Self.weights(rows, cols, &rng), x = rng.gaussians(cols)
                let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block) }
                let wq = m.dequantized()
                let (refQ, _) = Self.reference(wq, x, rows: rows, cols: cols)
                var xq = [Int8](repeating: 0, count: cols), xs = [Float](repeating: 0, count: m.blocksPerRow)
                _ = ck_q8_quantize_act_ref(x, &xq, &xs, cols, block)
                let y = Self.matvec(m, x, pool: pool, .int8)
                // The protocol's matvec is the default choice (int8 activations where the CPU has VNNI).
                #expect(Self.matvec(m, x, pool: pool).map(\.bitPattern) == Self.matvec(m, x, pool: pool, Int8Matrix.defaultActivations).map(\.bitPattern))
                let k = Double(cols / 8 + 8) * Self.unit
                for r in 0..<rows {
                    // |xhat - x| <= xs/2 per element, and the fp32 sums over |wq| * |xhat|.
                    var bound = 0.0
                    for i in 0..<cols {
                        let wqi = abs(Double(wq[r * cols + i])), half = Double(xs[i / block]) / 2
                        bound += wqi * half * 1.0001 + k * wqi * (abs(Double(x[i])) + half)
                    }
                    #expect(abs(Double(y[r]) - refQ[r]) <= bound, "\(rows)x\(cols) B=\(block) [\(r)]: \(y[r]) want \(refQ[r]) ± \(bound)")
                }
            }
        }
    }

    /// The thread count changes nothing: every output row is computed by the same code whatever
    /// range it falls in; and matmul's row t is matvec of token t, bit for bit.
    @Test func threadsAndBatchingGiveIdenticalBits() {
        var rng = SplitMix64(seed: 3)
        for (rows, cols) in Self.shapes {
            let w = Self.weights(rows, cols, &rng)
            let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 32) }
            let n = 7
            let x = rng.gaussians(n * cols)
            let x0 = Array(x[0..<cols])
            for a in [Int8Matrix.Activations.f32, .int8] {
                let one = Self.matvec(m, x0, pool: Self.pools[0], a).map(\.bitPattern)
                for pool in Self.pools.dropFirst() {
                    #expect(Self.matvec(m, x0, pool: pool, a).map(\.bitPattern) == one, "\(rows)x\(cols) \(a) threads \(pool.threads)")
                }
            }
            let mm1 = Self.matmul(m, x, n: n, pool: Self.pools[0], .int8Kernel)
            for pool in Self.pools.dropFirst() {
                #expect(Self.matmul(m, x, n: n, pool: pool, .int8Kernel).map(\.bitPattern) == mm1.map(\.bitPattern), "\(rows)x\(cols) matmul threads \(pool.threads)")
            }
            // The protocol's matmul (automatic): where the CPU has VNNI, the row kernel up to
            // rowsMaxTokens (each token's row then is decode's int8 matvec of it, bit for bit) and
            // the VNNI GEMM beyond; elsewhere the int8 kernel below blasMinTokens.
            let auto = Int8Matrix.vnniAvailable ? Self.matmul(m, x, n: n, pool: Self.pools[0], .rows) : mm1
            #expect(Self.matmul(m as any LinearWeight, x, n: n, pool: Self.pools[1]).map(\.bitPattern) == auto.map(\.bitPattern))
            if Int8Matrix.vnniAvailable {
                #expect(n <= Int8Matrix.rowsMaxTokens)
                for t in 0..<n {
                    let row = Self.matvec(m, Array(x[(t * cols)..<((t + 1) * cols)]), pool: Self.pools[1], .int8)
                    #expect(Array(auto[(t * rows)..<((t + 1) * rows)]).map(\.bitPattern) == row.map(\.bitPattern), "\(rows)x\(cols) rows token \(t)")
                }
                let big = Int8Matrix.rowsMaxTokens + 1, xb = rng.gaussians(big * cols)
                #expect(Self.matmul(m as any LinearWeight, xb, n: big, pool: Self.pools[1]).map(\.bitPattern)
                        == Self.matmul(m, xb, n: big, pool: Self.pools[0], .vnniGEMM).map(\.bitPattern), "\(rows)x\(cols) GEMM past rowsMaxTokens")
            }
            // The VNNI GEMM: every (token, row) is the same chain of operations whatever the thread
            // split and whichever tokens share its micro-kernel, so the bits do not change.
            let vn = Self.matmul(m, x, n: n, pool: Self.pools[0], .vnniGEMM).map(\.bitPattern)
            for pool in Self.pools.dropFirst() {
                #expect(Self.matmul(m, x, n: n, pool: pool, .vnniGEMM).map(\.bitPattern) == vn, "\(rows)x\(cols) vnni threads \(pool.threads)")
            }
            for t in [0, n - 1] {
                let one = Self.matmul(m, Array(x[(t * cols)..<((t + 1) * cols)]), n: 1, pool: Self.pools[1], .vnniGEMM).map(\.bitPattern)
                #expect(Array(vn[(t * rows)..<((t + 1) * rows)]) == one, "\(rows)x\(cols) vnni token \(t) alone")
            }
            for t in 0..<n {
                let row = Self.matvec(m, Array(x[(t * cols)..<((t + 1) * cols)]), pool: Self.pools[1], .f32)
                #expect(Array(mm1[(t * rows)..<((t + 1) * rows)]).map(\.bitPattern) == row.map(\.bitPattern), "\(rows)x\(cols) token \(t)")
            }
        }
    }

    /// Dequantize + sgemm, and the automatic choice at a batch size where it may take BLAS: both
    /// within the any-order summation bound of the product with the dequantized weights.
    @Test func dequantizeBLASPrefillAgrees() {
        var rng = SplitMix64(seed: 4)
        let pool = Self.pools[1]
        for (rows, cols) in [(3, 100), (20, 4109), (300, 520)] {
            // (.automatic takes the VNNI GEMM on CPUs with VNNI: int8 activations, tested below.)
            let automatic = Int8Matrix.vnniAvailable ? [] : [(Int8Matrix.blasMinTokens + 1, Int8Matrix.MatmulMethod.automatic)]
            for (n, method) in [(9, Int8Matrix.MatmulMethod.dequantizeBLAS)] + automatic {
                let w = Self.weights(rows, cols, &rng), x = rng.gaussians(n * cols)
                let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols) }
                let wq = m.dequantized()
                let y = Self.matmul(m, x, n: n, pool: pool, method)
                var bad: [String] = []
                for t in 0..<n {
                    let (ref, mag) = Self.reference(wq, Array(x[(t * cols)..<((t + 1) * cols)]), rows: rows, cols: cols)
                    for r in 0..<rows {
                        let tol = Double(cols + 8) * Self.unit * mag[r]  // any summation order
                        if !(abs(Double(y[t * rows + r]) - ref[r]) <= tol) { bad.append("[\(t), \(r)] \(y[t * rows + r]) want \(ref[r])") }
                    }
                }
                #expect(bad.isEmpty, "\(rows)x\(cols) n=\(n) \(method): \(bad.prefix(4))")
            }
        }
    }

    /// The VNNI GEMM is the int8 x int8 definition: each token's activations quantized per block
    /// by the weight rule, exact int32 block dot products, scaled by both scales and summed; within
    /// fp32 summation error of that sum in double (the kernel adds nb block terms per lane).
    @Test func vnniPrefillIsTheInt8Definition() {
        guard Int8Matrix.vnniAvailable else { return }
        var rng = SplitMix64(seed: 8)
        for (rows, cols) in [(3, 100), (20, 4109), (130, 1031)] {
            let n = 13, block = 32, nb = (cols + block - 1) / block
            let w = Self.weights(rows, cols, &rng), x = rng.gaussians(n * cols)
            let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block) }
            let wq = m.rowMajorStorage()
            let y = Self.matmul(m, x, n: n, pool: Self.pools[1], .vnniGEMM)
            var bad: [String] = []
            for t in 0..<n {
                var xq = [Int8](repeating: 0, count: cols), xs = [Float](repeating: 0, count: nb)
                _ = ck_q8_quantize_act_ref(Array(x[(t * cols)..<((t + 1) * cols)]), &xq, &xs, cols, block)
                for r in 0..<rows {
                    var want = 0.0, mag = 0.0
                    for b in 0..<nb {
                        var dot = 0
                        for i in (b * block)..<min((b + 1) * block, cols) { dot += Int(wq.0[r * cols + i]) * Int(xq[i]) }
                        let term = Double(wq.1[r * nb + b]) * Double(xs[b]) * Double(dot)
                        want += term
                        mag += abs(term)
                    }
                    if !(abs(Double(y[t * rows + r]) - want) <= Double(nb + 8) * Self.unit * mag) { bad.append("[\(t), \(r)] \(y[t * rows + r]) want \(want)") }
                }
            }
            #expect(bad.isEmpty, "\(rows)x\(cols): \(bad.prefix(4))")
        }
    }

    @Test func f32MatrixMatchesReference() {
        var rng = SplitMix64(seed: 5)
        for (rows, cols) in Self.shapes {
            let n = 5
            let w = Self.weights(rows, cols, &rng), x = rng.gaussians(n * cols)
            let m = w.withUnsafeBufferPointer { F32Matrix($0, rows: rows, cols: cols) }
            #expect(m.dequantized() == w && m.byteSize == rows * cols * 4)
            for pool in Self.pools {
                let mm = Self.matmul(m, x, n: n, pool: pool)
                for t in 0..<n {
                    let xt = Array(x[(t * cols)..<((t + 1) * cols)])
                    let (ref, mag) = Self.reference(w, xt, rows: rows, cols: cols)
                    let mv = Self.matvec(m, xt, pool: pool)
                    for r in 0..<rows {
                        let tol = Double(cols + 8) * Self.unit * mag[r]
                        #expect(abs(Double(mv[r]) - ref[r]) <= tol, "matvec \(rows)x\(cols) threads \(pool.threads) [\(r)]")
                        #expect(abs(Double(mm[t * rows + r]) - ref[r]) <= tol, "matmul \(rows)x\(cols) threads \(pool.threads) [\(t), \(r)]")
                    }
                }
            }
        }
    }

    /// The tile layout (VNNI CPUs) and row-major (the rest) hold the same codes and scales, and
    /// their products agree within the int8-activation bound of either; both layouts are built here
    /// whatever the CPU prefers, and each round-trips through its own storage.
    @Test func tileAndRowMajorLayoutsAgree() {
        var rng = SplitMix64(seed: 9)
        let pool = Self.pools[2]
        for (rows, cols) in [(1, 40), (17, 100), (50, 4109), (300, 256)] {
            let w = Self.weights(rows, cols, &rng), n = 5, x = rng.gaussians(n * cols)
            let a = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 32, pool: pool, layout: .rowMajor) }
            let b = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 32, pool: pool, layout: .tiles) }
            #expect(a.rowMajorStorage().codes == b.rowMajorStorage().codes)
            #expect(a.rowMajorStorage().scales.map(\.bitPattern) == b.rowMajorStorage().scales.map(\.bitPattern))
            #expect(a.dequantized().map(\.bitPattern) == b.dequantized().map(\.bitPattern))
            let copy = b.withUnsafeStorage { q, s in Int8Matrix(rows: rows, cols: cols, block: 32, q: q, scales: s, pool: pool, layout: .tiles) }
            #expect(copy.dequantized().map(\.bitPattern) == b.dequantized().map(\.bitPattern))
            let wq = a.dequantized()
            for method in [Int8Matrix.MatmulMethod.automatic, .int8Kernel, .dequantizeBLAS] {
                let ya = Self.matmul(a, x, n: n, pool: pool, method), yb = Self.matmul(b, x, n: n, pool: pool, method)
                for t in 0..<n {
                    let (ref, mag) = Self.reference(wq, Array(x[(t * cols)..<((t + 1) * cols)]), rows: rows, cols: cols)
                    for r in 0..<rows {
                        // int8 activations round each x by up to half its block's step: 2 % of mag is far past that and far below a wrong row.
                        let tol = 0.02 * mag[r] + 1e-6
                        #expect(abs(Double(ya[t * rows + r]) - ref[r]) <= tol && abs(Double(yb[t * rows + r]) - ref[r]) <= tol,
                                "\(rows)x\(cols) \(method) [\(t), \(r)]: \(ya[t * rows + r]) / \(yb[t * rows + r]) want \(ref[r])")
                    }
                }
            }
        }
    }

    @Test func parallelQuantizationAndStorageRoundTrip() {
        var rng = SplitMix64(seed: 6)
        let rows = 301, cols = 999
        var w = Self.weights(rows, cols, &rng)
        w[5 * cols + 3] = .nan
        w[200 * cols + 998] = -.infinity
        let serial = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 64) }
        let parallel = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 64, pool: Self.pools[2]) }
        #expect(serial.nonFiniteBlocks == 2 && parallel.nonFiniteBlocks == 2)
        let (q1, s1) = serial.withUnsafeStorage { (Array($0), Array($1)) }
        let (q2, s2) = parallel.withUnsafeStorage { (Array($0), Array($1)) }
        #expect(q1 == q2 && s1.map(\.bitPattern) == s2.map(\.bitPattern))
        let copy = q1.withUnsafeBufferPointer { q in
            s1.withUnsafeBufferPointer { s in Int8Matrix(rows: rows, cols: cols, block: 64, q: q, scales: s) }
        }
        #expect(copy.nonFiniteBlocks == 2 && copy.dequantized().map(\.bitPattern) == serial.dequantized().map(\.bitPattern))
    }

    // ---- thread pool ----------------------------------------------------------------------------
    @Test func parallelForVisitsEachIndexOnce() {
        for pool in Self.pools {
            for n in [0, 1, 2, 3, 5, 64, 1001] {
                var hits = [Int](repeating: 0, count: n)
                hits.withUnsafeMutableBufferPointer { h in pool.parallelFor(n) { h[$0] += 1 } }
                #expect(hits.allSatisfy { $0 == 1 }, "threads \(pool.threads) n \(n)")
            }
        }
    }

    @Test func chunksAreContiguousAndAligned() {
        let pool = Self.pools[2]
        for (n, align) in [(1, 4), (10, 4), (11008, 4), (17, 16), (100, 1)] {
            var ranges = [Range<Int>](repeating: 0..<0, count: pool.threads)
            ranges.withUnsafeMutableBufferPointer { rs in pool.parallelChunks(n, alignment: align) { c, r in rs[c] = r } }
            let used = ranges.filter { !$0.isEmpty }
            #expect(used.first?.lowerBound == 0 && used.last?.upperBound == n, "\(n) \(ranges)")
            for (a, b) in zip(used, used.dropFirst()) { #expect(a.upperBound == b.lowerBound && a.upperBound % align == 0, "\(ranges)") }
        }
    }

    /// Many short jobs back to back (the decode pattern), from two caller threads at once.
    @Test func manyShortJobs() async {
        let pool = Self.pools[2]
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var total = 0
                    for i in 0..<3000 {
                        var parts = [Int](repeating: 0, count: 3)
                        parts.withUnsafeMutableBufferPointer { p in pool.parallelChunks(30, alignment: 1) { c, r in p[c] = r.reduce(0, +) + i } }
                        total += parts.reduce(0, +) - 3 * i
                    }
                    return total
                }
            }
            for await t in group { #expect(t == 3000 * 435) }
        }
    }

    @Test func poolsComeAndGo() {
        for _ in 0..<20 {
            let pool = ThreadPool(threads: 3)
            var x = [Int](repeating: 0, count: 3)
            x.withUnsafeMutableBufferPointer { p in pool.parallelFor(3) { p[$0] = $0 } }
            #expect(x == [0, 1, 2])
        }
    }

    @Test func physicalCoreCount() {
        #expect(ThreadPool.physicalCores >= 1 && ThreadPool.physicalCores <= ProcessInfo.processInfo.activeProcessorCount)
        let text = """
        processor\t: 0
        physical id\t: 0
        core id\t\t: 0

        processor\t: 1
        physical id\t: 0
        core id\t\t: 0

        processor\t: 2
        physical id\t: 1
        core id\t\t: 0

        processor\t: 3
        physical id\t: 1
        core id\t\t: 1
        """
        #expect(ThreadPool.parseCpuinfoCores(text) == 3)
        #expect(ThreadPool.parseCpuinfoCores("processor\t: 0\nBogoMIPS\t: 50\n") == nil)
    }
}

/// Quantizing in chunks of rows (the loader's streaming path) gives exactly the one-shot result.
@Test func chunkedQuantizationEqualsOneShot() {
    let rows = 37, cols = 96
    var g = SystemRandomNumberGenerator()
    let w = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &g) }
    let whole = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 32) }
    for (chunk, threads) in [(1, 1), (5, 2), (37, 2), (100, 1)] {
        let pool = ThreadPool(threads: threads)
        let streamed = Int8Matrix(rows: rows, cols: cols, block: 32, chunkRows: chunk, pool: pool) { r, out in
            for (k, i) in (r.lowerBound * cols..<r.upperBound * cols).enumerated() { out[k] = w[i] }
        }
        whole.withUnsafeStorage { q1, s1 in
            streamed.withUnsafeStorage { q2, s2 in
                #expect(Array(q1) == Array(q2), "chunk \(chunk)")
                #expect(Array(s1).map(\.bitPattern) == Array(s2).map(\.bitPattern), "chunk \(chunk)")
            }
        }
    }
}

/// The loader's fp16/bf16 conversion from unaligned mapped bytes equals the aligned kernel.
@Test func loaderConvertsUnalignedHalfRows() {
    let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x8000, 0x4248]
    var bytes = [UInt8](repeating: 0, count: 1 + halves.count * 2)
    for (i, h) in halves.enumerated() { bytes[1 + 2 * i] = UInt8(h & 0xFF); bytes[2 + 2 * i] = UInt8(h >> 8) }
    for dtype in [DType.f16, .bf16] {
        var aligned = [Float](repeating: 0, count: halves.count)
        (dtype == .f16 ? ck_f16_to_f32 : ck_bf16_to_f32)(halves, &aligned, halves.count)
        var got = [Float](repeating: 0, count: 3)
        bytes.withUnsafeBytes { raw in
            let shifted = UnsafeRawBufferPointer(rebasing: raw[1...])
            got.withUnsafeMutableBufferPointer { WeightLoader.convert(shifted, dtype, 2..<5, into: $0.baseAddress!) }
        }
        #expect(got.map(\.bitPattern) == aligned[2..<5].map(\.bitPattern), "\(dtype)")
    }
}

extension SplitMix64 {
    /// Normal deviates (Box–Muller), for random weights and activations.
    mutating func gaussians(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)) * scale
        }
    }
}
