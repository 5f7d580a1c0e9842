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
}
