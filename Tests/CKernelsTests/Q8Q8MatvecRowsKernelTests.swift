import CKernels
import Testing

/// Batched decode's kernel: n activation rows against one weight matrix. Each output row must be
/// bit-identical to ck_q8q8_matvec of that activation alone in the same variant (so a sequence
/// decoded in a batch gets exactly the logits it gets alone), and within the matvec tolerance of
/// the `_ref` twin (q8q8MatvecMatchesReference derives it: (cols/8 + 8) units of fp32 roundoff
/// times Σ|terms|, the SIMD twins summing blocks in fp32 where the ref sums in double).
@Suite struct Q8Q8MatvecRowsKernelTests {
    typealias Rows = (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<UInt8>, UnsafePointer<Float>,
                      UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int) -> Void

    /// cols a multiple of 64 with block 32 take the multi-row VNNI path; the others its per-row fallback.
    static let shapes: [(rows: Int, cols: Int, block: Int)] = [
        (1, 64, 32), (5, 128, 32), (13, 640, 32), (36, 1088, 32), (9, 96, 32), (7, 300, 32), (11, 256, 64), (6, 640, 128),
    ]

    @Test func everyRowEqualsTheSingleRowKernelAndTheReference() {
        var rng = TestRNG(seed: 21)
        for (rows, cols, block) in Self.shapes {
            let nb = (cols + block - 1) / block
            let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng),
                                            rows: rows, cols: cols, block: block)
            for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 17] {
                var xu: [UInt8] = [], xs: [Float] = [], acts: [Q8KernelTests.Quantized] = []
                for _ in 0..<n {
                    var x = rng.gaussians(cols, scale: 3)
                    x[cols / 3] = 60                                  // an activation outlier
                    let a = Q8KernelTests.quantize(ck_q8_quantize_ref, x, rows: 1, cols: cols, block: block)
                    acts.append(a)
                    xu += Self.offsetBinary(a.q, rowLength: nb * block)
                    xs += a.scales
                }
                let ldy = rows + 3
                for (name, rowsKernel, single) in [("ref", ck_q8q8_matvec_rows_ref as Rows, ck_q8q8_matvec_ref as Q8KernelTests.Q8Q8),
                                                   ("avx512vnni", ck_q8q8_matvec_rows_avx512vnni, ck_q8q8_matvec_avx512vnni),
                                                   ("dispatch", ck_q8q8_matvec_rows, ck_q8q8_matvec)] where ISA.supported(name) {
                    var y = [Float](repeating: -1, count: n * ldy)
                    y.withUnsafeMutableBufferPointer { yp in
                        rowsKernel(qz.q, qz.scales, xu, xs, yp.baseAddress!, rows, cols, block, n, ldy)
                    }
                    for t in 0..<n {
                        let got = Array(y[(t * ldy)..<(t * ldy + rows)])
                        let alone = Q8KernelTests.q8q8(single, qz, acts[t], rows: rows, cols: cols, block: block)
                        let bits = firstBitMismatches(got.map(\.bitPattern), alone.map(\.bitPattern))
                        #expect(bits.isEmpty, "\(name) \(rows)x\(cols) B=\(block) n=\(n) activation \(t) vs its matvec: \(bits)")
                        let ref = Q8KernelTests.q8q8(ck_q8q8_matvec_ref, qz, acts[t], rows: rows, cols: cols, block: block)
                        let k = Float(cols / 8 + 8) * fp32Unit
                        let tol: [Float] = (0..<rows).map { r in
                            var sum: Double = 0
                            for i in 0..<cols {
                                sum += abs(Double(qz.scales[r * nb + i / block]) * Double(acts[t].scales[i / block])
                                           * Double(qz.q[r * cols + i]) * Double(acts[t].q[i]))
                            }
                            return k * Float(sum) + Float.leastNonzeroMagnitude
                        }
                        let bad = firstMismatches(got, ref, tolerance: tol)
                        #expect(bad.isEmpty, "\(name) \(rows)x\(cols) B=\(block) n=\(n) activation \(t) vs ref: \(bad)")
                        #expect(y[(t * ldy + rows)..<((t + 1) * ldy)].allSatisfy { $0 == -1 }, "\(name) wrote past rows")
                    }
                }
            }
        }
    }

    /// Activation codes as ck_q8q8_act_rows lays them out: xq + 128, rows padded to `rowLength`
    /// with code 0 (byte 0x80).
    static func offsetBinary(_ xq: [Int8], rowLength: Int) -> [UInt8] {
        let cols = xq.count
        return (0..<rowLength).map { $0 < cols ? UInt8(bitPattern: xq[$0]) ^ 0x80 : 0x80 }
    }

    /// The offset-binary rows of ck_q8q8_act_rows are what the tests above build by hand.
    @Test func actRowsAreOffsetBinaryCodes() {
        var rng = TestRNG(seed: 23)
        let n = 3, cols = 200, block = 32, nb = 7
        let x = rng.gaussians(n * cols)
        var xu = [UInt8](repeating: 1, count: n * nb * block), xs = [Float](repeating: 0, count: n * nb)
        _ = ck_q8q8_act_rows(x, &xu, &xs, n, cols, block)
        for t in 0..<n {
            let a = Q8KernelTests.quantize(ck_q8_quantize_ref, Array(x[(t * cols)..<((t + 1) * cols)]), rows: 1, cols: cols, block: block)
            #expect(Array(xu[(t * nb * block)..<((t + 1) * nb * block)]) == Self.offsetBinary(a.q, rowLength: nb * block))
            #expect(Array(xs[(t * nb)..<((t + 1) * nb)]).map(\.bitPattern) == a.scales.map(\.bitPattern))
        }
    }

    /// A thread's row range (pointer offsets, as Int8Matrix splits rows) gives the whole call's rows.
    @Test func rowRangesGiveTheSameRows() {
        var rng = TestRNG(seed: 22)
        let rows = 23, cols = 512, block = 32, nb = 16, n = 11
        let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng),
                                        rows: rows, cols: cols, block: block)
        let x = Q8KernelTests.quantize(ck_q8_quantize_ref, rng.gaussians(n * cols), rows: n, cols: cols, block: block)
        let xu = x.q.map { UInt8(bitPattern: $0) ^ 0x80 }             // cols = nb · block: no padding
        for (name, k) in [("avx512vnni", ck_q8q8_matvec_rows_avx512vnni as Rows), ("dispatch", ck_q8q8_matvec_rows)] where ISA.supported(name) {
            var whole = [Float](repeating: .nan, count: n * rows), parts = whole
            whole.withUnsafeMutableBufferPointer { k(qz.q, qz.scales, xu, x.scales, $0.baseAddress!, rows, cols, block, n, rows) }
            qz.q.withUnsafeBufferPointer { q in
                qz.scales.withUnsafeBufferPointer { s in
                    parts.withUnsafeMutableBufferPointer { yp in
                        for (r0, r1) in [(0, 4), (4, 5), (5, 16), (16, 23)] {
                            k(q.baseAddress! + r0 * cols, s.baseAddress! + r0 * nb, xu, x.scales, yp.baseAddress! + r0, r1 - r0, cols, block, n, rows)
                        }
                    }
                }
            }
            #expect(parts.map(\.bitPattern) == whole.map(\.bitPattern), "\(name)")
        }
    }
}
