import Chat

// What the TUI needs from whatever produces replies. The runtime calls these from its one
// thread; implementations do their work elsewhere and report back through `send`, whose events
// become Msgs. Every failure is an event with a one-line message, never a throw or a crash.

/// One reply to produce.
public struct GenerationRequest: Equatable, Sendable {
    public var id: Int
    /// The persona, its sampling already replaced by the side panel's values.
    public var persona: Persona
    /// The conversation before the user's utterance (greetings left out unless the persona keeps them).
    public var history: [Utterance]
    /// What the user said, as it enters history (cosplay: with `，玄德曰：` appended).
    public var utterance: String
    /// Continue: the reply so far, which the new text extends ("" for a fresh reply).
    public var prefix: String

    public init(id: Int, persona: Persona, history: [Utterance], utterance: String, prefix: String = "") {
        self.id = id
        self.persona = persona
        self.history = history
        self.utterance = utterance
        self.prefix = prefix
    }
}

/// An adapter as the backend should apply it.
public struct AdapterSetting: Equatable, Sendable {
    public var path: String
    public var scale: Double

    public init(path: String, scale: Double) {
        self.path = path
        self.scale = scale
    }
}

public struct ModelInfo: Equatable, Sendable {
    public var name: String
    public var precision: String
    public var contextLength: Int

    public init(name: String, precision: String, contextLength: Int) {
        self.name = name
        self.precision = precision
        self.contextLength = contextLength
    }
}

public struct AdapterInfo: Equatable, Sendable {
    /// e.g. "12 modules, r 8".
    public var summary: String

    public init(summary: String) { self.summary = summary }
}

public struct GenerationStats: Equatable, Sendable {
    public var promptTokens: Int
    public var newTokens: Int
    /// Seconds from the request to the first token (prefill included).
    public var timeToFirstToken: Double
    /// New tokens per second after the first.
    public var tokensPerSecond: Double
    public var contextLimit: Int

    public init(promptTokens: Int, newTokens: Int, timeToFirstToken: Double, tokensPerSecond: Double, contextLimit: Int) {
        self.promptTokens = promptTokens
        self.newTokens = newTokens
        self.timeToFirstToken = timeToFirstToken
        self.tokensPerSecond = tokensPerSecond
        self.contextLimit = contextLimit
    }
}

public enum BackendEvent: Equatable, Sendable {
    /// Model load under way: 0–1 and the estimated seconds left (nil while unknown).
    case loadProgress(Double, eta: Double?)
    case loaded(ModelInfo)
    case loadFailed(String)
    /// The prompt is built: its tokens, the model's context, and how many history
    /// utterances were left out to fit.
    case started(id: Int, promptTokens: Int, contextLimit: Int, dropped: Int)
    /// New text (possibly empty: a token that completes no character yet).
    case token(id: Int, text: String)
    /// The reply as stored (stop strings cut, the template's post-processing applied).
    case finished(id: Int, reply: String, stats: GenerationStats, cancelled: Bool)
    case failed(id: Int, message: String)
    case adapterLoaded(path: String, AdapterInfo)
    case adapterFailed(path: String, message: String)
    /// Something to tell the user that is not an error (greedy only, an adapter missing …).
    case notice(String)
}

public protocol ChatBackend: AnyObject, Sendable {
    /// Starts loading the model (in the background); progress and the result come as events.
    func start(send: @escaping @Sendable (BackendEvent) -> Void)
    func generate(_ request: GenerationRequest)
    /// Stops request `id` at the next token; it still ends with `.finished(cancelled: true)`.
    func cancel(_ id: Int)
    /// Reads an adapter folder (not yet active).
    func loadAdapter(path: String)
    /// The adapters to apply from now on, in order, with their scales (disabled ones left out).
    /// Takes effect at once, between two tokens if a reply is being generated.
    func setAdapters(_ list: [AdapterSetting])
    /// Replaces the base model: `.loadProgress`… then `.loaded` or `.loadFailed`; the adapter
    /// list asked for last is applied to the new base (adapters that do not fit it are reported).
    func loadModel(path: String)
    /// Stops work; no events after it returns.
    func shutdown()
}

extension ChatBackend {
    /// Backends with one fixed model (the canned one) ignore a change of base.
    public func loadModel(path: String) {}
}
