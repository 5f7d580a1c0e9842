// PyTorch .bin (torch.save's zip format, torch >= 1.6): a zip of stored entries
//   <prefix>/data.pkl      the state dict, pickled; tensors are persistent ids of storages
//   <prefix>/data/<key>    raw little-endian storage bytes, one entry per storage
//   <prefix>/byteorder     "little" (absent in older archives)
// <prefix> is "archive" or the file's stem. The pickle goes through the restricted Unpickler;
// tensors become views (offset, shape, strides) into mapped storage entries, checked to lie
// inside their storage.
public final class TorchArchiveFile: MappedTensorFile, TensorFile, @unchecked Sendable {

    /// torch < 1.6 (or _use_new_zipfile_serialization=False): PROTO 2, then LONG1 of the magic
    /// number 0x1950a86a20f9469cfc6c.
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let maxDimensions = 64

    public convenience init(path: String) throws(LoadError) {
        try self.init(mapped: MappedFile(path: path))
    }

    init(mapped f: MappedFile) throws(LoadError) {
        func fail(_ reason: String) -> LoadError { LoadError(f.path, reason) }

        if f.size == 0 { throw fail("file is empty") }
        if ZipArchive.findEOCD(f) == nil { throw TorchArchiveFile.notAnArchive(f) }
        let zip = try ZipArchive(f)

        // <prefix>/data.pkl names the prefix.
        let pickles = zip.entries.filter { e in
            let parts = e.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl" && !parts[0].isEmpty
        }
        guard let pickleEntry = pickles.first else {
            throw fail("zip archive is not a PyTorch checkpoint: no '<folder>/data.pkl' entry")
        }
        guard pickles.count == 1 else {
            throw fail("zip archive holds several checkpoints (\(pickles.prefix(4).map(\.name.quoted).joined(separator: ", ")))")
        }
        let prefix = String(pickleEntry.name.dropLast("/data.pkl".count))
        var meta = ["archive": prefix]
        func text(_ name: String) throws(LoadError) -> String? {
            guard let e = zip.entry("\(prefix)/\(name)") else { return nil }
            guard e.size <= 64 else { throw fail("zip entry \(e.name.quoted) is \(e.size) bytes; expected a short text") }
            let raw = String(decoding: try zip.data(e), as: UTF8.self)
            return String(raw.filter { !$0.isWhitespace })
        }
        if let order = try text("byteorder") {
            guard order == "little" else {
                throw fail("archive byte order is \(order.quoted); only little-endian archives are supported")
            }
            meta["byteorder"] = order
        }
        if let version = try text("version") { meta["version"] = version }

        var unpickler = Unpickler(try zip.data(pickleEntry), file: f.path, entry: pickleEntry.name)
        let root = try unpickler.run()
        let dict = try TorchArchiveFile.stateDict(root, f.path)

        var storages: [String: Range<Int>] = [:]   // key -> bytes in the file
        var table = TensorTable()
        for (key, value) in dict.entries {
            guard case .string(let name) = key, case .tensor(let t) = value else { continue }  // not a weight
            let s = t.storage
            let range: Range<Int>
            if let r = storages[s.key] {
                range = r
            } else {
                guard let e = zip.entry("\(prefix)/data/\(s.key)") else {
                    throw fail("tensor \(name.quoted) uses storage \(s.key.quoted) but the archive has no entry \("\(prefix)/data/\(s.key)".quoted)")
                }
                range = try zip.dataRange(e)
                storages[s.key] = range
            }
            let bs = s.dtype.byteSize
            guard case let (need, o) = s.numel.multipliedReportingOverflow(by: bs), !o, need <= range.count else {
                throw fail("tensor \(name.quoted): storage \(s.key.quoted) holds \(range.count) bytes, fewer than its \(s.numel) \(s.dtype.rawValue) elements")
            }
            let info = try TorchArchiveFile.view(name, t, range.lowerBound, f.path)
            guard table.add(info) else { throw fail("tensor \(name.quoted) appears twice") }
        }
        super.init(file: f, table: table, metadata: meta)
    }

