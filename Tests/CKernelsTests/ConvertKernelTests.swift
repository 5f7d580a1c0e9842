import CKernels
import Testing

/// Every fast conversion kernel against its scalar specification, bit for bit, on random data
/// with odd tails, plus the special values (subnormals, infinities, NaN payloads).
@Suite struct ConvertKernelTests {
    typealias Kernel = (UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Void

    static func run(_ k: Kernel, _ input: [UInt16]) -> [UInt32] {
        var out = [Float](repeating: -1, count: input.count)
        input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in k(i.baseAddress!, o.baseAddress!, input.count) }
        }
        return out.map(\.bitPattern)
    }

    static func inputs() -> [[UInt16]] {
        var rng = SystemRandomNumberGenerator()
        var cases: [[UInt16]] = [Array(0...UInt16.max)]  // every half / bfloat16 bit pattern
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1023] {
            cases.append((0..<n).map { _ in UInt16.random(in: 0...UInt16.max, using: &rng) })
        }
        return cases
    }

    @Test func f16MatchesReference() {
        for input in Self.inputs() {
            let ref = Self.run(ck_f16_to_f32_ref, input)
            for (name, k) in [("avx2", ck_f16_to_f32_avx2 as Kernel), ("avx512", ck_f16_to_f32_avx512),
                              ("dispatch", ck_f16_to_f32)] where Self.supported(name) {
                let got = Self.run(k, input)
                let bad = zip(ref, got).enumerated().filter { $0.element.0 != $0.element.1 }.prefix(3)
                #expect(bad.isEmpty, "\(name) n=\(input.count) first mismatches: \(Array(bad))")
            }
        }
    }

    @Test func bf16MatchesReference() {
        for input in Self.inputs() {
            let ref = Self.run(ck_bf16_to_f32_ref, input)
            for (name, k) in [("avx2", ck_bf16_to_f32_avx2 as Kernel), ("avx512", ck_bf16_to_f32_avx512),
                              ("dispatch", ck_bf16_to_f32)] where Self.supported(name) {
                #expect(Self.run(k, input) == ref, "\(name) n=\(input.count)")
            }
        }
    }

    /// The reference itself against values worked out by hand.
    @Test func f16ReferenceKnownValues() {
        let cases: [(UInt16, Float)] = [(0x3C00, 1), (0xC000, -2), (0x7BFF, 65504), (0x0001, 5.9604645e-8),
                                         (0x0400, 6.1035156e-5), (0x3555, 0.33325195), (0x8000, -0.0)]
        for (h, f) in cases {
            #expect(Self.run(ck_f16_to_f32_ref, [h]) == [f.bitPattern], "0x\(String(h, radix: 16))")
        }
        #expect(Self.run(ck_f16_to_f32_ref, [0x7C00]) == [Float.infinity.bitPattern])
        #expect(Float(bitPattern: Self.run(ck_f16_to_f32_ref, [0x7E00])[0]).isNaN)
        #expect(Self.run(ck_bf16_to_f32_ref, [0x3F80, 0xC040]) == [Float(1).bitPattern, Float(-3).bitPattern])
    }

    static func supported(_ name: String) -> Bool {
        let best = ck_isa_best()
        switch name {
        case "avx512": return best == CK_ISA_AVX512
        case "avx2": return best == CK_ISA_AVX2 || best == CK_ISA_AVX512
        default: return true
        }
    }
}
