/// What a model's tokenizer does, as the Python stack its users trained with does it
/// (transformers 4.30 slow tokenizers): text -> ids, ids -> text, and special ids.
public protocol Tokenizer: Sendable {
    var kind: TokenizerKind { get }
    /// Ids the tokenizer can produce (including any image-token offset and added tokens).
    var vocabSize: Int { get }
    var specials: SpecialTokens { get }
    /// `tokenizer.encode(text, add_special_tokens:)`. With `parseSpecialTokens` the Hugging Face
    /// rule holds: the text of a token the tokenizer registers as special or added (transformers
    /// 4.30's `unique_no_split_tokens`: bos/eos/unk/pad/mask/additional_special_tokens and
    /// added_tokens.json) becomes that token wherever it occurs, the same for every such token;
    /// any other text, a special piece's name included, is encoded as characters. ChatGLM-6B's
    /// class registers `<sop>`, `<eop>`, `<unk>`, `<pad>` and `[MASK]` but not `[gMASK]` or
    /// `[sMASK]` (not special-token attributes in transformers), so HF, and Yanyi, read a typed
    /// `<sop>` as the token and a typed `[gMASK]` as text. Without it every character is text
    /// (transformers' `split_special_tokens=True`): what the chat layer uses for what people write,
    /// so that only templates (through `addSpecialTokens`, or the markup parts of `encode(parts:)`)
    /// add control tokens.
    func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32]
    /// Text in parts: in a part marked `markup` (what a chat template wrote) special-token text
    /// becomes its token as with `parseSpecialTokens`; every other part is characters only (what
    /// people wrote). Text between tokens is encoded as one piece across part boundaries, so the
    /// ids are those of `encode(joined text)` with parsing on wherever the data parts hold no
    /// special-token text.
    func encode(parts: [(text: String, markup: Bool)], addSpecialTokens: Bool) -> [Int32]
    /// `tokenizer.tokenize(text)`: the pieces, special tokens kept whole.
    func tokenize(_ text: String) -> [String]
    /// `tokenizer.decode(ids, skip_special_tokens:)`.
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String
    /// The piece (or added token) of one id.
    func piece(_ id: Int32) -> String?
    /// A decoder for text that arrives one token at a time (generation).
    func makeStreamingDecoder() -> StreamingDetokenizer
}

extension Tokenizer {
    /// Run by run: consecutive parts of one kind encoded together, special tokens (if any) first.
    /// Exact for tokenizers whose pieces never span characters (the canned engine's); the real
    /// tokenizers implement the rule above.
    public func encode(parts: [(text: String, markup: Bool)], addSpecialTokens: Bool) -> [Int32] {
        var runs: [(text: String, markup: Bool)] = []
        for p in parts where !p.text.isEmpty {
            if let last = runs.last, last.markup == p.markup { runs[runs.count - 1].text += p.text } else { runs.append(p) }
        }
        var ids = runs.flatMap { encode($0.text, addSpecialTokens: false, parseSpecialTokens: $0.markup) }
        if addSpecialTokens { ids = encode("", addSpecialTokens: true, parseSpecialTokens: false) + ids }
        return ids
    }

    /// `encode(text, add_special_tokens:)` as Hugging Face does it: special-token text is parsed.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, parseSpecialTokens: true)
    }
}

public enum TokenizerKind: String, Sendable {
    /// LLaMA / Chinese-LLaMA (CuteGPT) and Baichuan: SentencePiece BPE, HF slow tokenizer rules.
    case sentencePiece = "sentencepiece"
    /// ChatGLM-6B v1: ice_text.model with its whitespace/newline pre-processing and id offset.
    case chatGLM = "chatglm"
}

/// Special ids of a tokenizer; nil where the model has none.
public struct SpecialTokens: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    public var unk: Int32?
    public var pad: Int32?
    /// Named specials beyond the four (ChatGLM: [MASK], [gMASK], [sMASK], <sop>, <eop>; added tokens).
    public var named: [String: Int32] = [:]
    /// Ids `decode(skipSpecialTokens: true)` drops (HF's all_special_ids).
    public var skipped: Set<Int32> = []

    public init(bos: Int32? = nil, eos: Int32? = nil, unk: Int32? = nil, pad: Int32? = nil) {
        self.bos = bos
        self.eos = eos
        self.unk = unk
        self.pad = pad
    }
}
