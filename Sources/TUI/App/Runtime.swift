import Chat
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Messages from other threads (the backend) to the loop, with a pipe that wakes the loop's
/// poll so an engine event shows without waiting for a key or a tick.
public final class EventQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Msg] = []
    private var fds: [Int32] = [-1, -1]

    public init() {
        var f: [Int32] = [0, 0]
        if pipe(&f) == 0 {
            fds = f
            _ = fcntl(f[0], F_SETFL, fcntl(f[0], F_GETFL) | O_NONBLOCK)
            _ = fcntl(f[1], F_SETFL, fcntl(f[1], F_GETFL) | O_NONBLOCK)
        }
    }

    deinit {
        for fd in fds where fd >= 0 { close(fd) }
    }

    /// The end the loop polls.
    public var wakeFD: Int32 { fds[0] }

    public func post(_ msg: Msg) {
        lock.lock()
        items.append(msg)
        lock.unlock()
        var b: UInt8 = 1
        _ = write(fds[1], &b, 1)
    }

    public func drain() -> [Msg] {
        lock.lock()
        defer { lock.unlock() }
        let out = items
        items.removeAll()
        return out
    }
}

/// The loop: keys and runtime events become Msgs, `update` runs, effects go to the conversation
/// runtime, the view is drawn and the terminal sends what changed. The loop is one thread (the
/// caller's); every runtime call runs in order on one worker (so the runtime's state has one
/// writer), except cancel, which goes straight through, and the session list, which reads only
/// the database.
public final class Runtime {
    public private(set) var state: State
    let terminal: any Terminal
    public let controller: ChatController
    let queue = EventQueue()
    private let work = DispatchQueue(label: "yanyi.runtime")
    /// Tests run every runtime call on the loop's thread, in order.
    private let inline: Bool
    /// Frames presented (tests and measurements read it).
    public private(set) var frames = 0
    /// Called after each frame is presented (the e2e latency probe and tests use it).
    public var onFrame: ((CellBuffer) -> Void)?

    public init(state: State, terminal: any Terminal, controller: ChatController, inline: Bool = false) {
        var s = state
        s.persona = controller.persona
        s.conversation = controller.conversation
        s.settings = controller.resolvedSettings
        s.user = controller.userProfile
        s.availableAdapters = controller.availableAdapters()
        self.state = s
        self.terminal = terminal
        self.controller = controller
        self.inline = inline
        let q = queue
        let c = controller
        controller.onEvent = { e in
            switch e {
            case .loadProgress(let f, let eta): q.post(.loadProgress(f, eta: eta))
            case .loaded(let info): q.post(.loaded(info))
            case .loadFailed(let why): q.post(.loadFailed(why))
            case .conversation(let conv, let id): q.post(.conversation(conv, session: id))
            case .adapters(let list): q.post(.adapters(list))
            case .persona(let p): q.post(.persona(p))
            case .personas(let list): q.post(.personas(list))
            case .settings:
                q.post(.settings(c.resolvedSettings))
                q.post(.user(c.userProfile))
            case .replyStarted(let p, let ctx, let dropped): q.post(.replyStarted(promptTokens: p, contextLength: ctx, dropped: dropped))
            case .delta(let t): q.post(.delta(t))
            case .replyFinished(let o): q.post(.replyFinished(Self.end(o)))
            case .notice(let t): q.post(.notice(t))
            case .lore(let names): q.post(.lore(names))
            case .warning(let t): q.post(.failed(t))
            }
        }
    }

    static func end(_ o: ReplyOutcome) -> ReplyEnd {
        ReplyEnd(partial: o.partial, saved: o.message != nil, error: o.error?.description,
                 tokensPerSecond: o.stats?.tokensPerSecond ?? 0,
                 timeToFirstText: o.timeToFirstText ?? o.stats?.timeToFirstToken,   // no text: the engine's first (end) token
                 promptTokens: o.promptIDs.count, newTokens: o.stats?.generatedTokens ?? o.tokens.count)
    }

    /// Runs until the user quits. `initial` are sent first, then `effects` run (resuming a
    /// session, adapters named at start); the persona's model starts loading.
    public func run(initial: [Msg] = [], effects: [Effect] = []) throws(TerminalError) {
        try terminal.start()
        defer {
            controller.cancel()
            work.sync {}   // a reply being stopped is saved before the program leaves
            terminal.stop()
        }
        state.size = terminal.size
        state.now = Date().timeIntervalSince1970
        start(initial: initial, effects: effects)
        var last: CellBuffer?
        var lastTheme = state.theme
        while !state.quit {
            let b = view(state)
            if b != last || state.theme != lastTheme {
                terminal.present(b, theme: state.theme)
                frames += 1
                onFrame?(b)
                last = b
                lastTheme = state.theme
            }
            let busy = state.generation != nil || !state.model.isReady
            let keys = terminal.readKeys(timeout: busy ? 0.1 : 0.5, wakeFD: queue.wakeFD)
            dispatch(.tick(Date().timeIntervalSince1970))
            for k in keys {
                if k == .resize {
                    dispatch(.resize(terminal.size))
                    last = nil
                } else {
                    dispatch(.key(k))
                }
            }
            pump()
        }
    }

