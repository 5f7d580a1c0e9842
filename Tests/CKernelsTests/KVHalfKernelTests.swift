import CKernels
import Foundation
import Testing

/// The int8 path's binary16 KV cache: fp32 -> f16 conversion bit for bit against the scalar rule
/// (checked against Swift's own Float16 conversion too), and ck_attend_f16's SIMD twins against
/// its reference with the same tolerance as ck_attend_f32 (1e-5·max|v|).
@Suite struct KVHalfKernelTests {
    typealias Convert = (UnsafePointer<Float>, UnsafeMutablePointer<UInt16>, Int) -> Void
    typealias Attend = (UnsafePointer<Float>, UnsafePointer<UInt16>, UnsafePointer<UInt16>, Int, Int, Int, Float,
                        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    /// Edge cases plus every 1/64th of the fp32 bit space (normals, subnormals, ties, overflow).
    static let inputs: [Float] = {
        var x: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5, 6.097e-5,
                          .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 1.00048828125, 1.00146484375]
        for u in stride(from: UInt32(0), to: UInt32.max - 63, by: 64 * 1021) { x.append(Float(bitPattern: u)) }
        return x.filter { !$0.isNaN }
    }()

    @Test func conversionMatchesTheRoundingRule() {
        let x = Self.inputs
        var ref = [UInt16](repeating: 0, count: x.count)
        ck_f32_to_f16_ref(x, &ref, x.count)
        #if arch(x86_64) || arch(arm64)
        let bad = zip(x, ref).filter { Float16($0.0).bitPattern != $0.1 }.prefix(3)
        #expect(bad.isEmpty, "ref disagrees with Swift's Float16 rounding: \(Array(bad))")
        #endif
        for (name, k) in [("avx2", ck_f32_to_f16_avx2 as Convert), ("avx512", ck_f32_to_f16_avx512), ("dispatch", ck_f32_to_f16)]
        where ISA.supported(name) {
            for n in [x.count, 1, 7, 15, 17, 33] {
                var got = [UInt16](repeating: 0, count: n)
                k(x, &got, n)
                #expect(got == Array(ref.prefix(n)), "\(name) n=\(n)")
            }
        }
    }

    @Test func nanStaysNaN() {
        let x: [Float] = [.nan, -.nan, Float(bitPattern: 0x7F800001), Float(bitPattern: 0xFFC12345)] + [Float](repeating: .nan, count: 16)
        for k in [ck_f32_to_f16_ref as Convert, ck_f32_to_f16] {
            var h = [UInt16](repeating: 0, count: x.count)
            k(x, &h, x.count)
            var back = [Float](repeating: 0, count: x.count)
            ck_f16_to_f32_ref(h, &back, x.count)
            #expect(back.allSatisfy { $0.isNaN })
        }
    }

    @Test func attendMatchesReference() {
        var rng = TestRNG(seed: 47)
        for (d, n, pad) in [(1, 1, 0), (7, 5, 3), (16, 17, 0), (33, 64, 15), (64, 2, 64), (128, 300, 0), (128, 1, 128)] {
            let stride = d + pad
            let q = rng.gaussians(d, scale: 2)
            var keys = [UInt16](repeating: 0, count: n * stride), values = keys
            ck_f32_to_f16_ref(rng.gaussians(n * stride, scale: 2), &keys, n * stride)
            ck_f32_to_f16_ref(rng.gaussians(n * stride), &values, n * stride)
            let scale = 1 / Float(d).squareRoot()
            func run(_ k: Attend) -> [Float] {
                var scores = [Float](repeating: .nan, count: n), out = [Float](repeating: .nan, count: d)
                k(q, keys, values, stride, n, d, scale, &scores, &out)
                return out
            }
            // The reference equals ck_attend_f32_ref on the widened keys/values.
            var kf = [Float](repeating: 0, count: n * stride), vf = kf
            ck_f16_to_f32_ref(keys, &kf, n * stride)
            ck_f16_to_f32_ref(values, &vf, n * stride)
            let ref = run(ck_attend_f16_ref)
            var wide = [Float](repeating: .nan, count: d), scores = [Float](repeating: .nan, count: n)
            ck_attend_f32_ref(q, kf, vf, stride, n, d, scale, &scores, &wide)
            #expect(ref == wide, "ref d=\(d) n=\(n)")
            let vmax = vf.map(abs).max() ?? 1
            for (name, k) in [("avx2", ck_attend_f16_avx2 as Attend), ("avx512", ck_attend_f16_avx512), ("dispatch", ck_attend_f16)]
            where ISA.supported(name) {
                let got = run(k)
                let bad = zip(ref, got).enumerated().filter { abs($0.element.0 - $0.element.1) > 1e-5 * vmax }.prefix(3)
                #expect(bad.isEmpty, "\(name) d=\(d) n=\(n) stride=\(stride): first mismatches \(Array(bad))")
            }
        }
    }

    /// Two queries at consecutive positions (a prompt's rows): each output the bits ck_attend_f16
    /// gives that query alone (qa over n positions, qb over n + 1), for the register kernel's head
    /// dims (64, 128) and the fallback (others), with the keys strided as the cache holds them.
    @Test func pairIsEachQueryAlone() {
        var rng = TestRNG(seed: 48)
        for (d, n, pad) in [(128, 1, 0), (128, 2, 0), (128, 37, 0), (128, 300, 128), (64, 1, 64), (64, 90, 0), (48, 9, 0), (7, 4, 1)] {
            let stride = d + pad
            let qa = rng.gaussians(d, scale: 2), qb = rng.gaussians(d, scale: 2)
            var keys = [UInt16](repeating: 0, count: (n + 1) * stride), values = keys
            ck_f32_to_f16_ref(rng.gaussians((n + 1) * stride, scale: 2), &keys, (n + 1) * stride)
            ck_f32_to_f16_ref(rng.gaussians((n + 1) * stride), &values, (n + 1) * stride)
            let scale = 1 / Float(d).squareRoot()
            var sa = [Float](repeating: .nan, count: n), sb = [Float](repeating: .nan, count: n + 1)
            var oa = [Float](repeating: .nan, count: d), ob = oa, alone = oa, aloneB = oa
            ck_attend_f16(qa, keys, values, stride, n, d, scale, &sa, &alone)
            ck_attend_f16(qb, keys, values, stride, n + 1, d, scale, &sb, &aloneB)
            for (name, k) in [("avx512", ck_attend_pair_f16_avx512), ("dispatch", ck_attend_pair_f16)] where ISA.supported(name) {
                k(qa, qb, keys, values, stride, n, d, scale, &sa, &sb, &oa, &ob)
                #expect(oa.map(\.bitPattern) == alone.map(\.bitPattern), "\(name) d=\(d) n=\(n): query a")
                #expect(ob.map(\.bitPattern) == aloneB.map(\.bitPattern), "\(name) d=\(d) n=\(n): query b")
            }
        }
    }
}
