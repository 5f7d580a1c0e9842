import Engine

/// Everything the generation layer needs for one reply, from a persona, the conversation's
/// history and what the user typed: the fitted prompt, stop rule, sampling and what was dropped.
public struct TurnPlan: Sendable {
    /// The user's utterance as it enters history (cosplay: with `{name}{verb}：` appended).
    public var utterance: String
    public var fitted: PromptBudget.Fitted
    public var stop: StopRule
    public var stopTokenIDs: Set<Int32>
    public var sampling: Persona.Sampling

    /// `history` is the conversation so far (`Conversation.utterances(includeGreetings:)`),
    /// `contextLength` the model's (ModelConfig.contextLength). With `overflow: refuse` a turn
    /// that would drop history for the budget fails instead, naming how much would go.
    public init(persona: Persona, history: [Utterance], typed: String, tokenizer: any Tokenizer,
                contextLength: Int, defaultMaxNewTokens: Int = 256) throws(ChatError) {
        try self.init(persona: persona, history: history, utterance: persona.userUtterance(typed), tokenizer: tokenizer,
                      contextLength: contextLength, defaultMaxNewTokens: defaultMaxNewTokens)
    }

    /// The same from an utterance already in history form (a retry re-asks the stored question,
    /// which already carries the cosplay hand-over).
    public init(persona: Persona, history: [Utterance], utterance: String, tokenizer: any Tokenizer,
                contextLength: Int, defaultMaxNewTokens: Int = 256) throws(ChatError) {
        let template = persona.promptTemplate
        self.utterance = utterance
        let maxNew = persona.sampling.maxNewTokens ?? defaultMaxNewTokens
        let budget = PromptBudget(contextLength: contextLength, maxNewTokens: maxNew)
        fitted = try budget.fit(template, history: history, input: utterance, maxHistory: persona.sampling.maxHistory,
                                tokenizer: tokenizer)
        if persona.history.overflow == .refuse && !fitted.droppedForBudget.isEmpty {
            throw ChatError(persona.source, field: "history.overflow",
                            "the conversation no longer fits the model's \(contextLength)-token context (\(fitted.droppedForBudget.count) older messages would be dropped); clear it or branch")
        }
        stop = persona.stopRule
        stopTokenIDs = stop.tokenIDs(in: tokenizer)
        sampling = persona.sampling
        sampling.maxNewTokens = fitted.maxNewTokens
    }

    /// The generate keywords for this turn over `layers` (generation_config.json < persona <
    /// user): the turn's stop ids and strings (with `extraStops`), max_new_tokens within what
    /// the context leaves after `promptLength` tokens.
    public func parameters(_ layers: GenerationParameters, promptLength: Int, contextLength: Int,
                           extraStops: [String] = []) -> GenerationParameters {
        var p = layers
        if !stopTokenIDs.isEmpty { p.eosTokenId = OneOrMany(stopTokenIDs.sorted().map { Int($0) }) }
        var stops = stop.texts
        for x in extraStops where !stops.contains(x) { stops.append(x) }
        if !stops.isEmpty { p.stop = stops }
        p.maxNewTokens = min(fitted.maxNewTokens, contextLength - promptLength)
        p.maxLength = nil
        return p
    }
}
