#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// One weight-cache entry on disk: every tensor one model load produced, ready to be mapped.
//   0   magic "YANYIWC\0"
//   8   u32 format version           12  u32 Int8Matrix.storageLayoutVersion
//   16  u64 index length             24  u64 file length
//   32  u64 XXH64 of the index       40  u64 XXH64 of bytes 0..<40
//   64  index: JSON (model folder, key, and per tensor its shape and byte spans with their XXH64)
//   then the buffers, each 4096-aligned: Int8Matrix's codes and scales exactly as
//   `withUnsafeStorage` gives them (opaque here: the layout version says what they mean), fp32
//   vectors (norms, biases), and embeddings at their stored width. Little-endian throughout.
// A reader trusts nothing it has not checked: magic, versions, header and index hashes, the
// file length, every span inside the file and sized for its shape, and (with `verify`) every
// buffer's hash. Anything off makes the entry invalid, never a crash or a wrong weight.
enum WeightCacheFile {
    /// Bumped when this layout or the index's meaning changes.
    static let formatVersion = 1
    static let magic = Array("YANYIWC\0".utf8)
    static let headerSize = 64
    static let alignment = 4096
    static let fileExtension = "ywc"

    /// One tensor as a load produced it.
    enum Item {
        case int8(String, Int8Matrix)
        case floats(String, [Float])
        case embedding(String, EmbeddingTable)
    }

    /// What `open` found.
    enum Opened {
        case absent
        case valid(WeightCacheReader)
        /// Present but unusable (corrupt, truncated, stale, another version): why, in words.
        case invalid(String)
    }

    // MARK: reading

    /// Checks the header and index of a mapped entry file; the index, or what is wrong with it.
    static func readIndex(_ file: MappedFile) -> Result<WeightCacheIndex, Problem> {
        guard file.size >= headerSize, file.starts(with: magic) else { return .failure(.corrupt("is not a weight cache file")) }
        let header = file.bytes(0, 40)!
        guard file.u64(40) == ContentHash.xxh64(header) else { return .failure(.corrupt("has a damaged header")) }
        let format = Int(file.u32(8)!), layout = Int(file.u32(12)!)
        guard format == formatVersion, layout == Int8Matrix.storageLayoutVersion else {
            return .failure(.stale("was written by another version (format \(format), layout \(layout); this is \(formatVersion), \(Int8Matrix.storageLayoutVersion))"))
        }
        let indexLength = Int(clamping: file.u64(16)!), length = Int(clamping: file.u64(24)!)
        guard length == file.size else { return .failure(.corrupt("is truncated (\(file.size) of \(length) bytes)")) }
        guard let indexBytes = file.bytes(headerSize, indexLength) else { return .failure(.corrupt("has an index past its end")) }
        guard file.u64(32) == ContentHash.xxh64(indexBytes) else { return .failure(.corrupt("has a damaged index")) }
        guard let index = try? JSONDecoder().decode(WeightCacheIndex.self, from: Data(indexBytes)) else {
            return .failure(.corrupt("has an unreadable index"))
        }
        for t in index.tensors {
            if let why = t.problem(fileSize: file.size, dataStart: headerSize + indexLength) {
                return .failure(.corrupt("has a bad entry for \(t.name.quoted): \(why)"))
            }
        }
        return .success(index)
    }

    enum Problem: Error {
        case corrupt(String)
        case stale(String)
        var reason: String {
            switch self {
            case .corrupt(let s), .stale(let s): s
            }
        }
    }

    /// Maps the entry at `path` if it exists and was made from `key`. `verify` hashes every buffer
    /// (reads the whole file: page-cache speed, split over `pool`); without it only the header,
    /// index and sizes are checked.
    static func open(_ path: String, key: WeightCacheKey, verify: Bool, pool: ThreadPool?) -> Opened {
        guard FileManager.default.fileExists(atPath: path) else { return .absent }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { return .invalid("cannot be read (\(error.reason))") }
        let index: WeightCacheIndex
        switch readIndex(file) {
        case .failure(let p): return .invalid(p.reason)
        case .success(let i): index = i
        }
        guard index.key == key else { return .invalid("is stale (the checkpoint or the quantization changed)") }
        if verify, let bad = firstDamaged(index, file, pool: pool) {
            return .invalid("has damaged data in \(bad.quoted)")
        }
        return .valid(WeightCacheReader(path: path, file: file, index: index))
    }

