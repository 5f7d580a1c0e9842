/// ChatBaichuan-HC3 and RulaiGPT (Baichuan-7B + LoRA): `问：{text}答：`, no newline, no space,
/// single turn. The tokenizer adds BOS only where tokenizer_config.json says so.
public struct BaichuanQATemplate: PromptTemplate {
    public let id = "baichuan-qa"
    public let historyUnit = HistoryUnit.rounds
    public let defaultMaxHistory: Int? = 0
    public let acceptsPreamble = false
    public let stop = StopRule(tokens: [.eos])

    public init() {}

    public func render(history: [Utterance], input: String) -> Prompt {
        Prompt(text: "问：" + input + "答：", addSpecialTokens: true)
    }

    public func finishReply(_ raw: String) -> String { raw }
}
