import CKernels

/// How cached keys/values are stored. The int8 path keeps them in binary16 (half the bytes a
/// long-context decode streams besides the weights, as llama.cpp's default f16 cache); the f32
/// verification path keeps fp32 so that it stays comparable to the reference bit for bit.
public enum KVPrecision: String, Sendable {
    case f32, f16

    var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Keys and values of one sequence, preallocated for its whole capacity (pages are touched only
/// as positions are written).
/// keys, values: [layers][kvHeads][capacity - sharedCount][headDim] of `precision` (keys after
/// rotary embedding) for positions sharedCount..<capacity.
/// Head-major, so that one head's attention streams its positions contiguously: position-major
/// rows put each head's 256 bytes a whole kvDim row apart, a stride the prefetchers do not follow,
/// and long-context decode then spends several times the cache's bandwidth cost in attention
/// (BENCHMARKS.md).
/// Positions 0..<sharedCount may instead be read from another cache (`sharing`): the beams of a
/// search all read the one copy of the prompt's keys/values and own only their generated positions.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    public let kvDim: Int
    public let headDim: Int
    public let precision: KVPrecision
    /// The cache positions 0..<sharedCount are read from (read-only here; it holds none shared itself).
    public private(set) var shared: KVCache?
    public private(set) var sharedCount = 0
    private var keys: AlignedStorage<UInt8>
    private var values: AlignedStorage<UInt8>

    public init(layers: Int, capacity: Int, kvDim: Int, headDim: Int, precision: KVPrecision = .f32) {
        precondition(headDim > 0 && kvDim % headDim == 0, "KVCache: kvDim \(kvDim) is not a multiple of headDim \(headDim)")
        self.layers = layers
        self.capacity = capacity
        self.kvDim = kvDim
        self.headDim = headDim
        self.precision = precision
        keys = AlignedStorage(count: layers * capacity * kvDim * precision.bytes)
        values = AlignedStorage(count: layers * capacity * kvDim * precision.bytes)
    }

    /// A cache of `capacity` positions whose first `n` are `base`'s, read in place (never copied):
    /// it owns storage for the other capacity - n positions only. `base` must not rewrite its first
    /// `n` positions while this cache lives.
    private init(sharing n: Int, of base: KVCache, capacity: Int) {
        precondition(base.sharedCount == 0 && n <= base.capacity && n <= capacity, "KVCache: cannot share \(n) positions")
        layers = base.layers
        self.capacity = capacity
        kvDim = base.kvDim
        headDim = base.headDim
        precision = base.precision
        shared = n > 0 ? base : nil
        sharedCount = n
        keys = AlignedStorage(count: layers * (capacity - n) * kvDim * precision.bytes)
        values = AlignedStorage(count: layers * (capacity - n) * kvDim * precision.bytes)
    }

    public var heads: Int { kvDim / headDim }
    /// Bytes this cache holds itself (not those it reads from `shared`).
    public var byteSize: Int { 2 * layers * (capacity - sharedCount) * kvDim * precision.bytes }

    /// Byte address of the key (or value) of position `pos` of kv head `head` in `layer`, in
    /// whichever cache holds that position.
    @inline(__always) private func address(values v: Bool, layer: Int, head: Int, pos: Int) -> UnsafeMutablePointer<UInt8> {
        pos < sharedCount ? shared!.ownAddress(values: v, layer: layer, head: head, pos: pos)
                          : ownAddress(values: v, layer: layer, head: head, pos: pos)
    }

    /// The same in this cache's own storage (positions sharedCount..<capacity).
    @inline(__always) private func ownAddress(values v: Bool, layer: Int, head: Int, pos: Int) -> UnsafeMutablePointer<UInt8> {
        (v ? values : keys).pointer + ((layer * heads + head) * (capacity - sharedCount) + pos - sharedCount) * headDim * precision.bytes
    }

    /// Before writing position `pos`: a shared position is about to change, so this cache takes
    /// its own copy of every position (a beam's session re-run from the start, say).
    @inline(__always) private func makeWritable(_ pos: Int) {
        if pos < sharedCount { unshare() }
    }

    private func unshare() {
        guard let base = shared else { return }
        let n = sharedCount, own = capacity - n
        let k = AlignedStorage<UInt8>(count: layers * capacity * kvDim * precision.bytes)
        let v = AlignedStorage<UInt8>(count: layers * capacity * kvDim * precision.bytes)
        let row = headDim * precision.bytes
        for l in 0..<layers {
            for h in 0..<heads {
                let to = (l * heads + h) * capacity * row, mine = (l * heads + h) * own * row
                (k.pointer + to).update(from: base.ownAddress(values: false, layer: l, head: h, pos: 0), count: n * row)
                (v.pointer + to).update(from: base.ownAddress(values: true, layer: l, head: h, pos: 0), count: n * row)
                (k.pointer + to + n * row).update(from: keys.pointer + mine, count: own * row)
                (v.pointer + to + n * row).update(from: values.pointer + mine, count: own * row)
            }
        }
        keys = k
        values = v
        shared = nil
        sharedCount = 0
    }

    /// Writes key and value of heads `at / headDim ..< (at + count) / headDim` at (layer, pos);
    /// `key`/`value` hold `count` values (whole heads), starting with head `at / headDim`.
    func store(layer: Int, pos: Int, at column: Int = 0, key: UnsafePointer<Float>, value: UnsafePointer<Float>, count: Int) {
        precondition(column % headDim == 0 && count % headDim == 0, "KVCache.store: not whole heads")
        makeWritable(pos)
        for h in 0..<(count / headDim) {
            let head = column / headDim + h
            put(address(values: false, layer: layer, head: head, pos: pos), key + h * headDim)
            put(address(values: true, layer: layer, head: head, pos: pos), value + h * headDim)
        }
    }

    @inline(__always) private func put(_ to: UnsafeMutablePointer<UInt8>, _ from: UnsafePointer<Float>) {
        switch precision {
        case .f32: UnsafeMutableRawPointer(to).assumingMemoryBound(to: Float.self).update(from: from, count: headDim)
        case .f16: ck_f32_to_f16(from, UnsafeMutableRawPointer(to).assumingMemoryBound(to: UInt16.self), headDim)
        }
    }

    /// Two queries of one head at consecutive positions: `qa` over positions 0..<visible, `qb` over
    /// 0...visible; each result the bits `attend` gives that query alone. fp16 without a shared prefix
    /// (a prompt's prefill) reads and converts each key and value row once for both.
    /// scores: 2 · visible + 1 floats of scratch.
    func attendPair(qa: UnsafePointer<Float>, qb: UnsafePointer<Float>, layer: Int, head: Int, visible: Int, scale: Float,
                    scores: UnsafeMutablePointer<Float>, outA: UnsafeMutablePointer<Float>, outB: UnsafeMutablePointer<Float>) {
        guard precision == .f16, sharedCount == 0 else {
            attend(q: qa, layer: layer, head: head, visible: visible, scale: scale, scores: scores, out: outA)
            attend(q: qb, layer: layer, head: head, visible: visible + 1, scale: scale, scores: scores, out: outB)
            return
        }
        let k = UnsafeRawPointer(address(values: false, layer: layer, head: head, pos: 0)).assumingMemoryBound(to: UInt16.self)
        let v = UnsafeRawPointer(address(values: true, layer: layer, head: head, pos: 0)).assumingMemoryBound(to: UInt16.self)
        ck_attend_pair_f16(qa, qb, k, v, headDim, visible, headDim, scale, scores, scores + visible, outA, outB)
    }

    /// One attention head of one query over positions 0..<visible of kv head `head` in `layer`:
    /// out [headDim] = softmax(scale·q·Kᵀ)·V (fp32 softmax). Over a shared prefix the kernel reads
    /// the two segments as one sequence, bit for bit the result of one cache holding both.
    func attend(q: UnsafePointer<Float>, layer: Int, head: Int, visible: Int, scale: Float,
                scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let n0 = min(visible, sharedCount), n1 = visible - n0
        let k1 = UnsafeRawPointer(address(values: false, layer: layer, head: head, pos: sharedCount))
        let v1 = UnsafeRawPointer(address(values: true, layer: layer, head: head, pos: sharedCount))
        let k0 = n0 > 0 ? UnsafeRawPointer(address(values: false, layer: layer, head: head, pos: 0)) : k1
        let v0 = n0 > 0 ? UnsafeRawPointer(address(values: true, layer: layer, head: head, pos: 0)) : v1
        switch (precision, n0 > 0) {
        case (.f32, false):
            ck_attend_f32(q, k1.assumingMemoryBound(to: Float.self), v1.assumingMemoryBound(to: Float.self),
                          headDim, visible, headDim, scale, scores, out)
        case (.f32, true):
            ck_attend2_f32(q, k0.assumingMemoryBound(to: Float.self), v0.assumingMemoryBound(to: Float.self), headDim, n0,
                           k1.assumingMemoryBound(to: Float.self), v1.assumingMemoryBound(to: Float.self), headDim, n1,
                           headDim, scale, scores, out)
        case (.f16, false):
            ck_attend_f16(q, k1.assumingMemoryBound(to: UInt16.self), v1.assumingMemoryBound(to: UInt16.self),
                          headDim, visible, headDim, scale, scores, out)
        case (.f16, true):
            ck_attend2_f16(q, k0.assumingMemoryBound(to: UInt16.self), v0.assumingMemoryBound(to: UInt16.self), headDim, n0,
                           k1.assumingMemoryBound(to: UInt16.self), v1.assumingMemoryBound(to: UInt16.self), headDim, n1,
                           headDim, scale, scores, out)
        }
    }

    /// The key and value rows at (layer, pos) as fp32 (tests and inspection).
    public func row(layer: Int, pos: Int) -> (key: [Float], value: [Float]) {
        func read(_ v: Bool) -> [Float] {
            var out = [Float](repeating: 0, count: kvDim)
            out.withUnsafeMutableBufferPointer { o in
                for h in 0..<heads {
                    let from = UnsafeRawPointer(address(values: v, layer: layer, head: h, pos: pos))
                    switch precision {
                    case .f32: (o.baseAddress! + h * headDim).update(from: from.assumingMemoryBound(to: Float.self), count: headDim)
                    case .f16: ck_f16_to_f32(from.assumingMemoryBound(to: UInt16.self), o.baseAddress! + h * headDim, headDim)
                    }
                }
            }
            return out
        }
        return (read(false), read(true))
    }

    /// Copies positions `range` of every layer from `other` (same layers, kvDim and precision).
    public func copy(from other: KVCache, positions range: Range<Int>) {
        precondition(other.layers == layers && other.kvDim == kvDim && other.headDim == headDim
                     && other.precision == precision && range.upperBound <= capacity && range.upperBound <= other.capacity)
        guard !range.isEmpty else { return }
        makeWritable(range.lowerBound)
        let row = headDim * precision.bytes
        // Runs contiguous in `other`: its shared positions, then its own.
        let split = min(max(other.sharedCount, range.lowerBound), range.upperBound)
        for run in [range.lowerBound..<split, split..<range.upperBound] where !run.isEmpty {
            for l in 0..<layers {
                for h in 0..<heads {
                    for v in [false, true] {
                        address(values: v, layer: l, head: h, pos: run.lowerBound)
                            .update(from: other.address(values: v, layer: l, head: h, pos: run.lowerBound), count: run.count * row)
                    }
                }
            }
        }
    }

    /// Copies positions 0..<n of every layer from `other`.
    public func copy(from other: KVCache, positions n: Int) { copy(from: other, positions: 0..<n) }

    /// A new cache of the same shape and precision holding `capacity` positions, the first `n`
    /// copied from this one (a fork, a snapshot for another adapter set).
    public func prefix(_ n: Int, capacity: Int) -> KVCache {
        let c = KVCache(layers: layers, capacity: capacity, kvDim: kvDim, headDim: headDim, precision: precision)
        c.copy(from: self, positions: n)
        return c
    }

    /// A new cache of `capacity` positions whose first `n` are this one's, read in place: it holds
    /// only capacity - n positions of its own (a beam's view of the prompt). This cache must not
    /// rewrite positions 0..<n while the new one lives. A cache that itself shares a prefix shorter
    /// than `n` is copied instead (two segments at most).
    public func sharing(_ n: Int, capacity: Int) -> KVCache {
        precondition(n <= self.capacity && n <= capacity, "KVCache.sharing: \(n) positions do not fit")
        if sharedCount == 0 { return KVCache(sharing: n, of: self, capacity: capacity) }
        if n <= sharedCount { return KVCache(sharing: n, of: shared!, capacity: capacity) }
        return prefix(n, capacity: capacity)
    }
}
