import Chat
import Foundation
import Testing
@testable import TUI

/// The TUI over the real conversation runtime (canned engine): keys in, screens and the
/// runtime's conversation out.
@Suite struct UpdateViewTests {
    /// Enter: the runtime records the question (the persona's hand-over in the prompt, not on
    /// screen) and streams the reply; the engine got the persona's prompt.
    @Test func sendShowsWhatWasTypedAndStreamsTheReply() throws {
        let h = Fx.harness().send("曹操大军将至，如之奈何？")
        let path = h.controller.conversation.path
        #expect(path.map(\.role) == [.assistant, .user, .assistant])
        #expect(path[1].text == "曹操大军将至，如之奈何？玄德曰：")
        #expect(h.screen.contains("曹操大军将至，如之奈何？") && !h.screen.contains("玄德曰："), "\(h.screen)")
        #expect(h.state.conversation == h.controller.conversation && h.state.generation == nil && h.state.input.isEmpty)
        let prompt = try #require(h.engine?.requests.last)
        #expect(ScalarTokenizer().decode(prompt.promptIDs, skipSpecialTokens: false).hasSuffix("曹操大军将至，如之奈何？玄德曰："))
        #expect(h.screen.contains("然后可图中原也"))
    }

    /// The status line: model, persona, adapters, tok/s, time to first text, context — and after
    /// a change of model no figures of the old one.
    @Test func statusLineFiguresAreFresh() {
        let h = Fx.harness()
        h.runtime.dispatch(.key(.enter))
        _ = h.type("问")
        h.runtime.dispatch(.key(.enter))   // the reply runs inline; its events wait
        h.tick(0.114)                       // the first text shows 114 ms after the key
        h.runtime.pump()
        let status = h.lines.last!
        #expect(status.contains("fake · canned") && status.contains("刘备 · 三国") && status.contains("sanguo-cosplay×1"), "\(status)")
        #expect(status.contains("TTFT 0.11 s") || status.contains("TTFT 114 ms"), "\(status)")
        #expect(status.contains("ctx "), "\(status)")
        h.dispatch(.loaded(EngineInfo(name: "other", precision: "int8", contextLength: 4096, family: "LLaMA")))
        #expect(!h.lines.last!.contains("ctx "), "a figure of the old model stays: \(h.lines.last!)")
    }

    /// Retry keeps the old reply as an alternative, swipes move between them, past the last one
    /// a swipe asks for a new reply; continue extends; F7 brings the question back as typed and
    /// Enter asks it again beside the old one.
    @Test func retrySwipeContinueAndEdit() {
        let h = Fx.harness().send("一问")
        h.keys([.ctrl("r")])
        var c = h.controller.conversation
        let reply = c.head!
        #expect(c.alternatives(of: reply.id).count == 2 && h.screen.contains("‹2/2›"))
        h.keys([.altLeft])
        #expect(h.controller.conversation.head!.id != reply.id && h.screen.contains("‹1/2›"))
        h.keys([.altRight, .altRight])   // to the newest, then past it: a third reply
        #expect(h.controller.conversation.alternatives(of: reply.id).count == 3)
        h.keys([.ctrl("t")])
        #expect(h.controller.conversation.head!.text.hasSuffix("且听下回分解。"))
        h.keys([.f(7)])
        #expect(h.state.input.string == "一问" && h.state.editing != nil)
        _ = h.type("再").keys([.enter])
        c = h.controller.conversation
        let q = c.path[c.path.count - 2]
        #expect(q.text == "一问再，玄德曰：" && c.alternatives(of: q.id).count == 2 && h.state.editing == nil)
    }

    /// The sliders show what the next reply uses: the persona's values, and what it leaves unset
    /// inherited (top-k 50, transformers' default) — moving one sets only that one.
    @Test func slidersShowResolvedValuesAndSetOnlyWhatMoved() {
        let h = Fx.harness(columns: 120, persona: Fx.caocao)   // 曹操 sets no sampling at all
        #expect(h.state.setting("top_k") == "50" && h.state.setting("temperature") == "1.0")
        #expect(h.screen.contains("top-k") && h.screen.contains("min-p") && h.screen.contains("no-repeat n") && h.screen.contains("seed"))
        h.keys([.tab, .tab])   // sliders
        #expect(h.state.focus == .sliders)
        h.keys([.down, .down, .down, .right])   // temperature +0.05
        #expect(h.controller.overrides.entries.map(\.key) == ["temperature"])
        #expect(h.state.setting("temperature") == "1.05" && h.state.setting("top_k") == "50")
        h.keys([.char(" ")])   // do-sample from any row
        #expect(h.state.setting("do_sample") == "true")
        h.keys([.char("0")])
        #expect(h.controller.overrides.entries.map(\.key) == ["do_sample"])
        // Enter types an exact value.
        h.keys([.enter, .ctrl("u")])
        _ = h.type("0.7").keys([.enter])
        #expect(h.state.setting("temperature") == "0.7")
    }

