import Engine
import Foundation
import Testing
@testable import Chat

/// The conversation runtime on the canned engine: the rules every front end gets.
@Suite struct RuntimeRulesTests {
    static let library = PersonaLibrary.load(from: ChatFixtures.repo.appendingPathComponent("Personas").path)

    static func controller(_ dir: TempDir, _ persona: String = "sanguo/liubei", tokenDelay: Double = 0) throws -> ChatController {
        ChatController(options: .init(modelsRoot: "/m", personasRoot: ChatFixtures.repo.appendingPathComponent("Personas").path),
                       host: CannedModelHost(tokenDelay: tokenDelay, loadSeconds: 0, standInRoot: "/m"),
                       library: library, store: try Runtime.store(dir), persona: try #require(library.persona(persona)))
    }

    /// A reply stopped mid-way is saved as partial, without the space the next token would have
    /// followed; a stop before any text saves nothing.
    @Test func aStoppedReplyKeepsWhatWasSaid() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/plain")
        var pieces = 0
        let r = try c.send("hello") { d in
            pieces += 1
            if pieces >= 3 && d == " " { c.cancel() }
        }
        #expect(r.partial && r.reason == .cancelled)
        let m = try #require(r.message)
        #expect(m.partial == true && !m.text.isEmpty && m.text.last?.isWhitespace == false, "\(m.text)")
        let saved = try Runtime.store(dir).read(c.sessionID!).conversation
        #expect(saved.message(m.id)?.text == m.text)
    }

