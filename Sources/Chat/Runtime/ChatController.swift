import Engine
import Foundation

/// The conversation runtime: the one object every front end drives (the TUI, the line chat, the
/// server). It owns the model host (base and adapters), the settings layers, turn execution and
/// the conversation rules; front ends turn input into calls here and `RuntimeEvent`s into output.
///
/// Calls run on the caller's thread and throw one-line `ChatError`s; nothing is recorded by an
/// action that fails before its reply starts, and a reply cut short is saved as partial. One
/// call at a time: a second one while a call runs is refused, except `cancel()`, which any
/// thread may call at any time, and `set`, which a reply in progress does not block.
public final class ChatController: @unchecked Sendable {
    public struct Options: Sendable {
        /// Folder persona `model` and `adapters` paths are relative to (the repository's `Models/`).
        public var modelsRoot: String
        /// max_new_tokens when neither generation_config.json, the persona nor the user sets it.
        public var defaultMaxNewTokens: Int
        /// A base the user named (`--model`): every persona runs on it.
        public var pinnedModel: String?
        /// Where imported character cards go (nil: importing is refused).
        public var personasRoot: String?

        public init(modelsRoot: String, defaultMaxNewTokens: Int = 256, pinnedModel: String? = nil, personasRoot: String? = nil) {
            self.modelsRoot = modelsRoot
            self.defaultMaxNewTokens = defaultMaxNewTokens
            self.pinnedModel = pinnedModel
            self.personasRoot = personasRoot
        }
    }

    /// An adapter on the model: its folder as given (relative to the models root, or absolute),
    /// its multiplier (0–2), whether it applies, and whether the persona bound it (persona
    /// adapters change with the persona; ones loaded by hand stay while the persona does).
    public struct ActiveAdapter: Sendable, Equatable {
        public var path: String
        public var multiplier: Float
        public var fromPersona: Bool
        public var enabled = true
        /// "24 modules, r 8" once read.
        public var summary: String = ""

        /// `path=multiplier`, as messages record it.
        public var label: String { "\(path)=\(formatScale(multiplier))" }
        /// The folder's last component.
        public var name: String { path.split(separator: "/").last.map(String.init) ?? path }
    }

    public let options: Options
    public let host: any ModelHost
    public internal(set) var library: PersonaLibrary
    public let store: SessionStore
    let clock: @Sendable () -> Date
    /// Where events go (set by the front end before its first call).
    public var onEvent: (@Sendable (RuntimeEvent) -> Void)?

    public internal(set) var persona: Persona
    /// The saved session: nil until something worth saving was said (opening and leaving the
    /// app leaves no empty session behind).
    public internal(set) var session: Session?
    /// The conversation before it is saved, and the events that built it.
    var draft: Conversation
    var draftEvents: [SessionEvent] = []
    public internal(set) var adapters: [ActiveAdapter] = []
    /// The loaded base (nil until the first reply or `load()` needs it) and its resolved path.
    public internal(set) var engine: (any ReplyEngine)?
    public internal(set) var enginePath: String?
    /// The persona changed without loading (start, resume): the next reply activates it.
    var needsActivation = true

    let lock = NSLock()
    var busy = false
    var cancelFlag = CancellationFlag()
    var settingsLayer = SamplingOverrides()
    /// The lorebook entries the turn being built got.
    var turnLore: [String] = []
    /// Lorebooks read from Personas/lore/, by name: read once, not every turn.
    var lorebookCache: [String: Lorebook] = [:]
    /// Who the user is in role-play (`{{user}}`): kept by the store for every session.
    public internal(set) var userProfile: UserProfile

    /// Starts on `persona` with a new conversation (its greetings shown, nothing saved yet).
    /// Loads no model: the first reply (or `load()`) does.
    public init(options: Options, host: any ModelHost, library: PersonaLibrary, store: SessionStore, persona: Persona,
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.options = options
        self.host = host
        self.library = library
        self.store = store
        self.persona = persona
        self.clock = clock
        userProfile = store.userProfile()
        draft = Conversation(id: "", title: Rules.untitled, created: clock().timeIntervalSince1970, persona: persona.id)
        for e in Rules.greetingEvents(persona, in: draft, now: clock().timeIntervalSince1970, user: userProfile) { draft.apply(e); draftEvents.append(e) }
    }

