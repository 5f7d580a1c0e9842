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
/// keys, values: [layers][kvHeads][capacity][headDim] of `precision` (keys after rotary embedding).
/// Head-major, so that one head's attention streams its positions contiguously: position-major
/// rows put each head's 256 bytes a whole kvDim row apart, a stride the prefetchers do not follow
/// (decode at 640 tokens of context spent ~4× the KV cache's bandwidth cost in attention).
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    public let kvDim: Int
    public let headDim: Int
    public let precision: KVPrecision
    private let keys: AlignedStorage<UInt8>
    private let values: AlignedStorage<UInt8>

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

    public var heads: Int { kvDim / headDim }
    public var byteSize: Int { 2 * layers * capacity * kvDim * precision.bytes }

    /// Element offset of position `pos` of kv head `head` in `layer`.
    @inline(__always) func offset(layer: Int, head: Int, pos: Int) -> Int {
        ((layer * heads + head) * capacity + pos) * headDim
    }

    /// Writes key and value of heads `at / headDim ..< (at + count) / headDim` at (layer, pos);
    /// `key`/`value` hold `count` values (whole heads), starting with head `at / headDim`.
    func store(layer: Int, pos: Int, at column: Int = 0, key: UnsafePointer<Float>, value: UnsafePointer<Float>, count: Int) {
        precondition(column % headDim == 0 && count % headDim == 0, "KVCache.store: not whole heads")
        for h in 0..<(count / headDim) {
            put(offset(layer: layer, head: column / headDim + h, pos: pos), key + h * headDim, value + h * headDim)
        }
    }

    @inline(__always) private func put(_ o: Int, _ key: UnsafePointer<Float>, _ value: UnsafePointer<Float>) {
        let count = headDim
        switch precision {
        case .f32:
            (UnsafeMutableRawPointer(keys.pointer).assumingMemoryBound(to: Float.self) + o).update(from: key, count: count)
            (UnsafeMutableRawPointer(values.pointer).assumingMemoryBound(to: Float.self) + o).update(from: value, count: count)
        case .f16:
            ck_f32_to_f16(key, UnsafeMutableRawPointer(keys.pointer).assumingMemoryBound(to: UInt16.self) + o, count)
            ck_f32_to_f16(value, UnsafeMutableRawPointer(values.pointer).assumingMemoryBound(to: UInt16.self) + o, count)
        }
    }

    /// One attention head of one query over positions 0..<visible of kv head `head` in `layer`:
    /// out [headDim] = softmax(scale·q·Kᵀ)·V (fp32 softmax).
    func attend(q: UnsafePointer<Float>, layer: Int, head: Int, visible: Int, scale: Float,
                scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let o = offset(layer: layer, head: head, pos: 0)
        switch precision {
        case .f32:
            ck_attend_f32(q, UnsafeRawPointer(keys.pointer).assumingMemoryBound(to: Float.self) + o,
                          UnsafeRawPointer(values.pointer).assumingMemoryBound(to: Float.self) + o,
                          headDim, visible, headDim, scale, scores, out)
        case .f16:
            ck_attend_f16(q, UnsafeRawPointer(keys.pointer).assumingMemoryBound(to: UInt16.self) + o,
                          UnsafeRawPointer(values.pointer).assumingMemoryBound(to: UInt16.self) + o,
                          headDim, visible, headDim, scale, scores, out)
        }
    }

    /// The key and value rows at (layer, pos) as fp32 (tests and inspection).
    public func row(layer: Int, pos: Int) -> (key: [Float], value: [Float]) {
        func read(_ s: AlignedStorage<UInt8>) -> [Float] {
            var out = [Float](repeating: 0, count: kvDim)
            for h in 0..<heads {
                let o = offset(layer: layer, head: h, pos: pos)
                switch precision {
                case .f32:
                    for t in 0..<headDim { out[h * headDim + t] = (UnsafeRawPointer(s.pointer).assumingMemoryBound(to: Float.self) + o)[t] }
                case .f16:
                    out.withUnsafeMutableBufferPointer {
                        ck_f16_to_f32(UnsafeRawPointer(s.pointer).assumingMemoryBound(to: UInt16.self) + o, $0.baseAddress! + h * headDim, headDim)
                    }
                }
            }
            return out
        }
        return (read(keys), read(values))
    }

    /// Copies positions `range` of every layer from `other` (same layers, kvDim and precision).
    public func copy(from other: KVCache, positions range: Range<Int>) {
        precondition(other.layers == layers && other.kvDim == kvDim && other.headDim == headDim
                     && other.precision == precision && range.upperBound <= capacity && range.upperBound <= other.capacity)
        let bytes = range.count * headDim * precision.bytes
        for l in 0..<layers {
            for h in 0..<heads {
                let src = other.offset(layer: l, head: h, pos: range.lowerBound) * precision.bytes
                let dst = offset(layer: l, head: h, pos: range.lowerBound) * precision.bytes
                (keys.pointer + dst).update(from: other.keys.pointer + src, count: bytes)
                (values.pointer + dst).update(from: other.values.pointer + src, count: bytes)
            }
        }
    }

    /// Copies positions 0..<n of every layer from `other`.
    public func copy(from other: KVCache, positions n: Int) { copy(from: other, positions: 0..<n) }

    /// A new cache of the same shape and precision holding `capacity` positions, the first `n`
    /// copied from this one (a fork for a beam, a snapshot for another adapter set).
    public func prefix(_ n: Int, capacity: Int) -> KVCache {
        let c = KVCache(layers: layers, capacity: capacity, kvDim: kvDim, headDim: headDim, precision: precision)
        c.copy(from: self, positions: n)
        return c
    }
}
