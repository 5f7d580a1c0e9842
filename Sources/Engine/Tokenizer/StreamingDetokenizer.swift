/// Turns ids into text as they arrive. It decodes a short window of recent ids twice — without
/// and with the newest id — and emits the difference (the offsets text-generation-inference
/// uses), so the pieces it emits join up to exactly what decoding the whole reply gives,
/// SentencePiece's dropped leading "▁" included. While the window ends inside a UTF-8 character
/// split across byte-fallback pieces (`<0xE5><0x85>` … `<0xB3>`) it emits nothing.
public struct StreamingDetokenizer {
    private let decode: ([Int32]) -> String
    public private(set) var ids: [Int32] = []
    private var prefixOffset = 0   // window start: ids before it are settled
    private var readOffset = 0     // ids before it have been emitted

    public init(decode: @escaping ([Int32]) -> String) {
        self.decode = decode
    }

    /// Adds one id; returns the text it completes (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        ids.append(id)
        let before = decode(Array(ids[prefixOffset..<readOffset]))
        let after = decode(Array(ids[prefixOffset...]))
        guard after.utf8.count > before.utf8.count, !after.hasSuffix("\u{FFFD}") else { return "" }
        prefixOffset = readOffset
        readOffset = ids.count
        return String(decoding: after.utf8.dropFirst(before.utf8.count), as: UTF8.self)
    }

    /// Whatever is still held back (an incomplete character at the end becomes U+FFFD).
    public mutating func flush() -> String {
        guard readOffset < ids.count else { return "" }
        let before = decode(Array(ids[prefixOffset..<readOffset]))
        let after = decode(Array(ids[prefixOffset...]))
        prefixOffset = readOffset
        readOffset = ids.count
        guard after.utf8.count > before.utf8.count else { return "" }
        return String(decoding: after.utf8.dropFirst(before.utf8.count), as: UTF8.self)
    }
}
