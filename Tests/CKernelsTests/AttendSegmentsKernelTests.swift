import CKernels
import Testing

/// ck_attend2_* (one head over a sequence held in two segments: a beam reads the shared prompt,
/// then its own positions). For every split of the positions, segments at different strides in
/// different buffers, each variant gives bit for bit what the one-segment kernel of the same
/// variant gives on the whole sequence (scores and output), and the SIMD variants stay within
/// AttendKernelTests' tolerance (1e-5·max|v|) of ck_attend2_*_ref.
@Suite struct AttendSegmentsKernelTests {
    typealias One<T> = (UnsafePointer<Float>, UnsafePointer<T>, UnsafePointer<T>, Int, Int, Int, Float,
                        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    typealias Two<T> = (UnsafePointer<Float>, UnsafePointer<T>, UnsafePointer<T>, Int, Int,
                        UnsafePointer<T>, UnsafePointer<T>, Int, Int, Int, Float,
                        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    static let cases = [(1, 1, 0), (7, 5, 3), (16, 17, 0), (33, 64, 15), (64, 2, 64), (128, 300, 0), (128, 1, 128)]

    /// Positions `range` of `rows` (stride `from`) laid out at stride `to`.
    static func segment<T: BinaryInteger & FixedWidthInteger>(_ rows: [T], _ range: Range<Int>, from: Int, to: Int, d: Int) -> [T] {
        var out = [T](repeating: 0, count: max(range.count * to, 1))
        for (i, j) in range.enumerated() { for t in 0..<d { out[i * to + t] = rows[j * from + t] } }
        return out
    }

    static func segment(_ rows: [Float], _ range: Range<Int>, from: Int, to: Int, d: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: max(range.count * to, 1))   // padding never read
        for (i, j) in range.enumerated() { for t in 0..<d { out[i * to + t] = rows[j * from + t] } }
        return out
    }

    /// Runs every split of every case through `variants` (name, one-segment, two-segment kernel).
    static func check<T>(_ kind: String, seed: UInt64, make: ([Float]) -> [T],
                         cut: ([T], Range<Int>, Int, Int, Int) -> [T], ref: Two<T>,
                         variants: [(String, One<T>, Two<T>)]) {
        var rng = TestRNG(seed: seed)
        for (d, n, pad) in cases {
            let stride = d + pad, stride1 = d + pad + 5
            let q = rng.gaussians(d, scale: 2)
            let keys = make(rng.gaussians(n * stride, scale: 2)), values = make(rng.gaussians(n * stride))
            let scale = 1 / Float(d).squareRoot()
            for m in Set([0, 1, n / 2, n - 1, n]) where m >= 0 && m <= n {
                let k0 = cut(keys, 0..<m, stride, stride, d), v0 = cut(values, 0..<m, stride, stride, d)
                let k1 = cut(keys, m..<n, stride, stride1, d), v1 = cut(values, m..<n, stride, stride1, d)
                func two(_ k: Two<T>) -> ([Float], [Float]) {
                    var scores = [Float](repeating: .nan, count: n), out = [Float](repeating: .nan, count: d)
                    k(q, k0, v0, stride, m, k1, v1, stride1, n - m, d, scale, &scores, &out)
                    return (out, scores)
                }
                let (want, _) = two(ref)
                let vmax = want.map(abs).max() ?? 1
                for (name, one, split) in variants where ISA.supported(name) {
                    var scores = [Float](repeating: .nan, count: n), whole = [Float](repeating: .nan, count: d)
                    one(q, keys, values, stride, n, d, scale, &scores, &whole)
                    let (got, gotScores) = two(split)
                    let at = "\(kind) \(name) d=\(d) n=\(n) split at \(m)"
                    #expect(firstBitMismatches(got.map(\.bitPattern), whole.map(\.bitPattern)).isEmpty,
                            "\(at): output differs from one segment: \(firstBitMismatches(got, whole))")
                    #expect(gotScores.map(\.bitPattern) == scores.map(\.bitPattern), "\(at): scores differ from one segment")
                    let bad = zip(want, got).enumerated().filter { abs($0.element.0 - $0.element.1) > 1e-5 * max(vmax, 1) }.prefix(3)
                    #expect(bad.isEmpty, "\(at): first mismatches vs ref \(Array(bad))")
                }
            }
        }
    }

    @Test func f32SplitsAreBitIdenticalToOneSegment() {
        Self.check("f32", seed: 53, make: { $0 }, cut: { Self.segment($0, $1, from: $2, to: $3, d: $4) },
                   ref: ck_attend2_f32_ref,
                   variants: [("ref", ck_attend_f32_ref, ck_attend2_f32_ref), ("avx2", ck_attend_f32_avx2, ck_attend2_f32_avx2),
                              ("avx512", ck_attend_f32_avx512, ck_attend2_f32_avx512), ("dispatch", ck_attend_f32, ck_attend2_f32)])
    }

    @Test func f16SplitsAreBitIdenticalToOneSegment() {
        Self.check("f16", seed: 59, make: { x in
            var h = [UInt16](repeating: 0, count: x.count)
            ck_f32_to_f16_ref(x, &h, x.count)
            return h
        }, cut: { Self.segment($0, $1, from: $2, to: $3, d: $4) }, ref: ck_attend2_f16_ref,
                   variants: [("ref", ck_attend_f16_ref, ck_attend2_f16_ref), ("avx2", ck_attend_f16_avx2, ck_attend2_f16_avx2),
                              ("avx512", ck_attend_f16_avx512, ck_attend2_f16_avx512), ("dispatch", ck_attend_f16, ck_attend2_f16)])
    }

    /// The reference itself over two segments: the normalised mix of every position's value,
    /// recomputed in double from the scores it returns (exp(s_j - max), max at 1).
    @Test func referenceMixesBothSegments() {
        var rng = TestRNG(seed: 61)
        let d = 9, n0 = 4, n1 = 6
        let q = rng.gaussians(d), k0 = rng.gaussians(n0 * d), v0 = rng.gaussians(n0 * d)
        let k1 = rng.gaussians(n1 * d), v1 = rng.gaussians(n1 * d)
        var scores = [Float](repeating: .nan, count: n0 + n1), out = [Float](repeating: .nan, count: d)
        ck_attend2_f32_ref(q, k0, v0, d, n0, k1, v1, d, n1, d, 0.5, &scores, &out)
        #expect(scores.allSatisfy { $0 > 0 && $0 <= 1 } && scores.contains(1))
        let total = scores.reduce(0.0) { $0 + Double($1) }
        for t in 0..<d {
            var mix = 0.0
            for j in 0..<n0 { mix += Double(scores[j]) / total * Double(v0[j * d + t]) }
            for j in 0..<n1 { mix += Double(scores[n0 + j]) / total * Double(v1[j * d + t]) }
            #expect(abs(Double(out[t]) - mix) <= 1e-6, "lane \(t)")
        }
    }
}
