/// Cosplay ChatGLM-6B (三国 / 四大名著 dialogue LoRA), as its web demo's `evaluate()` builds
/// prompts: the last `max_history` utterances (user inputs and replies flattened, counted one by
/// one) concatenated with nothing between, then the new input; the tokenizer appends
/// `[gMASK] <sop>`. No role tags, no separators. The reply is the generated tokens only.
public struct GLMCosplayTemplate: PromptTemplate {
    public let id = "glm-cosplay"
    public let historyUnit = HistoryUnit.utterances
    public let defaultMaxHistory: Int? = 10   // the demo's slider default (range 0–20)
    public let acceptsPreamble = true
    public let stop = StopRule(tokens: [.eos])   // <eop>
    /// Narrative kept in front of the history on every turn (the seed has none: empty).
    public var preamble: String
    /// Apply ChatGLM's `process_response` to replies (the demo did not; ChatGLM's chat() does).
    public var chatGLMPostprocess: Bool

    public init(preamble: String = "", chatGLMPostprocess: Bool = false) {
        self.preamble = preamble
        self.chatGLMPostprocess = chatGLMPostprocess
    }

    public func render(history: [Utterance], input: String) -> Prompt {
        Prompt(text: preamble + history.map(\.text).joined() + input, addSpecialTokens: true)
    }

    public func finishReply(_ raw: String) -> String {
        chatGLMPostprocess ? ChatGLMResponse.process(raw) : raw
    }

    /// The input the model was trained to continue: `{context}，{name}{verb}：`, the narrative
    /// then who speaks and how (曰, 道, 说, 笑道, 泣曰 …). The joining `，` is left out when the
    /// context is empty or already ends in punctuation (`…”玄德曰：`, `…商议。曹洪曰：`).
    public static func input(context: String, speaker: String, verb: String = "曰") -> String {
        let c = context.pythonStripped
        let joiner = c.isEmpty || c.unicodeScalars.last.map(Self.endsClause) == true ? "" : "，"
        return c + joiner + speaker + verb + "："
    }

    private static func endsClause(_ s: Unicode.Scalar) -> Bool {
        "，。！？；：、”’…」』）".unicodeScalars.contains(s)
    }
}
