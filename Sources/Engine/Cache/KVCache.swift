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
/// keys, values: [layers][capacity][kvDim] of `precision` (keys stored after rotary embedding).
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    public let kvDim: Int
    public let precision: KVPrecision
    private let keys: AlignedStorage<UInt8>
    private let values: AlignedStorage<UInt8>

    public init(layers: Int, capacity: Int, kvDim: Int, precision: KVPrecision = .f32) {
        self.layers = layers
        self.capacity = capacity
        self.kvDim = kvDim
        self.precision = precision
        keys = AlignedStorage(count: layers * capacity * kvDim * precision.bytes)
        values = AlignedStorage(count: layers * capacity * kvDim * precision.bytes)
    }

    public var byteSize: Int { 2 * layers * capacity * kvDim * precision.bytes }

    /// Element offset of position `pos` of `layer`.
    @inline(__always) func offset(layer: Int, pos: Int) -> Int { (layer * capacity + pos) * kvDim }

    /// Writes `count` values of key and value at (layer, pos), starting `at` elements into the row.
    func store(layer: Int, pos: Int, at column: Int = 0, key: UnsafePointer<Float>, value: UnsafePointer<Float>, count: Int) {
        let o = offset(layer: layer, pos: pos) + column
        switch precision {
        case .f32:
            (UnsafeMutableRawPointer(keys.pointer).assumingMemoryBound(to: Float.self) + o).update(from: key, count: count)
            (UnsafeMutableRawPointer(values.pointer).assumingMemoryBound(to: Float.self) + o).update(from: value, count: count)
        case .f16:
            ck_f32_to_f16(key, UnsafeMutableRawPointer(keys.pointer).assumingMemoryBound(to: UInt16.self) + o, count)
            ck_f32_to_f16(value, UnsafeMutableRawPointer(values.pointer).assumingMemoryBound(to: UInt16.self) + o, count)
        }
    }

    /// One attention head of one query over positions 0..<visible of `layer`, reading the head's
    /// `headDim` columns starting at `column`: out = softmax(scale·q·Kᵀ)·V (fp32 softmax).
    func attend(q: UnsafePointer<Float>, layer: Int, column: Int, visible: Int, headDim: Int, scale: Float,
                scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let o = offset(layer: layer, pos: 0) + column
        switch precision {
        case .f32:
            ck_attend_f32(q, UnsafeRawPointer(keys.pointer).assumingMemoryBound(to: Float.self) + o,
                          UnsafeRawPointer(values.pointer).assumingMemoryBound(to: Float.self) + o,
                          kvDim, visible, headDim, scale, scores, out)
        case .f16:
            ck_attend_f16(q, UnsafeRawPointer(keys.pointer).assumingMemoryBound(to: UInt16.self) + o,
                          UnsafeRawPointer(values.pointer).assumingMemoryBound(to: UInt16.self) + o,
                          kvDim, visible, headDim, scale, scores, out)
        }
    }

    /// The key and value rows at (layer, pos) as fp32 (tests and inspection).
    public func row(layer: Int, pos: Int) -> (key: [Float], value: [Float]) {
        let o = offset(layer: layer, pos: pos)
        func read(_ s: AlignedStorage<UInt8>) -> [Float] {
            switch precision {
            case .f32:
                return Array(UnsafeBufferPointer(start: UnsafeRawPointer(s.pointer).assumingMemoryBound(to: Float.self) + o, count: kvDim))
            case .f16:
                var out = [Float](repeating: 0, count: kvDim)
                ck_f16_to_f32(UnsafeRawPointer(s.pointer).assumingMemoryBound(to: UInt16.self) + o, &out, kvDim)
                return out
            }
        }
        return (read(keys), read(values))
    }

    /// Copies positions `range` of every layer from `other` (same layers, kvDim and precision).
    public func copy(from other: KVCache, positions range: Range<Int>) {
        precondition(other.layers == layers && other.kvDim == kvDim && other.precision == precision
                     && range.upperBound <= capacity && range.upperBound <= other.capacity)
        let bytes = range.count * kvDim * precision.bytes
        for l in 0..<layers {
            let src = other.offset(layer: l, pos: range.lowerBound) * precision.bytes
            let dst = offset(layer: l, pos: range.lowerBound) * precision.bytes
            (keys.pointer + dst).update(from: other.keys.pointer + src, count: bytes)
            (values.pointer + dst).update(from: other.values.pointer + src, count: bytes)
        }
    }

    /// Copies positions 0..<n of every layer from `other`.
    public func copy(from other: KVCache, positions n: Int) { copy(from: other, positions: 0..<n) }
}
