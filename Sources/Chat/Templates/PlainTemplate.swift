/// A generic instruction format for other LLaMA-family models (Alpaca's headings, one block per
/// round): an optional system text and a blank line, then for each round
/// `### Instruction:\n{q}\n\n### Response:\n{r}\n\n`, then `### Instruction:\n{q}\n\n### Response:\n`.
/// BOS per tokenizer_config.json; stops on EOS or when the model starts the next instruction.
public struct PlainTemplate: PromptTemplate {
    public let id = "plain"
    public let historyUnit = HistoryUnit.rounds
    public let defaultMaxHistory: Int? = nil
    public let acceptsPreamble = true
    public let stop = StopRule(tokens: [.eos], texts: ["### Instruction:"])
    public var preamble: String

    public init(preamble: String = "") { self.preamble = preamble }

    public func render(history: [Utterance], input: String) -> Prompt {
        var p = preamble.isEmpty ? "" : preamble + "\n\n"
        for r in Round.pair(history) {
            p += "### Instruction:\n\(r.query)\n\n### Response:\n\(r.reply)\n\n"
        }
        p += "### Instruction:\n\(input)\n\n### Response:\n"
        return Prompt(text: p, addSpecialTokens: true)
    }

    public func finishReply(_ raw: String) -> String { raw.pythonStripped }
}
