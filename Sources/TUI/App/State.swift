import Chat

// The Elm architecture's three types: everything the screen shows is in State; everything that
// happens arrives as a Msg; `update` returns the next State and the Effects the runtime runs.

public struct State: Equatable, Sendable {
    public var size: TerminalSize
    /// Seconds (monotonic) as of the last message; update never reads a clock.
    public var now: Double = 0

    public var theme: Theme
    public var themes: [Theme]

    public var personas: [Persona]
    public var persona: Persona?
    /// Where persona adapter paths (relative to Models/) are found.
    public var modelsRoot: String

    /// The conversation shown; its events are saved by the runtime (`.record`).
    public var conversation: Conversation

    public var input = InputEditor()
    /// Sent texts, oldest first (↑/↓ in the input line).
    public var inputHistory: [String] = []
    public var historyIndex: Int?
    /// What was typed before ↑ started walking the history.
    public var draft = ""
    /// Edit-last: the user message the input line replaces.
    public var editing: String?

    public var focus: Focus = .input
    public var overlay: Overlay?

    public var sliders = Sliders()
    public var sliderIndex = 0
    public var adapters: [AdapterEntry] = []
    public var adapterIndex = 0

    public var model: ModelStatus = .loading(0, eta: nil)
    /// Shown in the status line before the model reports its own name.
    public var modelName: String
    /// The user named the model (--model): persona switches keep it. Otherwise a persona made
    /// for another base loads that base.
    public var modelPinned = false
    public var generation: Generation?
    public var lastStats: GenerationStats?
    public var nextRequestID = 1

    /// The one-line message above the status line.
    public var notice: Notice?

    /// History pane: lines scrolled up from the bottom (0 follows new text).
    public var scroll = 0
    /// History focus: index in the shown path of the selected message.
    public var selected: Int?

    public var quit = false

    public init(size: TerminalSize, personas: [Persona], persona: Persona?, theme: Theme = .builtIn, themes: [Theme] = [.builtIn],
                modelName: String, modelsRoot: String = "Models") {
        self.size = size
        self.personas = personas
        self.theme = theme
        self.themes = themes
        self.modelName = modelName
        self.modelsRoot = modelsRoot
        conversation = Conversation(id: "", title: "新对话", created: 0, persona: persona?.id)
        self.persona = nil
    }

    /// Messages shown, in order.
    public var path: [Message] { conversation.path }
}

public enum Focus: String, CaseIterable, Sendable {
    case input, history, sliders, adapters
}

public enum Overlay: Equatable, Sendable {
    /// The key list, scrolled this many lines.
    case help(Int)
    case personas(PersonaPicker)
    case sessions(SessionList)
    /// Asking for an adapter folder to load.
    case adapterPath(InputEditor)
}

public enum ModelStatus: Equatable, Sendable {
    case loading(Double, eta: Double?)
    case ready(ModelInfo)
    case failed(String)

    public var isReady: Bool { if case .ready = self { true } else { false } }
}

public struct Notice: Equatable, Sendable {
    public enum Kind: Sendable { case info, error }
    public var text: String
    public var kind: Kind
    public var at: Double
}

/// A reply being produced.
public struct Generation: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A new reply after user message `parent`.
        case reply(parent: String)
        /// Another reply beside `message` (same parent).
        case retry(message: String, parent: String)
        /// More text at the end of assistant message `message`.
        case extend(message: String, base: String)
    }
    public var id: Int
    public var kind: Kind
    public var persona: Persona
    /// Raw text so far (before stop strings and post-processing).
    public var text = ""
    public var startedAt: Double
    public var firstTokenAt: Double?
    public var lastTokenAt: Double?
    public var tokens = 0
    public var promptTokens: Int?
    public var contextLimit: Int?

    /// Live decode speed: tokens after the first, per second.
    public var tokensPerSecond: Double? {
        guard let f = firstTokenAt, let l = lastTokenAt, tokens > 1, l > f else { return nil }
        return Double(tokens - 1) / (l - f)
    }
}

/// A LoRA adapter in the adapter panel.
public struct AdapterEntry: Equatable, Sendable {
    public enum Status: Equatable, Sendable { case loading, ready(AdapterInfo), failed(String) }
    /// Folder as the backend reads it.
    public var path: String
    public var scale: Double
    public var enabled = true
    /// Bound by the current persona (replaced when the persona changes) or loaded by hand.
    public var fromPersona: Bool
    public var status: Status = .loading

    public var name: String {
        let parts = path.split(separator: "/")
        return parts.last.map(String.init) ?? path
    }

    public var isReady: Bool { if case .ready = status { true } else { false } }
}

/// The side panel's generation settings; they apply to the next reply.
public struct Sliders: Equatable, Sendable {
    public var maxHistory = 10
    public var doSample = false
    public var beams = 1
    public var temperature = 1.0
    public var topP = 1.0
    public var topK = 0
    public var repetitionPenalty = 1.0
    public var maxTokens = 256

    public init() {}

    /// A persona's defaults (the engine's where the persona says nothing).
    public init(_ p: Persona) {
        let s = p.sampling
        maxHistory = s.maxHistory ?? p.promptTemplate.defaultMaxHistory ?? 10
        doSample = s.doSample ?? false
        beams = s.numBeams ?? 1
        temperature = s.temperature ?? 1.0
        topP = s.topP ?? 1.0
        topK = s.topK ?? 0
        repetitionPenalty = s.repetitionPenalty ?? 1.0
        maxTokens = s.maxNewTokens ?? 256
    }

    /// The persona's sampling with these values.
    public func sampling(over s: Persona.Sampling) -> Persona.Sampling {
        var s = s
        s.maxHistory = maxHistory
        s.doSample = doSample
        s.numBeams = beams
        s.temperature = temperature
        s.topP = topP
        s.topK = topK
        s.repetitionPenalty = repetitionPenalty
        s.maxNewTokens = maxTokens
        return s
    }
}

/// The persona picker: a filter typed by the user and the highlighted persona.
public struct PersonaPicker: Equatable, Sendable {
    public var filter = ""
    public var index = 0
}

/// The session list: summaries read by the runtime, the highlighted row.
public struct SessionList: Equatable, Sendable {
    public var sessions: [SessionSummary] = []
    public var index = 0
    public var loading = true
}

public enum Msg: Equatable, Sendable {
    case key(Key)
    case resize(TerminalSize)
    case tick(Double)
    case backend(BackendEvent)
    /// The runtime created the session file for the conversation shown.
    case sessionCreated(id: String)
    /// A session was resumed or branched: show it.
    case sessionOpened(Conversation, warnings: [String])
    case sessionsListed([SessionSummary], errors: [String])
    /// An effect failed (saving, reading sessions): one line.
    case failed(String)
    /// Make this persona (by id) the one that replies.
    case choosePersona(String)
    /// Load an adapter folder by hand (the adapter panel's `l`, or `--adapter` at start).
    case addAdapter(String, scale: Double)
}

public enum Effect: Equatable, Sendable {
    case generate(GenerationRequest)
    case cancel(Int)
    /// Append to the open session's log (creating it on the first user message).
    case record([SessionEvent])
    /// Forget the open session file: the next message starts a new one.
    case closeSession
    case listSessions
    case resumeSession(String)
    case branchSession(String, at: String)
    case loadAdapter(String)
    case setAdapters([AdapterSetting])
    /// Replace the base model (a persona made for another one was chosen).
    case loadModel(String)
    case quit
}
