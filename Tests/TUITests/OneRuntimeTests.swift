import Chat
import Engine
import Foundation
import Testing
@testable import TUI

/// One conversation, three front ends: the TUI's update loop, the line chat and the runtime's API
/// give the engine byte-identical prompts, settings and adapters, and store the same session.
@Suite struct OneRuntimeTests {
    /// What the engine saw and what was stored.
    struct Trace: Equatable {
        var prompts: [[Int32]]
        var parameters: [GenerationParameters]
        var adapters: [[AdapterSetting]]
        var sessions: [Conversation]
    }

    static let clock: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_800_000_000) }

    static func controller(_ dir: TempDir) -> ChatController {
        ChatController(options: .init(modelsRoot: "/m"), host: CannedModelHost(tokenDelay: 0, loadSeconds: 0, standInRoot: "/m"),
                       library: PersonaLibrary(personas: Fx.all), store: try! SessionStore(directory: dir.path + "/sessions", clock: clock),
                       persona: Fx.liubei, clock: clock)
    }

    static func text(_ ids: [Int32]) -> String { ScalarTokenizer().decode(ids, skipSpecialTokens: false) }

    static func firstDiff<T: Equatable>(_ x: [T], _ y: [T]) -> String {
        if x.count != y.count { return "counts \(x.count) vs \(y.count)" }
        guard let i = x.indices.first(where: { x[$0] != y[$0] }) else { return "none" }
        return "at \(i): \(x[i]) vs \(y[i])"
    }

    static func trace(_ c: ChatController) throws -> Trace {
        let e = try #require(c.engine as? CannedEngine)
        let store = c.store
        let sessions = try store.list().sessions.sorted { $0.id < $1.id }.map { try store.read($0.id).conversation }
        return Trace(prompts: e.requests.map(\.promptIDs), parameters: e.requests.map(\.parameters), adapters: e.adapterLog,
                     sessions: sessions)
    }

    /// send, retry, swipe back, continue, a slider, edit-and-ask-again, persona switch with an
    /// adapter change, send, branch, send.
    @Test func tuiLineChatAndAPIAgree() throws {
        // The runtime's API.
        let apiDir = TempDir()
        let api = Self.controller(apiDir)
        _ = try api.send("曹操大军将至，如之奈何？")
        _ = try api.retry()
        try api.swipe(-1)
        _ = try api.continueLast()
        try api.set("temperature", "0.15")
        _ = try api.reply(.reask("曹操退兵了"))
        try api.switchPersona("xiyou/sunwukong")
        _ = try api.send("师父何在？")
        _ = try api.branch()
        _ = try api.send("妖怪来了")

        // The line chat.
        let lineDir = TempDir()
        let line = Self.controller(lineDir)
        var script = ["曹操大军将至，如之奈何？", "/retry", "/swipe prev", "/continue", "/set temperature 0.15", "/reask 曹操退兵了",
                      "/persona xiyou/sunwukong", "师父何在？", "/branch", "妖怪来了"]
        let chat = LineChat(controller: line, read: { script.isEmpty ? nil : script.removeFirst() }, write: { _ in })
        chat.run()

        // The TUI, key by key.
        let h = Harness(columns: 120, rows: 40, persona: Fx.liubei, dir: TempDir())
        _ = h.send("曹操大军将至，如之奈何？")
        h.keys([.ctrl("r"), .altLeft, .ctrl("t")])
        h.keys([.tab, .tab, .down, .down, .down, .right, .escape])   // sliders: temperature 0.1 -> 0.15
        h.keys([.f(7), .ctrl("u")])
        _ = h.type("曹操退兵了").keys([.enter])
        h.keys([.f(2)])
        _ = h.type("孙悟空").keys([.enter])
        _ = h.send("师父何在？")
        h.keys([.tab, .end, .char("b"), .escape])
        _ = h.send("妖怪来了")

        let a = try Self.trace(api), l = try Self.trace(line), t = try Self.trace(h.controller)
        #expect(a.prompts.count == 6 && a.sessions.count == 2)
        for (name, x) in [("line chat", l), ("TUI", t)] {
            #expect(x.prompts == a.prompts, "\(name): prompts \(x.prompts.map(Self.text)) vs \(a.prompts.map(Self.text))")
            #expect(x.parameters == a.parameters, "\(name): parameters \(Self.firstDiff(x.parameters, a.parameters))")
            #expect(x.adapters == a.adapters, "\(name): adapters \(x.adapters) vs \(a.adapters)")
            #expect(x.sessions == a.sessions, "\(name): sessions \(Self.firstDiff(x.sessions.flatMap(\.messages), a.sessions.flatMap(\.messages)))")
        }
        // The persona's max_new_tokens reaches the engine from every front end (the TUI once sent none).
        #expect(t.parameters.first?.maxNewTokens == 128)
        #expect(t.parameters.last?.temperature == 0.15 && t.parameters.first?.temperature == 0.1)
        #expect(t.adapters.first == [AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 1)])
        #expect(t.adapters.last == [AdapterSetting(path: "/m/adapters/classics-cosplay", scale: 0.8)])
    }

    /// Every greeting is an alternative of the first message, whichever front end shows it.
    @Test func everyGreetingIsASwipe() {
        var p = Fx.liubei
        p.greetings = ["甲", "乙", "丙"]
        let h = Harness(columns: 100, rows: 30, persona: p, dir: TempDir())
        let first = h.state.conversation.path.first!
        #expect(h.state.conversation.alternatives(of: first.id).map(\.text) == ["甲", "乙", "丙"] && first.text == "甲")
        h.keys([.altRight])
        #expect(h.state.conversation.path.first?.text == "乙")
    }
}
