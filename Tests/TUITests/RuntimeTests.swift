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
    static func runtime(_ term: ScriptedTerminal, _ dir: TempDir, host: any ModelHost, persona: Persona = Fx.liubei,
                        modelsRoot: String = "/m") throws -> Runtime {
        let store = try SessionStore(directory: dir.path)
        let c = ChatController(options: .init(modelsRoot: modelsRoot), host: host, library: PersonaLibrary(personas: Fx.all),
                               store: store, persona: persona)
        return Runtime(state: State(size: TerminalSize(rows: 24, columns: 80), personas: Fx.all, persona: persona, modelName: "fake"),
                       terminal: term, controller: c)
    }

    /// The loop with the runtime on its worker: load progress drawn, a typed question streams a
    /// reply token by token, and the session is saved.
    @Test func typedQuestionStreamsAReplyAndTheSessionIsSaved() throws {
        let dir = TempDir()
        let reply = CannedEngine.reply(persona: Fx.liubei.id, continuing: false)
        let term = ScriptedTerminal([
            .init(until: { $0.contains("fake · canned") && $0.contains("sanguo-cosplay×1") }, keys: "曹操将至".map { .char($0) } + [.enter]),
            .init(until: { $0.contains("中原也") && $0.contains("输入 · Enter") }, keys: [.resize]),
            .init(waitFor: "演义", keys: [.ctrl("q")]),
        ])
        let runtime = try Self.runtime(term, dir, host: CannedModelHost(tokenDelay: 0.01, loadSeconds: 0.3, standInRoot: "/m"))
        try runtime.run()

        #expect(term.started && term.stopped && term.steps.isEmpty)
        #expect(runtime.state.path.map(\.text) == ["备乃汉室宗亲。", "曹操将至，玄德曰：", reply])
        let partial = term.frames.filter { $0.text.contains("先生所言") && $0.text.contains("▌") }
        #expect(partial.count >= 5)
        #expect(term.frames.contains { $0.text.contains("loading fake") || $0.text.contains("loading glm-demo") })
        let store = runtime.controller.store
        let saved = store.list().sessions
        #expect(saved.count == 1 && saved[0].title == "曹操将至")
        #expect(try store.read(saved[0].id).conversation == runtime.controller.conversation)
        #expect((runtime.controller.engine as? CannedEngine)?.adapters == [AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 1)])
    }

    @Test func nothingIsSavedWhenNothingIsSaid() throws {
        let dir = TempDir()
        let term = ScriptedTerminal([.init(waitFor: "fake · canned", keys: [.f(2), .down, .enter]),
                                     .init(waitFor: "俺老孙来也", keys: [.ctrl("q")])])
        let runtime = try Self.runtime(term, dir, host: CannedModelHost(tokenDelay: 0.001, loadSeconds: 0.01, standInRoot: "/m"))
        try runtime.run()
        #expect(runtime.state.persona?.id == "xiyou/sunwukong" && runtime.controller.persona.id == "xiyou/sunwukong")
        #expect(runtime.controller.store.list().sessions.isEmpty)
    }

    /// The real engine on the tiny trained LLaMA fixture through the loop: a reply streams, and
    /// Esc mid-reply stops it within a token; what came is saved as partial.
    @Test func realEngineRepliesAndStops() throws {
        let dir = TempDir()
        var p = Fx.helper
        p.model = "models/llama-trained/safetensors"
        p.sampling = Persona.Sampling(temperature: 5, topK: 0, maxNewTokens: 400, doSample: true)
        var stoppedAt = 0
        let term = ScriptedTerminal([
            .init(until: { $0.contains("safetensors · int8") }, keys: "hello".map { .char($0) } + [.enter]),
            .init(until: { $0.contains(" tok/s") && !$0.contains("– tok/s") && $0.contains("回复中") }, keys: [.escape]),
            .init(until: { $0.contains("输入 · Enter") && ($0.contains("stopped") || $0.contains("tok/s")) }, keys: [.ctrl("q")]),
        ])
        let runtime = try Self.runtime(term, dir, host: LocalModelHost(pool: ThreadPool(threads: 1)), persona: p,
                                       modelsRoot: Fx.path("Tests/Fixtures"))
        try runtime.run()
        let c = runtime.controller.conversation
        let last = try #require(c.head)
        stoppedAt = last.text.count
        #expect(last.role == .assistant && (last.partial == true || stoppedAt > 0))
        #expect(try runtime.controller.store.read(runtime.controller.sessionID!).conversation == c)
    }

    @Test func aMissingModelIsOneLineNotACrash() throws {
        let dir = TempDir()
        var p = Fx.helper
        p.model = "/no/such/model"
        let term = ScriptedTerminal([
            .init(until: { $0.contains("✗") }, keys: "x".map { .char($0) } + [.enter]),
            .init(until: { $0.contains("no model") }, keys: [.ctrl("q")]),
        ])
        let runtime = try Self.runtime(term, dir, host: LocalModelHost(pool: ThreadPool(threads: 1)), persona: p)
        try runtime.run()
        guard case .failed(let why) = runtime.state.model else { Issue.record("model state \(runtime.state.model)"); return }
        #expect(why.contains("/no/such/model") && !why.contains("\n"))
        #expect(runtime.state.input.string == "x", "the text stays when it cannot be sent")
    }
}

