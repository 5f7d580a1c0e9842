import Foundation

/// LLaMA / Chinese-LLaMA (CuteGPT) and Baichuan tokenizers: a SentencePiece model plus the rules
/// of transformers 4.30's slow `LlamaTokenizer` (Baichuan's `BaiChuanTokenizer` is the same code):
/// special and added tokens are split out first, every other chunk is encoded by SentencePiece on
/// its own, `add_bos_token`/`add_eos_token` come from tokenizer_config.json.
public struct SentencePieceTokenizer: Tokenizer {
    public let kind = TokenizerKind.sentencePiece
    public let model: SentencePieceModel
    public let specials: SpecialTokens
    public let addBos: Bool
    public let addEos: Bool
    /// added_tokens.json: text -> id (ids at or beyond the SentencePiece vocabulary).
    public let addedTokens: [String: Int32]
    private let addedByID: [Int32: String]
    /// HF's all_special_tokens (bos, eos, unk, pad, additional_special_tokens) as text.
    private let specialTexts: Set<String>
    private let splitter: SpecialTokenSplitter
    private let cleanUpSpaces: Bool

    public var vocabSize: Int { max(model.pieceCount, (addedTokens.values.max().map { Int($0) + 1 }) ?? 0) }

    public init(model: SentencePieceModel, config: TokenizerConfig, addedTokens: [String: Int32],
                defaultAddBos: Bool = true) {
        self.model = model
        self.addedTokens = addedTokens
        self.addedByID = Dictionary(addedTokens.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        addBos = config.addBosToken ?? defaultAddBos
        addEos = config.addEosToken ?? false
        cleanUpSpaces = config.cleanUpTokenizationSpaces ?? false

        func id(_ text: String) -> Int32? { addedTokens[text] ?? model.id(of: text) }
        // LlamaTokenizer wraps its four specials in AddedToken(lstrip: false, rstrip: false), so
        // unlike plain-string tokens they never strip the whitespace around them.
        let four: [TokenSpec] = [
            config.bosToken ?? TokenSpec("<s>"), config.eosToken ?? TokenSpec("</s>"),
            config.unkToken ?? TokenSpec("<unk>"),
        ] + (config.padToken.map { [$0] } ?? [])
        var rules = four.map { SpecialTokenSplitter.Rule(token: $0.content, lstrip: $0.lstrip, rstrip: $0.rstrip) }
        let extra = config.additionalSpecialTokens ?? []
        rules += extra.map { t in
            SpecialTokenSplitter.Rule(token: t.content, lstrip: t.isAddedToken ? t.lstrip : true,
                                      rstrip: t.isAddedToken ? t.rstrip : true)
        }
        // added_tokens.json entries are added as plain strings: stripped on both sides.
        rules += addedTokens.keys.sorted().map { SpecialTokenSplitter.Rule(token: $0, lstrip: true, rstrip: true) }
        splitter = SpecialTokenSplitter(rules)

        var s = SpecialTokens(bos: id(four[0].content), eos: id(four[1].content), unk: id(four[2].content),
                              pad: config.padToken.flatMap { id($0.content) })
        var texts = Set(four.map(\.content))
        for t in extra { texts.insert(t.content) }
        for t in texts { if let i = id(t) { s.skipped.insert(i) } }
        for (t, i) in addedTokens { s.named[t] = i }
        for t in extra { if let i = id(t.content) { s.named[t.content] = i } }
        specials = s
        specialTexts = texts
    }

    public func tokenize(_ text: String) -> [String] {
        splitter.split(text).flatMap { chunk -> [String] in
            switch chunk {
            case .token(let t): return [t]
            case .text(let s): return model.encode(s).map { model.piece($0) ?? "" }
            }
        }
    }

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32] {
        // Parsing off: the whole text is one chunk for SentencePiece, whose control pieces
        // (<s>, </s>, <unk>) never match input text.
        encodeChunks(parseSpecialTokens ? splitter.split(text) : (text.isEmpty ? [] : [.text(text)]),
                     addSpecialTokens: addSpecialTokens)
    }

    public func encode(parts: [(text: String, markup: Bool)], addSpecialTokens: Bool) -> [Int32] {
        encodeChunks(splitter.split(parts: parts), addSpecialTokens: addSpecialTokens)
    }

    private func encodeChunks(_ chunks: [SpecialTokenSplitter.Chunk], addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = []
        for chunk in chunks {
            switch chunk {
            case .token(let t): if let i = addedTokens[t] ?? model.id(of: t) { ids.append(i) }
            case .text(let s): ids += model.encode(s)
            }
        }
        guard addSpecialTokens else { return ids }
        if addBos, let b = specials.bos { ids.insert(b, at: 0) }
        if addEos, let e = specials.eos { ids.append(e) }
        return ids
    }

    public func piece(_ id: Int32) -> String? { addedByID[id] ?? model.piece(id) }

    /// transformers 4.30 `_decode`: added tokens stand alone and are joined with single spaces;
    /// runs of other pieces go through `convert_tokens_to_string`, which decodes with
    /// SentencePiece and puts a space before a special token that follows ordinary text.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        var subTexts: [String] = []
        var run: [Int32] = []
        for id in ids {
            if skipSpecialTokens && specials.skipped.contains(id) { continue }
            if let added = addedByID[id] {
                if !run.isEmpty { subTexts.append(tokensToString(run)); run = [] }
                subTexts.append(added)
            } else if Int(id) >= 0 && Int(id) < model.pieceCount {
                run.append(id)
            }
        }
        if !run.isEmpty { subTexts.append(tokensToString(run)) }
        let text = subTexts.joined(separator: " ")
        return cleanUpSpaces ? cleanUpTokenization(text) : text
    }

    private func tokensToString(_ ids: [Int32]) -> String {
        var out = ""
        var current: [Int32] = []
        var prevIsSpecial = false
        for (i, id) in ids.enumerated() {
            if let p = model.piece(id), specialTexts.contains(p) {
                if !prevIsSpecial && i != 0 { out += " " }
                out += model.decode(current) + p
                prevIsSpecial = true
                current = []
            } else {
                current.append(id)
                prevIsSpecial = false
            }
        }
        return out + model.decode(current)
    }

    public func makeStreamingDecoder() -> StreamingDetokenizer {
        StreamingDetokenizer { self.decode($0, skipSpecialTokens: true) }
    }
}

/// transformers' `clean_up_tokenization`: removes the space English tokenizers put before punctuation.
func cleanUpTokenization(_ text: String) -> String {
    var s = text
    for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                   (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
        s = s.replacingOccurrences(of: a, with: b)
    }
    return s
}
