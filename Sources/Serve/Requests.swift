import Chat
import Engine
import Foundation

// The two generation endpoints' requests, as jobs: what is checked before queueing (fields,
// model, adapters) and what `prepare` does on the engine's worker (tokenize, fit, layer settings).

/// A `/v1/completions` prompt: text (tokenized as Hugging Face does, special tokens added as
/// `yanyi generate` adds them) or token ids.
enum PromptInput: Sendable {
    case text(String)
    case ids([Int32])

    /// `prompt`: a string, an array of strings, an array of ids, or an array of id arrays.
    static func parse(_ f: RequestFields) throws(APIError) -> [PromptInput] {
        guard let v = f.value("prompt") else { throw APIError.invalid("'prompt' is required.", param: "prompt") }
        func ids(_ a: [JSON], _ param: String) throws(APIError) -> [Int32] {
            var out: [Int32] = []
            for e in a {
                guard case .int(let i) = e, let x = Int32(exactly: i) else {
                    throw APIError.invalid("'\(param)' must hold token ids (whole numbers).", param: param)
                }
                out.append(x)
            }
            return out
        }
        switch v {
        case .string(let s): return [.text(s)]
        case .array(let a) where a.isEmpty: throw APIError.invalid("'prompt' is an empty array.", param: "prompt")
        case .array(let a):
            if case .int = a[0] { return [.ids(try ids(a, "prompt"))] }
            var out: [PromptInput] = []
            for (i, e) in a.enumerated() {
                switch e {
                case .string(let s): out.append(.text(s))
                case .array(let inner): out.append(.ids(try ids(inner, "prompt[\(i)]")))
                default: throw APIError.invalid("'prompt[\(i)]' must be a string or an array of token ids.", param: "prompt[\(i)]")
                }
            }
            guard out.count <= 16 else { throw APIError.invalid("At most 16 prompts in one request (got \(out.count)).", param: "prompt") }
            return out
        default:
            throw APIError.invalid("'prompt' must be a string, an array of strings, or token ids.", param: "prompt")
        }
    }
}

/// A `/v1/chat/completions` conversation: system text, the history, and the last user message.
struct ChatInput: Sendable {
    var system: [String] = []
    var history: [Utterance] = []
    var input = ""

    static func parse(_ f: RequestFields) throws(APIError) -> ChatInput {
        guard case .array(let list)? = f.value("messages"), !list.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty array of {\"role\", \"content\"}.", param: "messages")
        }
        var out = ChatInput()
        var turns: [Utterance] = []
        for (i, m) in list.enumerated() {
            let param = "messages[\(i)]"
            guard let o = m.object else { throw APIError.invalid("'\(param)' must be an object.", param: param) }
            let e = RequestFields(object: o)
            let role = try e.string("role") ?? ""
            if let calls = e.value("tool_calls"), calls != .array([]) {
                throw APIError.unsupported("\(param).tool_calls", "Tool calls are not supported.")
            }
            let text = try content(e.value("content"), param + ".content")
            switch role {
            case "system", "developer": out.system.append(text)
            case "user": turns.append(.user(text))
            case "assistant": turns.append(.assistant(text))
            case "tool", "function": throw APIError.unsupported("\(param).role", "Tool and function messages are not supported.")
            default: throw APIError.invalid("'\(param).role' must be system, user or assistant (got '\(role)').", param: "\(param).role")
            }
        }
        guard let last = turns.last, last.role == .user else {
            throw APIError.invalid("The last message (after any system messages) must be the user's: the reply answers it.", param: "messages")
        }
        out.input = last.text
        out.history = Array(turns.dropLast())
        return out
    }

    /// A string, or an array of `{"type": "text", "text": …}` parts joined.
    static func content(_ v: JSON?, _ param: String) throws(APIError) -> String {
        switch v {
        case nil: return ""
        case .string(let s)?: return s
        case .array(let parts)?:
            var text = ""
            for (i, p) in parts.enumerated() {
                guard let o = p.object, o["type"]?.string == "text", let t = o["text"]?.string else {
                    throw APIError.unsupported("\(param)[\(i)]", "Only text content parts are supported.")
                }
                text += t
            }
            return text
        default:
            throw APIError.invalid("'\(param)' must be a string or an array of text parts.", param: param)
        }
    }
}

