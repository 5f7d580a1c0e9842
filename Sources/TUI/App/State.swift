import Chat

// The Elm architecture's three types: everything the screen shows is in State; everything that
// happens arrives as a Msg; `update` returns the next State and the Effects the runtime runs.
// What the conversation holds, which settings apply and what a reply means are the runtime's:
// State keeps what it last reported.

public struct State: Equatable, Sendable {
    public var size: TerminalSize
    /// Seconds (monotonic) as of the last message; update never reads a clock.
    public var now: Double = 0

    public var theme: Theme
    public var themes: [Theme]

    /// Every persona (the picker lists them) and the one replying, as the runtime says.
    public var personas: [Persona]
    public var persona: Persona?

    /// The conversation shown, as the runtime last reported it, and its saved session's id.
    /// Who the user is in role-play (the profile the store keeps).
    public var user = UserProfile()
    public var conversation: Conversation
    public var sessionID: String?

    public var input = InputEditor()
    /// Sent texts, oldest first (↑/↓ in the input line).
    public var inputHistory: [String] = []
    public var historyIndex: Int?
    /// What was typed before ↑ started walking the history.
    public var draft = ""
    /// Edit-last: the question the input line replaces (Enter asks it again).
    public var editing: String?

    public var focus: Focus = .input
    public var overlay: Overlay?

    /// Every setting as the next reply will use it (the runtime resolves the layers).
    public var settings: [ResolvedSetting] = []
    public var sliderIndex = 0
    public var adapters: [ChatController.ActiveAdapter] = []
    public var adapterIndex = 0
    /// Adapter folders found under the models folder (the load dialog offers them).
    public var availableAdapters: [String] = []

    public var model: ModelStatus = .loading(0, eta: nil)
    /// Shown in the status line before the model reports its own name.
    public var modelName: String
    public var generation: Generation?
    /// The last finished reply's figures (cleared when the model changes).
    public var lastReply: ReplyFigures?

    /// The one-line message above the status line.
    public var notice: Notice?

    /// History pane: lines scrolled up from the bottom (0 follows new text).
    public var scroll = 0
    /// History focus: index in the shown path of the selected message.
    public var selected: Int?

    public var quit = false

    public init(size: TerminalSize, personas: [Persona], persona: Persona?, theme: Theme = .builtIn, themes: [Theme] = [.builtIn],
                modelName: String) {
        self.size = size
        self.personas = personas
        self.persona = persona
        self.theme = theme
        self.themes = themes
        self.modelName = modelName
        conversation = Conversation(id: "", title: Rules.untitled, created: 0, persona: persona?.id)
    }

    /// Messages shown, in order.
    public var path: [Message] { conversation.path }

    /// The model's context, when one is loaded.
    public var contextLength: Int? { if case .ready(let m) = model { m.contextLength } else { nil } }

    /// A resolved setting's value as text.
    public func setting(_ key: String) -> String? { settings.first { $0.key == key }?.value }
}

public enum Focus: String, CaseIterable, Sendable {
    case input, history, sliders, adapters
}

public enum Overlay: Equatable, Sendable {
    /// The key list, scrolled this many lines.
    case help(Int)
    case personas(PersonaPicker)
    case sessions(SessionList)
    /// Asking for an adapter folder to load; `pick` highlights one of `availableAdapters`.
    case adapterPath(InputEditor, pick: Int?)
    /// Typing an exact value for a setting.
    case settingValue(key: String, InputEditor)
    /// A card file to import (`exporting` nil) or the file to export persona `exporting` to.
    case cardFile(InputEditor, exporting: String?)
    /// Editing a role-play setting: the author's note, who the user is, attached lorebooks.
    case roleplay(RoleplayField, InputEditor)
}

/// The role-play settings the TUI edits in one line each.
public enum RoleplayField: Equatable, Sendable {
    /// `[depth] text` of this conversation's author's note.
    case note
    /// `name | description` of the user's profile.
    case user
    /// Lorebook names (Personas/lore/) attached to this conversation.
    case lore
}

public enum ModelStatus: Equatable, Sendable {
    case loading(Double, eta: Double?)
    case ready(EngineInfo)
    case failed(String)

    public var isReady: Bool { if case .ready = self { true } else { false } }
}

public struct Notice: Equatable, Sendable {
    public enum Kind: Sendable { case info, error }
    public var text: String
    public var kind: Kind
    public var at: Double
}

