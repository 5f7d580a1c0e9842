import Testing
@testable import Engine

/// The KV cache's layout is private (head-major); what goes in by row comes back by row, in both
/// precisions, snapshots copy exactly the positions asked for, and a cache sharing another's
/// prefix reads it in place, attends over both bit for bit as one cache would, and takes its own
/// copy before a shared position is written.
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

    @Test(arguments: [KVPrecision.f32, .f16])
    func sharedPrefixIsReadInPlaceAndCopiedOnWrite(precision: KVPrecision) {
        let layers = 2, kvDim = 16, headDim = 8, p = 6, cap = 10
        let k = Self.rows(layers * cap, kvDim, seed: 3), v = Self.rows(layers * cap, kvDim, seed: 4)
        let base = KVCache(layers: layers, capacity: 8, kvDim: kvDim, headDim: headDim, precision: precision)
        for l in 0..<layers { for pos in 0..<p { base.store(layer: l, pos: pos, key: k[l * cap + pos], value: v[l * cap + pos], count: kvDim) } }
        let c = base.sharing(p, capacity: cap)
        let perPosition = 2 * layers * kvDim * precision.bytes
        #expect(c.sharedCount == p && c.shared === base)
        #expect(c.byteSize == (cap - p) * perPosition)
        for l in 0..<layers { for pos in p..<cap { c.store(layer: l, pos: pos, key: k[l * cap + pos], value: v[l * cap + pos], count: kvDim) } }
        // base appends at p: not c's position p
        let other = Self.rows(1, kvDim, seed: 5)[0]
        for l in 0..<layers { base.store(layer: l, pos: p, key: other, value: other, count: kvDim) }
        for l in 0..<layers {
            for pos in 0..<cap {
                let r = c.row(layer: l, pos: pos)
                #expect(r.key == k[l * cap + pos] && r.value == v[l * cap + pos], "layer \(l) pos \(pos)")
            }
        }
        // Attention over shared + own = attention over one cache holding both, bit for bit.
        let flat = c.prefix(cap, capacity: cap)
        #expect(flat.sharedCount == 0 && flat.byteSize == cap * perPosition)
        var rng = SplitMix64(seed: 6)
        let q = (0..<headDim).map { _ in Float(Int(rng.next() % 201) - 100) / 50 }
        for visible in 1...cap {
            for head in 0..<(kvDim / headDim) {
                func run(_ cache: KVCache) -> [UInt32] {
                    var scores = [Float](repeating: 0, count: visible), out = [Float](repeating: 0, count: headDim)
                    cache.attend(q: q, layer: 1, head: head, visible: visible, scale: 0.3, scores: &scores, out: &out)
                    return out.map(\.bitPattern)
                }
                #expect(run(c) == run(flat), "visible \(visible) head \(head)")
            }
        }
        // Writing a shared position: c copies the prefix first, base is untouched.
        c.store(layer: 0, pos: 2, key: other, value: other, count: kvDim)
        #expect(c.sharedCount == 0 && c.shared == nil && c.byteSize == cap * perPosition)
        #expect(c.row(layer: 0, pos: 2).key == other && base.row(layer: 0, pos: 2).key == k[2])
        for l in 0..<layers {
            for pos in 0..<cap where !(l == 0 && pos == 2) {
                #expect(c.row(layer: l, pos: pos).value == v[l * cap + pos], "after the copy: layer \(l) pos \(pos)")
            }
        }
        // A cache sharing a prefix of a sharing cache reads the same base.
        let d = flat.sharing(4, capacity: 5).sharing(3, capacity: 6)
        #expect(d.shared === flat && d.sharedCount == 3)
    }
}
