import Engine
import Foundation
@testable import Chat

/// Controllers over the fixture models, and the direct engine runs their replies are checked against.
enum Runtime {
    static let modelsRoot = ChatFixtures.fixtures.path
    static let library = PersonaLibrary.load(from: ChatFixtures.chat.appendingPathComponent("personas-runtime").path)

    static func persona(_ id: String) -> Persona { library.persona(id)! }

    /// One thread: the machine running the tests is small and shared.
    static let host = LocalModelHost(pool: ThreadPool(threads: 1))

    /// One thread: the machine running the tests is small and shared.
    static func controller(_ dir: TempDir, _ persona: String, clock: TestClock = TestClock()) throws -> ChatController {
        ChatController(options: .init(modelsRoot: modelsRoot), host: host, library: library, store: try store(dir, clock: clock),
                       persona: Self.persona(persona), clock: { clock.now() })
    }

    static func store(_ dir: TempDir, clock: TestClock = TestClock()) throws -> SessionStore {
        try SessionStore(directory: dir.path + "/sessions", clock: { clock.now() })
    }

    /// The reply the engine gives on its own: the persona's model loaded afresh, `adapters`
    /// (`path=scale` as messages record them) set, a new session, greedy from `prompt`.
    static func engineReply(persona p: Persona, adapters: [String], prompt: [Int32], maxNewTokens: Int) throws -> (tokens: [Int32], text: String) {
        let folder = try ModelFolder.open(modelsRoot + "/" + p.model)
        let lm = try ModelRegistry.load(folder, precision: .int8, pool: ThreadPool(threads: 1))
        var list: [(adapter: LoRAAdapter, multiplier: Float)] = []
        for label in adapters {
            let spec = AdapterSpec.parse(label)!
            list.append((try LoRAAdapter(folder: modelsRoot + "/" + spec.folder), spec.multiplier))
        }
        try lm.setAdapters(list)
        let stops = p.stopRule.tokenIDs(in: folder.tokenizer)
        let ids = try GreedyDecoder(model: lm, stopIDs: stops)
            .run(prompt: prompt, maxNewTokens: maxNewTokens, session: lm.makeSession(capacity: nil))
        return (ids, p.finishReply(folder.tokenizer.decode(ids, skipSpecialTokens: true)))
    }

    /// The prompt ids of the reply `m` in `c`, rebuilt from the conversation (not by the controller).
    static func promptIDs(for m: Message, in c: Conversation, persona p: Persona) throws -> [Int32] {
        let q = c.message(m.parent!)!
        let tok = try ModelFolder.open(modelsRoot + "/" + p.model).tokenizer
        let history = c.utterances(upTo: q.id, includeGreetings: p.history.includeGreeting)
        let plan = try TurnPlan(persona: p, history: history, utterance: q.text, tokenizer: tok, contextLength: 2048)
        return plan.fitted.tokenIDs
    }
}

/// A scripted line-mode chat: lines in, everything written collected.
final class ScriptedChat {
    let chat: LineChat
    private(set) var output = ""

    init(_ controller: ChatController, _ lines: [String]) {
        var queue = lines
        var out = ""
        chat = LineChat(controller: controller, read: { queue.isEmpty ? nil : queue.removeFirst() }, write: { out += $0 })
        chat.run()
        output = out
    }
}
