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
}
