import Engine
import Foundation

/// What produces a reply: a new question, another reply to the last question (the old one stays
/// as an alternative), or more of the last reply.
public enum ReplyAction: Sendable, Equatable {
    case send(String)
    case retry
    case continueReply
}

/// How a reply went.
public struct ReplyOutcome: Sendable {
    /// The reply as recorded (continue: the extended reply); nil when a cancel or failure came
    /// before any text.
    public var message: Message?
    /// The question `send` recorded.
    public var question: Message?
    /// What was generated this time (continue: only the extension), as the template finished it.
    public var text: String
    /// nil after a failure.
    public var reason: FinishReason?
    /// Cancelled or failed mid-reply: what came was saved, marked partial.
    public var partial: Bool
    /// A failure mid-reply (the text before it is saved).
    public var error: ChatError?
    /// Timings and counts (nil after a failure).
    public var stats: GenerationStats?
    /// History left out by max_history and to fit the context, oldest first.
    public var droppedByLimit: [Utterance]
    public var droppedForBudget: [Utterance]
    /// The ids the reply was generated from, and the generated ids (EOS kept).
    public var promptIDs: [Int32]
    public var tokens: [Int32]
}

/// A reply as `stream` delivers it: text as it comes, then how it ended.
public enum ReplyEvent: Sendable {
    case delta(String)
    case finished(ReplyOutcome)
    /// The reply could not start (nothing was recorded).
    case failed(ChatError)
}

extension ChatController {
    /// Runs `action` on this thread; `onDelta` sees the reply's text as it is generated.
    public func reply(_ action: ReplyAction, onDelta: (String) -> Void = { _ in }) throws(ChatError) -> ReplyOutcome {
        try reply(action, cancelled: nil, onDelta: onDelta)
    }

    /// `cancelled`: a flag set before this call could see it (a stream dropped before its thread ran).
    func reply(_ action: ReplyAction, cancelled: CancellationFlag?, onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        try guardIdle()
        defer { endBusy() }
        if cancelled?.isCancelled == true { cancel() }
        try activateForReply()
        switch action {
        case .send(let text): return try sendTurn(text, onDelta)
        case .retry: return try retryTurn(onDelta)
        case .continueReply: return try continueTurn(onDelta)
        }
    }

    public func send(_ text: String, onDelta: (String) -> Void = { _ in }) throws(ChatError) -> ReplyOutcome {
        try reply(.send(text), onDelta: onDelta)
    }

    public func retry(onDelta: (String) -> Void = { _ in }) throws(ChatError) -> ReplyOutcome {
        try reply(.retry, onDelta: onDelta)
    }

    public func continueLast(onDelta: (String) -> Void = { _ in }) throws(ChatError) -> ReplyOutcome {
        try reply(.continueReply, onDelta: onDelta)
    }

