/// What a model's tokenizer does, as the Python stack its users trained with does it
/// (transformers 4.30 slow tokenizers): text -> ids, ids -> text, and special ids.
public protocol Tokenizer: Sendable {
    var kind: TokenizerKind { get }
    /// Ids the tokenizer can produce (including any image-token offset and added tokens).
    var vocabSize: Int { get }
    var specials: SpecialTokens { get }
    /// `tokenizer.encode(text, add_special_tokens:)`.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int32]
    /// `tokenizer.tokenize(text)`: the pieces, special tokens kept whole.
    func tokenize(_ text: String) -> [String]
    /// `tokenizer.decode(ids, skip_special_tokens:)`.
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String
    /// The piece (or added token) of one id.
    func piece(_ id: Int32) -> String?
    /// A decoder for text that arrives one token at a time (generation).
    func makeStreamingDecoder() -> StreamingDetokenizer
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
