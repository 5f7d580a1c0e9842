import CKernels
import Testing

/// The int8 kernels against their scalar specifications on random shapes with odd tails
/// (cols not a multiple of 16/32/64, rows 1/3/17, blocks 32/64/128 with a short last block).
///
/// Tolerances. Quantize, dequant: bit-identical. Matvec, matmul, q8q8: the reference sums in double
/// and rounds once, so it is within u = 2^-24 of the exact value; a SIMD variant adds each term
/// after at most two roundings (w = q*s or s*xs, then the fma) to a lane that takes part in at most
/// L = ceil(cols/8) additions (8-lane AVX2; AVX-512 has half that) and then <= 4 levels of the
/// horizontal sum. The classic bound for such a sum is gamma_k * sum|terms| with k = L + 6, so we
/// allow (cols/8 + 8) * u * sum_i |s * q_i * x_i| per output and print the worst observed ratio
/// (about 0.2, from one-column rows where the SIMD's two roundings meet the smallest allowance).
@Suite struct Q8KernelTests {
    typealias Quantize = (UnsafePointer<Float>, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>, Int, Int, Int) -> Int
    typealias Dequant = (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int) -> Void
    typealias Matvec = (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int) -> Void
    typealias Matmul = (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int) -> Void
    typealias Q8Q8 = (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<Int8>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int) -> Void

    static let shapes: [(rows: Int, cols: Int)] = [
        (1, 1), (1, 31), (3, 32), (3, 33), (17, 64), (17, 65), (1, 100), (3, 127), (17, 129), (3, 257),
        (5, 1000), (1, 4109), (2, 11008), (9, 1088),
    ]
    static let blocks = [32, 64, 128]

    struct Quantized { var q: [Int8]; var scales: [Float]; var bad: Int }

    static func quantize(_ k: Quantize, _ w: [Float], rows: Int, cols: Int, block: Int) -> Quantized {
        let nb = (cols + block - 1) / block
        var q = [Int8](repeating: 99, count: rows * cols), s = [Float](repeating: -7, count: rows * nb)
        let bad = w.withUnsafeBufferPointer { wp in
            q.withUnsafeMutableBufferPointer { qp in
                s.withUnsafeMutableBufferPointer { sp in k(wp.baseAddress!, qp.baseAddress!, sp.baseAddress!, rows, cols, block) }
            }
        }
        return Quantized(q: q, scales: s, bad: bad)
    }