extension OpenAIService {
    /// max_new_tokens when the request names none: the persona's, generation_config.json's, the server's.
    func defaultMaxTokens(_ persona: Persona?, _ engine: any ReplyEngine) -> Int {
        min(persona?.sampling.maxNewTokens ?? engine.defaults.maxNewTokens ?? options.defaultMaxTokens, options.maxTokens)
    }

    /// Checks the resolved settings the engine will use; a refused combination is a 400.
    static func validated(_ p: GenerationParameters, promptLength: Int) throws(APIError) -> GenerationParameters {
        do throws(GenerationError) {
            _ = try p.resolved(promptLength: promptLength)
        } catch {
            throw APIError.invalid("Invalid sampling settings: \(error.description).")
        }
        return p
    }

    static func contextExceeded(_ promptTokens: Int, _ context: Int) -> APIError {
        APIError.invalid("The prompt is \(promptTokens) tokens; the model's context is \(context), which leaves no room for a reply.",
                         param: "prompt", code: "context_length_exceeded")
    }

    /// One job of `/v1/completions`: the prompt as given, the target's base and adapters, the
    /// persona's sampling (if any) between generation_config.json and the request's.
    /// `logprobs`: alternatives per token when logprobs are wanted.
    func completionJob(_ prompt: PromptInput, choice: Int, target: Target, sampling s: SamplingRequest, addBOS: Bool,
                       logprobs: Int? = nil) -> GenerationJob {
        let persona = target.persona
        let maxTokens = s.maxTokens
        let defaultMax: @Sendable (any ReplyEngine) -> Int = { [self] e in defaultMaxTokens(persona, e) }
        return GenerationJob(base: target.base, adapters: target.adapters, streams: s.stream, onFinish: account) { (e: any ReplyEngine) throws(APIError) -> PreparedGeneration in
            let ids: [Int32]
            switch prompt {
            case .text(let t): ids = e.tokenizer.encode(t, addSpecialTokens: e.tokenizer.kind == .sentencePiece ? addBOS : true)
            case .ids(let list):
                if let bad = list.first(where: { $0 < 0 || Int($0) >= e.tokenizer.vocabSize }) {
                    throw APIError.invalid("Token id \(bad) is outside the model's vocabulary (0–\(e.tokenizer.vocabSize - 1)).", param: "prompt")
                }
                ids = list
            }
            guard !ids.isEmpty else { throw APIError.invalid("The prompt encodes to no tokens.", param: "prompt") }
            let context = e.info.contextLength
            guard ids.count < context else { throw Self.contextExceeded(ids.count, context) }
            var p = GenerationParameters.layered(model: e.defaults, persona: persona?.sampling.generationParameters, user: s.parameters)
            p.maxNewTokens = min(maxTokens ?? defaultMax(e), context - ids.count)
            p.maxLength = nil
            p.stop = s.stops.isEmpty ? nil : s.stops
            if let seed = s.seed(choice: choice) { p.seed = seed }
            let request = EngineRequest(promptIDs: ids, parameters: try Self.validated(p, promptLength: ids.count), persona: persona?.id,
                                        logprobs: logprobs.map { LogprobLog(top: $0, tokenizer: e.tokenizer) })
            return PreparedGeneration(request: request)
        }
    }