    /// Max new tokens stops below the model's context; a value that would drop history says so.
    @Test func maxTokensIsBoundedByTheContext() {
        let h = Fx.harness(columns: 120).send("问")
        let spec = SliderSpec.all(h.state).first { $0.id == .setting("max_new_tokens") }!
        #expect(spec.range(h.state).upperBound == 2047)
        var s = h.state
        var fx: [Effect] = []
        spec.set(4096, &s, &fx)
        #expect(fx == [.set("max_new_tokens", "2047")])
        let warning = try? h.controller.set("max_new_tokens", "2040")
        #expect(warning?.contains("leaves out") == true, "\(String(describing: warning))")
    }

    /// A folder that does not load never joins the panel; the error is said whole. The dialog
    /// resolves paths against Models/ and lists what is there.
    @Test func adapterPanelLoadsOnlyWhatLoads() {
        let h = Fx.harness(columns: 120)
        h.keys([.f(4), .char("l")])
        guard case .adapterPath = h.state.overlay else { Issue.record("no dialog"); return }
        _ = h.type("/no/such/adapter").keys([.enter])
        #expect(h.state.adapters.map(\.name) == ["sanguo-cosplay"])
        #expect(h.state.notice?.kind == .error && h.state.notice!.text.contains("/no/such/adapter"))
        let fixture = Fx.path("Tests/Fixtures/adapters/llama-qv")
        h.keys([.char("l")])
        _ = h.type(fixture).keys([.enter])
        #expect(h.state.adapters.map(\.name) == ["sanguo-cosplay", "llama-qv"] && h.screen.contains("[x] llama-qv"))
        h.keys([.down, .char(" ")])
        #expect(h.controller.adapters[1].enabled == false && h.screen.contains("[ ] llama-qv"))
        h.keys([.right])
        #expect(h.controller.adapters[1].multiplier == 1.05)
        // Hand-loaded adapters stay with the persona they were loaded for.
        h.dispatch(.key(.f(2)))
        _ = h.type("曹操").keys([.enter])
        #expect(h.state.persona?.id == "sanguo/caocao" && h.controller.adapters.map(\.name) == ["sanguo-cosplay"])
        #expect(h.engine?.adapters.map(\.path) == ["/m/adapters/sanguo-cosplay"])
    }

    @Test func headingsNameAPersonaOnce() {
        let h = Fx.harness(persona: Fx.rulai)
        #expect(h.screen.contains("RulaiGPT") && !h.screen.contains("RulaiGPT · RulaiGPT"), "\(h.screen)")
        #expect(HistoryPane.title(Fx.liubei) == "刘备 · 三国")
    }

    /// A stopped reply: Esc asks the runtime; the reply it saves ends without the space the next
    /// token would have followed.
    @Test func escapeStopsThroughTheRuntime() {
        var s = Fx.harness().state
        s.generation = Generation(kind: .reply, persona: Fx.liubei, startedAt: 0)
        let (t, fx) = update(s, .key(.escape))
        #expect(fx == [.cancel] && t.generation?.stopping == true && t.notice?.text == "stopping…")
        let (u, fx2) = update(t, .key(.escape))
        #expect(fx2.isEmpty && u.generation?.stopping == true)
    }

