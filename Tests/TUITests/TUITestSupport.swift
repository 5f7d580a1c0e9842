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

    /// A state with the model ready, 刘备 chosen and the startup notices expired.
    static func ready(columns: Int = 100, rows: Int = 30, persona: Persona = liubei) -> State {
        var s = State(size: TerminalSize(rows: rows, columns: columns), personas: all, persona: persona, modelName: "test",
                      modelsRoot: "/m")
        s = run(s, [.tick(1000), .choosePersona(persona.id),
                    .backend(.loaded(ModelInfo(name: "glm-demo", precision: "int8", contextLength: 2048))),
                    .backend(.adapterLoaded(path: "/m/" + persona.adapters.first.map(\.path).orEmpty, AdapterInfo(summary: "28 modules, r 8"))),
                    .tick(1100)]).0
        return s
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

    static func type(_ text: String) -> [Msg] { text.map { .key(.char($0)) } }

    /// The request of the last `.generate` effect.
    static func request(_ fx: [Effect]) -> GenerationRequest? {
        for e in fx.reversed() { if case .generate(let r) = e { return r } }
        return nil
    }

    /// Streams `tokens` for the current generation and finishes it.
    static func reply(_ s: State, _ tokens: [String], finish: Bool = true) -> (State, [Effect]) {
        guard let id = s.generation?.id else { return (s, []) }
        var msgs: [Msg] = [.backend(.started(id: id, promptTokens: 20, contextLimit: 2048, dropped: 0))]
        for (i, t) in tokens.enumerated() { msgs += [.tick(s.now + Double(i + 1) * 0.1), .backend(.token(id: id, text: t))] }
        if finish {
            msgs.append(.backend(.finished(id: id, reply: tokens.joined(), stats: GenerationStats(
                promptTokens: 20, newTokens: tokens.count, timeToFirstToken: 0.1, tokensPerSecond: 10, contextLimit: 2048), cancelled: false)))
        }
        return run(s, msgs)
    }

    /// Rows `range` of the rendered screen.
    static func rows(_ s: State, _ range: ClosedRange<Int>) -> [String] {
        Array(view(s).lines[range])
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
