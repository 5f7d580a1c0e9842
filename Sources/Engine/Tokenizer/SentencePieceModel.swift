import CSentencePieceShim
import Foundation

/// A loaded SentencePiece model (tokenizer.model / ice_text.model) behind the C++ bridge.
/// Immutable after loading; libsentencepiece's const methods are safe to call from any thread.
public final class SentencePieceModel: @unchecked Sendable {
    public let path: String
    private let handle: OpaquePointer

    public enum PieceType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public init(path: String) throws(LoadError) {
        var err = [CChar](repeating: 0, count: 512)
        var h: OpaquePointer?
        let status = path.withCString { yy_spm_load($0, &h, &err, err.count) }
        guard status == Int32(YY_SPM_OK), let h else {
            let msg = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw LoadError(path, "not a SentencePiece model (\(Self.plain(msg)))")
        }
        self.path = path
        self.handle = h
    }

    deinit { yy_spm_free(handle) }

    /// libsentencepiece's status text carries its source location; keep what a user can act on.
    static func plain(_ msg: String) -> String {
        if msg.contains("ParseFromArray") { return "corrupt or truncated: the protobuf does not parse" }
        if msg.isEmpty { return "load failed" }
        if let r = msg.range(of: #"\[[^\]]*\]\s*"#, options: .regularExpression) {
            let rest = msg[r.upperBound...].trimmingCharacters(in: .whitespaces)
            if !rest.isEmpty { return rest }
        }
        return msg
    }

    public var pieceCount: Int { Int(yy_spm_piece_size(handle)) }
    public var unkID: Int32 { yy_spm_unk_id(handle) }
    public var bosID: Int32 { yy_spm_bos_id(handle) }
    public var eosID: Int32 { yy_spm_eos_id(handle) }
    public var padID: Int32 { yy_spm_pad_id(handle) }
    /// Whether encoding prepends "▁" to the text (normalizer_spec.add_dummy_prefix).
    public var addsDummyPrefix: Bool { yy_spm_add_dummy_prefix(handle) != 0 }

    public func type(of id: Int32) -> PieceType? { PieceType(rawValue: yy_spm_piece_type(handle, id)) }

    /// Encodes UTF-8 text (ids in SentencePiece's own numbering).
    public func encode(_ text: String) -> [Int32] {
        if text.isEmpty { return [] }
        var bytes = Array(text.utf8)
        var out: UnsafeMutablePointer<Int32>?
        var n = 0
        var err = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(b.count, 1)) {
                yy_spm_encode(handle, $0, b.count, &out, &n, &err, err.count)
            }
        }
        defer { yy_spm_free_buffer(out) }
        guard status == Int32(YY_SPM_OK), let out else { return [] }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    /// sentencepiece's DecodeIds: control pieces vanish, byte pieces join into UTF-8 (invalid
    /// sequences become U+FFFD), "▁" becomes a space, and the text's first leading "▁" is dropped.
    /// Ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int32]) -> String {
        let valid = ids.filter { $0 >= 0 && Int($0) < pieceCount }
        if valid.isEmpty { return "" }
        var out: UnsafeMutablePointer<CChar>?
        var n = 0
        var err = [CChar](repeating: 0, count: 256)
        let status = valid.withUnsafeBufferPointer { yy_spm_decode(handle, $0.baseAddress, $0.count, &out, &n, &err, err.count) }
        defer { yy_spm_free_buffer(out) }
        guard status == Int32(YY_SPM_OK), let out else { return "" }
        return UnsafeRawBufferPointer(start: out, count: n).withMemoryRebound(to: UInt8.self) {
            String(decoding: $0, as: UTF8.self)
        }
    }

    public func piece(_ id: Int32) -> String? {
        var out: UnsafeMutablePointer<CChar>?
        var n = 0
        guard yy_spm_id_to_piece(handle, id, &out, &n) == Int32(YY_SPM_OK), let out else { return nil }
        defer { yy_spm_free_buffer(out) }
        return UnsafeRawBufferPointer(start: out, count: n).withMemoryRebound(to: UInt8.self) {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// Id of a piece; nil when the model does not have it (sentencepiece answers unk for those).
    public func id(of piece: String) -> Int32? {
        if piece.isEmpty { return nil }
        let bytes = Array(piece.utf8)
        let id = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { yy_spm_piece_to_id(handle, $0.baseAddress, $0.count) }
        }
        if id == unkID && self.piece(id) != piece { return nil }
        return id
    }
}
