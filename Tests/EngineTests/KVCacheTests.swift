import Testing
@testable import Engine

/// The KV cache's layout is private (head-major); what goes in by row comes back by row, in both
/// precisions, and snapshots copy exactly the positions asked for.
@Suite struct KVCacheTests {
    static func rows(_ n: Int, _ kvDim: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (0..<kvDim).map { _ in Float(Int(rng.next() % 2001) - 1000) / 64 } }  // exact in f16
    }

    @Test(arguments: [KVPrecision.f32, .f16])
    func storedRowsComeBackAndCopiesAreExact(precision: KVPrecision) {
        let layers = 3, kvDim = 12, headDim = 4, n = 7
        let c = KVCache(layers: layers, capacity: 10, kvDim: kvDim, headDim: headDim, precision: precision)
        let k = Self.rows(layers * n, kvDim, seed: 1), v = Self.rows(layers * n, kvDim, seed: 2)
        for l in 0..<layers {
            for p in 0..<n {
                // Whole row at once for even positions, head by head for odd ones.
                if p % 2 == 0 {
                    c.store(layer: l, pos: p, key: k[l * n + p], value: v[l * n + p], count: kvDim)
                } else {
                    for h in 0..<(kvDim / headDim) {
                        k[l * n + p].withUnsafeBufferPointer { kb in
                            v[l * n + p].withUnsafeBufferPointer { vb in
                                c.store(layer: l, pos: p, at: h * headDim, key: kb.baseAddress! + h * headDim,
                                        value: vb.baseAddress! + h * headDim, count: headDim)
                            }
                        }
                    }
                }
            }
        }
        for l in 0..<layers {
            for p in 0..<n {
                let r = c.row(layer: l, pos: p)
                #expect(r.key == k[l * n + p] && r.value == v[l * n + p], "layer \(l) pos \(p)")
            }
        }
        let snap = KVCache(layers: layers, capacity: 5, kvDim: kvDim, headDim: headDim, precision: precision)
        snap.copy(from: c, positions: 5)
        let back = KVCache(layers: layers, capacity: 10, kvDim: kvDim, headDim: headDim, precision: precision)
        back.copy(from: snap, positions: 2..<5)
        for l in 0..<layers {
            for p in 0..<5 { #expect(snap.row(layer: l, pos: p).key == k[l * n + p]) }
            for p in 2..<5 { #expect(back.row(layer: l, pos: p).value == v[l * n + p]) }
        }
        #expect(c.byteSize == 2 * layers * 10 * kvDim * (precision == .f32 ? 4 : 2))
    }
}
