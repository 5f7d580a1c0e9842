import Engine
import Foundation

/// The one object a chat front end drives (the TUI, the line-mode chat): the loaded base model
/// and its one ModelSession (reused across turns, so the engine reuses the prompt prefix and keeps
/// per-adapter KV snapshots), the active LoRA adapters, the current persona, the user's sampling
/// overrides and the Session every action is written to before it shows.
///
/// Actions run on the caller's thread and throw one-line `ChatError`s; nothing is recorded by an
/// action that fails before its reply starts, and a reply cut short is saved as partial. While a
/// reply is being generated only `cancel()` may be called from another thread (`stream` runs the
/// reply on a thread of its own and ends with `.finished` or `.failed`).
public final class ChatController: @unchecked Sendable {
    public struct Options: Sendable {
        /// Folder persona `model` and `adapters` paths are relative to (the repository's `Models/`).
        public var modelsRoot: String
        public var precision: Precision
        /// int8 quantization block.
        public var block: Int
        /// max_new_tokens when neither generation_config.json, the persona nor the user sets it.
        public var defaultMaxNewTokens: Int
        /// The quantized-weights cache base models load through (nil: quantize every time).
        public var weightCache: WeightCache?

        public init(modelsRoot: String, precision: Precision = .int8, block: Int = 32, defaultMaxNewTokens: Int = 256,
                    weightCache: WeightCache? = nil) {
            self.modelsRoot = modelsRoot
            self.precision = precision
            self.block = block
            self.defaultMaxNewTokens = defaultMaxNewTokens
            self.weightCache = weightCache
        }
    }

    /// An adapter on the model: its folder as given (relative to the models root, or absolute),
    /// its multiplier (0–2), and whether the persona bound it (persona adapters change with the
    /// persona; ones loaded by hand stay while the base model does).
    public struct ActiveAdapter: Sendable, Equatable {
        public var path: String
        public var multiplier: Float
        public var fromPersona: Bool

        /// `path=multiplier`, as messages record it.
        public var label: String { "\(path)=\(formatScale(multiplier))" }
    }

    public let options: Options
    public let library: PersonaLibrary
    public let store: SessionStore
    public let pool: ThreadPool
    public private(set) var persona: Persona
    public private(set) var session: Session
    public private(set) var overrides = SamplingOverrides()
    public private(set) var adapters: [ActiveAdapter] = []
    /// The loaded base model (nil until the first reply or persona switch needs it).
    var base: LoadedBase?
    /// Set when the persona changed without loading (a resumed session): the next reply activates it.
    private var needsActivation = true

    private let lock = NSLock()
    private var busy = false
    private var running: TokenGenerator?
    private var cancelRequested = false

    /// Starts on `persona` with a new session (its greetings recorded), or on `session` with the
    /// persona it was last using (when the library still has it; `persona` otherwise).
    /// Loads no model: the first reply (or `load()`) does.
    public init(options: Options, library: PersonaLibrary, store: SessionStore, persona: Persona,
                session: Session? = nil, pool: ThreadPool = ThreadPool()) throws(ChatError) {
        self.options = options
        self.library = library
        self.store = store
        self.pool = pool
        self.persona = persona
        if let session {
            self.session = session
            if let p = session.conversation.persona.flatMap({ library.persona($0) }) { self.persona = p }
        } else {
            self.session = try store.create(persona: persona.id)
            try addGreetings()
        }
    }

    // MARK: - Model and adapters

    /// The loaded model, with everything a direct engine run needs (tests, the status line).
    public var model: (any LanguageModel)? { base?.model }
    public var tokenizer: (any Tokenizer)? { base?.folder.tokenizer }
    /// The session the engine keeps across turns.
    public var modelSession: ModelSession? { base?.session }
    /// Folder of the loaded base model, resolved.
    public var modelPath: String? { base?.path }

    /// Loads the current persona's model and adapters now (otherwise the first reply does).
    public func load() throws(ChatError) {
        try guardIdle()
        defer { endBusy() }
        try activateIfNeeded()
    }

