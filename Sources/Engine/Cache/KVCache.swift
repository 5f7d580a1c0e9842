/// Keys and values of one sequence, preallocated for its whole capacity.
/// k, v: [layers][capacity][kvDim] fp32 (keys stored after rotary embedding).
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    public let kvDim: Int
    public var keys: [Float]
    public var values: [Float]

    public init(layers: Int, capacity: Int, kvDim: Int) {
        self.layers = layers
        self.capacity = capacity
        self.kvDim = kvDim
        keys = [Float](repeating: 0, count: layers * capacity * kvDim)
        values = [Float](repeating: 0, count: layers * capacity * kvDim)
    }

    public var byteSize: Int { (keys.count + values.count) * MemoryLayout<Float>.size }

    /// Offset of position `pos` of `layer` in `keys`/`values`.
    @inline(__always) public func offset(layer: Int, pos: Int) -> Int { (layer * capacity + pos) * kvDim }

    /// Copies positions 0..<n of every layer from `other` (same layers and kvDim, any capacity ≥ n).
    public func copy(from other: KVCache, positions n: Int) {
        precondition(other.layers == layers && other.kvDim == kvDim && n <= capacity && n <= other.capacity)
        let span = n * kvDim
        for l in 0..<layers {
            let src = other.offset(layer: l, pos: 0), dst = offset(layer: l, pos: 0)
            keys.withUnsafeMutableBufferPointer { k in
                other.keys.withUnsafeBufferPointer { (k.baseAddress! + dst).update(from: $0.baseAddress! + src, count: span) }
            }
            values.withUnsafeMutableBufferPointer { v in
                other.values.withUnsafeBufferPointer { (v.baseAddress! + dst).update(from: $0.baseAddress! + src, count: span) }
            }
        }
    }
}
