#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// What a weight cache entry was made from. Two loads may share quantized weights only when
// every file they read is the same (name, size, mtime, and a hash of its first and last 64 KiB:
// the safetensors header / the start of a torch zip, and the zip's central directory) and the
// quantization is the same (precision, block, the cache format and Int8Matrix's storage layout).
// Hashing whole checkpoints would cost as much as quantizing them; size + mtime + the ends
// catch a file replaced, rewritten or truncated, as build systems and git trust mtimes.
struct WeightCacheKey: Codable, Equatable, Sendable {
    struct FileStamp: Codable, Equatable, Sendable {
        var name: String
        var size: Int
        /// Modification time, nanoseconds since 1970.
        var mtime: Int64
        /// XXH64 of the first and last 64 KiB, hex.
        var ends: String
    }

    var format: Int
    var layout: Int
    var precision: String
    var block: Int
    var files: [FileStamp]

    /// Bytes hashed at each end of a file.
    static let endBytes = 64 << 10

    /// The key of a model folder's weights as they are now: config.json, the shard index if any,
    /// and every weight file of `checkpoint` (the folder's, opened).
    init(folder: String, checkpoint: Checkpoint, precision: Precision, block: Int) throws(LoadError) {
        var paths = [joinPath(folder, "config.json")]
        if checkpoint.format == .safetensorsSharded || checkpoint.format == .pytorchBinSharded,
           let index = Checkpoint.candidates.first(where: { $0.format == checkpoint.format }) {
            paths.append(joinPath(folder, index.name))
        }
        paths += checkpoint.files
        format = WeightCacheFile.formatVersion
        layout = Int8Matrix.storageLayoutVersion
        self.precision = precision.rawValue
        self.block = block
        files = try paths.map { p throws(LoadError) in try Self.stamp(p) }
    }

    static func stamp(_ path: String) throws(LoadError) -> FileStamp {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw LoadError(path, "cannot open: \(MappedFile.errnoText())") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw LoadError(path, "cannot stat: \(MappedFile.errnoText())") }
        let size = Int(st.st_size)
        let head = min(size, endBytes), tailStart = max(head, size - endBytes)
        var bytes = [UInt8](repeating: 0, count: head + size - tailStart)
        let ok = bytes.withUnsafeMutableBytes { b in
            MappedFile.readFully(fd, b.baseAddress!, head, 0) && MappedFile.readFully(fd, b.baseAddress! + head, size - tailStart, tailStart)
        }
        if !ok { throw LoadError(path, "cannot read: \(MappedFile.errnoText())") }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let ends = bytes.withUnsafeBytes { ContentHash.xxh64($0) }
        return FileStamp(name: (path as NSString).lastPathComponent, size: size, mtime: mtime, ends: ContentHash.hex(ends))
    }
}

/// XXH64 (Yann Collet's xxHash, 64-bit): a fast hash for telling damaged bytes from good ones,
/// not for resisting an adversary. Weight-cache headers, indexes and tensors are checked with it.
enum ContentHash {
    private static let p1: UInt64 = 11400714785074694791
    private static let p2: UInt64 = 14029467366897019727
    private static let p3: UInt64 = 1609587929392839161
    private static let p4: UInt64 = 9650029242287828579
    private static let p5: UInt64 = 2870177450012600261

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 { rotl(acc &+ input &* p2, 31) &* p1 }
    @inline(__always) private static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 { (acc ^ round(0, v)) &* p1 &+ p4 }

    static func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = bytes.count
        guard let base = bytes.baseAddress, n > 0 else { return avalanche(seed &+ p5) }
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while i + 32 <= n {
                v1 = round(v1, base.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
                v2 = round(v2, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self).littleEndian)
                i += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(merge(merge(merge(h, v1), v2), v3), v4)
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt64(n)
        while i + 8 <= n {
            h = rotl(h ^ round(0, base.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian), 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h = rotl(h ^ UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian) &* p1, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h = rotl(h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p5, 11) &* p1
            i += 1
        }
        return avalanche(h)
    }

    private static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }

    static func hex(_ x: UInt64) -> String {
        let s = String(x, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
