import Foundation

/// Just enough PNG for character cards: walk the chunks (checking CRCs), read and replace
/// `tEXt` chunks, and write a small solid-colour image when a card has none. The image data is a
/// zlib stream of stored (uncompressed) deflate blocks with its Adler-32: valid, no zlib needed.
public enum PNGFile {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public struct Chunk: Sendable, Equatable {
        public var type: String
        public var data: [UInt8]

        public init(type: String, data: [UInt8]) {
            self.type = type
            self.data = data
        }

        /// A `tEXt` chunk: Latin-1 keyword, NUL, Latin-1 text (base64 for cards, so ASCII).
        public static func text(_ keyword: String, _ text: String) -> Chunk {
            Chunk(type: "tEXt", data: Array(keyword.utf8) + [0] + Array(text.utf8))
        }

        /// Keyword and text of a `tEXt` chunk.
        public var textEntry: (keyword: String, text: String)? {
            guard type == "tEXt", let nul = data.firstIndex(of: 0) else { return nil }
            let latin1 = { (b: ArraySlice<UInt8>) in String(b.map { Character(Unicode.Scalar($0)) }) }
            return (latin1(data[..<nul]), latin1(data[(nul + 1)...]))
        }
    }

    /// The chunks of a PNG, in order, IEND last. Errors name the file and the byte offset.
    public static func chunks(_ bytes: [UInt8], file: String) throws(ChatError) -> [Chunk] {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw ChatError(file, "not a PNG file (bad signature)")
        }
        var out: [Chunk] = []
        var i = 8
        while true {
            guard i + 12 <= bytes.count else { throw ChatError(file, "PNG ends inside a chunk header at byte \(i)") }
            let len = Int(be32(bytes, i))
            let typeBytes = Array(bytes[(i + 4)..<(i + 8)])
            guard typeBytes.allSatisfy({ ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A }) else {
                throw ChatError(file, "PNG chunk at byte \(i) has an invalid type")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard len <= bytes.count - i - 12 else {
                throw ChatError(file, "PNG chunk '\(type)' at byte \(i) runs past the end of the file")
            }
            let data = Array(bytes[(i + 8)..<(i + 8 + len)])
            let crc = be32(bytes, i + 8 + len)
            guard crc == crc32(typeBytes + data) else {
                throw ChatError(file, "PNG chunk '\(type)' at byte \(i) has a bad CRC")
            }
            out.append(Chunk(type: type, data: data))
            i += 12 + len
            if type == "IEND" { return out }
        }
    }

    public static func encode(_ chunks: [Chunk]) -> [UInt8] {
        var out = signature
        for c in chunks {
            let type = Array(c.type.utf8)
            appendBE32(&out, UInt32(c.data.count))
            out += type + c.data
            appendBE32(&out, crc32(type + c.data))
        }
        return out
    }

    /// A `width`×`height` RGB image of one colour: IHDR, one IDAT, IEND.
    public static func solidImage(width: Int, height: Int, rgb: (UInt8, UInt8, UInt8)) -> [Chunk] {
        var ihdr: [UInt8] = []
        appendBE32(&ihdr, UInt32(width))
        appendBE32(&ihdr, UInt32(height))
        ihdr += [8, 2, 0, 0, 0]   // 8-bit, truecolour, deflate, adaptive filtering, no interlace
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (1 + 3 * width))
        for _ in 0..<height {
            raw.append(0)   // filter: none
            for _ in 0..<width { raw += [rgb.0, rgb.1, rgb.2] }
        }
        return [Chunk(type: "IHDR", data: ihdr), Chunk(type: "IDAT", data: zlibStored(raw)), Chunk(type: "IEND", data: [])]
    }

    /// A zlib stream (RFC 1950) holding `data` in stored deflate blocks (RFC 1951 §3.2.4).
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]   // deflate, 32K window; check bits make 0x7801 % 31 == 0
        var i = 0
        repeat {
            let n = min(65535, data.count - i)
            let final: UInt8 = i + n == data.count ? 1 : 0
            out.append(final)   // BFINAL, BTYPE = 00
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        appendBE32(&out, adler32(data))
        return out
    }

    public static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for chunk in stride(from: 0, to: data.count, by: 5552) {   // largest run before a % is needed
            for byte in data[chunk..<min(chunk + 5552, data.count)] {
                a += UInt32(byte)
                b += a
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func appendBE32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}
