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

/// Saves the conversation shown: nothing is written until the first user message (starting
/// the app and leaving does not leave empty sessions behind); then every event is appended
/// to the session's log and fsynced before the next.
public final class SessionKeeper {
    public let store: SessionStore?
    private var session: Session?

    public init(store: SessionStore?) { self.store = store }

    /// `conversation` is the state after the events were applied.
    func record(_ events: [SessionEvent], conversation: Conversation) throws(ChatError) -> Msg? {
        guard let store else { return nil }
        if let session {
            for e in events { try session.record(e) }
            return nil
        }
        guard conversation.messages.contains(where: { $0.role == .user }) else { return nil }
        let session = try store.create(persona: conversation.persona, title: conversation.title)
        self.session = session
        for m in conversation.messages { try session.record(.message(m)) }
        if conversation.persona != session.conversation.persona, let p = conversation.persona { try session.record(.persona(p)) }
        return .sessionCreated(id: session.id)
    }

    func close() { session = nil }

    func resume(_ id: String) throws(ChatError) -> Msg {
        guard let store else { throw ChatError("", "sessions are not being saved (no sessions folder)") }
        let session = try store.resume(id)
        self.session = session
        return .sessionOpened(session.conversation, warnings: session.warnings)
    }

    func branch(_ id: String, at message: String) throws(ChatError) -> Msg {
        guard let store else { throw ChatError("", "sessions are not being saved (no sessions folder)") }
        var at = message
        if at.isEmpty {
            guard let head = try store.read(id).conversation.head else { throw ChatError("", "session '\(id)' has no messages to branch from") }
            at = head.id
        }
        let session = try store.branch(id, at: at)
        self.session = session
        return .sessionOpened(session.conversation, warnings: [])
    }

    func list() -> Msg {
        guard let store else { return .sessionsListed([], errors: ["sessions are not being saved (no sessions folder)"]) }
        let (sessions, errors) = store.list()
        return .sessionsListed(sessions, errors: errors.map(\.description))
    }
}

/// The loop: keys and engine events become Msgs, `update` runs, effects go out, the view is
/// drawn and the terminal sends what changed. One thread: the caller's.
public final class Runtime {
    public private(set) var state: State
    let terminal: any Terminal
    let backend: any ChatBackend
    let sessions: SessionKeeper
    let queue = EventQueue()
    /// Frames presented (tests and measurements read it).
    public private(set) var frames = 0
    /// Called after each frame is presented (the e2e latency probe and tests use it).
    public var onFrame: ((CellBuffer) -> Void)?

    public init(state: State, terminal: any Terminal, backend: any ChatBackend, sessions: SessionKeeper) {
        self.state = state
        self.terminal = terminal
        self.backend = backend
        self.sessions = sessions
    }

    /// Runs until the user quits. `initial` are sent first (choosing the persona, …), then
    /// `effects` run (resuming a session).
    public func run(initial: [Msg] = [], effects: [Effect] = []) throws(TerminalError) {
        try terminal.start()
        defer {
            backend.shutdown()
            terminal.stop()
        }
        state.size = terminal.size
        state.now = Date().timeIntervalSince1970
        let q = queue
        backend.start { q.post(.backend($0)) }
        for m in initial { dispatch(m) }
        for e in effects { perform(e) }
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
            let keys = terminal.readKeys(timeout: busy ? 0.1 : 0.5, wakeFD: q.wakeFD)
            dispatch(.tick(Date().timeIntervalSince1970))
            for k in keys {
                if k == .resize {
                    dispatch(.resize(terminal.size))
                    last = nil
                } else {
                    dispatch(.key(k))
                }
            }
            for m in q.drain() { dispatch(m) }
        }
    }

    /// One message through update, then its effects.
    public func dispatch(_ msg: Msg) {
        let (next, effects) = update(state, msg)
        state = next
        for e in effects { perform(e) }
    }

    func perform(_ e: Effect) {
        switch e {
        case .generate(let r): backend.generate(r)
        case .cancel(let id): backend.cancel(id)
        case .loadAdapter(let path): backend.loadAdapter(path: path)
        case .loadModel(let path): backend.loadModel(path: path)
        case .setAdapters(let list): backend.setAdapters(list)
        case .closeSession: sessions.close()
        case .quit: break
        case .record(let events):
            do {
                if let m = try sessions.record(events, conversation: state.conversation) { dispatch(m) }
            } catch {
                dispatch(.failed("not saved: " + error.description))
            }
        case .listSessions:
            dispatch(sessions.list())
        case .resumeSession(let id):
            do { dispatch(try sessions.resume(id)) } catch { dispatch(.failed(error.description)) }
        case .branchSession(let id, let at):
            do { dispatch(try sessions.branch(id, at: at)) } catch { dispatch(.failed(error.description)) }
        }
    }
}
