import CKernels
import Testing

/// The packed 16-row tile layout (q8_tiles.c): packing round-trips, dequantizes to the row-major
/// bits, and its VNNI product matches the scalar specification — which is itself the row-major
/// int8 x int8 definition (ck_q8q8_matvec_ref) — for row counts off the tile size, short last
/// blocks, every token count of the kernel's shapes (1–3: four tiles; more: two tiles x 6), and
/// an output stride wider than the rows. Tolerance as in Q8Q8MatmulKernelTests.
@Suite struct Q8TilesKernelTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 1), (3, 33), (16, 64), (17, 65), (40, 100), (63, 257), (70, 1000), (5, 4109)]
    // Every path of the VNNI kernel: decode (1-3), tile pairs (4-5, 129 and up), one tile in balanced
    // passes of up to 8 (6-128: 9 = 5 + 4, 17 = 6 + 6 + 5).
    static let tokens = [1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 130]

    struct Tiles { var codes: [UInt8]; var scales: [Float] }
    struct Acts { var xq: [Int8]; var xs: [Float]; var xc: [Int32]; var kp: Int }

    static func pack(_ q: [Int8], _ s: [Float], rows: Int, cols: Int, block: Int) -> Tiles {
        let nb = (cols + block - 1) / block, padded = ck_q8t_padded_rows(rows)
        var codes = [UInt8](repeating: 7, count: padded * nb * block), ts = [Float](repeating: -3, count: padded * nb)
        ck_q8t_pack(q, s, rows, cols, block, &codes, &ts)
        return Tiles(codes: codes, scales: ts)
    }

    static func activations(_ x: [Float], n: Int, cols: Int, block: Int) -> Acts {
        let nb = (cols + block - 1) / block, kp = nb * block
        var xq = [Int8](repeating: 9, count: n * kp), xs = [Float](repeating: -1, count: n * nb), xc = [Int32](repeating: 5, count: n * nb)
        _ = ck_q8t_act(x, &xq, &xs, &xc, n, cols, block)
        return Acts(xq: xq, xs: xs, xc: xc, kp: kp)
    }

    static func matmul(vnni: Bool, _ t: Tiles, _ a: Acts, rows: Int, cols: Int, block: Int, n: Int, ldy: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: n * ldy)
        y.withUnsafeMutableBufferPointer { yp in
            if vnni {
                ck_q8t_matmul_avx512vnni(t.codes, t.scales, a.xq, a.xs, a.xc, yp.baseAddress!, rows, cols, block, n, ldy)
            } else {
                ck_q8t_matmul_ref(t.codes, t.scales, a.xq, a.xs, a.xc, yp.baseAddress!, rows, cols, block, n, ldy)
            }
        }
        return y
    }

    @Test func packUnpackAndDequantizeMatchRowMajor() {
        var rng = TestRNG(seed: 31)
        for (rows, cols) in Self.shapes {
            for block in [32, 64] {
                let nb = (cols + block - 1) / block, kp = nb * block
                let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng),
                                                rows: rows, cols: cols, block: block)
                let t = Self.pack(qz.q, qz.scales, rows: rows, cols: cols, block: block)
                var q = [Int8](repeating: 0, count: rows * cols), s = [Float](repeating: 0, count: rows * nb)
                ck_q8t_unpack(t.codes, t.scales, rows, cols, block, &q, &s)
                #expect(q == qz.q && s.map(\.bitPattern) == qz.scales.map(\.bitPattern), "\(rows)x\(cols) B=\(block)")
                // Padding rows and columns are code 128 (q = 0) with scale 0.
                let padded = ck_q8t_padded_rows(rows)
                #expect((rows..<padded).allSatisfy { r in (0..<nb).allSatisfy { t.scales[(r / 16) * 16 * nb + $0 * 16 + r % 16] == 0 } })
                if cols < kp || rows < padded {
                    var zeros = 0
                    for v in t.codes where v == 128 { zeros += 1 }
                    #expect(zeros >= (padded - rows) * kp + rows * (kp - cols))
                }
                var d1 = [Float](repeating: 0, count: rows * cols), d2 = [Float](repeating: 1, count: rows * cols)
                ck_q8_dequant_ref(qz.q, qz.scales, &d1, rows, cols, block)
                ck_q8t_dequant(t.codes, t.scales, rows, cols, block, &d2)
                #expect(d1.map(\.bitPattern) == d2.map(\.bitPattern), "dequant \(rows)x\(cols) B=\(block)")
            }
        }
    }

    @Test func activationsCarryTheirBlockSums() {
        var rng = TestRNG(seed: 32)
        let n = 3, cols = 70, block = 32, nb = 3, kp = 96
        var x = rng.gaussians(n * cols, scale: 2)
        x[5] = 90
        let a = Self.activations(x, n: n, cols: cols, block: block)
        for t in 0..<n {
            var xq = [Int8](repeating: 0, count: cols), xs = [Float](repeating: 0, count: nb)
            _ = ck_q8_quantize_act_ref(Array(x[(t * cols)..<((t + 1) * cols)]), &xq, &xs, cols, block)
            #expect(Array(a.xq[(t * kp)..<(t * kp + cols)]) == xq)
            #expect((cols..<kp).allSatisfy { a.xq[t * kp + $0] == 0 })
            #expect(Array(a.xs[(t * nb)..<((t + 1) * nb)]) == xs)
            for b in 0..<nb {
                let sum = (b * block..<min((b + 1) * block, cols)).reduce(0) { $0 + Int(xq[$1]) }
                #expect(Int(a.xc[t * nb + b]) == -128 * sum)
            }
        }
    }

    @Test func vnniMatchesReference() {
        var rng = TestRNG(seed: 33)
        var worst: Float = 0
        for (rows, cols) in Self.shapes {
            for block in [32, 64] {
                let nb = (cols + block - 1) / block
                let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng),
                                                rows: rows, cols: cols, block: block)
                let t = Self.pack(qz.q, qz.scales, rows: rows, cols: cols, block: block)
                for n in Self.tokens {
                    var x = rng.gaussians(n * cols, scale: 3)
                    if cols > 10 { x[cols / 2] = 80 }
                    let a = Self.activations(x, n: n, cols: cols, block: block)
                    let ldy = rows + 3
                    let ref = Self.matmul(vnni: false, t, a, rows: rows, cols: cols, block: block, n: n, ldy: ldy)
                    for tk in 0..<n {  // the reference is the row-major definition of each token
                        var y = [Float](repeating: 0, count: rows)
                        ck_q8q8_matvec_ref(qz.q, qz.scales, Array(a.xq[(tk * a.kp)..<(tk * a.kp + cols)]),
                                           Array(a.xs[(tk * nb)..<((tk + 1) * nb)]), &y, rows, cols, block)
                        #expect(Array(ref[(tk * ldy)..<(tk * ldy + rows)]) == y, "ref row \(tk) \(rows)x\(cols)")
                    }
                    guard ISA.supported("avx512vnni") else { continue }
                    let got = Self.matmul(vnni: true, t, a, rows: rows, cols: cols, block: block, n: n, ldy: ldy)
                    let w = expectInt8ProductRows(got: got, ref: ref, q: qz.q, scales: qz.scales, xs: a.xs,
                                                  xq: { Int(a.xq[$0 * a.kp + $1]) }, rows: rows, cols: cols, block: block,
                                                  n: n, ldy: ldy, label: "\(rows)x\(cols) B=\(block)")
                    worst = max(worst, w)
                }
            }
        }
        print("q8 tiles matmul vnni: worst |got - ref| / tolerance = \(worst)")
    }

    /// Each token's outputs are the same bits alone or in any batch (decode = batched decode = prefill
    /// rows), and whatever tile the rows start at (a thread's range).
    @Test func tokensAreBitIdenticalAloneAndBatched() {
        guard ISA.supported("avx512vnni") else { return }
        var rng = TestRNG(seed: 34)
        let rows = 100, cols = 512, block = 32, nb = 16
        let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
        let t = Self.pack(qz.q, qz.scales, rows: rows, cols: cols, block: block)
        let n = 130  // the tile-pair path; sub-batches take every other path
        let a = Self.activations(rng.gaussians(n * cols), n: n, cols: cols, block: block)
        let all = Self.matmul(vnni: true, t, a, rows: rows, cols: cols, block: block, n: n, ldy: rows)
        for m in [1, 2, 3, 4, 5, 8, 13, 128] {
            for t0 in stride(from: 0, to: n, by: m) {
                let c = min(m, n - t0)
                let sub = Acts(xq: Array(a.xq[(t0 * a.kp)..<((t0 + c) * a.kp)]), xs: Array(a.xs[(t0 * nb)..<((t0 + c) * nb)]),
                               xc: Array(a.xc[(t0 * nb)..<((t0 + c) * nb)]), kp: a.kp)
                let y = Self.matmul(vnni: true, t, sub, rows: rows, cols: cols, block: block, n: c, ldy: rows)
                #expect(y.map(\.bitPattern) == all[(t0 * rows)..<((t0 + c) * rows)].map(\.bitPattern), "m=\(m) t0=\(t0)")
            }
        }
        // Rows 48..<100 alone: tiles 3… of the same codes.
        let tail = Tiles(codes: Array(t.codes[(48 * nb * block)...]), scales: Array(t.scales[(48 * nb)...]))
        let y = Self.matmul(vnni: true, tail, a, rows: rows - 48, cols: cols, block: block, n: n, ldy: rows - 48)
        for tk in 0..<n {
            #expect(y[(tk * 52)..<(tk * 52 + 52)].map(\.bitPattern) == all[(tk * rows + 48)..<(tk * rows + rows)].map(\.bitPattern))
        }
    }

    /// q = ±127 against xq = ±127: exact (every partial sum an integer below 2^24).
    @Test func extremeCodesAreExact() {
        guard ISA.supported("avx512vnni") else { return }
        let rows = 35, cols = 1000, block = 32, nb = 32, n = 7, kp = nb * block
        var q = [Int8](repeating: 0, count: rows * cols)
        for r in 0..<rows { for i in 0..<cols { q[r * cols + i] = (r % 3 == 0 || (r % 3 == 2 && i % 2 == 0)) ? 127 : -127 } }
        var xq = [Int8](repeating: 0, count: n * kp), xc = [Int32](repeating: 0, count: n * nb)
        for t in 0..<n { for i in 0..<cols { xq[t * kp + i] = (i + t) % 3 == 0 ? -127 : 127 } }
        for t in 0..<n { for b in 0..<nb { xc[t * nb + b] = -128 * (0..<block).reduce(Int32(0)) { $0 + Int32(xq[t * kp + b * block + $1]) } } }
        let a = Acts(xq: xq, xs: Array(repeating: 1, count: n * nb), xc: xc, kp: kp)
        let t = Self.pack(q, [Float](repeating: 1, count: rows * nb), rows: rows, cols: cols, block: block)
        #expect(Self.matmul(vnni: true, t, a, rows: rows, cols: cols, block: block, n: n, ldy: rows)
            == Self.matmul(vnni: false, t, a, rows: rows, cols: cols, block: block, n: n, ldy: rows))
    }

    /// fp32 activations on tiles: within the fp32 bound of the exact sum of dequantized weights.
    @Test func f32ActivationsMatchDequantizedProduct() {
        var rng = TestRNG(seed: 35)
        for (rows, cols) in Self.shapes {
            let block = 32, nb = (cols + block - 1) / block
            let qz = Q8KernelTests.quantize(ck_q8_quantize_ref, Q8KernelTests.weights(rows: rows, cols: cols, rng: &rng), rows: rows, cols: cols, block: block)
            let t = Self.pack(qz.q, qz.scales, rows: rows, cols: cols, block: block)
            let x = rng.gaussians(cols)
            var y = [Float](repeating: .nan, count: rows)
            ck_q8t_matvec_f32(t.codes, t.scales, x, &y, rows, cols, block)
            for r in 0..<rows {
                var exact: Double = 0, mag: Double = 0
                for i in 0..<cols {
                    let term = Double(qz.scales[r * nb + i / block]) * Double(qz.q[r * cols + i]) * Double(x[i])
                    exact += term
                    mag += abs(term)
                }
                let tol = Double(cols / 4 + 8) * Double(fp32Unit) * mag + 1e-30
                #expect(abs(Double(y[r]) - exact) <= tol, "\(rows)x\(cols) row \(r): \(y[r]) vs \(exact)")
            }
        }
    }
}