    /// Gaussian rows at different magnitudes, a few outliers, and now and then an all-zero block.
    static func weights(rows: Int, cols: Int, rng: inout TestRNG) -> [Float] {
        var w = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let scale = Float.random(in: 0.001...3, using: &rng)
            for c in 0..<cols { w[r * cols + c] = rng.gaussian() * scale }
            if cols > 40 && r % 2 == 1 { w[r * cols + Int.random(in: 0..<cols, using: &rng)] *= 50 }
            if cols >= 64 && r % 3 == 2 { for c in 32..<64 { w[r * cols + c] = 0 } }
        }
        return w
    }

    // ---- quantize -------------------------------------------------------------------------------
    @Test func quantizeMatchesReferenceBitForBit() {
        var rng = TestRNG(seed: 1)
        for (rows, cols) in Self.shapes {
            for block in Self.blocks {
                let w = Self.weights(rows: rows, cols: cols, rng: &rng)
                let ref = Self.quantize(ck_q8_quantize_ref, w, rows: rows, cols: cols, block: block)
                #expect(ref.bad == 0)
                for (name, k) in [("avx2", ck_q8_quantize_avx2 as Quantize), ("avx512", ck_q8_quantize_avx512),
                                  ("dispatch", ck_q8_quantize)] where ISA.supported(name) {
                    let got = Self.quantize(k, w, rows: rows, cols: cols, block: block)
                    let badQ = firstBitMismatches(got.q, ref.q)
                    let badS = firstBitMismatches(got.scales.map(\.bitPattern), ref.scales.map(\.bitPattern))
                    #expect(badQ.isEmpty && badS.isEmpty && got.bad == 0,
                            "\(name) \(rows)x\(cols) B=\(block): q \(badQ) scales \(badS)")
                }
            }
        }
    }

    /// The rule worked out by hand: amax 127 gives scale 1 and inverse 1, so q = rint(w) with ties
    /// to even; a zero block and a block too small for 127/amax give scale 0; the last block is short.
    @Test func quantizeReferenceKnownValues() {
        var w: [Float] = [127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.49, -127] + Array(repeating: 0, count: 24)
        w += Array(repeating: 0, count: 32)                       // zero block
        w += [1e-38, -2e-38] + Array(repeating: 0, count: 30)     // 127/amax overflows -> zero block
        w += [-6.35, 1]                                            // short block: amax 6.35
        for (name, k) in [("ref", ck_q8_quantize_ref as Quantize), ("avx2", ck_q8_quantize_avx2),
                          ("avx512", ck_q8_quantize_avx512)] where ISA.supported(name) {
            let r = Self.quantize(k, w, rows: 1, cols: w.count, block: 32)
            #expect(Array(r.q[0..<8]) == [127, 2, -4, 0, 0, 2, 126, -127], "\(name)")
            #expect(r.scales[0] == 1 && r.scales[1] == 0 && r.scales[2] == 0, "\(name) \(r.scales)")
            #expect(r.q[32..<96].allSatisfy { $0 == 0 }, "\(name)")
            #expect(r.scales[3] == Float(6.35) / 127, "\(name)")
            #expect(Array(r.q[96...]) == [-127, Int8((Float(1) * (127 / Float(6.35))).rounded(.toNearestOrEven))], "\(name)")
        }
    }

    /// NaN / Inf: that block's scale is NaN, its q are 0, the count says how many such blocks; the
    /// neighbouring blocks are untouched. Same in every variant.
    @Test func quantizeNonFiniteBlocks() {
        var rng = TestRNG(seed: 2)
        let cols = 100, block = 32
        var w = rng.gaussians(3 * cols)
        w[5] = .nan; w[40] = .infinity; w[cols + 99] = -.infinity; w[2 * cols + 64] = .nan
        let ref = Self.quantize(ck_q8_quantize_ref, w, rows: 3, cols: cols, block: block)
        #expect(ref.bad == 4)
        #expect(ref.scales[0].isNaN && ref.scales[1].isNaN && ref.scales[4 + 3].isNaN && ref.scales[8 + 2].isNaN)
        #expect(!ref.scales[2].isNaN && !ref.scales[4].isNaN)
        #expect(ref.q[0..<64].allSatisfy { $0 == 0 } && ref.q[64..<96].contains { $0 != 0 })
        for (name, k) in [("avx2", ck_q8_quantize_avx2 as Quantize), ("avx512", ck_q8_quantize_avx512)]
        where ISA.supported(name) {
            let got = Self.quantize(k, w, rows: 3, cols: cols, block: block)
            #expect(got.bad == 4 && got.q == ref.q, "\(name)")
            #expect(got.scales.map(\.bitPattern) == ref.scales.map(\.bitPattern), "\(name)")
        }
    }

    /// Every |q| <= 127, and |w - q*scale| <= scale/2 (+ a rounding of w*inv) for finite w.
    @Test func quantizeErrorWithinHalfStep() {
        var rng = TestRNG(seed: 3)
        let rows = 17, cols = 257
        for block in Self.blocks {
            let w = Self.weights(rows: rows, cols: cols, rng: &rng)
            let r = Self.quantize(ck_q8_quantize_ref, w, rows: rows, cols: cols, block: block)
            let nb = (cols + block - 1) / block
            for i in 0..<(rows * cols) {
                let s = r.scales[(i / cols) * nb + (i % cols) / block]
                #expect(r.q[i] != -128)
                let err = abs(w[i] - Float(r.q[i]) * s)
                #expect(err <= s * 0.5 * (1 + 1e-5) + 1e-30, "w[\(i)] = \(w[i]) q \(r.q[i]) s \(s)")
            }
        }
    }

    @Test func activationQuantizerIsTheWeightRuleOnOneRow() {
        var rng = TestRNG(seed: 4)
        typealias Act = (UnsafePointer<Float>, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>, Int, Int) -> Int
        for cols in [1, 33, 100, 4109] {
            for block in Self.blocks {
                let x = rng.gaussians(cols, scale: 2)
                let ref = Self.quantize(ck_q8_quantize_ref, x, rows: 1, cols: cols, block: block)
                for (name, k) in [("ref", ck_q8_quantize_act_ref as Act), ("avx2", ck_q8_quantize_act_avx2),
                                  ("avx512", ck_q8_quantize_act_avx512), ("dispatch", ck_q8_quantize_act)]
                where ISA.supported(name) {
                    let got = Self.quantize({ k($0, $1, $2, $4, $5) }, x, rows: 1, cols: cols, block: block)
                    #expect(got.q == ref.q && got.scales.map(\.bitPattern) == ref.scales.map(\.bitPattern),
                            "\(name) cols \(cols) B=\(block)")
                }
            }
        }
    }

    // ---- dequant --------------------------------------------------------------------------------
    @Test func dequantMatchesReferenceBitForBit() {
        var rng = TestRNG(seed: 5)
        for (rows, cols) in Self.shapes {
            for block in Self.blocks {
                let w = Self.weights(rows: rows, cols: cols, rng: &rng)
                let qz = Self.quantize(ck_q8_quantize_ref, w, rows: rows, cols: cols, block: block)
                let ref = Self.dequant(ck_q8_dequant_ref, qz, rows: rows, cols: cols, block: block)
                let nb = (cols + block - 1) / block
                #expect(ref.indices.allSatisfy { ref[$0] == Float(qz.q[$0]) * qz.scales[($0 / cols) * nb + ($0 % cols) / block] })
                for (name, k) in [("avx2", ck_q8_dequant_avx2 as Dequant), ("avx512", ck_q8_dequant_avx512),
                                  ("dispatch", ck_q8_dequant)] where ISA.supported(name) {
                    let got = Self.dequant(k, qz, rows: rows, cols: cols, block: block)
                    let bad = firstBitMismatches(got.map(\.bitPattern), ref.map(\.bitPattern))
                    #expect(bad.isEmpty, "\(name) \(rows)x\(cols) B=\(block): \(bad)")
                }
            }
        }
    }

    static func dequant(_ k: Dequant, _ qz: Quantized, rows: Int, cols: Int, block: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: rows * cols)
        out.withUnsafeMutableBufferPointer { o in k(qz.q, qz.scales, o.baseAddress!, rows, cols, block) }
        return out
    }

    // ---- matvec / matmul (fp32 activations) -----------------------------------------------------
    /// Allowed |got - ref| per output: (cols/8 + 8) * u * sum_i |s * q_i * x_i| (see the suite comment).
    static func tolerance(_ qz: Quantized, _ x: [Float], rows: Int, cols: Int, block: Int) -> [Float] {
        let nb = (cols + block - 1) / block
        let k = Float(cols / 8 + 8) * fp32Unit
        return (0..<rows).map { r in
            var sum: Double = 0
            for i in 0..<cols { sum += abs(Double(qz.scales[r * nb + i / block]) * Double(qz.q[r * cols + i]) * Double(x[i])) }
            return k * Float(sum) + Float.leastNonzeroMagnitude
        }
    }

    static func matvec(_ k: Matvec, _ qz: Quantized, _ x: [Float], rows: Int, cols: Int, block: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows)
        y.withUnsafeMutableBufferPointer { yp in k(qz.q, qz.scales, x, yp.baseAddress!, rows, cols, block) }
        return y
    }

    @Test func matvecReferenceIsTheDefinition() {
        var rng = TestRNG(seed: 6)
        let rows = 3, cols = 257, block = 64, nb = 5
        let qz = Self.quantize(ck_q8_quantize_ref, Self.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
        let x = rng.gaussians(cols)
        let y = Self.matvec(ck_q8_matvec_ref, qz, x, rows: rows, cols: cols, block: block)
        for r in 0..<rows {
            var acc: Double = 0
            for b in 0..<nb {
                var s: Double = 0
                for i in (b * block)..<min((b + 1) * block, cols) { s += Double(qz.q[r * cols + i]) * Double(x[i]) }
                acc += Double(qz.scales[r * nb + b]) * s
            }
            #expect(y[r] == Float(acc))
        }
    }

    @Test func matvecMatchesReference() {
        var rng = TestRNG(seed: 7)
        var worst: Float = 0
        for (rows, cols) in Self.shapes {
            for block in Self.blocks {
                let qz = Self.quantize(ck_q8_quantize_ref, Self.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
                let x = rng.gaussians(cols)
                let ref = Self.matvec(ck_q8_matvec_ref, qz, x, rows: rows, cols: cols, block: block)
                let tol = Self.tolerance(qz, x, rows: rows, cols: cols, block: block)
                for (name, k) in [("avx2", ck_q8_matvec_avx2 as Matvec), ("avx512", ck_q8_matvec_avx512),
                                  ("dispatch", ck_q8_matvec)] where ISA.supported(name) {
                    let got = Self.matvec(k, qz, x, rows: rows, cols: cols, block: block)
                    let bad = firstMismatches(got, ref, tolerance: tol)
                    #expect(bad.isEmpty, "\(name) \(rows)x\(cols) B=\(block) first mismatches: \(bad)")
                    for i in got.indices { worst = max(worst, abs(got[i] - ref[i]) / tol[i]) }
                }
            }
        }
        print("q8 matvec: worst |got - ref| / tolerance = \(worst)")
    }

    /// Matmul against the reference, and each row bit-identical to the same variant's matvec;
    /// ldy > rows leaves the padding alone.
    @Test func matmulMatchesReferenceAndMatvec() {
        var rng = TestRNG(seed: 8)
        let pairs: [(String, Matmul, Matvec)] = [
            ("avx2", ck_q8_matmul_avx2, ck_q8_matvec_avx2), ("avx512", ck_q8_matmul_avx512, ck_q8_matvec_avx512),
            ("dispatch", ck_q8_matmul, ck_q8_matvec), ("ref", ck_q8_matmul_ref, ck_q8_matvec_ref),
        ]
        for (rows, cols) in [(1, 31), (3, 33), (17, 65), (5, 257), (9, 1000), (66, 130)] {
            for block in Self.blocks {
                let qz = Self.quantize(ck_q8_quantize_ref, Self.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
                for n in [1, 2, 5, 6, 7, 13] {
                    let x = rng.gaussians(n * cols), ldy = rows + 3
                    for (name, mm, mv) in pairs where ISA.supported(name) {
                        var y = [Float](repeating: -1, count: n * ldy)
                        y.withUnsafeMutableBufferPointer { yp in mm(qz.q, qz.scales, x, yp.baseAddress!, rows, cols, block, n, ldy) }
                        for t in 0..<n {
                            let xt = Array(x[(t * cols)..<((t + 1) * cols)])
                            let row = Array(y[(t * ldy)..<(t * ldy + rows)])
                            let vec = Self.matvec(mv, qz, xt, rows: rows, cols: cols, block: block)
                            let ref = Self.matvec(ck_q8_matvec_ref, qz, xt, rows: rows, cols: cols, block: block)
                            let bits = firstBitMismatches(row.map(\.bitPattern), vec.map(\.bitPattern))
                            #expect(bits.isEmpty, "\(name) \(rows)x\(cols) B=\(block) n=\(n) token \(t) vs matvec: \(bits)")
                            let bad = firstMismatches(row, ref, tolerance: Self.tolerance(qz, xt, rows: rows, cols: cols, block: block))
                            #expect(bad.isEmpty, "\(name) \(rows)x\(cols) B=\(block) n=\(n) token \(t) vs ref: \(bad)")
                            #expect(y[(t * ldy + rows)..<((t + 1) * ldy)].allSatisfy { $0 == -1 }, "\(name) wrote past rows")
                        }
                    }
                }
            }
        }
    }

    /// A row range computed alone (pointer offsets, as the thread pool does) equals the whole call.
    @Test func rowRangesGiveTheSameRows() {
        var rng = TestRNG(seed: 9)
        let rows = 37, cols = 300, block = 32, nb = 10
        let qz = Self.quantize(ck_q8_quantize_ref, Self.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
        let x = rng.gaussians(cols)
        for (name, k) in [("avx2", ck_q8_matvec_avx2 as Matvec), ("avx512", ck_q8_matvec_avx512)] where ISA.supported(name) {
            let whole = Self.matvec(k, qz, x, rows: rows, cols: cols, block: block)
            var parts = [Float](repeating: .nan, count: rows)
            qz.q.withUnsafeBufferPointer { q in
                qz.scales.withUnsafeBufferPointer { s in
                    parts.withUnsafeMutableBufferPointer { yp in
                        for (r0, r1) in [(0, 5), (5, 6), (6, 22), (22, 37)] {
                            k(q.baseAddress! + r0 * cols, s.baseAddress! + r0 * nb, x, yp.baseAddress! + r0, r1 - r0, cols, block)
                        }
                    }
                }
            }
            #expect(parts.map(\.bitPattern) == whole.map(\.bitPattern), "\(name)")
        }
    }

    // ---- int8 x int8 ----------------------------------------------------------------------------
    @Test func q8q8MatvecMatchesReference() {
        var rng = TestRNG(seed: 10)
        var worst: Float = 0
        for (rows, cols) in Self.shapes {
            for block in Self.blocks {
                let qz = Self.quantize(ck_q8_quantize_ref, Self.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
                var x = rng.gaussians(cols, scale: 3)
                if cols > 10 { x[cols / 2] = 80 }  // an activation outlier
                let xz = Self.quantize(ck_q8_quantize_ref, x, rows: 1, cols: cols, block: block)
                let nb = (cols + block - 1) / block
                let k = Float(cols / 8 + 8) * fp32Unit
                let tol: [Float] = (0..<rows).map { r in
                    var sum: Double = 0
                    for i in 0..<cols {
                        sum += abs(Double(qz.scales[r * nb + i / block]) * Double(xz.scales[i / block]) * Double(qz.q[r * cols + i]) * Double(xz.q[i]))
                    }
                    return k * Float(sum) + Float.leastNonzeroMagnitude
                }
                let ref = Self.q8q8(ck_q8q8_matvec_ref, qz, xz, rows: rows, cols: cols, block: block)
                // The reference is the definition: exact int32 block sums.
                for r in 0..<rows {
                    var acc: Double = 0
                    for b in 0..<nb {
                        var dot = 0
                        for i in (b * block)..<min((b + 1) * block, cols) { dot += Int(qz.q[r * cols + i]) * Int(xz.q[i]) }
                        acc += Double(qz.scales[r * nb + b]) * Double(xz.scales[b]) * Double(dot)
                    }
                    #expect(ref[r] == Float(acc))
                }
                for (name, kern) in [("avx2", ck_q8q8_matvec_avx2 as Q8Q8), ("avx512vnni", ck_q8q8_matvec_avx512vnni),
                                     ("dispatch", ck_q8q8_matvec)] where ISA.supported(name) {
                    let got = Self.q8q8(kern, qz, xz, rows: rows, cols: cols, block: block)
                    let bad = firstMismatches(got, ref, tolerance: tol)
                    #expect(bad.isEmpty, "\(name) \(rows)x\(cols) B=\(block) first mismatches: \(bad)")
                    for i in got.indices { worst = max(worst, abs(got[i] - ref[i]) / tol[i]) }
                }
            }
        }
        print("q8q8 matvec: worst |got - ref| / tolerance = \(worst)")
    }

    /// Extreme codes: q = ±127 against xq = ±127 everywhere (the largest products the unsigned x
    /// signed tricks must carry), all sign combinations, exact in every variant (every partial sum
    /// is an integer below 2^24 at cols = 1000).
    @Test func q8q8ExtremeCodesAreExact() {
        let rows = 4, cols = 1000, block = 32, nb = 32
        var q = [Int8](repeating: 0, count: rows * cols)
        for r in 0..<rows { for i in 0..<cols { q[r * cols + i] = (r == 0 || (r == 2 && i % 2 == 0)) ? 127 : -127 } }
        let xq = (0..<cols).map { Int8($0 % 3 == 0 ? -127 : 127) }
        let qz = Quantized(q: q, scales: Array(repeating: 1, count: rows * nb), bad: 0)
        let xz = Quantized(q: xq, scales: Array(repeating: 1, count: nb), bad: 0)
        let ref = Self.q8q8(ck_q8q8_matvec_ref, qz, xz, rows: rows, cols: cols, block: block)
        for (name, kern) in [("avx2", ck_q8q8_matvec_avx2 as Q8Q8), ("avx512vnni", ck_q8q8_matvec_avx512vnni)]
        where ISA.supported(name) {
            #expect(Self.q8q8(kern, qz, xz, rows: rows, cols: cols, block: block) == ref, "\(name)")
        }
    }

    static func q8q8(_ k: Q8Q8, _ qz: Quantized, _ xz: Quantized, rows: Int, cols: Int, block: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows)
        y.withUnsafeMutableBufferPointer { yp in k(qz.q, qz.scales, xz.q, xz.scales, yp.baseAddress!, rows, cols, block) }
        return y
    }
}
