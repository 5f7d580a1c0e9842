import Chat
import Engine
import Foundation
import Testing
@testable import TUI

/// A terminal that plays a script: each step's keys are sent once the screen shows what the
/// step waits for. Frames are kept for the assertions.
final class ScriptedTerminal: Terminal {
    struct Step {
        var waitFor: (String) -> Bool
        var keys: [Key]
        init(waitFor: String, keys: [Key]) { self.init(until: { $0.contains(waitFor) }, keys: keys) }
        init(until: @escaping (String) -> Bool, keys: [Key]) { waitFor = until; self.keys = keys }
    }
    var steps: [Step]
    var frames: [CellBuffer] = []
    var sizeNow = TerminalSize(rows: 30, columns: 100)
    var started = false, stopped = false
    let deadline = Date().addingTimeInterval(20)

    init(_ steps: [Step]) { self.steps = steps }

    var size: TerminalSize { sizeNow }
    func start() throws(TerminalError) { started = true }
    func stop() { stopped = true }

    func readKeys(timeout: Double, wakeFD: Int32) -> [Key] {
        if Date() > deadline { return [.ctrl("q")] }
        if let step = steps.first, let f = frames.last, step.waitFor(f.text) {
            steps.removeFirst()
            return step.keys
        }
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        if poll(&fds, 1, Int32(min(timeout, 0.02) * 1000)) > 0 {
            var sink = [UInt8](repeating: 0, count: 64)
            _ = read(wakeFD, &sink, sink.count)
        }
        return []
    }

    func present(_ buffer: CellBuffer, theme: Theme) { frames.append(buffer) }
}

@Suite struct RuntimeTests {
    @Test func typedQuestionStreamsAReplyAndTheSessionIsSaved() throws {
        let dir = TempDir()
        let store = try SessionStore(directory: dir.path)
        let reply = FakeBackend.reply(for: Fx.liubei, continuing: false)
        let term = ScriptedTerminal([
            .init(until: { $0.contains("fake · canned") && $0.contains("sanguo-cosplay×1") }, keys: "曹操将至".map { .char($0) } + [.enter]),
            .init(until: { $0.contains("中原也") && $0.contains("输入 · Enter") }, keys: [.resize]),
            .init(waitFor: "演义", keys: [.ctrl("q")]),
        ])
        let backend = FakeBackend(tokenDelay: 0.01, loadSeconds: 0.02, modelsRoot: "/m")
        let state = State(size: TerminalSize(rows: 24, columns: 80), personas: Fx.all, persona: Fx.liubei, modelName: "fake", modelsRoot: "/m")
        let runtime = Runtime(state: state, terminal: term, backend: backend, sessions: SessionKeeper(store: store))
        try runtime.run(initial: [.choosePersona("sanguo/liubei")])

        #expect(term.started && term.stopped && term.steps.isEmpty)
        #expect(runtime.state.path.map(\.text) == ["备乃汉室宗亲。", "曹操将至，玄德曰：", reply])
        // Token by token: frames showed the reply growing, with the caret.
        let partial = term.frames.filter { $0.text.contains("先生所言") && $0.text.contains("▌") }
        #expect(partial.count >= 5)
        // The load progress was drawn while loading.
        #expect(term.frames.contains { $0.text.contains("loading fake") })
        // Saved: resuming gives the same conversation.
        let saved = store.list().sessions
        #expect(saved.count == 1 && saved[0].title == "曹操将至")
        #expect(try store.read(saved[0].id).conversation.path.map(\.text) == runtime.state.path.map(\.text))
        #expect(backend.applied == [AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 1)])
    }

    @Test func nothingIsSavedWhenNothingIsSaid() throws {
        let dir = TempDir()
        let store = try SessionStore(directory: dir.path)
        let term = ScriptedTerminal([.init(waitFor: "fake · canned", keys: [.f(2), .down, .enter, .ctrl("q")])])
        let runtime = Runtime(state: State(size: TerminalSize(rows: 24, columns: 80), personas: Fx.all, persona: Fx.liubei, modelName: "fake"),
                              terminal: term, backend: FakeBackend(tokenDelay: 0.001, loadSeconds: 0.01), sessions: SessionKeeper(store: store))
        try runtime.run(initial: [.choosePersona("sanguo/liubei")])
        #expect(runtime.state.persona?.id == "xiyou/sunwukong")
        #expect(store.list().sessions.isEmpty)
    }
}

