// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}, then the data
// (offsets are relative to the end of the header). The file is mapped; tensors are located at
// init and read one at a time.
public final class SafeTensorsFile: MappedTensorFile, TensorFile, @unchecked Sendable {

    /// Headers bigger than this are refused (the reference implementation's limit).
    static let maxHeaderBytes = 100_000_000

    public convenience init(path: String) throws(LoadError) {
        try self.init(mapped: MappedFile(path: path))
    }

    init(mapped f: MappedFile) throws(LoadError) {
        func fail(_ reason: String) -> LoadError { LoadError(f.path, reason) }

        if f.size == 0 { throw fail("file is empty") }
        if f.isLFSPointer { throw fail(MappedFile.lfsReason) }
        if f.isZip { throw fail("is a zip archive (a PyTorch .bin?), not safetensors") }
        guard let n64 = f.u64(0) else {
            throw fail("file is too short (\(f.size) bytes) to hold a safetensors header")
        }
        guard n64 <= UInt64(f.size - 8) else {
            throw fail("header length \(n64) runs past the end of the file (\(f.size) bytes)")
        }
        guard n64 <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw fail("header length \(n64) is absurd (over \(SafeTensorsFile.maxHeaderBytes) bytes)")
        }
        let n = Int(n64)
        guard n > 0, let headerBytes = f.bytes(8, n) else { throw fail("header is empty") }

        let header: JSONValue
        do { header = try JSONParser.parse(headerBytes) } catch {
            throw fail("invalid JSON header: \(error.description)")
        }
        guard case .object(let members) = header else {
            throw fail("header is \(header.kind), not a JSON object")
        }

        let dataStart = 8 + n
        let dataLength = f.size - dataStart
        var meta: [String: String] = [:]
        struct Entry { let name: String; let dtype: DType; let shape: [Int]; let count: Int; let begin: Int; let end: Int; let order: Int }
        var entries: [Entry] = []
        for (order, (name, value)) in members.enumerated() {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw fail("__metadata__ is \(value.kind), not an object") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw fail("__metadata__ key \(k.quoted) is \(v.kind), not a string") }
                    meta[k] = s
                }
                continue
            }
            guard case .object = value else { throw fail("tensor \(name.quoted) entry is \(value.kind), not an object") }
            guard case .string(let dtypeName)? = value["dtype"] else { throw fail("tensor \(name.quoted) has no dtype string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail("tensor \(name.quoted) has unknown dtype \(dtypeName.quoted) (readable: \(known))")
            }
            guard case .array(let dims)? = value["shape"] else { throw fail("tensor \(name.quoted) has no shape array") }
            var shape: [Int] = []
            for d in dims {
                guard case .int(let v) = d, v >= 0 else {
                    throw fail("tensor \(name.quoted) shape has dimension \(d.brief); dimensions must be non-negative integers")
                }
                shape.append(v)
            }
            guard case .array(let offs)? = value["data_offsets"], offs.count == 2,
                  case .int(let begin) = offs[0], case .int(let end) = offs[1], begin >= 0, end >= 0 else {
                throw fail("tensor \(name.quoted) data_offsets must be two non-negative integers")
            }
            guard end >= begin else { throw fail("tensor \(name.quoted) data_offsets [\(begin), \(end)] end before they begin") }
            guard end <= dataLength else {
                throw fail("tensor \(name.quoted) data_offsets [\(begin), \(end)] lie outside the data section (\(dataLength) bytes); the file may be truncated")
            }
            guard let count = TensorInfo.elementCount(shape),
                  case let (need, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize), !overflow else {
                throw fail("tensor \(name.quoted) shape \(shape) is too large")
            }
            guard end - begin == need else {
                throw fail("tensor \(name.quoted) holds \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(need)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end, order: order))
        }

        // File order = data order; two tensors may not share bytes.
        entries.sort { ($0.begin, $0.order) < ($1.begin, $1.order) }
        var previous: Entry?
        var table = TensorTable()
        for e in entries {
            if e.end > e.begin {
                if let p = previous, e.begin < p.end {
                    throw fail("tensors \(p.name.quoted) [\(p.begin), \(p.end)) and \(e.name.quoted) [\(e.begin), \(e.end)) overlap")
                }
                previous = e
            }
            let strides = TensorInfo.rowMajorStrides(e.shape) ?? []
            let info = TensorInfo(name: e.name, dtype: e.dtype, shape: e.shape, strides: strides, file: f.path,
                                  offset: dataStart + e.begin, count: e.count)
            guard table.add(info) else { throw fail("tensor \(e.name.quoted) appears twice") }
        }
        super.init(file: f, table: table, metadata: meta)
    }

}
