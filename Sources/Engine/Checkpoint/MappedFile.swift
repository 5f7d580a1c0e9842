#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// A whole file mapped read-only (PROT_READ, MAP_PRIVATE). Weights are never read into memory:
// pages come in as tensors are touched. Every read is bounds-checked, so a hostile or truncated
// file gives a LoadError instead of a trap.
final class MappedFile: @unchecked Sendable {
    let path: String
    let size: Int
    private let base: UnsafeRawPointer?   // nil for an empty file (mmap of 0 bytes fails)
    private let release: Release
    /// The mapped file, kept open for `read(_:into:)`; -1 for an empty file or in-memory bytes.
    private let fd: Int32

    private enum Release { case none, munmap, deallocate }

    init(path: String) throws(LoadError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw LoadError(path, "cannot open: \(MappedFile.errnoText())") }
        var keep = false
        defer { if !keep { close(fd) } }
        var st = stat()
        if fstat(fd, &st) != 0 { throw LoadError(path, "cannot stat: \(MappedFile.errnoText())") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw LoadError(path, "not a regular file") }
        let n = Int(st.st_size)
        size = n
        if n == 0 {
            base = nil
            release = .none
            self.fd = -1
            return
        }
        guard let p = mmap(nil, n, PROT_READ, MAP_PRIVATE, fd, 0),
              p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw LoadError(path, "cannot map \(n) bytes: \(MappedFile.errnoText())")
        }
        base = UnsafeRawPointer(p)
        release = .munmap
        self.fd = fd
        keep = true
    }

    /// An in-memory stand-in with the same bounds checks (tests and fuzzing use it: no disk I/O).
    init(path: String, bytes: [UInt8]) {
        self.path = path
        size = bytes.count
        fd = -1
        if bytes.isEmpty {
            base = nil
            release = .none
            return
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        bytes.withUnsafeBytes { src in
            if let s = src.baseAddress { p.copyMemory(from: s, byteCount: src.count) }
        }
        base = UnsafeRawPointer(p)
        release = .deallocate
    }

    /// Gives back the pages holding [offset, offset + count): they leave this process's resident
    /// set (the page cache keeps them) and are read again if touched. Loading calls it after each
    /// tensor, so streaming through a 26 GB checkpoint never makes it resident.
    func dropPages(_ offset: Int, _ count: Int) {
        guard let base, release == .munmap, count > 0, contains(offset, count) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = offset / page * page
        let hi = min(size, (offset + count + page - 1) / page * page)
        madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, MADV_DONTNEED)
    }

    /// Copies [offset, offset + buf.count) of the file into buf: read (pread) rather than through
    /// the mapping, so the mapping's pages are never touched (a reader that keeps its own copy);
    /// false when the range lies outside the file or cannot be read.
    func read(_ offset: Int, into buf: UnsafeMutableRawBufferPointer) -> Bool {
        guard contains(offset, buf.count) else { return false }
        guard let dst = buf.baseAddress, buf.count > 0 else { return true }
        if fd < 0 {  // in-memory bytes
            dst.copyMemory(from: base! + offset, byteCount: buf.count)
            return true
        }
        return Self.readFully(fd, dst, buf.count, offset)
    }

    /// n bytes at `offset` of fd into p, through short reads and EINTR; false on error or EOF.
    static func readFully(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ offset: Int) -> Bool {
        var done = 0
        while done < n {
            let r = pread(fd, p + done, n - done, off_t(offset + done))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return false }
            done += r
        }
        return true
    }

    deinit {
        if fd >= 0 { close(fd) }
        guard let base else { return }
        switch release {
        case .munmap: munmap(UnsafeMutableRawPointer(mutating: base), size)
        case .deallocate: UnsafeMutableRawPointer(mutating: base).deallocate()
        case .none: break
        }
    }

    static func errnoText() -> String {
        guard let s = strerror(errno) else { return "errno \(errno)" }
        return String(cString: s)
    }

    /// Whether [offset, offset+count) lies inside the file (overflow-safe).
    func contains(_ offset: Int, _ count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= size && count <= size - offset
    }

    /// The bytes [offset, offset+count), or nil when any of them lies outside the file.
    func bytes(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer? {
        guard contains(offset, count) else { return nil }
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// The whole file (empty for an empty file).
    var all: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : size)
    }

    /// Little-endian unsigned integers; nil past the end.
    func u8(_ offset: Int) -> UInt8? { load(offset, as: UInt8.self) }
    func u16(_ offset: Int) -> UInt16? { load(offset, as: UInt16.self).map { UInt16(littleEndian: $0) } }
    func u32(_ offset: Int) -> UInt32? { load(offset, as: UInt32.self).map { UInt32(littleEndian: $0) } }
    func u64(_ offset: Int) -> UInt64? { load(offset, as: UInt64.self).map { UInt64(littleEndian: $0) } }

    private func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T? {
        guard let b = bytes(offset, MemoryLayout<T>.size), let p = b.baseAddress else { return nil }
        return p.loadUnaligned(as: T.self)
    }

    /// Whether the file starts with these bytes.
    func starts(with prefix: [UInt8]) -> Bool {
        guard let b = bytes(0, prefix.count) else { return false }
        return zip(b, prefix).allSatisfy { $0 == $1 }
    }
}

extension MappedFile {
    /// A Git LFS pointer checked out in place of the weights: a common, confusing failure.
    var isLFSPointer: Bool { starts(with: Array("version https://git-lfs".utf8)) }
    var isZip: Bool { starts(with: [0x50, 0x4B, 0x03, 0x04]) || starts(with: [0x50, 0x4B, 0x05, 0x06]) }
    static let lfsReason = "is a Git LFS pointer, not the weights; fetch them (git lfs pull)"
}
