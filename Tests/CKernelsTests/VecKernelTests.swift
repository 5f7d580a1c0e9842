import CKernels
import Testing

/// ck_dot_f32 within (n/8 + 8) * u * sum|x*y| of the double-accumulating reference (the same
/// summation bound as the matvec tests); ck_axpy_f32 bit for bit (one fused rounding per element).
@Suite struct VecKernelTests {
    typealias Dot = (UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Float
    typealias Axpy = (Float, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

    static let lengths = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128, 1000, 4109]

    @Test func dotMatchesReference() {
        var rng = TestRNG(seed: 20)
        for n in Self.lengths {
            let x = rng.gaussians(n), y = rng.gaussians(n, scale: 5)
            let ref = ck_dot_f32_ref(x, y, n)
            var exact: Double = 0, mag: Double = 0
            for i in 0..<n { exact += Double(x[i]) * Double(y[i]); mag += abs(Double(x[i]) * Double(y[i])) }
            #expect(ref == Float(exact), "ref n=\(n)")
            let tol = Float(n / 8 + 8) * fp32Unit * Float(mag)
            for (name, k) in [("avx2", ck_dot_f32_avx2 as Dot), ("avx512", ck_dot_f32_avx512), ("dispatch", ck_dot_f32)]
            where ISA.supported(name) {
                let got = k(x, y, n)
                #expect(abs(got - ref) <= tol, "\(name) n=\(n): got \(got) want \(ref) (tolerance \(tol))")
            }
        }
    }

    /// The bandwidth probe's read: a sum, within the same bound (the prefetches change no value).
    @Test func readSumMatchesReference() {
        var rng = TestRNG(seed: 22)
        for n in Self.lengths + [5000] {
            let x = rng.gaussians(n, scale: 3)
            let ref = ck_read_sum_f32_ref(x, n)
            var exact: Double = 0, mag: Double = 0
            for v in x { exact += Double(v); mag += abs(Double(v)) }
            #expect(ref == Float(exact), "ref n=\(n)")
            let tol = Float(n / 8 + 8) * fp32Unit * Float(mag)
            for (name, k) in [("avx512", ck_read_sum_f32_avx512 as (UnsafePointer<Float>, Int) -> Float), ("dispatch", ck_read_sum_f32)]
            where ISA.supported(name) {
                let got = k(x, n)
                #expect(abs(got - ref) <= tol, "\(name) n=\(n): got \(got) want \(ref)")
            }
        }
    }

    @Test func axpyMatchesReferenceBitForBit() {
        var rng = TestRNG(seed: 21)
        for n in Self.lengths {
            let x = rng.gaussians(n), y0 = rng.gaussians(n + 3)  // 3 guard values past the end
            let a = rng.gaussian()
            var ref = y0
            ref.withUnsafeMutableBufferPointer { ck_axpy_f32_ref(a, x, $0.baseAddress!, n) }
            // The reference is the definition: y + a*x with one rounding; the guard values untouched.
            #expect((0..<n).allSatisfy { ref[$0] == y0[$0].addingProduct(a, x[$0]) } && ref[n...] == y0[n...])
            for (name, k) in [("avx2", ck_axpy_f32_avx2 as Axpy), ("avx512", ck_axpy_f32_avx512), ("dispatch", ck_axpy_f32)]
            where ISA.supported(name) {
                var got = y0
                got.withUnsafeMutableBufferPointer { k(a, x, $0.baseAddress!, n) }
                let bad = firstBitMismatches(got.map(\.bitPattern), ref.map(\.bitPattern))
                #expect(bad.isEmpty, "\(name) n=\(n) first mismatches: \(bad)")
            }
        }
    }
}