    /// The first tensor whose bytes do not hash to what the index says, if any.
    static func firstDamaged(_ index: WeightCacheIndex, _ file: MappedFile, pool: ThreadPool?) -> String? {
        let spans = index.tensors.flatMap { t in t.spans.map { (t.name, $0) } }
        var bad = [Int](repeating: Int.max, count: spans.count)
        bad.withUnsafeMutableBufferPointer { bad in
            let check = { (i: Int) in
                let s = spans[i].1
                if ContentHash.hex(ContentHash.xxh64(file.bytes(s.offset, s.length)!)) != s.hash { bad[i] = i }
            }
            if let pool { pool.parallelFor(spans.count, check) } else { (0..<spans.count).forEach(check) }
        }
        return bad.min().flatMap { $0 == Int.max ? nil : spans[$0].0 }
    }

    // MARK: writing

    /// Writes `items` as an entry at `path`: to a temporary file beside it, flushed to disk, then
    /// renamed over `path`, so a reader sees the old entry, no entry, or the whole new one — never
    /// a part. The space is reserved first (ENOSPC before gigabytes are written). `failAfter`
    /// (tests) throws once that many data bytes are written, as a full disk would.
    static func write(_ items: [Item], model: String, key: WeightCacheKey, to path: String, failAfter: Int? = nil) throws(LoadError) {
        // The index, with the data offsets it will have: data starts after the index, whose own
        // length depends on those offsets, so reserve room as for the widest possible numbers.
        var tensors = items.map(\.indexEntry)
        let widest = tensors.map { t in
            var t = t
            t.spans = t.spans.map { _ in .init(offset: 1 << 50, length: 1 << 50, hash: ContentHash.hex(0)) }
            return t
        }
        let created = Date().timeIntervalSince1970
        let reserve = try encode(WeightCacheIndex(model: model, created: created, key: key, tensors: widest)).count
        var offset = align(headerSize + reserve)
        for i in tensors.indices {
            for j in tensors[i].spans.indices {
                tensors[i].spans[j].offset = offset
                offset = align(offset + tensors[i].spans[j].length)
            }
        }
        let length = offset

        let dir = (path as NSString).deletingLastPathComponent
        let temp = path + ".tmp.\(getpid())"
        let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw LoadError(dir, "cannot create a weight cache file: \(MappedFile.errnoText())") }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        do throws(LoadError) {
            let r = posix_fallocate(fd, 0, off_t(length))
            if r != 0 && r != EOPNOTSUPP && r != EINVAL {
                throw LoadError(dir, r == ENOSPC ? "not enough disk space for the weight cache (\(gib(length)) needed)"
                                                 : "cannot reserve \(gib(length)): \(String(cString: strerror(r)))")
            }
            var written = 0
            for i in tensors.indices {
                try items[i].withBuffers { (buffers) throws(LoadError) in
                    for (j, b) in buffers.enumerated() {
                        tensors[i].spans[j].hash = ContentHash.hex(ContentHash.xxh64(b))
                        if let failAfter, written + b.count > failAfter {
                            throw LoadError(temp, "simulated failure after \(failAfter) bytes")
                        }
                        try writeAll(fd, b, at: tensors[i].spans[j].offset, path: temp)
                        written += b.count
                    }
                }
            }
            let indexBytes = try encode(WeightCacheIndex(model: model, created: created, key: key, tensors: tensors))
            precondition(headerSize + indexBytes.count <= tensors.first.map { $0.spans[0].offset } ?? length, "weight cache index outgrew its room")
            var header = magic
            func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
            put(UInt32(formatVersion))
            put(UInt32(Int8Matrix.storageLayoutVersion))
            put(UInt64(indexBytes.count))
            put(UInt64(length))
            indexBytes.withUnsafeBytes { put(ContentHash.xxh64($0)) }
            header.withUnsafeBytes { put(ContentHash.xxh64($0)) }
            header += [UInt8](repeating: 0, count: headerSize - header.count)
            try writeAll(fd, header, at: 0, path: temp)
            try writeAll(fd, indexBytes, at: headerSize, path: temp)
            if ftruncate(fd, off_t(length)) != 0 || fsync(fd) != 0 {
                throw LoadError(temp, "cannot write: \(MappedFile.errnoText())")
            }
            closed = true
            if close(fd) != 0 { throw LoadError(temp, "cannot write: \(MappedFile.errnoText())") }
            if rename(temp, path) != 0 { throw LoadError(path, "cannot rename the new weight cache into place: \(MappedFile.errnoText())") }
        } catch {
            unlink(temp)
            throw error
        }
        // The rename itself survives a crash once the folder is flushed.
        let dfd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    private static func encode(_ index: WeightCacheIndex) throws(LoadError) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        do { return Array(try e.encode(index)) } catch { throw LoadError("weight cache", "cannot encode the index: \(error)") }
    }

    private static func writeAll(_ fd: Int32, _ b: UnsafeRawBufferPointer, at offset: Int, path: String) throws(LoadError) {
        var done = 0
        while done < b.count {
            let n = pwrite(fd, b.baseAddress! + done, min(b.count - done, 1 << 30), off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                throw LoadError(path, errno == ENOSPC ? "disk full while writing the weight cache" : "cannot write: \(MappedFile.errnoText())")
            }
            done += n
        }
    }

    private static func writeAll(_ fd: Int32, _ a: [UInt8], at offset: Int, path: String) throws(LoadError) {
        var failure: LoadError?
        a.withUnsafeBytes { b in
            do throws(LoadError) { try writeAll(fd, b, at: offset, path: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func gib(_ n: Int) -> String {
        n >= 1 << 30 ? String(format: "%.2f GiB", Double(n) / Double(1 << 30)) : String(format: "%.1f MiB", Double(n) / Double(1 << 20))
    }
}

/// What an entry holds, besides the buffers.
struct WeightCacheIndex: Codable {
    enum Kind: String, Codable { case int8, floats, embedding }

    struct Span: Codable {
        var offset: Int
        var length: Int
        /// XXH64 of the bytes, hex.
        var hash: String
    }

    struct Tensor: Codable {
        var kind: Kind
        var name: String
        /// int8 and embedding: [rows, cols]; floats: [count].
        var shape: [Int]
        /// int8: weights per scale.
        var block: Int?
        /// embedding: F32, F16 or BF16.
        var dtype: String?
        /// int8: codes, scales; floats and embedding: one.
        var spans: [Span]

        /// The byte lengths this tensor's spans must have, or nil when its fields make no sense.
        var expectedLengths: [Int]? {
            guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else { return nil }
            switch kind {
            case .int8:
                guard shape.count == 2, shape[1] > 0, let block, block > 0, block % 32 == 0 else { return nil }
                let n = Int8Matrix.storageCounts(rows: shape[0], cols: shape[1], block: block)
                return [n.codes, n.scales * 4]
            case .floats:
                guard shape.count == 1 else { return nil }
                return [shape[0] * 4]
            case .embedding:
                guard shape.count == 2, let d = dtype.flatMap(DType.init(rawValue:)), [.f32, .f16, .bf16].contains(d) else { return nil }
                return [shape[0] * shape[1] * d.byteSize]
            }
        }

        func problem(fileSize: Int, dataStart: Int) -> String? {
            guard let want = expectedLengths else { return "shape \(shape) does not fit kind \(kind.rawValue)" }
            guard spans.map(\.length) == want else { return "spans of \(spans.map(\.length)) bytes, shape needs \(want)" }
            for s in spans where s.offset < dataStart || s.offset % WeightCacheFile.alignment != 0 || s.offset > fileSize - s.length {
                return "span at \(s.offset) (\(s.length) bytes) outside the data"
            }
            return nil
        }
    }

    var model: String
    /// Seconds since 1970.
    var created: Double
    var key: WeightCacheKey
    var tensors: [Tensor]
}

/// A valid entry, mapped: int8 matrices are read out of the file into memory of their own,
/// embeddings used from the mapping.
/// A tensor it does not hold, or holds with another shape, is nil (the loader reads the checkpoint).
final class WeightCacheReader {
    let path: String
    let file: MappedFile
    let index: WeightCacheIndex
    private let slots: [String: Int]

    init(path: String, file: MappedFile, index: WeightCacheIndex) {
        self.path = path
        self.file = file
        self.index = index
        var slots: [String: Int] = [:]
        for (i, t) in index.tensors.enumerated() { slots[t.kind.rawValue + ":" + t.name] = i }
        self.slots = slots
    }

    private func tensor(_ kind: WeightCacheIndex.Kind, _ name: String, shape: [Int]) -> WeightCacheIndex.Tensor? {
        guard let i = slots[kind.rawValue + ":" + name], index.tensors[i].shape == shape else { return nil }
        return index.tensors[i]
    }

    private func pointer(_ s: WeightCacheIndex.Span) -> UnsafeRawPointer { file.bytes(s.offset, s.length)!.baseAddress! }

    /// The matrix read (pread: no page-table work for the source) into memory of its own,
    /// huge-page backed (see Int8Matrix's `fill` initializer); nil if the file cannot be read.
    func int8(_ name: String, rows: Int, cols: Int, block: Int, pool: ThreadPool?) -> Int8Matrix? {
        guard let t = tensor(.int8, name, shape: [rows, cols]), t.block == block else { return nil }
        let file = file
        return Int8Matrix(rows: rows, cols: cols, block: block, pool: pool) { r, codes, scales in
            let at = Int8Matrix.storageOffsets(row: r.lowerBound, cols: cols, block: block)
            return file.read(t.spans[0].offset + at.codes, into: codes) && file.read(t.spans[1].offset + at.scales, into: scales)
        }
    }

    func floats(_ name: String, count: Int) -> [Float]? {
        guard let t = tensor(.floats, name, shape: [count]) else { return nil }
        return Array(UnsafeBufferPointer(start: pointer(t.spans[0]).assumingMemoryBound(to: Float.self), count: count))
    }

    func embedding(_ name: String, rows: Int, cols: Int) -> EmbeddingTable? {
        guard let t = tensor(.embedding, name, shape: [rows, cols]), let d = t.dtype.flatMap(DType.init(rawValue:)) else { return nil }
        return EmbeddingTable(rows: rows, cols: cols, storage: .mapped(file, offset: t.spans[0].offset, d))
    }
}

extension WeightCacheFile.Item {
    var indexEntry: WeightCacheIndex.Tensor {
        switch self {
        case .int8(let name, let m):
            return m.withUnsafeStorage { q, s in
                .init(kind: .int8, name: name, shape: [m.rows, m.cols], block: m.block, dtype: nil,
                      spans: [.init(offset: 0, length: q.count, hash: ""), .init(offset: 0, length: s.count * 4, hash: "")])
            }
        case .floats(let name, let v):
            return .init(kind: .floats, name: name, shape: [v.count], block: nil, dtype: nil, spans: [.init(offset: 0, length: v.count * 4, hash: "")])
        case .embedding(let name, let e):
            return e.withUnsafeBytes { d, b in
                .init(kind: .embedding, name: name, shape: [e.rows, e.cols], block: nil, dtype: d.rawValue,
                      spans: [.init(offset: 0, length: b.count, hash: "")])
            }
        }
    }

    func withBuffers(_ body: ([UnsafeRawBufferPointer]) throws(LoadError) -> Void) throws(LoadError) {
        var failure: LoadError?
        func run(_ buffers: [UnsafeRawBufferPointer]) {
            do throws(LoadError) { try body(buffers) } catch { failure = error }
        }
        switch self {
        case .int8(_, let m): m.withUnsafeStorage { q, s in run([UnsafeRawBufferPointer(q), UnsafeRawBufferPointer(s)]) }
        case .floats(_, let v): v.withUnsafeBytes { run([$0]) }
        case .embedding(_, let e): e.withUnsafeBytes { _, b in run([b]) }
        }
        if let failure { throw failure }
    }
}
