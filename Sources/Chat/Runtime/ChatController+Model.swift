import Engine
import Foundation

/// The model host: which base is loaded, which adapters apply, and the persona they serve.
extension ChatController {
    /// Loads the current persona's base and adapters now (otherwise the first reply does).
    public func load() throws(ChatError) {
        try exclusive { () throws(ChatError) in try activateIfNeeded() }
    }

    /// A path made absolute: against the models root (persona files, the adapter dialog), or,
    /// when it exists only there, against the working directory (a folder the user typed).
    public func resolve(_ path: String) -> String {
        let root = options.modelsRoot.hasSuffix("/") ? options.modelsRoot : options.modelsRoot + "/"
        let full = path.hasPrefix("/") ? path : root + path
        let underRoot = URL(fileURLWithPath: full).standardizedFileURL.path
        if !path.hasPrefix("/"), !FileManager.default.fileExists(atPath: underRoot), FileManager.default.fileExists(atPath: path) {
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
        return underRoot
    }

    /// The base a persona runs on: the pinned one, else the persona's.
    func basePath(for p: Persona) -> String { options.pinnedModel.map(resolve) ?? resolve(p.model) }

    func activateIfNeeded() throws(ChatError) {
        if needsActivation || engine == nil { _ = try activate(persona) }
    }

    /// Loads the base at `path` (with progress events), or returns the one loaded.
    func engine(at path: String) throws(ChatError) -> (any ReplyEngine, loaded: Bool) {
        if let engine, enginePath == path { return (engine, false) }
        emit(.loadProgress(0, eta: nil))
        do {
            let e = try host.load(path) { [weak self] f, eta in self?.emit(.loadProgress(f, eta: eta)) }
            return (e, true)
        } catch {
            emit(.loadFailed(error.description))
            throw error
        }
    }

    /// Makes `p` current: its base (loaded when it differs from the loaded one), its adapters
    /// (replacing the previous persona's and those loaded by hand for it) and, for `auto`, that
    /// base's chat template. All or nothing: on failure the previous model, adapters and persona
    /// stay. Returns what changed, in words.
    func activate(_ unresolved: Persona) throws(ChatError) -> [String] {
        var notes: [String] = []
        let path = basePath(for: unresolved)
        // `auto` takes the base's chat_template: read (and checked) before anything loads.
        let p = try unresolved.onBase(path)
        let (target, fresh) = try engine(at: path)
        if fresh {
            notes.append("loaded \(options.pinnedModel ?? p.model) (\(target.info.family), \(target.info.precision))")
        }
        if options.pinnedModel != nil && resolve(p.model) != path {
            notes.append("\(p.name) is made for \(p.model); replies come from \(target.info.name)")
        }
        if p.template == TemplateRegistry.auto && (fresh || p.id != persona.id) {
            let base = options.pinnedModel ?? p.model
            notes.append(p.baseChatTemplate != nil ? "template: the chat_template of \(base)" : "template: plain (\(base) has no chat_template)")
        }
        var list: [ActiveAdapter] = []
        do throws(ChatError) {
            for ref in p.adapters {
                var a = ActiveAdapter(path: ref.path, multiplier: Float(min(max(ref.scale, 0), 2)), fromPersona: true)
                a.summary = try target.prepareAdapter(resolve(a.path))
                list.append(a)
            }
            // Hand-loaded adapters stay only while the persona does (they were chosen for it).
            if p.id == persona.id && !fresh { list += adapters.filter { !$0.fromPersona } }
            try target.setAdapters(applied(list))
        } catch {
            // The new base is dropped: front ends go back to the one still loaded (or to none).
            if fresh { emit(engine.map { .loaded($0.info) } ?? .loadFailed(error.description)) }
            throw error
        }
        for a in adapters where !list.contains(where: { resolve($0.path) == resolve(a.path) }) || fresh {
            notes.append("unloaded \(a.path)\(a.fromPersona ? "" : " (loaded by hand)")")
        }
        for a in list where fresh || !adapters.contains(where: { $0.path == a.path && $0.multiplier == a.multiplier }) {
            notes.append("adapter \(a.label)")
        }
        if fresh {
            lock.withLock { engine = target }
            enginePath = path
            emit(.loaded(target.info))
        }
        adapters = list
        persona = p
        needsActivation = false
        emitAdapters()
        return notes
    }

    /// The engine's view of a list: enabled adapters with a scale, resolved.
    func applied(_ list: [ActiveAdapter]) -> [AdapterSetting] {
        list.filter { $0.enabled }.map { AdapterSetting(path: resolve($0.path), scale: $0.multiplier) }
    }

    /// `DIR[=SCALE]`: loads an adapter by hand (or changes the multiplier of one already active).
    /// A folder that does not load is reported and never added.
    @discardableResult
    public func loadAdapter(_ spec: String) throws(ChatError) -> ActiveAdapter {
        guard let s = AdapterSpec.parse(spec.pythonStripped) else {
            throw ChatError("", "adapter \(spec.quotedForError): expected DIR or DIR=SCALE with a scale from 0 to 2")
        }
        return try changeAdapters { list, e throws(ChatError) in
            if let i = list.firstIndex(where: { resolve($0.path) == resolve(s.folder) }) {
                list[i].multiplier = s.multiplier
                return list[i]
            }
            var a = ActiveAdapter(path: s.folder, multiplier: s.multiplier, fromPersona: false)
            a.summary = try e.prepareAdapter(resolve(s.folder))
            list.append(a)
            return a
        }
    }

    public func unloadAdapter(_ path: String) throws(ChatError) {
        _ = try changeAdapters { list, _ throws(ChatError) in
            guard let i = index(of: path, in: list) else { throw notActive(path) }
            return list.remove(at: i)
        }
    }

    public func scaleAdapter(_ path: String, _ multiplier: Float) throws(ChatError) {
        guard multiplier.isFinite, (0...2).contains(multiplier) else {
            throw ChatError("", "adapter scale must be from 0 to 2 (got \(multiplier))")
        }
        _ = try changeAdapters { list, _ throws(ChatError) in
            guard let i = index(of: path, in: list) else { throw notActive(path) }
            list[i].multiplier = multiplier
            return list[i]
        }
    }

    /// A disabled adapter stays in the list with its scale but does not apply.
    public func enableAdapter(_ path: String, _ on: Bool) throws(ChatError) {
        _ = try changeAdapters { list, _ throws(ChatError) in
            guard let i = index(of: path, in: list) else { throw notActive(path) }
            list[i].enabled = on
            return list[i]
        }
    }

    /// The folders under the models root that hold an adapter_config.json (the load dialog lists them).
    public func availableAdapters() -> [String] {
        let root = URL(fileURLWithPath: options.modelsRoot).standardizedFileURL
        guard let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var out: [String] = []
        for case let url as URL in walk where url.lastPathComponent == "adapter_config.json" {
            let dir = url.deletingLastPathComponent().standardizedFileURL.path
            out.append(String(dir.dropFirst(root.path.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
        }
        return out.sorted()
    }

    func index(of path: String, in list: [ActiveAdapter]) -> Int? {
        list.firstIndex { $0.path == path || $0.name == path || resolve($0.path) == resolve(path) }
    }

    func notActive(_ path: String) -> ChatError {
        ChatError("", "no active adapter \(path.quotedForError) (active: \(adapters.isEmpty ? "none" : adapters.map(\.path).joined(separator: ", ")))")
    }

    func changeAdapters(_ change: (inout [ActiveAdapter], any ReplyEngine) throws(ChatError) -> ActiveAdapter) throws(ChatError) -> ActiveAdapter {
        try exclusive { () throws(ChatError) -> ActiveAdapter in
            try activateIfNeeded()
            var list = adapters
            let changed = try change(&list, engine!)
            try engine!.setAdapters(applied(list))
            adapters = list
            emitAdapters()
            return changed
        }
    }

    // MARK: - Persona

    /// Switches to persona `id` (or a unique name): the next reply uses its template, model and
    /// adapters. A conversation where nothing was said yet starts over with its greeting;
    /// otherwise the switch is noted in it. Returns what was loaded and unloaded.
    @discardableResult
    public func switchPersona(_ id: String) throws(ChatError) -> [String] {
        let p = try findPersona(id)
        return try exclusive { () throws(ChatError) -> [String] in
            let previous = persona
            let notes = try announce(p)
            if !conversation.messages.contains(where: { $0.role == .user }) {
                if session == nil { startDraft() } else { try record([.persona(p.id)]) }
                emitConversation()
            } else if previous.id != p.id || conversation.persona != p.id {
                try record(Rules.personaSwitchEvents(to: p, in: conversation, now: clock().timeIntervalSince1970))
            }
            return notes
        }
    }

    /// Imports a character card file into the personas folder (`CardFiles.importCard`); the
    /// persona can be chosen at once.
    @discardableResult
    public func importCard(_ path: String, as target: String? = nil) throws(ChatError) -> Persona {
        guard let root = options.personasRoot else { throw ChatError("", "no personas folder to import cards into") }
        let (p, _) = try CardFiles.importCard(path, into: root, as: target, taken: Set(library.personas.map(\.id)))
        library.personas.append(p)
        emit(.personas(library.personas))
        return p
    }

    /// A scene: several personas in one conversation, each replying with its own template,
    /// base, adapters and scales; who speaks is `Rules.nextSpeaker` (or `.next(name)`). Noted in
    /// the conversation and saved with it. Fewer than two ends the scene.
    public func setScene(_ ids: [String]) throws(ChatError) {
        var cast: [Persona] = []
        for id in ids {
            let p = try findPersona(id)
            if !cast.contains(where: { $0.id == p.id }) { cast.append(p) }
        }
        guard cast.isEmpty || cast.count >= 2 else { throw ChatError("", "a scene needs two personas or more") }
        try exclusive { () throws(ChatError) in
            if let first = cast.first, !cast.contains(where: { $0.id == persona.id }) { try speak(first) }
            try record(Rules.sceneEvents(cast, in: conversation, now: clock().timeIntervalSince1970, user: userProfile))
        }
    }

    /// The scene's personas, in turn order (empty outside a scene).
    public var cast: [Persona] { conversation.cast.compactMap { library.persona($0) } }

    /// Persona `id`, or the one persona with that name.
    func findPersona(_ id: String) throws(ChatError) -> Persona {
        if let p = library.persona(id) { return p }
        let hits = library.personas.filter { $0.name == id }
        guard hits.count == 1 else { throw ChatError("", "no persona \(id.quotedForError) (/personas lists them)") }
        return hits[0]
    }

    /// `activate(p)`, then tells front ends the persona and its settings changed.
    func announce(_ p: Persona) throws(ChatError) -> [String] {
        let notes = try activate(p)
        emit(.persona(persona))
        emit(.settings)
        return notes
    }

    /// Within a conversation that goes on (a scene's speaker): `p` replies from now, its
    /// loading notes said, the change recorded.
    func speak(_ p: Persona) throws(ChatError) {
        for n in try announce(p) { emit(.notice(n)) }
        try record([.persona(p.id)])
    }
}
