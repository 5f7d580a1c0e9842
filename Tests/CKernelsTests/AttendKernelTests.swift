import CKernels
import Testing

/// ck_attend_f32's SIMD twins against the scalar reference on random heads (odd head sizes,
/// strides wider than the head, 1 to 300 positions). Tolerance: the dot products differ from the
/// reference's double sums by at most (d/8 + 8)·u·Σ|q·k| each (VecKernelTests' bound), scaled
/// scores move the softmax weights by a relative ≈ that much, so every output lane is checked
/// against 1e-5·max|v| — about 80× the worst observed difference.
@Suite struct AttendKernelTests {
    typealias Attend = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, Int, Float,
                        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    static func run(_ k: Attend, q: [Float], kv: [Float], values: [Float], stride: Int, n: Int, d: Int,
                    scale: Float) -> ([Float], [Float]) {
        var scores = [Float](repeating: .nan, count: n), out = [Float](repeating: .nan, count: d)
        k(q, kv, values, stride, n, d, scale, &scores, &out)
        return (out, scores)
    }

    @Test func attendMatchesReference() {
        var rng = TestRNG(seed: 31)
        for (d, n, pad) in [(1, 1, 0), (7, 5, 3), (16, 17, 0), (33, 64, 15), (64, 2, 64), (128, 300, 0), (128, 1, 128)] {
            let stride = d + pad
            let q = rng.gaussians(d, scale: 2), keys = rng.gaussians(n * stride, scale: 2)
            let values = rng.gaussians(n * stride)
            let scale = 1 / Float(d).squareRoot()
            let (ref, refScores) = Self.run(ck_attend_f32_ref, q: q, kv: keys, values: values, stride: stride, n: n, d: d, scale: scale)
            // The reference itself: scores come back as exp(s_j - max), and out is their
            // normalised mix of the values (recomputed here in double).
            let total = refScores.reduce(0.0) { $0 + Double($1) }
            #expect(refScores.allSatisfy { $0 > 0 && $0 <= 1 } && refScores.contains(1), "ref d=\(d) n=\(n) scores")
            for t in 0..<d {
                var mix = 0.0
                for j in 0..<n { mix += Double(refScores[j]) / total * Double(values[j * stride + t]) }
                #expect(abs(Double(ref[t]) - mix) <= 1e-5 * Double(values.map(abs).max() ?? 1), "ref d=\(d) n=\(n) lane \(t)")
            }
            let vmax = values.map(abs).max() ?? 1
            for (name, k) in [("avx2", ck_attend_f32_avx2 as Attend), ("avx512", ck_attend_f32_avx512),
                              ("dispatch", ck_attend_f32)] where ISA.supported(name) {
                let (got, _) = Self.run(k, q: q, kv: keys, values: values, stride: stride, n: n, d: d, scale: scale)
                let bad = zip(ref, got).enumerated().filter { abs($0.element.0 - $0.element.1) > 1e-5 * vmax }.prefix(3)
                #expect(bad.isEmpty, "\(name) d=\(d) n=\(n) stride=\(stride): first mismatches \(Array(bad))")
            }
        }
    }

    /// With one position the output is that position's value, whatever the score.
    @Test func singlePositionReturnsItsValue() {
        let v: [Float] = [1, -2, 3.5]
        let (out, scores) = Self.run(ck_attend_f32, q: [100, 100, 100], kv: [1, 1, 1], values: v, stride: 3, n: 1, d: 3, scale: 1)
        #expect(out == v)
        #expect(scores == [1])
    }
}
