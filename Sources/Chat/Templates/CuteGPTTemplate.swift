/// CuteGPT (LLaMA-13B, extended Chinese vocabulary, + LoRA), as its inference_lora.py builds
/// prompts: the meta prompt, each remembered round `问：{q}\n答：\n{r}\n`, then `问：{q}\n答：\n`;
/// the last 3 rounds (`memory_limit`); no BOS. The README's older form (no newline after `答：`)
/// is the `readme` variant. Stops on ids 1 and 2 and on the text `<end>`; `<s>`, `<end>`, `</s>`
/// are removed from the reply.
public struct CuteGPTTemplate: PromptTemplate {
    public enum Variant: String, Sendable {
        /// Since "Solve the problem of template inconsistency" (2023-07-20), matching the training data.
        case current
        /// The README's form: rounds `问：{q}\n答：{r}\n`, then `问：{q}\n答：`.
        case readme
    }

    public static let metaPrompt = "你是复旦大学知识工场实验室训练出来的语言模型CuteGPT。给定任务描述，请给出对应请求的回答。\n"

    public let variant: Variant
    public var id: String { variant == .current ? "cutegpt" : "cutegpt-readme" }
    public let historyUnit = HistoryUnit.rounds
    public let defaultMaxHistory: Int? = 3
    public let acceptsPreamble = true
    public let stop = StopRule(tokens: [.bos, .eos], texts: ["<end>"])
    /// The meta prompt (a persona may replace it).
    public var preamble: String

    public init(variant: Variant = .current, preamble: String? = nil) {
        self.variant = variant
        self.preamble = preamble ?? Self.metaPrompt
    }

    public func render(history: [Utterance], input: String) -> Prompt {
        let answer = variant == .current ? "答：\n" : "答："
        var p = preamble
        for r in Round.pair(history) {
            p += "问：\(r.query)\n\(answer)\(r.reply)\n"
        }
        p += "问：\(input)\n\(answer)"
        return Prompt(text: p, addSpecialTokens: false)
    }

    public func finishReply(_ raw: String) -> String {
        raw.replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "<end>", with: "")
            .replacingOccurrences(of: "</s>", with: "")
    }
}
