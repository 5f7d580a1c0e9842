import Chat
import Foundation
@testable import TUI

enum Fx {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repo = fixtures.deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ relative: String) -> String { repo.appendingPathComponent(relative).path }

    static let liubei = Persona(
        id: "sanguo/liubei", name: "刘备", group: "sanguo", book: "三国演义", greetings: ["备乃汉室宗亲。"],
        template: "glm-cosplay", speaker: .init(name: "玄德"), model: "glm-demo",
        adapters: [.init(path: "adapters/sanguo-cosplay")],
        sampling: .init(temperature: 0.1, topP: 0.75, topK: 40, maxNewTokens: 128, doSample: false, numBeams: 1, maxHistory: 10),
        accent: "#2e8b57")
    static let caocao = Persona(
        id: "sanguo/caocao", name: "曹操", group: "sanguo", book: "三国演义", greetings: ["孤乃曹孟德。"],
        template: "glm-cosplay", speaker: .init(name: "操"), model: "glm-demo", adapters: [.init(path: "adapters/sanguo-cosplay")])
    static let wukong = Persona(
        id: "xiyou/sunwukong", name: "孙悟空", group: "xiyou", book: "西游记", greetings: ["俺老孙来也！"],
        template: "glm-cosplay", speaker: .init(name: "行者", verb: "道"), model: "glm-demo",
        adapters: [.init(path: "adapters/classics-cosplay", scale: 0.8)])
    static let rulai = Persona(
        id: "assistants/rulai", name: "RulaiGPT", group: "assistants", book: "助手", greetings: ["如来~"],
        template: "baichuan-qa", model: "baichuan-demo", adapters: [.init(path: "adapters/rulai-v2")],
        sampling: .init(maxHistory: 0))
    static let helper = Persona(
        id: "assistants/plain", name: "助手", group: "assistants", book: "助手", greetings: ["你好"],
        template: "plain", model: "llama-demo")
    static let all = [helper, rulai, caocao, liubei, wukong]

    /// A runtime over the canned engine with every call inline: keys in, the screen and the
    /// conversation runtime's state out. The model is ready, 刘备 chosen, startup notices expired.
    static func harness(columns: Int = 100, rows: Int = 30, persona: Persona = liubei, store dir: TempDir? = nil) -> Harness {
        Harness(columns: columns, rows: rows, persona: persona, dir: dir ?? TempDir())
    }

    /// Runs messages through update; the last state and every effect in order.
    static func run(_ s: State, _ msgs: [Msg]) -> (State, [Effect]) {
        var s = s
        var all: [Effect] = []
        for m in msgs {
            let (n, fx) = update(s, m)
            s = n
            all += fx
        }
        return (s, all)
    }

    static func type(_ text: String) -> [Key] { text.map { .char($0) } }

    /// Rows `range` of the rendered screen.
    static func rows(_ s: State, _ range: ClosedRange<Int>) -> [String] {
        Array(view(s).lines[range])
    }
}

/// A terminal that shows nothing (the harness reads the view itself).
final class NullTerminal: Terminal {
    var size = TerminalSize(rows: 30, columns: 100)
    func start() throws(TerminalError) {}
    func stop() {}
    func readKeys(timeout: Double, wakeFD: Int32) -> [Key] { [] }
    func present(_ buffer: CellBuffer, theme: Theme) {}
}

/// The TUI's runtime on the canned engine, every runtime call run inline on the test's thread.
final class Harness {
    let dir: TempDir
    let store: SessionStore
    let controller: ChatController
    let runtime: Runtime
    /// The time messages carry (advanced by `tick`).
    var now = 1000.0

    init(columns: Int, rows: Int, persona: Persona, dir: TempDir, host: CannedModelHost = CannedModelHost(tokenDelay: 0, loadSeconds: 0, standInRoot: "/m")) {
        self.dir = dir
        store = try! SessionStore(directory: dir.path + "/sessions", clock: { Date(timeIntervalSince1970: 1_800_000_000) })
        controller = ChatController(options: .init(modelsRoot: "/m", personasRoot: dir.path + "/Personas"), host: host,
                                    library: PersonaLibrary(personas: Fx.all),
                                    store: store, persona: persona, clock: { Date(timeIntervalSince1970: 1_800_000_000) })
        var s = State(size: TerminalSize(rows: rows, columns: columns), personas: Fx.all, persona: persona, modelName: "test")
        s.themes = [Theme.builtIn]
        runtime = Runtime(state: s, terminal: NullTerminal(), controller: controller, inline: true)
        runtime.start(initial: [.tick(now)])
        runtime.pump()
        tick(10)
    }

    var state: State { runtime.state }
    var screen: String { view(state).text }
    var lines: [String] { view(state).lines }
    var engine: CannedEngine? { controller.engine as? CannedEngine }

    /// Keys, each followed by what the runtime reported.
    @discardableResult
    func keys(_ ks: [Key]) -> Harness {
        for k in ks {
            runtime.dispatch(.key(k))
            runtime.pump()
        }
        return self
    }

    func type(_ text: String) -> Harness { keys(Fx.type(text)) }
    func send(_ text: String) -> Harness { keys(Fx.type(text) + [.enter]) }

    func tick(_ seconds: Double) {
        now += seconds
        runtime.dispatch(.tick(now))
    }

    func dispatch(_ m: Msg) {
        runtime.dispatch(m)
        runtime.pump()
    }
}

extension Optional where Wrapped == String {
    var orEmpty: String { self ?? "" }
}

/// A temporary folder removed when the value goes away.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "yanyi-tui-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
