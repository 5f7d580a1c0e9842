/// ChatGLM-6B's own multi-turn format (`chat()` in its modeling_chatglm.py): the first turn is the
/// raw query; later turns are `[Round i]\n问：{q}\n答：{r}\n` for each past round (from 0), then
/// `[Round n]\n问：{q}\n答：`. Replies go through `process_response`.
public struct GLMChatTemplate: PromptTemplate {
    public let id = "glm-chat"
    public let historyUnit = HistoryUnit.rounds
    public let defaultMaxHistory: Int? = nil   // chat() keeps every round; the budget trims
    public let acceptsPreamble = false
    public let stop = StopRule(tokens: [.eos])

    public init() {}

    public func render(history: [Utterance], input: String) -> Prompt {
        let rounds = Round.pair(history)
        if rounds.isEmpty { return Prompt(text: input, addSpecialTokens: true) }
        var p = ""
        for (i, r) in rounds.enumerated() {
            p += "[Round \(i)]\n问：\(r.query)\n答：\(r.reply)\n"
        }
        p += "[Round \(rounds.count)]\n问：\(input)\n答："
        return Prompt(text: p, addSpecialTokens: true)
    }

    public func finishReply(_ raw: String) -> String { ChatGLMResponse.process(raw) }
}