    // MARK: - What the front ends show

    /// The conversation shown (saved or not).
    public var conversation: Conversation { session?.conversation ?? draft }
    public var sessionID: String? { session?.id }
    public var engineInfo: EngineInfo? { engine?.info }
    /// What the user set (`/set`, the sliders): the top settings layer.
    public var overrides: SamplingOverrides { lock.withLock { settingsLayer } }

    func emit(_ e: RuntimeEvent) { onEvent?(e) }
    func emitConversation() { emit(.conversation(conversation, session: sessionID)) }
    func emitAdapters() { emit(.adapters(adapters)) }

    /// Appends to the conversation: in memory until the first user message, then to the store
    /// (the draft's events first), each event durable before it shows.
    func record(_ events: [SessionEvent]) throws(ChatError) {
        for e in events {
            if let session {
                try session.record(e)
            } else if case .message(let m) = e, m.role == .user {
                let s = try store.create(persona: draft.persona ?? persona.id, title: draft.title)
                for d in draftEvents {
                    if case .rename = d { continue }   // the title went in with the header
                    try s.record(d)
                }
                try s.record(e)
                session = s
                draftEvents = []
            } else {
                draft.apply(e)
                draftEvents.append(e)
            }
        }
        emitConversation()
    }

    /// A fresh draft conversation for the current persona (its greetings shown).
    func startDraft() {
        session = nil
        let now = clock().timeIntervalSince1970
        draft = Conversation(id: "", title: Rules.untitled, created: now, persona: persona.id)
        draftEvents = []
        for e in Rules.greetingEvents(persona, in: draft, now: now, user: userProfile) { draft.apply(e); draftEvents.append(e) }
    }

    // MARK: - Busy and cancel

    /// Stops the reply being generated (from any thread): it ends before its next token and is
    /// saved as partial. Does nothing when no reply runs.
    public func cancel() {
        let (flag, e) = lock.withLock { (busy ? cancelFlag : nil, engine) }
        guard let flag else { return }
        flag.cancel()
        e?.interrupt()
    }

    public var isBusy: Bool { lock.withLock { busy } }

    func guardIdle() throws(ChatError) {
        let ok = lock.withLock {
            if busy { return false }
            busy = true
            cancelFlag = CancellationFlag()
            return true
        }
        if !ok { throw ChatError("", "a reply is being generated; wait for it or cancel it") }
    }

    func endBusy() { lock.withLock { busy = false } }

    /// One guarded action: refused while another runs.
    func exclusive<T>(_ body: () throws(ChatError) -> T) throws(ChatError) -> T {
        try guardIdle()
        defer { endBusy() }
        return try body()
    }
}

/// What a front end hears from the runtime.
public enum RuntimeEvent: Sendable {
    /// A base is loading: 0–1 and the estimated seconds left.
    case loadProgress(Double, eta: Double?)
    case loaded(EngineInfo)
    case loadFailed(String)
    /// The conversation shown changed (and the id of its saved session, nil while a draft).
    case conversation(Conversation, session: String?)
    case adapters([ChatController.ActiveAdapter])
    /// The persona that replies changed.
    case persona(Persona)
    /// The personas to choose from changed (a card was imported).
    case personas([Persona])
    /// A settings value changed (user layer or a layer below it).
    case settings
    /// Lorebook entries this reply's prompt got (their comments).
    case lore([String])
    /// A reply's prompt is built: its tokens, the model's context, history left out to fit.
    case replyStarted(promptTokens: Int, contextLength: Int, dropped: Int)
    case delta(String)
    case replyFinished(ReplyOutcome)
    /// Something to tell the user that is not an error.
    case notice(String)
    /// Something went wrong that the user should see (one line); nothing stops.
    case warning(String)
}

func formatScale(_ x: Float) -> String {
    x == x.rounded() ? String(format: "%.1f", x) : "\(x)"
}