    /// Keys and help agree: every entry of the keymap shows in help, ? on an empty line opens it,
    /// the focus hint names Esc.
    @Test func helpListsTheKeymapAndKeysDoWhatItSays() {
        let h = Fx.harness(columns: 120, rows: 60)
        h.keys([.char("?")])
        #expect(h.state.overlay == .help(0))
        let text = h.screen
        for section in Keymap.sections {
            #expect(text.contains(section.title))
            for e in section.entries { #expect(text.contains(e.text.prefix(24)), "\(e.text)") }
        }
        #expect(text.contains("Home") && text.contains("End"))
        h.keys([.char("x")])
        #expect(h.state.overlay == nil && h.state.input.isEmpty)
        _ = h.type("a?")
        #expect(h.state.input.string == "a?")
        h.keys([.ctrl("u"), .tab])
        #expect(h.screen.contains("Esc 回到输入") && !h.screen.contains("Tab 回到输入"))
    }

    /// Every key of the "Anywhere" table changes the state or asks the runtime for something.
    @Test func everyGlobalKeyDoesSomething() {
        let h = Fx.harness(columns: 80, rows: 20).send("一问").send("二问")
        var base = h.state
        base.themes = [Theme.builtIn, Theme(id: "x", name: "x", colours: [:])]
        base.focus = .history
        base.selected = 1
        base.notice = Notice(text: "n", kind: .info, at: base.now)
        for e in Keymap.anywhere.entries {
            for k in e.keys {
                var from = base
                if k == .escape || k == .ctrl("c") { from.generation = Generation(kind: .reply, startedAt: 0) }
                if k == .pageDown { from.scroll = 3 }
                let (s, fx) = update(from, .key(k))
                #expect(s != from || !fx.isEmpty, "\(k.label): \(e.text)")
            }
        }
    }

    @Test func tooSmallShowsAMessageAndKeepsRunning() {
        let h = Fx.harness(columns: 40, rows: 10)
        #expect(h.lines.contains { $0.contains("terminal too small: 40×10") })
        _ = h.type("还在")
        h.dispatch(.resize(TerminalSize(rows: 30, columns: 100)))
        #expect(h.state.input.string == "还在" && view(h.state).line(0).contains("演义 Yanyi"))
    }

    /// The session list shows ids (what --resume takes) and whole dates; Enter resumes.
    @Test func sessionListShowsIdsAndDates() {
        let h = Fx.harness(columns: 120).send("一问")
        let id = h.controller.sessionID!
        h.keys([.ctrl("n")])
        #expect(h.controller.sessionID == nil)
        h.keys([.f(3)])
        #expect(h.screen.contains(id) && h.screen.contains(SessionSummary.dateText(1_800_000_000)), "\(h.screen)")
        h.keys([.enter])
        #expect(h.controller.sessionID == id && h.state.conversation.path.count == 3)
    }

    /// Thousands of random keys and runtime reports (sizes down to 1×1): update and view never
    /// trap, and the screen always has the size asked for.
    @Test func randomInputNeverCrashes() {
        var seed: UInt64 = 0x5EED
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        let keys: [Key] = [.char("问"), .char("a"), .char(" "), .char("?"), .char("l"), .char("u"), .char("b"), .char("["), .char("]"),
                           .char("0"), .char("n"), .enter, .tab, .backTab, .backspace, .delete, .escape, .up, .down, .left, .right,
                           .home, .end, .pageUp, .pageDown, .altLeft, .altRight, .altEnter, .f(1), .f(2), .f(3), .f(4), .f(5),
                           .f(6), .f(7), .f(8), .ctrl("r"), .ctrl("t"), .ctrl("x"), .ctrl("n"), .ctrl("w"), .ctrl("u"),
                           .ctrl("k"), .ctrl("p"), .ctrl("s"), .paste("一\n二"), .ctrl("j")]
        let h = Fx.harness(columns: 90, rows: 24)
        for i in 0..<1500 {
            let msg: Msg
            switch next(10) {
            case 0: msg = .resize(TerminalSize(rows: 1 + next(40), columns: 1 + next(130)))
            case 1:
                msg = [.delta(["甲", "", "e\u{301}", "😀", "\n", "\t"][next(6)]), .replyFailed("boom"), .notice("n"),
                       .replyStarted(promptTokens: 5, contextLength: 64, dropped: 1), .loadProgress(0.3, eta: nil),
                       .replyFinished(ReplyEnd(partial: true, saved: false, error: nil, tokensPerSecond: 1, timeToFirstText: nil,
                                               promptTokens: 1, newTokens: 0)),
                       .sessionsListed([], errors: ["e"]), .tick(Double(1000 + i))][next(8)]
            default: msg = .key(keys[next(keys.count)])
            }
            if case .key(.ctrl("q")) = msg { continue }
            h.dispatch(msg)
            let b = view(h.state)
            #expect(b.rows == h.state.size.rows && b.columns == h.state.size.columns)
        }
    }

    /// A card imported by path in the picker joins the list and can be chosen; the highlighted
    /// persona exports as a card file.
    @Test func cardsImportAndExportFromThePicker() throws {
        let h = Fx.harness(columns: 120, rows: 40)
        h.keys([.f(2), .ctrl("o")])
        _ = h.type(Fx.path("Tests/Fixtures/chat/cards/v1.json")).keys([.enter])
        #expect(h.state.personas.contains { $0.id == "cards/v1" }, "\(h.state.notice?.text ?? "")")
        #expect(FileManager.default.fileExists(atPath: h.dir.path + "/Personas/cards/v1.json"))
        h.keys([.f(2)])
        _ = h.type("貂蝉")
        #expect(h.screen.contains("cards/v1"))
        let out = h.dir.path + "/diaochan.png"
        h.keys([.ctrl("e"), .ctrl("u")])
        _ = h.type(out).keys([.enter])
        let (card, png) = try CharacterCard.read(out)
        #expect(card.name == "貂蝉" && png != nil)
        h.keys([.f(2)])
        _ = h.type("貂蝉").keys([.enter])
        #expect(h.controller.persona.id == "cards/v1" && h.state.persona?.id == "cards/v1")
    }

    /// The session list searches what was said, renames and deletes (d twice).
    @Test func sessionListSearchesRenamesAndDeletes() {
        let h = Fx.harness(columns: 120, rows: 40).send("荆州之事")
        let first = h.controller.sessionID!
        h.keys([.ctrl("n")])
        _ = h.send("赤壁鏖兵")
        let second = h.controller.sessionID!
        h.keys([.f(3), .char("/")])
        _ = h.type("赤壁").keys([.enter])   // only the second question says it (the canned replies do not)
        guard case .sessions(let found) = h.state.overlay else { Issue.record("no list"); return }
        #expect(found.sessions.map(\.id) == [second] && found.query == "赤壁")
        h.keys([.char("r"), .ctrl("u")])
        _ = h.type("赤壁之战").keys([.enter])
        #expect(h.controller.store.list().sessions.first { $0.id == second }?.title == "赤壁之战")
        #expect(h.state.conversation.title == "赤壁之战", "the open conversation's title follows")
        h.keys([.char("/"), .enter])   // an empty search lists every session again
        guard case .sessions(let all) = h.state.overlay else { Issue.record("no list"); return }
        let at = all.sessions.firstIndex { $0.id == first }!
        h.keys(Array(repeating: .down, count: at) + [.char("d")])
        #expect(h.controller.store.list().sessions.count == 2, "one d only asks")
        h.keys([.char("d")])
        #expect(h.controller.store.list().sessions.map(\.id) == [second] && h.controller.sessionID == second)
    }

    /// A three-character scene from the picker: marked with Ctrl-T, started with Enter; a line
    /// naming one gets that one's reply, F9 lets the next in turn speak.
    @Test func aSceneFromThePicker() {
        let h = Fx.harness(columns: 120, rows: 40)
        h.keys([.f(2)])
        for name in ["刘备", "曹操", "孙悟空"] {
            h.keys([.ctrl("u")])
            _ = h.type(name).keys([.ctrl("t")])
        }
        h.keys([.enter])
        #expect(h.controller.cast.map(\.name) == ["刘备", "曹操", "孙悟空"], "\(h.state.notice?.text ?? "")")
        _ = h.send("诸君以为如何？")   // nobody named, nobody spoke yet: the first in turn
        _ = h.send("曹操以为如何？")   // named
        h.keys([.f(9)])
        let replies = h.controller.conversation.path.filter { $0.role == .assistant && $0.greeting != true }
        #expect(replies.map(\.persona) == ["sanguo/liubei", "sanguo/caocao", "xiyou/sunwukong"], "\(replies.map(\.persona))")
        #expect(h.controller.engine.flatMap { ($0 as? CannedEngine)?.adapterLog.last } == [AdapterSetting(path: "/m/adapters/classics-cosplay", scale: 0.8)])
        #expect(h.screen.contains("场景：刘备、曹操、孙悟空"))
    }
}
