// A minimal zip reader for PyTorch archives: the end-of-central-directory record (and its ZIP64
// locator/record), the central directory (with ZIP64 extra fields), and local headers. Only
// stored (uncompressed) entries can be read: torch never compresses, and a stored entry can be
// handed out straight from the mapping. CRCs are not checked (that would read every byte).
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16          // 0 = stored
        let flags: UInt16
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let file: MappedFile
    /// Entries in central-directory order.
    let entries: [Entry]
    /// Where the central directory starts (the records after it run to the end of the file).
    let centralDirectoryOffset: Int
    private let byName: [String: Int]

    private static let eocdSignature: UInt32 = 0x0605_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4B50
    private static let centralSignature: UInt32 = 0x0201_4B50
    private static let localSignature: UInt32 = 0x0403_4B50

    /// Whether the file has an end-of-central-directory record at all (is it a zip?).
    static func findEOCD(_ f: MappedFile) -> Int? {
        guard f.size >= 22 else { return nil }
        // The record is 22 bytes plus a comment of up to 65535 bytes, at the very end.
        let lowest = max(0, f.size - 22 - 0xFFFF)
        var at = f.size - 22
        while at >= lowest {
            if f.u32(at) == eocdSignature, let commentLength = f.u16(at + 20), at + 22 + Int(commentLength) <= f.size {
                return at
            }
            at -= 1
        }
        return nil
    }

    init(_ f: MappedFile) throws(LoadError) {
        file = f
        func fail(_ reason: String) -> LoadError { LoadError(f.path, reason) }
        guard let eocd = ZipArchive.findEOCD(f) else {
            throw fail("zip archive has no end-of-central-directory record (truncated or not a zip)")
        }
        guard let disk = f.u16(eocd + 4), let cdDisk = f.u16(eocd + 6),
              let count16 = f.u16(eocd + 10), let size32 = f.u32(eocd + 12), let offset32 = f.u32(eocd + 16) else {
            throw fail("zip end-of-central-directory record is truncated")
        }
        var entryCount = Int(count16)
        var cdSize = Int(size32)
        var cdOffset = Int(offset32)
        var multiDisk = false

        // ZIP64: a locator sits right before the classic record and points at the ZIP64 record.
        if eocd >= 20, f.u32(eocd - 20) == ZipArchive.zip64LocatorSignature {
            guard let recordDisk = f.u32(eocd - 16), let recordOffset64 = f.u64(eocd - 12),
                  let totalDisks = f.u32(eocd - 4) else {
                throw fail("zip64 end-of-central-directory locator is truncated")
            }
            if recordDisk != 0 || totalDisks > 1 { multiDisk = true }
            guard recordOffset64 < UInt64(f.size), case let r = Int(recordOffset64),
                  f.u32(r) == ZipArchive.zip64EOCDSignature,
                  let disk64 = f.u32(r + 16), let cdDisk64 = f.u32(r + 20),
                  let count64 = f.u64(r + 32), let size64 = f.u64(r + 40), let offset64 = f.u64(r + 48) else {
                throw fail("zip64 end-of-central-directory record is missing or damaged (truncated?)")
            }
            if disk64 != 0 || cdDisk64 != 0 { multiDisk = true }  // (the classic record's disk fields may read 0xFFFF here)
            guard count64 <= UInt64(f.size), size64 <= UInt64(f.size), offset64 <= UInt64(f.size) else {
                throw fail("zip64 end-of-central-directory record points past the end of the file")
            }
            entryCount = Int(count64)
            cdSize = Int(size64)
            cdOffset = Int(offset64)
        } else if count16 == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
            throw fail("zip archive needs a zip64 end-of-central-directory record but has none")
        } else if disk != 0 || cdDisk != 0 {
            multiDisk = true
        }
        if multiDisk { throw fail("multi-part (spanned) zip archives are not supported") }
        guard f.contains(cdOffset, cdSize) else {
            throw fail("zip central directory (\(cdSize) bytes at \(cdOffset)) lies outside the file (\(f.size) bytes); truncated?")
        }

        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        var at = cdOffset
        let cdEnd = cdOffset + cdSize
        for k in 0..<entryCount {
            guard at + 46 <= cdEnd, f.u32(at) == ZipArchive.centralSignature,
                  let flags = f.u16(at + 8), let method = f.u16(at + 10),
                  let csize32 = f.u32(at + 20), let usize32 = f.u32(at + 24),
                  let nameLength = f.u16(at + 28), let extraLength = f.u16(at + 30), let commentLength = f.u16(at + 32),
                  let local32 = f.u32(at + 42) else {
                throw fail("zip central directory entry \(k) is damaged")
            }
            let nameAt = at + 46, extraAt = nameAt + Int(nameLength)
            let next = extraAt + Int(extraLength) + Int(commentLength)
            guard next <= cdEnd, let nameBytes = f.bytes(nameAt, Int(nameLength)) else {
                throw fail("zip central directory entry \(k) runs past the directory")
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            var csize = Int(csize32), usize = Int(usize32), local = Int(local32)

            // ZIP64 extra field (id 1): 8-byte values for exactly the fields that read 0xFFFFFFFF.
            var e = extraAt
            let extraEnd = extraAt + Int(extraLength)
            while e + 4 <= extraEnd {
                guard let id = f.u16(e), let length = f.u16(e + 2) else { break }
                let body = e + 4, bodyEnd = body + Int(length)
                guard bodyEnd <= extraEnd else { throw fail("zip entry \(name.quoted) has a damaged extra field") }
                if id == 1 {
                    var p = body
                    func wide() throws(LoadError) -> Int {
                        guard p + 8 <= bodyEnd, let v = f.u64(p), v <= UInt64(Int.max) else {
                            throw fail("zip entry \(name.quoted) has a damaged zip64 extra field")
                        }
                        p += 8
                        return Int(v)
                    }
                    if usize32 == 0xFFFF_FFFF { usize = try wide() }
                    if csize32 == 0xFFFF_FFFF { csize = try wide() }
                    if local32 == 0xFFFF_FFFF { local = try wide() }
                }
                e = bodyEnd
            }
            if byName[name] != nil { throw fail("zip archive has two entries named \(name.quoted)") }
            byName[name] = entries.count
            entries.append(Entry(name: name, method: method, flags: flags, compressedSize: csize, size: usize,
                                 localHeaderOffset: local))
            at = next
        }
        self.entries = entries
        self.byName = byName
        centralDirectoryOffset = cdOffset
    }

    func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The byte range of a stored entry's data in the file, checked against the file's end.
    func dataRange(_ e: Entry) throws(LoadError) -> Range<Int> {
        func fail(_ reason: String) -> LoadError { LoadError(file.path, reason) }
        guard e.method == 0 else {
            throw fail("zip entry \(e.name.quoted) is compressed (method \(e.method)); PyTorch archives store entries uncompressed")
        }
        guard e.flags & 1 == 0 else { throw fail("zip entry \(e.name.quoted) is encrypted") }
        guard e.compressedSize == e.size else {
            throw fail("zip entry \(e.name.quoted) is stored but its sizes differ (\(e.compressedSize) vs \(e.size))")
        }
        // The local header's own name/extra lengths decide where data starts (torch pads the
        // local extra field so that data is 64-byte aligned; the central copy is not padded).
        let h = e.localHeaderOffset
        guard file.u32(h) == ZipArchive.localSignature, let nameLength = file.u16(h + 26),
              let extraLength = file.u16(h + 28) else {
            throw fail("zip entry \(e.name.quoted) has no valid local header at offset \(h)")
        }
        let start = h + 30 + Int(nameLength) + Int(extraLength)
        guard file.contains(start, e.size) else {
            throw fail("zip entry \(e.name.quoted) (\(e.size) bytes at \(start)) runs past the end of the file (\(file.size) bytes); truncated?")
        }
        return start..<(start + e.size)
    }

    /// A stored entry's bytes, straight from the mapping.
    func data(_ e: Entry) throws(LoadError) -> UnsafeRawBufferPointer {
        let r = try dataRange(e)
        guard let b = file.bytes(r.lowerBound, r.count) else {
            throw LoadError(file.path, "zip entry \(e.name.quoted) runs past the end of the file")
        }
        return b
    }
}
