// Tensors of one weights file, in file order, with lookup by name.
struct TensorTable {
    private(set) var names: [String] = []
    private var byName: [String: TensorInfo] = [:]

    /// Adds a tensor; false when its name is already taken.
    mutating func add(_ t: TensorInfo) -> Bool {
        guard byName[t.name] == nil else { return false }
        byName[t.name] = t
        names.append(t.name)
        return true
    }

    subscript(name: String) -> TensorInfo? { byName[name] }
}

/// What SafeTensorsFile and TorchArchiveFile have in common; Checkpoint holds shards as these.
protocol TensorFile: AnyObject, Sendable {
    var path: String { get }
    var names: [String] { get }
    func info(_ name: String) -> TensorInfo?
    func floats(_ name: String) throws(LoadError) -> [Float]
    func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// Drops the tensor's mapped pages from the resident set (see MappedFile.dropPages).
    func releasePages(_ name: String)
    func releasePages(_ name: String, elements: Range<Int>)
}

/// The part SafeTensorsFile and TorchArchiveFile share: a mapped file and its tensor table.
public class MappedTensorFile: @unchecked Sendable {
    public let path: String
    /// What the file says about itself (safetensors `__metadata__`; for .bin: archive, byteorder, version).
    public let metadata: [String: String]
    let file: MappedFile
    let table: TensorTable

    init(file: MappedFile, table: TensorTable, metadata: [String: String]) {
        self.path = file.path
        self.file = file
        self.table = table
        self.metadata = metadata
    }

    /// Tensor names in file order (data order for safetensors, the state dict's order for .bin).
    public var names: [String] { table.names }

    public func info(_ name: String) -> TensorInfo? { table[name] }

    /// A row-major fp32 copy of one tensor (F32/F16/BF16/F64), honouring views.
    public func floats(_ name: String) throws(LoadError) -> [Float] {
        guard let t = table[name] else { throw LoadError(path, "no tensor named \(name.quoted)") }
        return try file.floats(t)
    }

    /// floats(name), refusing a tensor that holds NaN or ±Inf (an adapter's A and B: one bad value
    /// would turn every logit into NaN).
    public func finiteFloats(_ name: String) throws(LoadError) -> [Float] {
        let v = try floats(name)
        let bad = v.withUnsafeBufferPointer(countNonFinite)
        if bad > 0 { throw LoadError(path, "tensor \(name.quoted) holds \(bad) NaN or infinite value\(bad == 1 ? "" : "s")") }
        return v
    }

    /// The mapped bytes of one contiguous tensor in its stored dtype, without a copy.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let t = table[name] else { throw LoadError(path, "no tensor named \(name.quoted)") }
        return try file.withRawBytes(t, body)
    }

    /// Drops the tensor's mapped pages from the resident set (see MappedFile.dropPages).
    public func releasePages(_ name: String) {
        guard let t = table[name], t.count > 0,
              let last = TensorInfo.lastElementIndex(shape: t.shape, strides: t.strides) else { return }
        file.dropPages(t.offset, (last + 1) * t.dtype.byteSize)
    }

    /// Drops the pages of elements `range` of a contiguous tensor (a loader done with those rows).
    public func releasePages(_ name: String, elements range: Range<Int>) {
        guard let t = table[name], t.isContiguous, !range.isEmpty, range.upperBound <= t.count else { return }
        file.dropPages(t.offset + range.lowerBound * t.dtype.byteSize, range.count * t.dtype.byteSize)
    }
}

/// NaN and ±Inf among fp32 values (exponent bits all set), counted branch-free.
func countNonFinite(_ v: UnsafeBufferPointer<Float>) -> Int {
    var n = 0
    for x in v { n += (x.bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
    return n
}

/// The same for binary16 (`f16`: exponent 0x7C00) or bfloat16 (`bf16`: 0x7F80) bit patterns.
func countNonFinite(_ v: UnsafeBufferPointer<UInt16>, exponent: UInt16) -> Int {
    var n = 0
    for x in v { n += (x & exponent) == exponent ? 1 : 0 }
    return n
}