    /// A path made absolute: against the models root (persona files), or, when it exists only
    /// there, against the working directory (a folder the user typed).
    public func resolve(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : (options.modelsRoot.hasSuffix("/") ? options.modelsRoot : options.modelsRoot + "/") + path
        let underRoot = URL(fileURLWithPath: full).standardizedFileURL.path
        if !path.hasPrefix("/"), !FileManager.default.fileExists(atPath: underRoot), FileManager.default.fileExists(atPath: path) {
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
        return underRoot
    }

    private func activateIfNeeded() throws(ChatError) {
        if needsActivation || base == nil { _ = try activate(persona) }
    }

    /// Makes `p` current: its base model (loaded when it differs from the loaded one) and its
    /// adapters (replacing the previous persona's; adapters loaded by hand stay on the same base).
    /// All or nothing: on failure the previous model, adapters and persona stay.
    private func activate(_ p: Persona) throws(ChatError) -> [String] {
        var notes: [String] = []
        let path = resolve(p.model)
        var target = base
        if target?.path != path {
            target = try LoadedBase.load(path, options: options, pool: pool)
            notes.append("loaded \(p.model) (\(target!.folder.family.rawValue), \(options.precision.rawValue))")
        }
        let sameBase = target === base
        var list = p.adapters.map { ActiveAdapter(path: $0.path, multiplier: Float($0.scale), fromPersona: true) }
        if sameBase {
            for a in adapters where !a.fromPersona && !list.contains(where: { resolve($0.path) == resolve(a.path) }) {
                list.append(a)
            }
        }
        try apply(list, on: target!)
        let before = sameBase ? adapters : []
        for a in adapters where !list.contains(where: { sameBase && resolve($0.path) == resolve(a.path) }) {
            notes.append("unloaded \(a.path)")
        }
        for a in list where !before.contains(a) { notes.append("adapter \(a.label)") }
        base = target
        adapters = list
        persona = p
        needsActivation = false
        return notes
    }

    /// Loads (or reuses) every adapter of `list` and makes them the model's active set.
    private func apply(_ list: [ActiveAdapter], on b: LoadedBase) throws(ChatError) {
        var loaded: [(adapter: LoRAAdapter, multiplier: Float)] = []
        for a in list {
            loaded.append((try b.adapter(resolve(a.path)), a.multiplier))
        }
        do {
            try b.model.setAdapters(loaded)
        } catch {
            throw ChatError("", error.description)
        }
    }

    /// `DIR[=SCALE]`: loads an adapter by hand (or changes the multiplier of one already active).
    @discardableResult
    public func loadAdapter(_ spec: String) throws(ChatError) -> ActiveAdapter {
        guard let s = AdapterSpec.parse(spec.pythonStripped) else {
            throw ChatError("", "adapter \(spec.quotedForError): expected DIR or DIR=SCALE with a scale from 0 to 2")
        }
        return try changeAdapters { list throws(ChatError) in
            if let i = list.firstIndex(where: { resolve($0.path) == resolve(s.folder) }) {
                list[i].multiplier = s.multiplier
                return list[i]
            }
            let a = ActiveAdapter(path: s.folder, multiplier: s.multiplier, fromPersona: false)
            list.append(a)
            return a
        }
    }

    public func unloadAdapter(_ path: String) throws(ChatError) {
        _ = try changeAdapters { list throws(ChatError) in
            guard let i = list.firstIndex(where: { resolve($0.path) == resolve(path) }) else { throw notActive(path) }
            return list.remove(at: i)
        }
    }

    public func scaleAdapter(_ path: String, _ multiplier: Float) throws(ChatError) {
        guard (0...2).contains(multiplier) else { throw ChatError("", "adapter scale must be from 0 to 2 (got \(multiplier))") }
        _ = try changeAdapters { list throws(ChatError) in
            guard let i = list.firstIndex(where: { resolve($0.path) == resolve(path) }) else { throw notActive(path) }
            list[i].multiplier = multiplier
            return list[i]
        }
    }

    private func notActive(_ path: String) -> ChatError {
        ChatError("", "no active adapter \(path.quotedForError) (active: \(adapters.isEmpty ? "none" : adapters.map(\.path).joined(separator: ", ")))")
    }

    private func changeAdapters(_ change: (inout [ActiveAdapter]) throws(ChatError) -> ActiveAdapter) throws(ChatError) -> ActiveAdapter {
        try guardIdle()
        defer { endBusy() }
        try activateIfNeeded()
        var list = adapters
        let changed = try change(&list)
        try apply(list, on: base!)
        adapters = list
        return changed
    }

    // MARK: - Persona, sampling, sessions

    /// Switches to persona `id` (or a unique name): the next reply uses its template, model and
    /// adapters. Returns what was loaded and unloaded.
    @discardableResult
    public func switchPersona(_ id: String) throws(ChatError) -> [String] {
        guard let p = library.persona(id) ?? uniqueByName(id) else {
            throw ChatError("", "no persona \(id.quotedForError) (/personas lists them)")
        }
        try guardIdle()
        defer { endBusy() }
        let notes = try activate(p)
        if session.conversation.persona != p.id { try session.record(.persona(p.id)) }
        return notes
    }

    private func uniqueByName(_ name: String) -> Persona? {
        let hits = library.personas.filter { $0.name == name }
        return hits.count == 1 ? hits[0] : nil
    }

    /// `/set KEY VALUE` (`default` clears). The whole layered setting is checked now, so a value
    /// the engine would refuse is refused here and the old one stays.
    public func set(_ key: String, _ value: String) throws(ChatError) {
        var o = overrides
        try o.set(key, value)
        do {
            _ = try layeredParameters(o, eos: [], stop: []).resolved(promptLength: 1)
        } catch {
            throw ChatError("", field: key, error.description)
        }
        overrides = o
    }

    /// Every setting as the next reply would use it (generate keyword -> value), before the budget.
    public var effectiveSettings: [(key: String, value: String)] {
        let p = layeredParameters(overrides, eos: [], stop: [])
        let maxHistory = overrides.maxHistory ?? persona.sampling.maxHistory ?? persona.promptTemplate.defaultMaxHistory
        return [("temperature", p.temperature.map { "\($0)" } ?? "1.0"), ("top_p", p.topP.map { "\($0)" } ?? "1.0"),
                ("top_k", "\(p.topK ?? 50)"), ("repetition_penalty", p.repetitionPenalty.map { "\($0)" } ?? "1.0"),
                ("max_new_tokens", "\(p.maxNewTokens ?? options.defaultMaxNewTokens)"),
                ("do_sample", "\(p.doSample ?? false)"), ("num_beams", "\(p.numBeams ?? 1)"),
                ("max_history", maxHistory.map { "\($0)" } ?? "all"), ("seed", p.seed.map { "\($0)" } ?? "random")]
    }

    /// generation_config.json < persona < user, with the turn's stop ids and strings in the persona layer.
    func layeredParameters(_ o: SamplingOverrides, eos: [Int32], stop: [String]) -> GenerationParameters {
        var mine = persona.sampling.generationParameters
        if !eos.isEmpty { mine.eosTokenId = OneOrMany(eos.map { Int($0) }) }
        if !stop.isEmpty { mine.stop = stop }
        return GenerationParameters.layered(model: base?.defaults ?? GenerationParameters(), persona: mine, user: o.parameters)
    }

    /// A new session with the current persona (its greetings recorded); the old one stays on disk.
    public func newSession() throws(ChatError) {
        try guardIdle()
        defer { endBusy() }
        session = try store.create(persona: persona.id)
        try addGreetings()
    }

    /// Resumes a saved session, with the persona it was last using when that persona still exists.
    public func resume(_ id: String) throws(ChatError) -> [String] {
        try guardIdle()
        defer { endBusy() }
        let s = try store.resume(id)
        var notes = s.warnings
        if let pid = s.conversation.persona, pid != persona.id {
            if let p = library.persona(pid) {
                if base == nil {
                    persona = p
                    needsActivation = true
                } else {
                    // a model is loaded: switch now, so the adapters shown are the persona's
                    do throws(ChatError) {
                        notes += try activate(p)
                    } catch {
                        persona = p
                        needsActivation = true
                        notes.append(error.description)
                    }
                }
            } else {
                notes.append("persona \(pid.quotedForError) is gone; continuing as \(persona.id)")
            }
        }
        session = s
        return notes
    }

    private func addGreetings() throws(ChatError) {
        guard let first = persona.greetings.first else { return }
        let m = try session.add(.assistant, first, after: .some(nil), persona: persona.id, greeting: true)
        for g in persona.greetings.dropFirst() { try session.addAlternative(to: m.id, text: g, persona: persona.id) }
        if persona.greetings.count > 1 { try session.record(.select(m.id)) }
    }

    // MARK: - Busy and cancel

    /// Stops the reply being generated (from any thread): it ends before its next token and is
    /// saved as partial. Does nothing when no reply runs.
    public func cancel() {
        lock.withLock {
            if busy { cancelRequested = true }
            running?.cancel()
        }
    }

    public var isBusy: Bool { lock.withLock { busy } }

    func guardIdle() throws(ChatError) {
        let ok = lock.withLock {
            if busy { return false }
            busy = true
            cancelRequested = false
            return true
        }
        if !ok { throw ChatError("", "a reply is being generated; wait for it or cancel it") }
    }

    func endBusy() { lock.withLock { busy = false; running = nil } }

    /// Registers the generator so `cancel()` reaches it; a cancel that came first applies at once.
    func register(_ g: TokenGenerator) {
        lock.withLock {
            running = g
            if cancelRequested { g.cancel() }
        }
    }

    func activateForReply() throws(ChatError) { try activateIfNeeded() }
}

/// A base model with its one session, its generation defaults, and the adapters read for it.
final class LoadedBase: @unchecked Sendable {
    let path: String
    let folder: ModelFolder
    let model: any LanguageModel
    let session: ModelSession
    let defaults: GenerationParameters
    /// Adapters read from disk, by resolved folder: switching back reuses the same object, so the
    /// engine's adapter signature matches its KV snapshot.
    private var cache: [String: LoRAAdapter] = [:]

    private init(path: String, folder: ModelFolder, model: any LanguageModel, defaults: GenerationParameters) {
        self.path = path
        self.folder = folder
        self.model = model
        self.defaults = defaults
        session = model.makeSession(capacity: nil)
    }

    static func load(_ path: String, options: ChatController.Options, pool: ThreadPool) throws(ChatError) -> LoadedBase {
        do {
            let folder = try ModelFolder.open(path)
            let model = try ModelRegistry.load(folder, precision: options.precision, block: options.block, pool: pool,
                                               cache: options.weightCache)
            return LoadedBase(path: path, folder: folder, model: model, defaults: try GenerationParameters.defaults(for: folder))
        } catch {
            throw ChatError("", error.description)
        }
    }

    func adapter(_ path: String) throws(ChatError) -> LoRAAdapter {
        if let a = cache[path] { return a }
        do {
            let a = try LoRAAdapter(folder: path)
            cache[path] = a
            return a
        } catch {
            throw ChatError("", error.description)
        }
    }
}

func formatScale(_ x: Float) -> String {
    x == x.rounded() ? String(format: "%.1f", x) : "\(x)"
}