@Suite struct EngineBackendTests {
    /// The real backend on the tiny trained LLaMA fixture: load with progress, a greedy reply
    /// streamed token by token, an adapter read and applied, cancellation.
    @Test func loadsGeneratesAndAppliesAnAdapter() async throws {
        let events = Collector()
        let backend = EngineBackend(modelPath: Fx.path("Tests/Fixtures/models/llama-trained/safetensors"), threads: 1)
        backend.start { events.add($0) }
        let info = try await events.wait { if case .loaded(let i) = $0 { i } else { nil } }
        #expect(info.name == "safetensors" && info.precision == "int8" && info.contextLength > 0)

        let adapter = Fx.path("Tests/Fixtures/adapters/llama-qv")
        backend.loadAdapter(path: adapter)
        let summary = try await events.wait { if case .adapterLoaded(let p, let a) = $0, p == adapter { a.summary } else { nil } }
        #expect(summary.hasSuffix("modules, r 8"))
        backend.setAdapters([AdapterSetting(path: adapter, scale: 0.5)])

        var p = Fx.helper
        p.sampling = Persona.Sampling(maxNewTokens: 6)
        backend.generate(GenerationRequest(id: 1, persona: p, history: [.user("a"), .assistant("b")], utterance: "hello"))
        let (reply, stats) = try await events.wait { if case .finished(1, let r, let st, false) = $0 { (r, st) } else { nil } }
        let tokens = events.all.compactMap { if case .token(1, let t) = $0 { t } else { nil } }
        #expect(stats.newTokens >= 1 && stats.newTokens <= 6 && stats.promptTokens > 5)
        #expect(tokens.count >= 1)
        #expect(reply == Fx.helper.finishReply(tokens.joined()))
        #expect(events.all.contains { if case .started(1, _, _, 0) = $0 { true } else { false } })

        // The same reply as Engine's TokenGenerator gives directly for the planned prompt (greedy,
        // adapter at 0.5): the backend only plumbs.
        let folder = try ModelFolder.open(Fx.path("Tests/Fixtures/models/llama-trained/safetensors"))
        let lm = try ModelRegistry.load(folder, pool: ThreadPool(threads: 1))
        try lm.setAdapters([(try LoRAAdapter(folder: adapter), 0.5)])
        let plan = try TurnPlan(persona: p, history: [.user("a"), .assistant("b")], utterance: "hello", tokenizer: folder.tokenizer,
                                contextLength: lm.contextLength)
        var params = p.sampling.generationParameters
        params.eosTokenId = OneOrMany(plan.stopTokenIDs.map { Int($0) }.sorted())
        params.stop = plan.stop.texts.isEmpty ? nil : plan.stop.texts
        let direct = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: plan.fitted.tokenIDs,
                                        settings: GenerationParameters.layered(model: try GenerationParameters.defaults(for: folder), persona: params, user: nil)
                                            .resolved(promptLength: plan.fitted.tokenIDs.count))
        var directText = ""
        while let e = try direct.next() { if case .finished(let r) = e { directText = r.text } }
        #expect(reply == p.finishReply(directText))

        // Beams from the side panel reach the generator; a cancel stops a long reply early.
        p.sampling = Persona.Sampling(maxNewTokens: 4, numBeams: 2)
        backend.generate(GenerationRequest(id: 2, persona: p, history: [], utterance: "hi"))
        let beamStats = try await events.wait { if case .finished(2, _, let st, false) = $0 { st } else { nil } }
        #expect(beamStats.newTokens >= 1 && beamStats.newTokens <= 4)
        // Hot, unfiltered sampling, so replies run long. The cancel is sent from the event callback,
        // on the generating thread, as a reply's first token arrives (polling for it from here let a
        // busy machine generate ~100 tokens first). A reply whose very first token is EOS ends before
        // any token event; that is a legitimate outcome (1 token, not cancelled), so try again.
        p.sampling = Persona.Sampling(temperature: 5, topK: 0, maxNewTokens: 400, doSample: true)
        events.onEvent = { if case .token(let id, _) = $0, id >= 3 { backend.cancel(id) } }
        var outcome: (id: Int, tokens: Int, cancelled: Bool) = (0, 0, false)
        for id in 3..<8 {
            backend.generate(GenerationRequest(id: id, persona: p, history: [], utterance: "go on"))
            let (cut, wasCancelled) = try await events.wait { if case .finished(id, _, let st, let c) = $0 { (st, c) } else { nil } }
            outcome = (id, cut.newTokens, wasCancelled)
            if wasCancelled || cut.newTokens > 1 { break }
        }
        events.onEvent = nil
        #expect(outcome.cancelled && outcome.tokens < 400, "reply \(outcome.id) ended after \(outcome.tokens) tokens, cancelled: \(outcome.cancelled)")

