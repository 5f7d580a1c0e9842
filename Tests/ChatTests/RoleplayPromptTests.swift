import Engine
import Foundation
import Testing
@testable import Chat

/// Cards speak: SillyTavern's macros, story string, example dialogue, post-history
/// instructions, the author's note and lore at a depth, the user's profile — each against a
/// prompt written out by hand.
@Suite struct RoleplayPromptTests {
    static let cardJSON = #"""
    {"spec":"chara_card_v3","spec_version":"3.0","data":{
     "name":"貂蝉",
     "description":"{{char}}乃王允府中歌伎。{{user}}是她的客人。",
     "personality":"聪慧",
     "scenario":"月下花园",
     "first_mes":"“{{user}}大人深夜至此，有何吩咐？”",
     "alternate_greetings":["“{{User}}，请坐。”"],
     "group_only_greetings":["“诸位将军安好。”"],
     "mes_example":"<START>\n{{user}}: 你是谁？\n{{char}}: 妾乃貂蝉。\n<start>\n{{user}}: 何事？\n{{char}}: 无事。",
     "system_prompt":"你扮演{{char}}。{{original}}",
     "post_history_instructions":"{{original}}用古文回答{{user}}。",
     "creator_notes":"","tags":[],"creator":"t","character_version":"1","extensions":{},
     "character_book":{"entries":[
       {"id":1,"keys":["吕布"],"content":"吕布乃当世猛将。","enabled":true,"insertion_order":10,"extensions":{"position":4,"depth":1}},
       {"id":2,"keys":["王允"],"content":"王允乃司徒。","enabled":true,"insertion_order":5,"position":"before_char"}]}
    }}
    """#

    static func card() throws -> Persona {
        try CharacterCard.decode(json: Data(cardJSON.utf8), file: "diaochan.json").persona(id: "diaochan", file: "diaochan.json")
    }

    static let zilong = UserProfile(name: "子龙", description: "常山赵子龙，{{char}}的护卫。")

    static let story = """
        你扮演貂蝉。
        貂蝉乃王允府中歌伎。子龙是她的客人。
        貂蝉's personality: 聪慧
        Scenario: 月下花园
        常山赵子龙，貂蝉的护卫。
        """
    static let examples = ["***\n子龙: 你是谁？\n貂蝉: 妾乃貂蝉。", "***\n子龙: 何事？\n貂蝉: 无事。"]

    // MARK: macros

    @Test func macrosAsSillyTavernDefinesThem() {
        var ctx = MacroContext(char: "貂蝉", user: "子龙")
        ctx.original = "原文"
        #expect(Macros.expand("{{char}}见{{USER}}；<BOT>对<USER>", &ctx) == "貂蝉见子龙；貂蝉对子龙")
        #expect(Macros.expand("{{original}}+{{original}}", &ctx) == "原文+", "only the first {{original}}")
        #expect(Macros.expand("a{{// a comment}}b{{noop}}c", &ctx) == "abc")
        #expect(Macros.expand("x\n\n{{trim}}\ny", &ctx) == "xy")
        #expect(Macros.expand("{{newline}}", &ctx) == "\n")
        #expect(Macros.expand("{{unknown}} {{char", &ctx) == "{{unknown}} {{char", "unknown macros stay as written")
        #expect(Macros.expand("{{reverse:abc}}", &ctx) == "cba")

        ctx.rng = .init(seed: 7)
        var picks: Set<String> = []
        for _ in 0..<64 { picks.insert(Macros.expand("{{random:甲,乙,丙}}", &ctx)) }
        #expect(picks == ["甲", "乙", "丙"])
        for _ in 0..<16 { #expect(["子龙", "貂蝉"].contains(Macros.expand("{{random::{{user}}::{{char}}}}", &ctx))) }
        for _ in 0..<32 {
            let r = Int(Macros.expand("{{roll:2d6+1}}", &ctx))!
            #expect((3...13).contains(r))
        }
        #expect(Macros.expand("{{roll:d0}}", &ctx) == "")

        // {{pick}}: the same in one chat, every time; another chat may differ.
        ctx.chatID = "s1"
        let first = Macros.expand("{{pick::a::b::c::d::e::f}}", &ctx)
        for _ in 0..<8 { #expect(Macros.expand("{{pick::a::b::c::d::e::f}}", &ctx) == first) }
        var others: Set<String> = []
        for i in 0..<32 { ctx.chatID = "chat\(i)"; others.insert(Macros.expand("{{pick::a::b::c::d::e::f}}", &ctx)) }
        #expect(others.count > 1)

        ctx.now = Date(timeIntervalSince1970: 1_700_000_000)    // 2023-11-14 22:13:20 UTC
        #expect(Macros.expand("{{isodate}}", &ctx).count == 10)
        ctx.lastUserTime = ctx.now.addingTimeInterval(-600)
        #expect(Macros.expand("{{idle_duration}}", &ctx) == "10 minutes")
    }

    @Test func nestedMacrosAreBoundedAndNeverCrash() {
        var ctx = MacroContext(char: "c", user: "u")
        let deep = String(repeating: "{{", count: 200) + "user" + String(repeating: "}}", count: 200)
        _ = Macros.expand(deep, &ctx)
        _ = Macros.expand("{{random:}}{{random::}}{{roll:}}{{roll:999999999999999999999d6}}{{pick}}", &ctx)
    }

    // MARK: the card's prompt

    @Test func storyStringExamplesAndGreetings() throws {
        let p = try Self.card()
        let rp = RoleplayPrompt(persona: p, history: [], input: "你好", lore: nil, inputs: .init(user: Self.zilong))
        #expect(rp.story == Self.story)
        #expect(rp.examples == Self.examples)
        #expect(rp.injections == [.init(depth: 0, text: "用古文回答子龙。")], "{{original}} is empty: Yanyi has no global instruction")
        #expect(p.greetings(for: Self.zilong) == ["“子龙大人深夜至此，有何吩咐？”", "“子龙，请坐。”"])
        #expect(RoleplayPrompt.exampleBlocks("  <START>\n\n<START>\na\n<START>b") == ["a", "b"])
    }

    /// Depth 0 goes after the newest message, depth 1 before it, deeper ones before earlier
    /// messages (joined to the user's text there: templates think in user and character turns).
    @Test func injectionsAtDepth() throws {
        var p = try Self.card()
        p.card = nil      // no card: a YAML persona's prompt with only the injections
        p.preamble = "前言"
        var rp = RoleplayPrompt(persona: p, history: [], input: "", lore: nil, inputs: .init())
        rp.injections = [.init(depth: 0, text: "[0]"), .init(depth: 1, text: "[1]"), .init(depth: 2, text: "[2]"),
                         .init(depth: 3, text: "[3]"), .init(depth: 9, text: "[9]")]
        let history: [Utterance] = [.user("问一"), .assistant("答一"), .user("问二"), .assistant("答二")]
        let (h, u) = rp.inject(history: history, input: "问三")
        #expect(h == [.user("[9]\n问一"), .assistant("答一"), .user("[3]\n问二\n[2]"), .assistant("答二")])
        #expect(u == "[1]\n问三\n[0]")
        // A hand-over template: the user's text ends by naming the speaker, so text goes before.
        p.template = "glm-cosplay"
        rp.persona = p
        #expect(rp.inject(history: [], input: "汝何人也？孔明曰：").input == "[9]\n[3]\n[2]\n[1]\n[0]\n汝何人也？孔明曰：")
    }

    /// Examples go before history: with too little room they are dropped (last first) before
    /// any history is.
    @Test func examplesAreDroppedFirst() throws {
        let p = try Self.card()
        let history: [Utterance] = [.user("问一"), .assistant("答一")]
        let rp = RoleplayPrompt(persona: p, history: history, input: "问二", lore: nil, inputs: .init(user: Self.zilong))
        let tok = ScalarTokenizer()
        func tokens(_ n: Int) throws -> Int {
            var q = p
            q.preamble = rp.preamble(examples: n)
            return try TurnPlan(persona: q, history: rp.inject(history: history, input: "问二").history,
                                utterance: rp.inject(history: history, input: "问二").input, tokenizer: tok,
                                contextLength: 100_000, defaultMaxNewTokens: 1).fitted.tokenIDs.count
        }
        let (all, one, none) = (try tokens(2), try tokens(1), try tokens(0))
        func plan(_ context: Int) throws -> TurnPlan {
            try rp.plan(history: history, input: "问二", tokenizer: tok, contextLength: context + 1, defaultMaxNewTokens: 1)
        }
        #expect(try plan(all).fitted.prompt.text.contains("无事。"))
        let a = try plan(all - 1)
        #expect(a.fitted.prompt.text.contains("妾乃貂蝉。") && !a.fitted.prompt.text.contains("无事。") && a.fitted.droppedForBudget.isEmpty)
        #expect(a.fitted.tokenIDs.count == one)
        let b = try plan(none)
        #expect(!b.fitted.prompt.text.contains("***") && b.fitted.droppedForBudget.isEmpty)
        let c = try plan(none - 1)
        #expect(!c.fitted.prompt.text.contains("***") && c.fitted.droppedForBudget.count == 2, "then history goes")
    }

    // MARK: through the runtime

    /// The whole prompt of a card's first and second turns through the runtime (the canned
    /// engine records the ids): profile, note, lore at a depth, examples, instructions.
    @Test func aCardTurnThroughTheRuntime() throws {
        let dir = try TempDir()
        let p = try Self.card()
        let library = PersonaLibrary(personas: [p])
        let store = try Runtime.store(dir)
        try store.setUserProfile(Self.zilong)
        let c = ChatController(options: .init(modelsRoot: "/m"), host: CannedModelHost(tokenDelay: 0, loadSeconds: 0, standInRoot: "/m"),
                               library: library, store: store, persona: p)
        #expect(c.userProfile == Self.zilong)
        #expect(c.conversation.path.map(\.text) == ["“子龙大人深夜至此，有何吩咐？”"], "greeting with {{user}}")
        try c.setNote(AuthorsNote(text: "（夜已深，{{char}}倦了）", depth: 2))
        let r = try c.send("吕布何在？")
        #expect(r.lore == ["吕布"])
        let engine = try #require(c.engine as? CannedEngine)
        let tok = ScalarTokenizer()
        let preamble = Self.story + "\n" + Self.examples.joined(separator: "\n")
        let first = preamble + "\n\n### Instruction:\n（夜已深，貂蝉倦了）\n吕布乃当世猛将。\n吕布何在？\n用古文回答子龙。\n\n### Response:\n"
        #expect(tok.decode(engine.requests[0].promptIDs, skipSpecialTokens: false) == first)

        // Second turn: the stored question is what was typed; the note is two messages up now.
        let reply = try #require(r.message).text
        _ = try c.send("王允呢？")
        let second = preamble.replacingOccurrences(of: "你扮演貂蝉。\n", with: "你扮演貂蝉。\n王允乃司徒。\n")
            + "\n\n### Instruction:\n吕布何在？\n（夜已深，貂蝉倦了）\n\n### Response:\n\(reply)\n\n"
            + "### Instruction:\n吕布乃当世猛将。\n王允呢？\n用古文回答子龙。\n\n### Response:\n"
        #expect(tok.decode(engine.requests[1].promptIDs, skipSpecialTokens: false) == second)
        #expect(c.conversation.path.filter { $0.role == .user }.map(\.text) == ["吕布何在？", "王允呢？"], "history keeps what was said")

        // The note and profile survive a resume; the note is the conversation's own.
        let id = try #require(c.sessionID)
        let again = try Runtime.store(dir).read(id).conversation
        #expect(again.note == AuthorsNote(text: "（夜已深，{{char}}倦了）", depth: 2))
        #expect(try Runtime.store(dir).userProfile() == Self.zilong)
    }

    /// Lorebooks attached to a conversation (not the persona) fire too, and are saved with it.
    @Test func lorebooksAttachedToAConversation() throws {
        let dir = try TempDir()
        let root = ChatFixtures.repo.appendingPathComponent("Personas").path
        let library = PersonaLibrary.load(from: root)
        let c = ChatController(options: .init(modelsRoot: "/m", personasRoot: root),
                               host: CannedModelHost(tokenDelay: 0, loadSeconds: 0, standInRoot: "/m"),
                               library: library, store: try Runtime.store(dir), persona: try #require(library.persona("assistants/plain")))
        #expect(throws: ChatError.self) { try c.attachLore(["no-such-book"]) }
        let r0 = try c.send("赤壁之战")
        #expect(r0.lore.isEmpty)
        try c.attachLore(["sanguo"])
        let r1 = try c.send("赤壁之战")
        #expect(!r1.lore.isEmpty)
        let id = try #require(c.sessionID)
        #expect(try Runtime.store(dir).read(id).conversation.lore == ["sanguo"])
        try c.attachLore([])
        #expect(try c.send("赤壁之战").lore.isEmpty)
    }

    /// A scene with a card: its group-only greetings open the scene; {{group}} names the cast.
    @Test func groupOnlyGreetingsInAScene() throws {
        let dir = try TempDir()
        let card = try Self.card()
        let shipped = PersonaLibrary.load(from: ChatFixtures.repo.appendingPathComponent("Personas").path)
        let liubei = try #require(shipped.persona("sanguo/liubei"))
        let library = PersonaLibrary(personas: [card, liubei])
        let c = ChatController(options: .init(modelsRoot: "/m"), host: CannedModelHost(tokenDelay: 0, loadSeconds: 0, standInRoot: "/m"),
                               library: library, store: try Runtime.store(dir), persona: liubei)
        try c.setScene([liubei.id, card.id])
        let texts = c.conversation.path.map(\.text)
        #expect(texts.last == "“诸位将军安好。”", "\(texts)")
        #expect(c.conversation.path.last?.persona == card.id && c.conversation.path.last?.greeting == true)
    }

    /// The note and lorebooks are saved with the conversation, go with a branch, and a damaged
    /// row is reported, not loaded.
    @Test func conversationSettingsAreStoredAndChecked() throws {
        let dir = try TempDir()
        let st = try Runtime.store(dir)
        let s = try st.create(persona: nil, title: "设定")
        let m = try s.add(.user, "问")
        try s.record(.note(AuthorsNote(text: "夜深", depth: 1)))
        try s.record(.lore(["sanguo", "honglou"]))
        var (c, w) = try st.read(s.id)
        #expect(c.note == AuthorsNote(text: "夜深", depth: 1) && c.lore == ["sanguo", "honglou"] && w.isEmpty)
        let b = try st.branch(s.id, at: m.id)
        #expect(try st.read(b.id).conversation.note?.text == "夜深" && st.read(b.id).conversation.lore.count == 2)
        try st.queue.write { db in try db.execute(sql: "UPDATE session_settings SET value = replace(value, '夜深', '日出') WHERE session_id = ?", arguments: [s.id]) }
        (c, w) = try st.read(s.id)
        #expect(c.note == nil && w.count == 1 && w[0].contains("note") && w[0].contains("damaged"), "\(w)")
        try s.record(.note(nil))
        try s.record(.lore([]))
        (c, w) = try st.read(s.id)
        #expect(c.note == nil && c.lore.isEmpty && w.isEmpty)
    }

    @Test func profileAndNoteAreChecked() throws {
        let dir = try TempDir()
        let c = try RuntimeRulesTests.controller(dir)
        #expect(throws: ChatError.self) { try c.setUserProfile(UserProfile(name: "  ")) }
        #expect(throws: ChatError.self) { try c.setNote(AuthorsNote(text: "x", depth: -1)) }
        try c.setUserProfile(UserProfile(name: " 子龙 ", description: " 护卫 "))
        #expect(c.userProfile == UserProfile(name: "子龙", description: "护卫"))
        try c.setNote(AuthorsNote(text: "x", depth: 0))
        #expect(c.conversation.note?.depth == 0)
        try c.setNote(nil)
        #expect(c.conversation.note == nil)
    }

    /// The line chat's commands for all of it.
    @Test func lineChatCommands() throws {
        let dir = try TempDir()
        let c = try RuntimeRulesTests.controller(dir)
        let out = ScriptedChat(c, ["/user 子龙 | 常山人", "/user", "/note 1 夜深", "/note", "/lore sanguo", "/lore", "/note off", "/lore off",
                                   "/lore nosuch"]).output
        #expect(out.contains("you are 子龙 — 常山人"))
        #expect(out.contains("author's note at depth 1: 夜深"))
        #expect(out.contains("conversation sanguo"))
        #expect(out.contains("author's note removed") && out.contains("lorebooks detached"))
        #expect(out.contains("error: ") && out.contains("nosuch"))
    }
}
