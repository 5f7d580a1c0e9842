import Foundation

/// ChatGLM-6B v1's tokenizer (`ChatGLMTokenizer` + `SPTokenizer` of its remote code): the
/// SentencePiece model ice_text.model behind a pre-processing step (`\n` -> `<n>`, `\t` -> `<|tab|>`,
/// runs of 2–80 spaces -> `<|blank_N|>`, longest first), every text id shifted by
/// `num_image_tokens` (20000 in pre-slim checkpoints, 0 in slim ones), and `[gMASK] <sop>` appended
/// at the END of an encoded prompt. Decoding drops the special range and reverses the pre-processing.
public struct ChatGLMTokenizer: Tokenizer {
    public let kind = TokenizerKind.chatGLM
    public let model: SentencePieceModel
    public let specials: SpecialTokens
    /// Ids below this are image tokens; SentencePiece id = model id - imageTokens.
    public let imageTokens: Int32
    public let maxBlank = 80
    /// First id (SentencePiece numbering) of the special range ([MASK] …); decoding drops ids from here.
    private let specialStart: Int32
    private let gmask: Int32
    private let sop: Int32
    private let removeSpace: Bool
    private let lowerCase: Bool
    private let cleanUpSpaces: Bool
    private let splitter: SpecialTokenSplitter

    public var vocabSize: Int { Int(imageTokens) + model.pieceCount }
    public var gmaskID: Int32 { gmask }
    public var sopID: Int32 { sop }

    public init(model: SentencePieceModel, config: TokenizerConfig) throws(LoadError) {
        self.model = model
        imageTokens = Int32(config.numImageTokens ?? 20000)   // the Python class's default
        removeSpace = config.removeSpace ?? false
        lowerCase = config.doLowerCase ?? false
        cleanUpSpaces = config.cleanUpTokenizationSpaces ?? true   // PreTrainedTokenizer's default
        let offset = imageTokens

        func require(_ spec: TokenSpec?, _ fallback: String) throws(LoadError) -> (String, Int32) {
            let text = spec?.content ?? fallback
            guard let id = model.id(of: text) else {
                throw LoadError(model.path, "ChatGLM tokenizer has no piece '\(text)'")
            }
            return (text, id + offset)
        }
        let bos = try require(config.bosToken, "<sop>")
        let eos = try require(config.eosToken, "<eop>")
        let mask = try require(config.maskToken, "[MASK]")
        let g = try require(config.gmaskToken, "[gMASK]")
        let unk = try require(config.unkToken, "<unk>")
        let pad = model.id(of: config.padToken?.content ?? "<pad>").map { ($0.description, $0 + offset) }
        gmask = g.1
        sop = bos.1
        specialStart = mask.1 - offset

        var s = SpecialTokens(bos: bos.1, eos: eos.1, unk: unk.1, pad: pad?.1)
        for name in ["[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<ENC>", "<dBLOCK>", "</s>"] {
            if let id = model.id(of: name) { s.named[name] = id + offset }
        }
        s.skipped = Set([bos.1, eos.1, mask.1, unk.1] + (pad.map { [$0.1] } ?? []))
        specials = s

        // The special-token attributes (bos, eos, unk, pad, mask) are plain strings in this class,
        // so transformers strips whitespace on both sides of them; [gMASK] is not among them.
        let noSplit = [config.bosToken ?? TokenSpec("<sop>"), config.eosToken ?? TokenSpec("<eop>"),
                       config.unkToken ?? TokenSpec("<unk>"), config.padToken ?? TokenSpec("<pad>"),
                       config.maskToken ?? TokenSpec("[MASK]")]
        splitter = SpecialTokenSplitter(noSplit.map {
            .init(token: $0.content, lstrip: $0.isAddedToken ? $0.lstrip : true, rstrip: $0.isAddedToken ? $0.rstrip : true)
        })
    }

    /// `SPTokenizer._preprocess`: newline, tab and space runs become pieces of their own.
    func preprocess(_ text: String) -> String {
        var t = text
        if removeSpace { t = t.split(whereSeparator: { $0.isPythonWhitespace }).joined(separator: " ") }
        if lowerCase { t = t.lowercased() }
        t = t.replacingOccurrences(of: "\n", with: "<n>")
        t = t.replacingOccurrences(of: "\t", with: "<|tab|>")
        for n in stride(from: maxBlank, through: 2, by: -1) {
            t = t.replacingOccurrences(of: String(repeating: " ", count: n), with: "<|blank_\(n)|>")
        }
        return t
    }

    /// `SPTokenizer.postprocess`.
    func postprocess(_ text: String) -> String {
        var t = text.replacingOccurrences(of: "<n>", with: "\n")
        t = t.replacingOccurrences(of: "<|tab|>", with: "\t")
        for n in 2...maxBlank {
            t = t.replacingOccurrences(of: "<|blank_\(n)|>", with: String(repeating: " ", count: n))
        }
        return t
    }

    public func tokenize(_ text: String) -> [String] {
        chunks(text).map { piece($0) ?? "" }
    }

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32] {
        let ids = chunks(text, parse: parseSpecialTokens)
        return addSpecialTokens ? ids + [gmask, sop] : ids
    }

    public func encode(parts: [(text: String, markup: Bool)], addSpecialTokens: Bool) -> [Int32] {
        let ids = encodeChunks(splitter.split(parts: parts))
        return addSpecialTokens ? ids + [gmask, sop] : ids
    }

    /// Parsing off: the whole text is pre-processed and encoded, and the special pieces (CONTROL in
    /// ice_text.model) never match input text.
    private func chunks(_ text: String, parse: Bool = true) -> [Int32] {
        encodeChunks(parse ? splitter.split(text) : text.isEmpty ? [] : [.text(text)])
    }

    private func encodeChunks(_ chunks: [SpecialTokenSplitter.Chunk]) -> [Int32] {
        chunks.flatMap { chunk -> [Int32] in
            switch chunk {
            case .token(let t): return model.id(of: t).map { [$0 + imageTokens] } ?? []
            case .text(let s): return model.encode(preprocess(s)).map { $0 + imageTokens }
            }
        }
    }

    public func piece(_ id: Int32) -> String? {
        if id < imageTokens { return id >= 0 ? "<image_\(id)>" : nil }
        return model.piece(id - imageTokens)
    }

    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        let pad = specials.pad
        let text = ids.compactMap { id -> Int32? in
            if id == pad || (skipSpecialTokens && specials.skipped.contains(id)) { return nil }
            let sp = id - imageTokens
            return sp >= 0 && sp < specialStart ? sp : nil
        }
        let out = postprocess(model.decode(text))
        return cleanUpSpaces ? cleanUpTokenization(out) : out
    }

    public func makeStreamingDecoder() -> StreamingDetokenizer {
        StreamingDetokenizer { self.decode($0, skipSpecialTokens: true) }
    }
}