    /// The start: messages, then the model load, then the effects asked for at start.
    public func start(initial: [Msg] = [], effects: [Effect] = []) {
        for m in initial { dispatch(m) }
        background { c throws(ChatError) in try c.load() }
        for e in effects { perform(e) }
    }

    /// Dispatches every runtime event waiting.
    public func pump() {
        for m in queue.drain() { dispatch(m) }
    }

    /// One message through update, then its effects.
    public func dispatch(_ msg: Msg) {
        let (next, effects) = update(state, msg)
        state = next
        for e in effects { perform(e) }
    }

    /// A runtime call on the worker (or here, inline); its error becomes one line on screen.
    private func background(reply: Bool = false, _ body: @escaping @Sendable (ChatController) throws(ChatError) -> Void) {
        let c = controller, q = queue
        let job: @Sendable () -> Void = {
            do throws(ChatError) {
                try body(c)
            } catch {
                q.post(reply ? .replyFailed(error.description) : .failed(error.description))
            }
        }
        if inline { job() } else { work.async(execute: job) }
    }

    /// Every saved session, for the session list.
    static func sessions(_ store: SessionStore) -> Msg {
        let (list, errors) = store.list()
        return .sessionsListed(list, errors: errors.map(\.description))
    }

    func perform(_ e: Effect) {
        let q = queue
        switch e {
        case .reply(let action): background(reply: true) { c throws(ChatError) in _ = try c.reply(action) }
        case .cancel: controller.cancel()
        case .setScene(let ids):
            background { c throws(ChatError) in try c.setScene(ids) }
        case .switchPersona(let id):
            background { c throws(ChatError) in for n in try c.switchPersona(id) { q.post(.notice(n)) } }
        case .set(let key, let value):
            // On the worker like every call that reads the runtime's state: the slider already
            // shows the value; a refusal puts the resolved one back.
            background { c throws(ChatError) in
                do throws(ChatError) {
                    if let warning = try c.set(key, value) { q.post(.notice(warning)) }
                } catch {
                    q.post(.settings(c.resolvedSettings))
                    throw error
                }
            }
        case .loadAdapter(let spec):
            background { c throws(ChatError) in
                let a = try c.loadAdapter(spec)
                q.post(.notice("adapter \(a.label): \(a.summary)"))
            }
        case .unloadAdapter(let path):
            background { c throws(ChatError) in
                try c.unloadAdapter(path)
                q.post(.notice("unloaded \(path.split(separator: "/").last.map(String.init) ?? path)"))
            }
        case .scaleAdapter(let path, let scale): background { c throws(ChatError) in try c.scaleAdapter(path, scale) }
        case .enableAdapter(let path, let on): background { c throws(ChatError) in try c.enableAdapter(path, on) }
        case .swipe(let step, let id): background { c throws(ChatError) in _ = try c.swipe(step, at: id) }
        case .newSession: background { c throws(ChatError) in try c.newSession() }
        case .resumeSession(let id): background { c throws(ChatError) in _ = try c.resume(id) }
        case .branch(let id, let at): background { c throws(ChatError) in _ = try c.branch(id, at: at) }
        case .importCard(let path):
            background { c throws(ChatError) in
                let p = try c.importCard(path)
                q.post(.notice("imported \(p.id) (\(p.name)): F2 to choose it"))
            }
        case .exportCard(let id, let path):
            background { c throws(ChatError) in
                guard let p = c.library.persona(id) else { throw ChatError("", "no persona '\(id)'") }
                try CardFiles.export(p, format: path.lowercased().hasSuffix(".json") ? "json" : "png", to: path)
                q.post(.notice("exported \(id) to \(path)"))
            }
        case .listSessions:
            dispatch(Self.sessions(controller.store))
        case .searchSessions(let text):
            do {
                var seen = Set<String>()
                let hits = try controller.store.search(text).map(\.session).filter { seen.insert($0.id).inserted }
                dispatch(.sessionsListed(hits, errors: [], query: text))
            } catch {
                dispatch(.sessionsListed([], errors: [error.description], query: text))
            }
        case .setNote(let note):
            background { c throws(ChatError) in
                try c.setNote(note)
                q.post(.notice(note.map { "author's note at depth \($0.depth)" } ?? "author's note removed"))
            }
        case .setUser(let profile):
            background { c throws(ChatError) in
                try c.setUserProfile(profile)
                q.post(.notice("you are \(c.userProfile.name) in every conversation"))
            }
        case .attachLore(let names):
            background { c throws(ChatError) in
                try c.attachLore(names)
                q.post(.notice(names.isEmpty ? "lorebooks detached" : "lorebooks: " + names.joined(separator: ", ")))
            }
        case .renameSession(let id, let title):
            background { c throws(ChatError) in
                try c.renameSession(title, id: id)
                q.post(Self.sessions(c.store))
            }
        case .deleteSession(let id):
            background { c throws(ChatError) in
                try c.deleteSession(id)
                q.post(Self.sessions(c.store))
                q.post(.notice("deleted \(id)"))
            }
        case .quit: break
        }
    }
}
