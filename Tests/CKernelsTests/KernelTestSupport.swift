import CKernels
import Foundation
import Testing

/// Which SIMD variants this CPU can run (the rest are skipped, not failed).
enum ISA {
    static func supported(_ name: String) -> Bool {
        let best = ck_isa_best()
        switch name {
        case "avx512": return best == CK_ISA_AVX512
        case "avx512vnni": return ck_cpu_has_avx512vnni() != 0
        case "avx2": return best == CK_ISA_AVX2 || best == CK_ISA_AVX512
        default: return true
        }
    }
}

/// Deterministic test data (SplitMix64), so a failure reproduces.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Standard normal (Box-Muller).
    mutating func gaussian() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    mutating func gaussians(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in gaussian() * scale } }
}

/// First mismatches (index, got, want, allowed) for a failure message, llm.c style.
func firstMismatches(_ got: [Float], _ want: [Float], tolerance: [Float], limit: Int = 4) -> [String] {
    var out: [String] = []
    for i in got.indices where !(abs(got[i] - want[i]) <= tolerance[i]) || got[i].isNaN != want[i].isNaN {
        if got[i].isNaN && want[i].isNaN { continue }
        out.append("[\(i)] got \(got[i]) want \(want[i]) (|diff| \(abs(got[i] - want[i])) > \(tolerance[i]))")
        if out.count == limit { break }
    }
    return out
}

func firstBitMismatches<T: Equatable>(_ got: [T], _ want: [T], limit: Int = 4) -> [String] {
    var out: [String] = []
    for i in got.indices where got[i] != want[i] {
        out.append("[\(i)] got \(got[i]) want \(want[i])")
        if out.count == limit { break }
    }
    return out
}

/// Unit roundoff of fp32.
let fp32Unit = Float(1) / Float(1 << 24)

/// An int8 x int8 product's rows (n tokens, row stride ldy) against its reference: within
/// (cols/8 + 8) * u * sum_i |s_w * s_x * q_i * xq_i| per output (the VNNI kernels round each block term
/// twice and add nb of them per lane), and the stride's padding never written (NaN stays). `xq(t, i)` is
/// token t's int8 activation i. Returns the worst |got - ref| / tolerance.
@discardableResult
func expectInt8ProductRows(got: [Float], ref: [Float], q: [Int8], scales: [Float], xs: [Float], xq: (Int, Int) -> Int,
                           rows: Int, cols: Int, block: Int, n: Int, ldy: Int, label: String) -> Float {
    let nb = (cols + block - 1) / block, k = Float(cols / 8 + 8) * fp32Unit
    var worst: Float = 0
    for t in 0..<n {
        for r in 0..<rows {
            var sum: Double = 0
            for i in 0..<cols {
                sum += abs(Double(scales[r * nb + i / block]) * Double(xs[t * nb + i / block]) * Double(q[r * cols + i]) * Double(xq(t, i)))
            }
            let tol = k * Float(sum) + Float.leastNonzeroMagnitude
            let (g, w) = (got[t * ldy + r], ref[t * ldy + r])
            #expect(abs(g - w) <= tol, "\(label) n=\(n) [\(t),\(r)] got \(g) want \(w)")
            worst = max(worst, abs(g - w) / tol)
        }
        #expect((rows..<ldy).allSatisfy { got[t * ldy + $0].isNaN })
    }
    return worst
}