    /// Cancel from another thread stops within a token.
    @Test func cancelFromAnotherThreadStopsWithinAToken() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/plain", tokenDelay: 0.002)
        var cancelled = false, after = 0
        let r = try c.send("hello") { _ in
            if cancelled { after += 1; return }
            // The first piece: another thread cancels, and this one waits until it has.
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async { c.cancel(); done.signal() }
            done.wait()
            cancelled = true
        }
        #expect(r.partial && r.reason == .cancelled && after == 0, "\(after) pieces after the cancel")
    }

    /// Resuming: an unknown id is an error (never a new conversation); a persona that is gone is
    /// said with what replies instead; the user's settings stay.
    @Test func resumeSaysWhatIsMissing() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir)
        #expect(throws: ChatError.self) { try c.resume("nosuchid") }
        _ = try c.send("主公")
        let id = c.sessionID!
        try c.set("temperature", "0.7")
        let other = PersonaLibrary(personas: Self.library.personas.filter { $0.id != "sanguo/liubei" })
        let d = ChatController(options: .init(modelsRoot: "/m"), host: CannedModelHost(loadSeconds: 0, standInRoot: "/m"), library: other,
                               store: try Runtime.store(dir), persona: other.persona("sanguo/caocao")!)
        let notes = try d.resume(id)
        #expect(notes.contains { $0.contains("sanguo/liubei") && $0.contains("曹操") }, "\(notes)")
        try c.newSession()
        _ = try c.resume(id)
        #expect(c.overrides.parameters.temperature == 0.7 && c.resolvedSettings.first { $0.key == "temperature" }?.layer == .user)
    }

    /// Settings inherit through every layer: what the persona leaves unset comes from the model
    /// (generation_config.json) or transformers' default, never from a front end's guess.
    @Test func unsetValuesInherit() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/rulai")   // sets no top-k
        try c.load()
        let s = Dictionary(uniqueKeysWithValues: c.resolvedSettings.map { ($0.key, $0) })
        #expect(s["top_k"]?.value == "50" && s["top_k"]?.layer == .builtIn)
        try c.set("top_p", "0.5")
        #expect(c.overrides.entries.map(\.key) == ["top_p"])
        _ = try c.send("问")
        let p = try #require((c.engine as? CannedEngine)?.requests.last?.parameters)
        #expect(p.topK == nil && p.topP == 0.5, "top-k left to the layers below")
    }

    /// A persona switch before anything was said starts over with the new greeting; after, it is
    /// noted in the conversation and never enters a prompt.
    @Test func personaSwitchRules() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir)
        try c.switchPersona("sanguo/zhugeliang")
        #expect(c.conversation.path.count == 1 && c.conversation.path[0].persona == "sanguo/zhugeliang" && c.sessionID == nil)
        _ = try c.send("主公")
        try c.switchPersona("sanguo/caocao")
        let note = try #require(c.conversation.head)
        #expect(note.role == .system && note.text.contains("曹操"))
        _ = try c.send("丞相")
        let prompt = ScalarTokenizer().decode((c.engine as! CannedEngine).requests.last!.promptIDs, skipSpecialTokens: false)
        #expect(!prompt.contains("换成"), "\(prompt)")
    }

    /// The adapter dialog: folders are found under the models root and named relative to it;
    /// one that does not load is said and never joins the list.
    @Test func adaptersResolveAgainstTheModelsRoot() throws {
        let dir = try TempDir()
        let root = ChatFixtures.fixtures.path
        let c = ChatController(options: .init(modelsRoot: root), host: CannedModelHost(loadSeconds: 0),
                               library: Self.library, store: try Runtime.store(dir), persona: Self.library.persona("assistants/plain")!)
        #expect(c.availableAdapters().contains("adapters/llama-qv") && c.availableAdapters().contains("adapters/chatglm-qkv"))
        let a = try c.loadAdapter("adapters/llama-qv=0.5")
        #expect(a.summary.hasPrefix("8 modules") && c.adapters.map(\.label) == ["adapters/llama-qv=0.5"])
        #expect((c.engine as? CannedEngine)?.adapters == [AdapterSetting(path: root + "/adapters/llama-qv", scale: 0.5)])
        #expect(throws: ChatError.self) { try c.loadAdapter("adapters/not-there") }
        #expect(c.adapters.count == 1)
    }

    /// A scene: the speaker is the one the user names (by name or the novel's name for them),
    /// else the next in turn; /next lets one speak unasked. Each reply is its speaker's, with its
    /// adapters; the cast is saved, resumed and branched with the conversation.
    @Test func scenesPickTheSpeakerAndKeepTheirAdapters() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir)
        try c.setScene(["sanguo/liubei", "sanguo/guanyu", "xiyou/sunwukong"])
        #expect(c.cast.map(\.name) == ["刘备", "关羽", "孙悟空"] && c.conversation.head?.text == "场景：刘备、关羽、孙悟空")
        _ = try c.send("云长何在？")                 // named by the novel's name: 关羽
        _ = try c.send("好")                         // turn order: after 关羽, 孙悟空
        _ = try c.reply(.next(nil))                  // and round again: 刘备
        _ = try c.reply(.next("关羽"))
        let replies = c.conversation.path.filter { $0.role == .assistant && $0.greeting != true }
        #expect(replies.map(\.persona) == ["sanguo/guanyu", "xiyou/sunwukong", "sanguo/liubei", "sanguo/guanyu"])
        for r in replies {
            let p = Self.library.persona(r.persona!)!
            #expect(r.adapters == p.adapters.map { "\($0.path)=\(formatScale(Float($0.scale)))" }, "\(r.persona!): \(r.adapters ?? [])")
        }
        let questions = c.conversation.path.filter { $0.role == .user }.map(\.text)
        #expect(questions == ["云长何在？云长曰：", "好，行者道：", "玄德曰：", "云长曰："], "\(questions)")
        #expect(throws: ChatError.self) { try c.reply(.next("曹操")) }
        let id = c.sessionID!
        let other = try Self.controller(dir)
        _ = try other.resume(id)
        #expect(other.cast.map(\.id) == ["sanguo/liubei", "sanguo/guanyu", "xiyou/sunwukong"])
        _ = try other.branch()
        #expect(other.conversation.cast == c.conversation.cast && other.sessionID != id)
        try c.setScene([])
        #expect(c.cast.isEmpty && c.conversation.head?.text == "场景结束")
        #expect(throws: ChatError.self) { try c.setScene(["sanguo/liubei"]) }
    }

    /// The persona's lorebook: what the conversation names enters the prompt before it (and
    /// the outcome says which entries); what it does not name stays out.
    @Test func loreEntersThePromptWhenNamed() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "sanguo/zhugeliang")
        let r = try c.send("荆州危矣")
        let prompt = ScalarTokenizer().decode((c.engine as! CannedEngine).requests.last!.promptIDs, skipSpecialTokens: false)
        #expect(Set(r.lore) == ["荆州", "诸葛亮"], "\(r.lore)")                  // 孔明曰： hands the turn over
        #expect(prompt.hasPrefix("荆州，九郡之地") || prompt.hasPrefix("诸葛亮，字孔明"), "\(prompt)")
        #expect(prompt.contains("荆州，九郡之地") && !prompt.contains("赤壁，长江之畔"))
        #expect(prompt.hasSuffix("荆州危矣，孔明曰："))
        let r2 = try c.send("赤壁如何")
        #expect(r2.lore.contains("赤壁") && !r2.lore.contains("长坂坡"))
    }

    /// A base loads but the persona's adapter does not: the load is undone, and front ends hear
    /// that no model is ready (not that the dropped one is).
    @Test func aFailedAdapterUndoesTheLoad() throws {
        let dir = try TempDir()
        let p = Persona(id: "t/p", name: "p", group: "t", template: "plain", model: "base", adapters: [.init(path: "no/such/adapter")])
        let c = ChatController(options: .init(modelsRoot: "/m"), host: CannedModelHost(loadSeconds: 0), library: PersonaLibrary(personas: [p]),
                               store: try Runtime.store(dir), persona: p)
        let events = EventList()
        c.onEvent = { events.add($0) }
        #expect(throws: ChatError.self) { try c.load() }
        let loads = events.all.compactMap { e -> String? in
            switch e {
            case .loaded: "loaded"
            case .loadFailed: "failed"
            default: nil
            }
        }
        #expect(loads == ["failed"] && c.engine == nil, "\(loads)")
    }
}

final class EventList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [RuntimeEvent] = []
    func add(_ e: RuntimeEvent) { lock.withLock { list.append(e) } }
    var all: [RuntimeEvent] { lock.withLock { list } }
}
