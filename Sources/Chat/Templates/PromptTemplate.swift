import Engine

/// One thing said in a conversation, as it enters a prompt.
public struct Utterance: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable { case user, assistant }
    public var role: Role
    public var text: String

    public init(_ role: Role, _ text: String) {
        self.role = role
        self.text = text
    }

    public static func user(_ text: String) -> Utterance { Utterance(.user, text) }
    public static func assistant(_ text: String) -> Utterance { Utterance(.assistant, text) }
}

/// A question and its reply, for templates that think in rounds.
public struct Round: Sendable, Equatable {
    public var query: String
    public var reply: String

    public init(_ query: String, _ reply: String) {
        self.query = query
        self.reply = reply
    }

    /// Pairs utterances into rounds: a user utterance opens a round, the next assistant one
    /// answers it. A reply with no question before it (a greeting) gets an empty question; a
    /// question never answered gets an empty reply.
    public static func pair(_ history: [Utterance]) -> [Round] {
        var rounds: [Round] = []
        var open: String?
        for u in history {
            switch u.role {
            case .user:
                if let q = open { rounds.append(Round(q, "")) }
                open = u.text
            case .assistant:
                rounds.append(Round(open ?? "", u.text))
                open = nil
            }
        }
        if let q = open { rounds.append(Round(q, "")) }
        return rounds
    }
}

/// What `max_history` counts, and what the budget drops one at a time.
public enum HistoryUnit: String, Sendable {
    /// Single utterances (Cosplay ChatGLM: 10 keeps 5 exchanges).
    case utterances
    /// Question–reply rounds (ChatGLM chat(), CuteGPT's memory_limit).
    case rounds
}

/// Text to tokenize, and whether the tokenizer adds its special tokens: BOS where
/// tokenizer_config.json says so (LLaMA, Baichuan), `[gMASK] <sop>` at the end for ChatGLM.
/// The text is data: it is tokenized with special-token parsing off, so a `<sop>`, `</s>`, `<eop>`
/// or `[gMASK]` that a user, a character card or a reply contains is characters, never a control
/// token. Control tokens enter a chat prompt only through `addSpecialTokens` or through `markup`:
/// the parts of `text` a model's own chat template wrote (its `<|im_start|>`, `[INST]`, `</s>`),
/// where special-token text is parsed as Hugging Face parses it.
public struct Prompt: Sendable, Equatable {
    public var text: String
    public var addSpecialTokens: Bool
    /// `text` cut into parts, each marked whether it is template markup; empty: all of it is data.
    public var parts: [Part]

    public struct Part: Sendable, Equatable {
        public var text: String
        public var markup: Bool

        public init(_ text: String, markup: Bool) {
            self.text = text
            self.markup = markup
        }
    }

    public init(text: String, addSpecialTokens: Bool) {
        self.text = text
        self.addSpecialTokens = addSpecialTokens
        parts = []
    }

    /// A prompt from parts (its text is theirs joined).
    public init(parts: [Part], addSpecialTokens: Bool) {
        text = parts.map(\.text).joined()
        self.addSpecialTokens = addSpecialTokens
        self.parts = parts
    }

    public func tokenIDs(_ tokenizer: any Tokenizer) -> [Int32] {
        guard parts.contains(where: \.markup) else {
            return tokenizer.encode(text, addSpecialTokens: addSpecialTokens, parseSpecialTokens: false)
        }
        return tokenizer.encode(parts: parts.map { ($0.text, $0.markup) }, addSpecialTokens: addSpecialTokens)
    }
}

/// A special token a reply stops on, named so it resolves against whichever tokenizer runs.
public enum StopToken: Sendable, Equatable, Hashable {
    case eos
    case bos
    case named(String)

    public func id(in tokenizer: any Tokenizer) -> Int32? {
        switch self {
        case .eos: tokenizer.specials.eos
        case .bos: tokenizer.specials.bos
        case .named(let n): tokenizer.specials.named[n]
        }
    }
}

/// When a reply ends: on any of `tokens`, or once the decoded text contains one of `texts`
/// (the text from the stop string on is not part of the reply).
public struct StopRule: Sendable, Equatable {
    public var tokens: [StopToken]
    public var texts: [String]

    public init(tokens: [StopToken], texts: [String] = []) {
        self.tokens = tokens
        self.texts = texts
    }

    public func tokenIDs(in tokenizer: any Tokenizer) -> Set<Int32> {
        Set(tokens.compactMap { $0.id(in: tokenizer) })
    }

    /// The reply text cut before the first stop string, if one occurs.
    public func cut(_ text: String) -> String {
        var end = text.endIndex
        for s in texts where !s.isEmpty {
            if let r = text.range(of: s), r.lowerBound < end { end = r.lowerBound }
        }
        return String(text[..<end])
    }
}

/// A seed system's prompt format. Templates are small value types: they render text exactly as
/// the seed's Python code does, and turn raw generated text into the reply the seed kept.
public protocol PromptTemplate: Sendable {
    /// Registry name (`glm-cosplay`, `cutegpt`, …).
    var id: String { get }
    /// What `max_history` counts.
    var historyUnit: HistoryUnit { get }
    /// The seed's own history limit (nil: unlimited), used when a persona sets none.
    var defaultMaxHistory: Int? { get }
    /// Whether the template has room for a persona preamble (system text kept on every turn).
    var acceptsPreamble: Bool { get }
    var stop: StopRule { get }
    /// The prompt for `input` after `history` (already cut to what is kept). Only a model's own
    /// chat template can fail (its `raise_exception`, a broken template).
    func render(history: [Utterance], input: String) throws(ChatError) -> Prompt
    /// The reply as the seed stored it, from the decoded generated tokens.
    func finishReply(_ raw: String) -> String
}

extension PromptTemplate {
    /// History split into the units `max_history` counts and the budget drops, oldest first.
    public func units(_ history: [Utterance]) -> [[Utterance]] {
        switch historyUnit {
        case .utterances:
            return history.map { [$0] }
        case .rounds:
            var out: [[Utterance]] = []
            for u in history {
                if u.role == .assistant, var last = out.last, last.count == 1, last[0].role == .user {
                    last.append(u)
                    out[out.count - 1] = last
                } else {
                    out.append([u])
                }
            }
            return out
        }
    }
}