/// A reply being produced, as the runtime streams it.
public struct Generation: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A new reply after the last message.
        case reply
        /// Another reply beside `message` (same question).
        case retry(message: String)
        /// More text at the end of reply `message`.
        case extend(message: String)
    }
    public var kind: Kind
    public var persona: Persona?
    /// Text so far (before stop strings and post-processing).
    public var text = ""
    public var startedAt: Double
    public var firstTokenAt: Double?
    public var lastTokenAt: Double?
    public var tokens = 0
    public var promptTokens: Int?
    public var contextLimit: Int?
    /// Stop was asked for; the runtime has not ended the reply yet.
    public var stopping = false
    /// Lorebook entries the prompt got.
    public var lore: [String] = []

    /// Live decode speed: text pieces after the first, per second.
    public var tokensPerSecond: Double? {
        guard let f = firstTokenAt, let l = lastTokenAt, tokens > 1, l > f else { return nil }
        return Double(tokens - 1) / (l - f)
    }
}

/// A finished reply's figures for the status line.
public struct ReplyFigures: Equatable, Sendable {
    public var tokensPerSecond: Double
    /// From the key press to the first text on screen.
    public var timeToFirstText: Double?
    public var contextUsed: Int
    public var contextLimit: Int
}

/// The persona picker: a filter typed by the user and the highlighted persona.
public struct PersonaPicker: Equatable, Sendable {
    public var filter = ""
    public var index = 0
    /// Marked for a scene (Space), in the order marked: the turn order.
    public var marked: [String] = []
}

/// The session list: summaries read by the runtime, the highlighted row.
public struct SessionList: Equatable, Sendable {
    public var sessions: [SessionSummary] = []
    public var index = 0
    public var loading = true
    /// The search that narrowed the list (nil: every session).
    public var query: String?
    /// `d` was pressed on this session: a second `d` deletes it.
    public var confirmDelete: String?
    /// Typing a search (`/`) or a new title (`r`) at the bottom of the list.
    public var editing: Field?

    public enum Field: Equatable, Sendable {
        case search(InputEditor)
        case rename(id: String, InputEditor)
    }

    public init() {}
}

public enum Msg: Equatable, Sendable {
    case key(Key)
    case resize(TerminalSize)
    case tick(Double)
    // What the runtime reported.
    case loadProgress(Double, eta: Double?)
    case loaded(EngineInfo)
    case loadFailed(String)
    case conversation(Conversation, session: String?)
    case adapters([ChatController.ActiveAdapter])
    case persona(Persona)
    case personas([Persona])
    case settings([ResolvedSetting])
    /// Who the user is in role-play (`{{user}}`).
    case user(UserProfile)
    case lore([String])
    case replyStarted(promptTokens: Int, contextLength: Int, dropped: Int)
    case delta(String)
    case replyFinished(ReplyEnd)
    /// The reply could not start (nothing was recorded).
    case replyFailed(String)
    case notice(String)
    case sessionsListed([SessionSummary], errors: [String], query: String? = nil)
    /// An effect failed: one line.
    case failed(String)
}

/// How a reply ended, as the screen needs it.
public struct ReplyEnd: Equatable, Sendable {
    public var partial: Bool
    public var saved: Bool
    public var error: String?
    public var tokensPerSecond: Double
    public var timeToFirstText: Double?
    public var promptTokens: Int
    public var newTokens: Int

    public init(partial: Bool, saved: Bool, error: String?, tokensPerSecond: Double, timeToFirstText: Double?,
                promptTokens: Int, newTokens: Int) {
        self.partial = partial
        self.saved = saved
        self.error = error
        self.tokensPerSecond = tokensPerSecond
        self.timeToFirstText = timeToFirstText
        self.promptTokens = promptTokens
        self.newTokens = newTokens
    }
}

/// What update asks the runtime to do: each one call on the conversation runtime.
public enum Effect: Equatable, Sendable {
    case reply(ReplyAction)
    case cancel
    case switchPersona(String)
    case setScene([String])
    case set(String, String)
    case loadAdapter(String)
    case unloadAdapter(String)
    case scaleAdapter(String, Float)
    case enableAdapter(String, Bool)
    case swipe(Int, at: String?)
    case newSession
    case listSessions
    case searchSessions(String)
    case renameSession(String, String)
    case deleteSession(String)
    case resumeSession(String)
    case importCard(String)
    case exportCard(String, to: String)
    case setNote(AuthorsNote?)
    case setUser(UserProfile)
    case attachLore([String])
    case branch(String?, at: String?)
    case quit
}