    /// The state dict inside the pickle: a flat name -> tensor dict, or one wrapped a level
    /// down ({"state_dict": …}, {"model": …}). Non-tensor values are skipped by the caller.
    static func stateDict(_ root: PickleValue, _ path: String) throws(LoadError) -> PickleBox {
        guard case .dict(let top) = root else {
            throw LoadError(path, "pickle holds \(root.kind), not a state dict (a dict of tensors)")
        }
        func hasTensors(_ b: PickleBox) -> Bool {
            b.entries.contains { if case .tensor = $0.value { true } else { false } }
        }
        if hasTensors(top) { return top }
        var wrapped: [(String, PickleBox)] = []
        for (k, v) in top.entries {
            if case .dict(let inner) = v, hasTensors(inner) {
                wrapped.append((k.describedKey, inner))
            }
        }
        if wrapped.count > 1 {
            throw LoadError(path, "pickle holds several state dicts (\(wrapped.map { "\($0.0.quoted)" }.joined(separator: ", "))); expected one")
        }
        return wrapped.first?.1 ?? top
    }

    /// Checks a view against its storage and locates its first element in the file.
    static func view(_ name: String, _ t: PickleTensor, _ storageStart: Int, _ path: String) throws(LoadError) -> TensorInfo {
        func fail(_ reason: String) -> LoadError { LoadError(path, "tensor \(name.quoted) \(reason)") }
        let s = t.storage, bs = s.dtype.byteSize
        guard t.shape.count <= maxDimensions else { throw fail("has \(t.shape.count) dimensions") }
        guard t.shape.count == t.strides.count else {
            throw fail("has size \(t.shape) but stride \(t.strides)")
        }
        guard t.shape.allSatisfy({ $0 >= 0 }), t.strides.allSatisfy({ $0 >= 0 }), t.offset >= 0 else {
            throw fail("has a negative size, stride or offset (size \(t.shape), stride \(t.strides), offset \(t.offset))")
        }
        guard let count = TensorInfo.elementCount(t.shape) else { throw fail("size \(t.shape) is too large") }
        var first = storageStart
        if count > 0 {
            guard let last = TensorInfo.lastElementIndex(shape: t.shape, strides: t.strides),
                  case let (end, o) = t.offset.addingReportingOverflow(last), !o, end < s.numel else {
                throw fail("(offset \(t.offset), size \(t.shape), stride \(t.strides)) reaches past its storage \(s.key.quoted) of \(s.numel) elements")
            }
            // Expanded or self-overlapping views would let a tiny file claim a huge tensor.
            guard count <= s.numel else {
                throw fail("has \(count) elements but its storage \(s.key.quoted) only \(s.numel); expanded (stride 0) views are not supported")
            }
            first += t.offset * bs   // offset < numel, so this stays inside the storage
        }
        return TensorInfo(name: name, dtype: s.dtype, shape: t.shape, strides: t.strides, file: path,
                          offset: first, count: count)
    }

    /// Why a file without a zip directory is not readable, as precisely as we can tell.
    static func notAnArchive(_ f: MappedFile) -> LoadError {
        let reason: String
        if f.starts(with: legacyMagic) {
            reason = "legacy (pre-zip) PyTorch format; re-save it with a newer torch (torch.save with the default zip serialization)"
        } else if f.isLFSPointer {
            reason = MappedFile.lfsReason
        } else if f.isZip {
            reason = "zip archive has no end-of-central-directory record (truncated?)"
        } else if f.starts(with: [0x80]) {
            reason = "is a bare pickle, not a PyTorch zip archive; refusing to read it"
        } else if let n = f.u64(0), n < UInt64(f.size), f.u8(8) == UInt8(ascii: "{") {
            reason = "is a safetensors file, not a PyTorch .bin"
        } else {
            reason = "is not a PyTorch zip archive (no end-of-central-directory record)"
        }
        return LoadError(f.path, reason)
    }

}

extension PickleValue {
    /// A dict key for messages.
    var describedKey: String {
        switch self {
        case .string(let s): s
        case .int(let n): "\(n)"
        default: kind
        }
    }
}
