import CKernels
import Testing

/// The prefill GEMM (int8 weights x int8 activations, VNNI) against its scalar specification:
/// rows not a multiple of 16 or 32 (the packed tiles' masks), token counts around the 6-token
/// micro-kernel, short last blocks, and an output row stride wider than the rows.
/// Tolerance as in Q8KernelTests: (cols/8 + 8) * u * sum_i |s_w * s_x * q_i * xq_i| per output
/// (the VNNI kernel rounds each block term twice and adds nb of them per lane).
@Suite struct Q8Q8MatmulKernelTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 1), (3, 33), (16, 64), (17, 65), (32, 100), (33, 257), (40, 1000), (5, 4109)]
    static let tokens = [1, 5, 6, 7, 13]

    struct Acts { var xu: [UInt8]; var xs: [Float]; var kp: Int }

    static func activations(_ x: [Float], n: Int, cols: Int, block: Int) -> Acts {
        let nb = (cols + block - 1) / block, kp = nb * block
        var xu = [UInt8](repeating: 7, count: n * kp), xs = [Float](repeating: -1, count: n * nb)
        _ = ck_q8q8_act_rows(x, &xu, &xs, n, cols, block)
        return Acts(xu: xu, xs: xs, kp: kp)
    }

    static func matmul(vnni: Bool, _ q: [Int8], _ s: [Float], _ a: Acts, rows: Int, cols: Int, block: Int, n: Int, ldy: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: n * ldy)
        let bytes = 2 * ck_q8q8_tile_bytes(cols, block)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { scratch.deallocate() }
        y.withUnsafeMutableBufferPointer { yp in
            if vnni {
                ck_q8q8_matmul_avx512vnni(q, s, a.xu, a.xs, yp.baseAddress!, rows, cols, block, n, ldy, scratch.assumingMemoryBound(to: UInt8.self))
            } else {
                ck_q8q8_matmul_ref(q, s, a.xu, a.xs, yp.baseAddress!, rows, cols, block, n, ldy)
            }
        }
        return y
    }

    /// Each activation row is the ck_q8_quantize_act rule, stored offset-binary, padded with xq = 0.
    @Test func activationRowsAreTheActRuleOffsetBy128() {
        var rng = TestRNG(seed: 21)
        let n = 3, cols = 70, block = 32, nb = 3, kp = 96
        var x = rng.gaussians(n * cols, scale: 2)
        x[5] = 90
        let a = Self.activations(x, n: n, cols: cols, block: block)
        for t in 0..<n {
            var xq = [Int8](repeating: 0, count: cols), xs = [Float](repeating: 0, count: nb)
            _ = ck_q8_quantize_act_ref(Array(x[(t * cols)..<((t + 1) * cols)]), &xq, &xs, cols, block)
            #expect((0..<cols).allSatisfy { Int(a.xu[t * kp + $0]) - 128 == Int(xq[$0]) })
            #expect((cols..<kp).allSatisfy { a.xu[t * kp + $0] == 128 })
            #expect(Array(a.xs[(t * nb)..<((t + 1) * nb)]) == xs)
        }
    }

    @Test func vnniMatchesReference() {
        var rng = TestRNG(seed: 22)
        var worst: Float = 0
        for (rows, cols) in Self.shapes {
            for block in [32, 64] {
                let nb = (cols + block - 1) / block
                let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng),
                                                rows: rows, cols: cols, block: block)
                for n in Self.tokens {
                    var x = rng.gaussians(n * cols, scale: 3)
                    if cols > 10 { x[cols / 2] = 80 }
                    let a = Self.activations(x, n: n, cols: cols, block: block)
                    let ldy = rows + 3
                    let ref = Self.matmul(vnni: false, qz.q, qz.scales, a, rows: rows, cols: cols, block: block, n: n, ldy: ldy)
                    // The reference row of token t is ck_q8q8_matvec_ref of that token (the same definition).
                    for t in 0..<n {
                        let xq = (0..<cols).map { Int8(Int(a.xu[t * a.kp + $0]) - 128) }
                        var y = [Float](repeating: 0, count: rows)
                        ck_q8q8_matvec_ref(qz.q, qz.scales, xq, Array(a.xs[(t * nb)..<((t + 1) * nb)]), &y, rows, cols, block)
                        #expect(Array(ref[(t * ldy)..<(t * ldy + rows)]) == y, "ref row \(t) \(rows)x\(cols)")
                    }
                    guard ISA.supported("avx512vnni") else { continue }
                    let got = Self.matmul(vnni: true, qz.q, qz.scales, a, rows: rows, cols: cols, block: block, n: n, ldy: ldy)
                    let w = expectInt8ProductRows(got: got, ref: ref, q: qz.q, scales: qz.scales, xs: a.xs,
                                                  xq: { Int(a.xu[$0 * a.kp + $1]) - 128 }, rows: rows, cols: cols, block: block,
                                                  n: n, ldy: ldy, label: "\(rows)x\(cols) B=\(block)")
                    worst = max(worst, w)
                }
            }
        }
        print("q8q8 matmul vnni: worst |got - ref| / tolerance = \(worst)")
    }

    /// q = ±127 against xq = ±127 (the offset trick's largest terms): exact, as every partial sum
    /// is an integer below 2^24.
    @Test func extremeCodesAreExact() {
        guard ISA.supported("avx512vnni") else { return }
        let rows = 35, cols = 1000, block = 32, nb = 32, n = 7
        var q = [Int8](repeating: 0, count: rows * cols)
        for r in 0..<rows { for i in 0..<cols { q[r * cols + i] = (r % 3 == 0 || (r % 3 == 2 && i % 2 == 0)) ? 127 : -127 } }
        let kp = nb * block  // rows of xu are padded to whole blocks (xq = 0 there)
        var xu = [UInt8](repeating: 128, count: n * kp)
        for t in 0..<n { for i in 0..<cols { xu[t * kp + i] = (i + t) % 3 == 0 ? 1 : 255 } }
        let a = Acts(xu: xu, xs: Array(repeating: 1, count: n * nb), kp: kp)
        let s = [Float](repeating: 1, count: rows * nb)
        #expect(Self.matmul(vnni: true, q, s, a, rows: rows, cols: cols, block: block, n: n, ldy: rows)
            == Self.matmul(vnni: false, q, s, a, rows: rows, cols: cols, block: block, n: n, ldy: rows))
    }
}