    /// `action` on a thread of its own. Ending the consumer's task (or dropping the stream)
    /// cancels the reply, which is then saved as partial.
    public func stream(_ action: ReplyAction) -> AsyncStream<ReplyEvent> {
        AsyncStream { continuation in
            let dropped = CancellationFlag()
            continuation.onTermination = { [weak self] end in
                if case .cancelled = end {
                    dropped.cancel()
                    self?.cancel()
                }
            }
            let thread = Thread { [self] in
                do throws(ChatError) {
                    let outcome = try reply(action, cancelled: dropped) { continuation.yield(.delta($0)) }
                    continuation.yield(.finished(outcome))
                } catch {
                    continuation.yield(.failed(error))
                }
                continuation.finish()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    // MARK: - Turns

    private func sendTurn(_ typed: String, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        guard !typed.pythonStripped.isEmpty else { throw ChatError("", "nothing to send") }
        let history = session.conversation.utterances(includeGreetings: persona.history.includeGreeting)
        let plan = try makePlan(history: history, utterance: persona.userUtterance(typed))
        let gen = try makeGenerator(plan.fitted.tokenIDs, maxNew: plan.fitted.maxNewTokens, plan: plan)
        let question = try session.add(.user, plan.utterance, persona: persona.id)
        let run = generate(gen, onDelta)
        var out = try record(run, plan: plan) { raw, partial throws(ChatError) in
            try session.add(.assistant, persona.finishReply(raw), after: .some(question.id), persona: persona.id, template: persona.template,
                            adapters: adapterLabels, partial: partial)
        }
        out.question = question
        return out
    }

    /// The last reply and the question it answers; a question with no reply yet has none.
    private func lastExchange(_ what: String) throws(ChatError) -> (question: Message, reply: Message?) {
        let c = session.conversation
        guard let head = c.head else { throw ChatError("", "nothing to \(what): the conversation is empty") }
        if head.role == .user { return (head, nil) }
        guard head.role == .assistant, head.greeting != true, let q = head.parent.flatMap({ c.message($0) }), q.role == .user else {
            throw ChatError("", "nothing to \(what): the last message is not a reply to a question")
        }
        return (q, head)
    }

    private func retryTurn(_ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        let (question, old) = try lastExchange("retry")
        let history = session.conversation.utterances(upTo: question.id, includeGreetings: persona.history.includeGreeting)
        let plan = try makePlan(history: history, utterance: question.text)
        let gen = try makeGenerator(plan.fitted.tokenIDs, maxNew: plan.fitted.maxNewTokens, plan: plan)
        let run = generate(gen, onDelta)
        return try record(run, plan: plan) { raw, partial throws(ChatError) in
            let text = persona.finishReply(raw)
            if let old {
                return try session.addAlternative(to: old.id, text: text, persona: persona.id, template: persona.template,
                                                  adapters: adapterLabels, partial: partial)
            }
            return try session.add(.assistant, text, after: .some(question.id), persona: persona.id, template: persona.template,
                                   adapters: adapterLabels, partial: partial)
        }
    }

    /// More of the last reply: the prompt that produced it, the reply so far, and on. The reply is
    /// extended in place (an edit event; the log keeps the earlier text).
    private func continueTurn(_ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        let (question, last) = try lastExchange("continue")
        guard let last else { throw ChatError("", "nothing to continue: the last question has no reply yet (/retry answers it)") }
        let history = session.conversation.utterances(upTo: question.id, includeGreetings: persona.history.includeGreeting)
        let plan = try makePlan(history: history, utterance: question.text)
        let b = base!
        let tok = b.folder.tokenizer
        // SentencePiece prompts put their special token first: tokenize the whole text so the
        // reply's first piece joins as it would have. ChatGLM's end in [gMASK] <sop>: append.
        let ids: [Int32]
        switch tok.kind {
        case .sentencePiece: ids = tok.encode(plan.fitted.prompt.text + last.text, addSpecialTokens: plan.fitted.prompt.addSpecialTokens)
        case .chatGLM: ids = plan.fitted.tokenIDs + tok.encode(last.text, addSpecialTokens: false)
        }
        let room = min(plan.fitted.maxNewTokens, b.model.contextLength - ids.count)
        guard room >= 1 else { throw ChatError("", "nothing to continue: the reply already fills the model's \(b.model.contextLength)-token context") }
        let gen = try makeGenerator(ids, maxNew: room, plan: plan)
        let run = generate(gen, onDelta)
        return try record(run, plan: plan) { raw, _ throws(ChatError) in
            try session.record(.edit(id: last.id, text: persona.finishReply(last.text + raw)))
            return session.conversation.message(last.id)!
        }
    }

    // MARK: - Engine

    /// The turn's plan under the persona with the user's max_new_tokens and max_history on top.
    private func makePlan(history: [Utterance], utterance: String) throws(ChatError) -> TurnPlan {
        var p = persona
        if let v = overrides.parameters.maxNewTokens { p.sampling.maxNewTokens = v }
        if let v = overrides.maxHistory { p.sampling.maxHistory = v }
        let b = base!
        return try TurnPlan(persona: p, history: history, utterance: utterance, tokenizer: b.folder.tokenizer,
                            contextLength: b.model.contextLength,
                            defaultMaxNewTokens: b.defaults.maxNewTokens ?? options.defaultMaxNewTokens)
    }

    private func makeGenerator(_ ids: [Int32], maxNew: Int, plan: TurnPlan) throws(ChatError) -> TokenGenerator {
        let b = base!
        var params = layeredParameters(overrides, eos: plan.stopTokenIDs.sorted(), stop: plan.stop.texts)
        params.maxNewTokens = maxNew
        params.maxLength = nil
        do throws(GenerationError) {
            let settings = try params.resolved(promptLength: ids.count)
            return try TokenGenerator(model: b.model, tokenizer: b.folder.tokenizer, prompt: ids, settings: settings,
                                      session: b.session)
        } catch {
            throw ChatError("", error.description)
        }
    }

    private struct Run {
        var raw: String
        var result: GenerationResult?
        var error: ChatError?
        var prompt: [Int32]
    }

    /// Runs the generator to its end; a failure ends the run with what came before it.
    private func generate(_ gen: TokenGenerator, _ onDelta: (String) -> Void) -> Run {
        register(gen)
        var text = ""
        do throws(GenerationError) {
            while let e = try gen.next() {
                switch e {
                case .token(_, let t):
                    if !t.isEmpty { text += t; onDelta(t) }
                case .finished(let r):
                    if !r.remainingText.isEmpty { onDelta(r.remainingText) }
                    return Run(raw: r.text, result: r, prompt: gen.prompt)
                }
            }
        } catch {
            // after a failed forward the session's cache may not match its tokens: start it over
            gen.session.reset()
            return Run(raw: text, error: ChatError("", error.description), prompt: gen.prompt)
        }
        return Run(raw: text, prompt: gen.prompt)
    }

    /// Saves the reply (`save(raw text, partial)`), unless a cancel or failure left no text.
    private func record(_ run: Run, plan: TurnPlan,
                        save: (String, Bool) throws(ChatError) -> Message) throws(ChatError) -> ReplyOutcome {
        let partial = run.error != nil || run.result?.reason == .cancelled
        let text = persona.finishReply(run.raw)
        var message: Message?
        if !(partial && run.raw.isEmpty) { message = try save(run.raw, partial) }
        return ReplyOutcome(message: message, question: nil, text: text, reason: run.result?.reason, partial: partial,
                            error: run.error, stats: run.result?.stats,
                            droppedByLimit: plan.fitted.droppedByLimit, droppedForBudget: plan.fitted.droppedForBudget,
                            promptIDs: run.prompt, tokens: run.result?.tokens ?? [])
    }

    var adapterLabels: [String] { adapters.filter { $0.multiplier != 0 }.map(\.label) }
}
