import Engine
import Foundation

/// What produces a reply: a new question, another reply to the last question (the old one stays
/// as an alternative), more of the last reply, or the last question asked again in other words.
public enum ReplyAction: Sendable, Equatable {
    case send(String)
    case retry
    case continueReply
    /// Replaces the last question with this text (a new alternative of it) and answers it.
    case reask(String)
    /// In a scene: the named cast member (or the next in turn) speaks, with no words from the
    /// user (the question is only the hand-over to the speaker).
    case next(String?)
}

/// How a reply went.
public struct ReplyOutcome: Sendable {
    /// The reply as recorded (continue: the extended reply); nil when a cancel or failure came
    /// before any text.
    public var message: Message?
    /// The question `send` or `reask` recorded.
    public var question: Message?
    /// What was generated this time (continue: only the extension), as the template finished it.
    public var text: String
    /// nil after a failure.
    public var reason: FinishReason?
    /// Cancelled or failed mid-reply: what came was saved, marked partial.
    public var partial: Bool
    /// A failure mid-reply (the text before it is saved).
    public var error: ChatError?
    /// The engine's timings and counts (nil after a failure).
    public var stats: GenerationStats?
    /// Seconds from the action to the first text shown (prompt building and prefill included).
    public var timeToFirstText: Double?
    /// Lorebook entries the prompt got (their comments).
    public var lore: [String] = []
    /// History left out by max_history and to fit the context, oldest first.
    public var droppedByLimit: [Utterance]
    public var droppedForBudget: [Utterance]
    /// The ids the reply was generated from, and the generated ids.
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
    /// Runs `action` on this thread; `onDelta` sees the reply's text as it is generated (and
    /// `onEvent` gets `.delta` too).
    public func reply(_ action: ReplyAction, onDelta: (String) -> Void = { _ in }) throws(ChatError) -> ReplyOutcome {
        try exclusive { () throws(ChatError) -> ReplyOutcome in
            let t0 = Measure.now()
            try activateIfNeeded()
            let out: ReplyOutcome
            switch action {
            case .send(let text): out = try sendTurn(text, t0, onDelta)
            case .retry: out = try retryTurn(t0, onDelta)
            case .continueReply: out = try continueTurn(t0, onDelta)
            case .reask(let text): out = try reaskTurn(text, t0, onDelta)
            case .next(let who): out = try nextTurn(who, t0, onDelta)
            }
            emit(.replyFinished(out))
            return out
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
                    let outcome = try reply(action) { d in
                        if dropped.isCancelled { cancel() }
                        continuation.yield(.delta(d))
                    }
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

    private func sendTurn(_ typed: String, _ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        guard !typed.pythonStripped.isEmpty else { throw ChatError("", "nothing to send") }
        try chooseSpeaker(typed: typed, named: nil)
        if !conversation.messages.contains(where: { $0.role == .user }) && conversation.title == Rules.untitled {
            try record([.rename(Rules.title(from: typed))])
        }
        return try ask(typed, replacing: nil, t0, onDelta)
    }

    /// The last question in other words: a new alternative of it (same parent), answered.
    private func reaskTurn(_ typed: String, _ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        let (old, _) = try Rules.lastExchange(conversation, "edit")
        return try ask(typed, replacing: old, t0, onDelta)
    }

    private func nextTurn(_ who: String?, _ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        guard !conversation.cast.isEmpty else { throw ChatError("", "no scene: start one with several personas first") }
        try chooseSpeaker(typed: "", named: who)
        guard persona.template == "glm-cosplay", persona.speaker != nil else {
            throw ChatError("", "\(persona.name) needs something said to answer (its template has no hand-over)")
        }
        return try ask("", replacing: nil, t0, onDelta, allowEmpty: true)
    }

    /// In a scene, makes the speaker the persona that replies (its base, adapters and scales).
    func chooseSpeaker(typed: String, named who: String?) throws(ChatError) {
        let cast = self.cast
        guard !cast.isEmpty else { return }
        let speaker: Persona
        if let who, !who.isEmpty {
            guard let p = cast.first(where: { $0.id == who || $0.name == who || $0.speaker?.name == who }) else {
                throw ChatError("", "\(who.quotedForError) is not in the scene (\(cast.map(\.name).joined(separator: "、")))")
            }
            speaker = p
        } else {
            speaker = Rules.nextSpeaker(cast, typed: typed, in: conversation) ?? persona
        }
        if speaker.id != persona.id { try speak(speaker) }
    }

    /// Records `typed` as a question after the shown path (or beside `old`) and answers it.
    private func ask(_ typed: String, replacing old: Message?, _ t0: Double, _ onDelta: (String) -> Void,
                     allowEmpty: Bool = false) throws(ChatError) -> ReplyOutcome {
        guard allowEmpty || !typed.pythonStripped.isEmpty else { throw ChatError("", "nothing to send") }
        let utterance = persona.userUtterance(typed)
        let history = conversation.utterances(upTo: old?.id, includeGreetings: persona.history.includeGreeting)
        let plan = try makePlan(history: history, utterance: utterance)
        let question = message(.user, utterance, parent: old.map { $0.parent } ?? conversation.head?.id)
        try record([.message(question)])
        var out = try answer(question, plan: plan, t0, onDelta)
        out.question = question
        return out
    }

    /// Another reply to the last question beside the old one (same parent, shown): the old one
    /// stays as an alternative.
    private func retryTurn(_ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        let (question, _) = try Rules.lastExchange(conversation, "retry")
        let history = conversation.utterances(upTo: question.id, includeGreetings: persona.history.includeGreeting)
        return try answer(question, plan: try makePlan(history: history, utterance: question.text), t0, onDelta)
    }

    private func answer(_ question: Message, plan: TurnPlan, _ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        try run(plan.fitted.tokenIDs, plan: plan, continuing: false, t0, onDelta) { text, _, partial in
            [.message(reply(text, parent: question.id, partial: partial))]
        }
    }

    /// More of the last reply: the prompt that produced it, the reply so far, and on. The reply is
    /// extended in place (an edit; the store keeps the earlier text).
    private func continueTurn(_ t0: Double, _ onDelta: (String) -> Void) throws(ChatError) -> ReplyOutcome {
        let (question, last) = try Rules.lastExchange(conversation, "continue")
        guard let last else { throw ChatError("", "nothing to continue: the last question has no reply yet (retry answers it)") }
        let history = conversation.utterances(upTo: question.id, includeGreetings: persona.history.includeGreeting)
        let plan = try makePlan(history: history, utterance: question.text)
        let e = engine!
        // SentencePiece prompts put their special token first: tokenize the whole text so the
        // reply's first piece joins as it would have. ChatGLM's end in [gMASK] <sop>: append.
        let ids: [Int32]
        switch e.tokenizer.kind {
        // Text is data here too: special-token parsing off (see Prompt).
        case .sentencePiece: ids = e.tokenizer.encode(plan.fitted.prompt.text + last.text, addSpecialTokens: plan.fitted.prompt.addSpecialTokens,
                                                      parseSpecialTokens: false)
        case .chatGLM: ids = plan.fitted.tokenIDs + e.tokenizer.encode(last.text, addSpecialTokens: false, parseSpecialTokens: false)
        }
        guard e.info.contextLength - ids.count >= 1 else {
            throw ChatError("", "nothing to continue: the reply already fills the model's \(e.info.contextLength)-token context")
        }
        return try run(ids, plan: plan, continuing: true, t0, onDelta) { _, raw, _ in
            [.edit(id: last.id, text: persona.finishReply(last.text + raw))]
        }
    }

    // MARK: - Engine

    /// The turn's plan under the persona with the user's max_new_tokens and max_history on top,
    /// with what role-play adds (RoleplayPrompt): lore that fires (`turnLore` names it), the
    /// author's note, a card's examples and instructions, macros for the user's profile.
    func makePlan(history: [Utterance], utterance: String) throws(ChatError) -> TurnPlan {
        let e = engine!
        let p = planPersona
        let (lore, fired) = scanLore(p, history: history, utterance: utterance)
        turnLore = fired
        if !fired.isEmpty { emit(.lore(fired)) }
        let rp = RoleplayPrompt(persona: p, history: history, input: utterance, lore: lore, inputs: roleplayInputs)
        return try rp.plan(history: history, input: utterance, tokenizer: e.tokenizer, contextLength: e.info.contextLength,
                           defaultMaxNewTokens: maxNewTokens)
    }

    /// What this conversation gives role-play prompts: the user, the note, the scene, for macros.
    var roleplayInputs: RoleplayPrompt.Inputs {
        let c = conversation
        let lastUser = c.path.last { $0.role == .user }.map { Date(timeIntervalSince1970: $0.time) }
        return RoleplayPrompt.Inputs(user: userProfile, note: c.note, chatID: c.id.isEmpty ? "draft" : c.id, now: clock(),
                                     lastUserTime: lastUser, scene: cast.map(\.name), seed: overrides.parameters.seed.map { UInt64(truncatingIfNeeded: $0) })
    }

    func message(_ role: Message.Role, _ text: String, parent: String?) -> Message {
        Message(id: conversation.nextMessageID, parent: parent, role: role, text: text, persona: persona.id,
                time: clock().timeIntervalSince1970)
    }

    func reply(_ text: String, parent: String, partial: Bool) -> Message {
        var m = message(.assistant, text, parent: parent)
        m.template = persona.template
        let labels = adapters.filter { $0.enabled && $0.multiplier != 0 }.map(\.label)
        m.adapters = labels
        m.partial = partial ? true : nil
        return m
    }

    /// Generates from `ids` and records the result with `save(finished text, raw text, partial)`, unless a
    /// cancel or failure left no text.
    private func run(_ ids: [Int32], plan: TurnPlan, continuing: Bool, _ t0: Double, _ onDelta: (String) -> Void,
                     save: (_ text: String, _ raw: String, _ partial: Bool) -> [SessionEvent]) throws(ChatError) -> ReplyOutcome {
        let e = engine!
        let params = plan.parameters(layered(overrides), promptLength: ids.count, contextLength: e.info.contextLength)
        do throws(GenerationError) {
            _ = try params.resolved(promptLength: ids.count)
        } catch {
            throw ChatError("", error.description)
        }
        emit(.replyStarted(promptTokens: ids.count, contextLength: e.info.contextLength, dropped: plan.fitted.droppedForBudget.count))
        var firstAt: Double?
        let flag = lock.withLock { cancelFlag }
        let r = e.generate(EngineRequest(promptIDs: ids, parameters: params, persona: persona.id, continuing: continuing),
                           cancelled: flag) { d in
            if firstAt == nil { firstAt = Measure.now() }
            onDelta(d)
            emit(.delta(d))
        }
        let partial = r.error != nil || r.reason == .cancelled
        var text = persona.finishReply(r.text)
        // A reply cut short keeps what was said, not the space the next token would have followed.
        if partial { text = String(text.reversed().drop { $0.isWhitespace }.reversed()) }
        var saved: Message?
        if !(partial && text.isEmpty) {
            let events = save(text, r.text, partial)
            try record(events)
            switch events.last {
            case .message(let m): saved = conversation.message(m.id)
            case .edit(let id, _): saved = conversation.message(id)
            default: break
            }
        }
        return ReplyOutcome(message: saved, question: nil, text: text, reason: r.reason, partial: partial, error: r.error,
                            stats: r.stats, timeToFirstText: firstAt.map { $0 - t0 }, lore: turnLore,
                            droppedByLimit: plan.fitted.droppedByLimit, droppedForBudget: plan.fitted.droppedForBudget,
                            promptIDs: ids, tokens: r.tokens)
    }
}