    /// One job of `/v1/chat/completions`: the messages rendered with the persona's template (a
    /// base alone: `plain`) and fitted to the context as the chat runtime fits a turn
    /// (TurnPlan: max_history, then the budget drops the oldest history), the persona's stop
    /// rule, and its finishReply on the text.
    ///
    /// System messages join the persona's preamble when its template has one; otherwise they
    /// are ignored (and named in `X-Yanyi-Ignored`).
    func chatJob(_ chat: ChatInput, choice: Int, target: Target, sampling s: SamplingRequest, logprobs: Int? = nil) -> GenerationJob {
        var withSystem = target.effectivePersona
        let system = chat.system.filter { !$0.isEmpty }.joined(separator: "\n")
        if !system.isEmpty && withSystem.promptTemplate.acceptsPreamble {
            withSystem.preamble = [withSystem.preamble ?? "", system].filter { !$0.isEmpty }.joined(separator: "\n")
        }
        let persona = withSystem
        let history = chat.history.map { $0.role == .user ? Utterance.user(persona.userUtterance($0.text)) : $0 }
        let utterance = persona.userUtterance(chat.input)
        let maxTokens = s.maxTokens
        let named = target.persona != nil
        let defaultMax: @Sendable (any ReplyEngine) -> Int = { [self] e in defaultMaxTokens(named ? persona : nil, e) }
        let holdBack = Self.holdBack(persona)
        let finish: (@Sendable (String) -> String)? = Self.isIdentity(persona) ? nil : { @Sendable raw in persona.finishReply(raw) }
        let (books, _) = RoleplayPrompt.books(of: persona) { [lorebooks] name throws(ChatError) in
            guard let r = lorebooks[name] else { throw ChatError("", "lorebook '\(name)' was not read at start") }
            return try r.get()
        }
        let inputs = RoleplayPrompt.Inputs(user: options.user, chatID: "api")
        return GenerationJob(base: target.base, adapters: target.adapters, streams: s.stream, onFinish: account) { (e: any ReplyEngine) throws(APIError) -> PreparedGeneration in
            var p = persona
            p.sampling.maxNewTokens = maxTokens ?? defaultMax(e)
            let plan: TurnPlan
            do throws(ChatError) {
                // What role-play adds, as in the chat: lore, a card's examples and instructions, macros.
                let (lore, _) = RoleplayPrompt.scan(books, persona: p, history: history, input: utterance, tokenizer: e.tokenizer,
                                                    contextLength: e.info.contextLength)
                let rp = RoleplayPrompt(persona: p, history: history, input: utterance, lore: lore, inputs: inputs)
                plan = try rp.plan(history: history, input: utterance, tokenizer: e.tokenizer,
                                   contextLength: e.info.contextLength, defaultMaxNewTokens: p.sampling.maxNewTokens!)
            } catch {
                throw APIError.invalid("The conversation does not fit: \(error.description)", param: "messages", code: "context_length_exceeded")
            }
            let ids = plan.fitted.tokenIDs
            guard ids.count < e.info.contextLength else { throw Self.contextExceeded(ids.count, e.info.contextLength) }
            var params = plan.parameters(
                GenerationParameters.layered(model: e.defaults, persona: p.sampling.generationParameters, user: s.parameters),
                promptLength: ids.count, contextLength: e.info.contextLength, extraStops: s.stops)
            if let seed = s.seed(choice: choice) { params.seed = seed }
            let request = EngineRequest(promptIDs: ids, parameters: try Self.validated(params, promptLength: ids.count),
                                        persona: p.id.isEmpty ? nil : p.id, logprobs: logprobs.map { LogprobLog(top: $0, tokenizer: e.tokenizer) })
            return PreparedGeneration(request: request, finish: finish, holdBack: holdBack)
        }
    }

    /// Characters a stream holds back for `p`'s finishReply: none when it leaves text as it is
    /// or only strips it (stripping never changes a prefix already sent); otherwise enough to
    /// cover what it rewrites (ChatGLM's `[[训练时间]]`, `<end>`, a mark before an ideograph).
    static func holdBack(_ p: Persona) -> Int {
        let out = p.finishReply(probe)
        return out == probe || out == probe.trimmingCharacters(in: .whitespaces) ? 0 : 8
    }

    /// Whether `p`'s finishReply leaves every text as it is (baichuan-qa, glm-cosplay without post-processing).
    static func isIdentity(_ p: Persona) -> Bool { p.finishReply(probe) == probe }

    static let probe = " 好,吗?<s>[[训练时间]]<end>x "
}