        // A bad adapter folder: one line, no crash.
        backend.loadAdapter(path: "/no/such/adapter")
        let why = try await events.wait { if case .adapterFailed("/no/such/adapter", let m) = $0 { m } else { nil } }
        #expect(why.hasPrefix("/no/such/adapter") && !why.contains("\n"))
        backend.shutdown()
    }

    /// A persona on another base: loadModel swaps the base (LLaMA -> ChatGLM fixture), the
    /// adapter for the new base is checked against it and applied, and a reply comes from it.
    @Test func loadModelSwapsTheBase() async throws {
        let events = Collector()
        let backend = EngineBackend(modelPath: Fx.path("Tests/Fixtures/models/llama-trained/safetensors"), threads: 1)
        backend.start { events.add($0) }
        _ = try await events.wait { if case .loaded = $0 { true } else { nil } }
        let glm = Fx.path("Tests/Fixtures/models/chatglm-trained/safetensors")
        let adapter = Fx.path("Tests/Fixtures/adapters/chatglm-qkv")
        backend.loadModel(path: glm)
        backend.loadAdapter(path: adapter)            // as update orders it: after loadModel
        let loads = try await events.wait { e -> Int? in
            let n = events.all.filter { if case .loaded = $0 { true } else { false } }.count
            return n >= 2 ? n : nil
        }
        #expect(loads == 2)
        _ = try await events.wait { if case .adapterLoaded(let p, _) = $0, p == adapter { true } else { nil } }
        backend.setAdapters([AdapterSetting(path: adapter, scale: 1)])
        var p = Fx.liubei
        p.adapters = []
        p.sampling = Persona.Sampling(maxNewTokens: 4)
        backend.generate(GenerationRequest(id: 5, persona: p, history: [], utterance: "曹操大军将至，如之奈何？玄德曰："))
        let st = try await events.wait { if case .finished(5, _, let st, false) = $0 { st } else { nil } }
        #expect(st.newTokens >= 1)
        #expect(!events.all.contains { if case .notice(let m) = $0 { m.contains("not applied") } else { false } })
        #expect(backend.modelPath == glm)
        backend.shutdown()
    }

    @Test func aMissingModelIsOneLineNotACrash() async throws {
        let events = Collector()
        let backend = EngineBackend(modelPath: "/no/such/model")
        backend.start { events.add($0) }
        let why = try await events.wait { if case .loadFailed(let m) = $0 { m } else { nil } }
        #expect(why.hasPrefix("/no/such/model") && !why.contains("\n"))
        backend.generate(GenerationRequest(id: 7, persona: Fx.helper, history: [], utterance: "x"))
        let failed = try await events.wait { if case .failed(7, let m) = $0 { m } else { nil } }
        #expect(failed == "no model loaded")
    }
}

/// Collects backend events from any thread; `wait` polls until one matches (60 s at most: the
/// machine may be busy).
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [BackendEvent] = []

    /// Runs on the sender's thread for every event, after it is recorded.
    var onEvent: (@Sendable (BackendEvent) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return hook }
        set { lock.lock(); hook = newValue; lock.unlock() }
    }
    private var hook: (@Sendable (BackendEvent) -> Void)?

    func add(_ e: BackendEvent) {
        lock.lock(); events.append(e); let h = hook; lock.unlock()
        h?(e)
    }
    var all: [BackendEvent] { lock.lock(); defer { lock.unlock() }; return events }

    struct Timeout: Error, CustomStringConvertible {
        var events: [BackendEvent]
        var description: String { "timed out; events so far: \(events.suffix(6))" }
    }

    func wait<T>(_ match: (BackendEvent) -> T?) async throws -> T {
        for _ in 0..<6000 {
            if let t = all.lazy.compactMap(match).first { return t }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        throw Timeout(events: all)
    }
}
