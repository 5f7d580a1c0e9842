import Chat
import Foundation
import Testing
@testable import TUI

// Scripted messages into update, rendered views compared with expected lines.

@Suite struct ConversationFlowTests {
    @Test func submitRecordsTheUtteranceAndRequestsAReply() {
        var (s, fx) = Fx.run(Fx.ready(), Fx.type("曹操将至") + [.key(.enter)])
        let r = Fx.request(fx)
        #expect(r?.utterance == "曹操将至，玄德曰：")
        #expect(r?.history == [])                                   // the greeting is not history for 刘备
        #expect(r?.persona.sampling.temperature == 0.1 && r?.persona.sampling.maxNewTokens == 128)
        #expect(s.input.isEmpty && s.generation != nil)
        #expect(fx.contains { if case .record(let ev) = $0 { ev.contains(.rename("曹操将至")) } else { false } })
        (s, fx) = Fx.reply(s, ["“", "备", "愿", "闻", "其", "详", "。”"])
        #expect(s.generation == nil)
        #expect(s.path.map(\.text) == ["备乃汉室宗亲。", "曹操将至，玄德曰：", "“备愿闻其详。”"])
        #expect(s.path.last?.persona == "sanguo/liubei" && s.path.last?.adapters == ["sanguo-cosplay×1"])
        #expect(s.lastStats?.tokensPerSecond == 10)
    }

    @Test func historyPaneShowsRolesNamesGroupsAndWrapsCJKByWidth() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("曹操大军将至，如之奈何") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["先取荆州为家，", "后取西川建基业。"])
        let lines = HistoryPane.lines(s, width: 20).map { $0.segments.map(\.0).joined() }
        #expect(lines == [
            "▍刘备 · 三国  开场白",
            "  备乃汉室宗亲。",
            "",
            "▍你",
            "  曹操大军将至，如之",
            "  奈何，玄德曰：",
            "",
            "▍刘备 · 三国",
            "  先取荆州为家，后取",
            "  西川建基业。",
            "",
        ])
        // Styled by role: the user's name in the user colour, 刘备's in his accent, bold.
        let styled = HistoryPane.lines(s, width: 20)
        #expect(styled[3].segments[0].1 == Style(.user, bold: true))
        #expect(styled[0].segments[0].1 == Style(paint: .rgb(0x2E, 0x8B, 0x57), bold: true))
    }

    @Test func streamingTextAppearsTokenByTokenWithLiveStats() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("问") + [.key(.enter)])
        #expect(HistoryPane.lines(s, width: 30).map { $0.segments.map(\.0).joined() }.suffix(3) == ["▍刘备 · 三国  思考中…", "  ▌", ""])
        (s, _) = Fx.reply(s, ["备", "以", "为"], finish: false)
        #expect(HistoryPane.lines(s, width: 30).map { $0.segments.map(\.0).joined() }.suffix(3) == ["▍刘备 · 三国", "  备以为▌", ""])
        let status = view(s).line(s.size.rows - 1)
        #expect(status.contains("10.0 tok/s"))     // 2 tokens after the first in 0.2 s
        #expect(status.contains("TTFT 0.10 s"))
        #expect(status.contains("ctx 23/2048"))
        (s, _) = Fx.run(s, [.backend(.token(id: s.generation!.id, text: "。"))])
        #expect(HistoryPane.lines(s, width: 30).map { $0.segments.map(\.0).joined() }.suffix(2).first == "  备以为。▌")
    }

    @Test func escapeCancelsAndKeepsThePartialReply() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("问") + [.key(.enter)])
        let id = s.generation!.id
        (s, _) = Fx.reply(s, ["备", "以"], finish: false)
        var fx: [Effect]
        (s, fx) = Fx.run(s, [.key(.escape)])
        #expect(fx.contains(.cancel(id)))
        #expect(s.generation == nil && s.path.last?.text == "备以")
        // The backend's late events for that request change nothing.
        let before = s
        (s, _) = Fx.run(s, [.backend(.token(id: id, text: "为")), .backend(.finished(id: id, reply: "备以为", stats: GenerationStats(
            promptTokens: 1, newTokens: 3, timeToFirstToken: 0, tokensPerSecond: 1, contextLimit: 2048), cancelled: true))])
        #expect(s.path == before.path && s.generation == nil)
    }

    @Test func retrySwipeContinueAndEditLast() {
        var (s, fx) = Fx.run(Fx.ready(), Fx.type("问") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["甲"])
        // Retry: a second reply beside the first, shown as 2/2.
        (s, fx) = Fx.run(s, [.key(.ctrl("r"))])
        #expect(Fx.request(fx)?.utterance == "问，玄德曰：")
        (s, _) = Fx.reply(s, ["乙"])
        #expect(s.path.last?.text == "乙")
        #expect(HistoryPane.lines(s, width: 30)[6].segments.map(\.0).joined() == "▍刘备 · 三国  ‹2/2›")
        // Swipe back to the first, forward again.
        (s, fx) = Fx.run(s, [.key(.altLeft)])
        #expect(s.path.last?.text == "甲")
        #expect(fx.contains { if case .record(let ev) = $0, case .select = ev.first { true } else { false } })
        (s, _) = Fx.run(s, [.key(.altRight)])
        #expect(s.path.last?.text == "乙")
        // Past the newest: a third is generated.
        (s, fx) = Fx.run(s, [.key(.altRight)])
        #expect(Fx.request(fx) != nil)
        (s, _) = Fx.reply(s, ["丙"])
        #expect(s.conversation.alternatives(of: s.path.last!.id).map(\.text) == ["甲", "乙", "丙"])
        // Continue: the reply so far is the prefix; the new text is appended in place.
        (s, fx) = Fx.run(s, [.key(.ctrl("t"))])
        #expect(Fx.request(fx)?.prefix == "丙")
        (s, _) = Fx.reply(s, ["丁"])
        #expect(s.path.last?.text == "丙丁")
        // Edit last: the typed text comes back without the handover; resending makes a sibling.
        (s, _) = Fx.run(s, [.key(.ctrl("x"))])
        #expect(s.input.string == "问" && s.editing != nil)
        (s, fx) = Fx.run(s, Fx.type("吗") + [.key(.enter)])
        #expect(Fx.request(fx)?.utterance == "问吗，玄德曰：")
        (s, _) = Fx.reply(s, ["戊"])
        let user = s.path[s.path.count - 2]
        #expect(s.conversation.alternatives(of: user.id).map(\.text) == ["问，玄德曰：", "问吗，玄德曰："])
        #expect(s.path.map(\.text).suffix(2) == ["问吗，玄德曰：", "戊"])
    }

    @Test func inputHistoryWalksWithUpAndDown() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("一") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["a"])
        (s, _) = Fx.run(s, Fx.type("二") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["b"])
        (s, _) = Fx.run(s, Fx.type("草稿") + [.key(.up)])
        #expect(s.input.string == "二")
        (s, _) = Fx.run(s, [.key(.up), .key(.up)])
        #expect(s.input.string == "一")
        (s, _) = Fx.run(s, [.key(.down), .key(.down)])
        #expect(s.input.string == "草稿")
    }

    @Test func multiLineInputAndPaste() {
        let (s, fx) = Fx.run(Fx.ready(), Fx.type("第一行") + [.key(.altEnter)] + Fx.type("第二") + [.key(.paste("行\n第三行"))])
        #expect(s.input.string == "第一行\n第二行\n第三行")
        #expect(Fx.request(fx) == nil)      // a pasted newline never sends
        let rows = view(s).lines
        let input = View.layout(s).input
        #expect(Array(rows[(input.y + 1)...(input.y + 3)]) == ["› 第一行", "  第二行", "  第三行"])
        #expect(view(s).cursor?.x == 2 + 6 && view(s).cursor?.y == input.y + 3)
    }

    @Test func notReadyOrBusyKeepsTheTextAndSaysWhy() {
        var s = State(size: TerminalSize(rows: 30, columns: 100), personas: Fx.all, persona: Fx.liubei, modelName: "glm-demo")
        s = Fx.run(s, [.choosePersona("sanguo/liubei"), .backend(.loadProgress(0.42, eta: 3))]).0
        let (t, fx) = Fx.run(s, Fx.type("问") + [.key(.enter)])
        #expect(Fx.request(fx) == nil && t.input.string == "问")
        #expect(view(t).line(28).contains("still loading (42%)"))
    }
}

@Suite struct WidgetTests {
    @Test func wholeScreenAtTheMinimumSize() {
        var (s, _) = Fx.run(Fx.ready(columns: 60, rows: 16), Fx.type("曹操大军将至，如之奈何？") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["“先取荆州为家，", "后取西川建基业。”"])
        let expected = [
            " 演义 Yanyi  曹操大军将至，如之奈   与 刘备（三国演义）对话",
            " ▍刘备 · 三国  开场白",
            "   备乃汉室宗亲。",
            "",
            " ▍你",
            "   曹操大军将至，如之奈何？玄德曰：",
            "",
            " ▍刘备 · 三国",
            "   “先取荆州为家，后取西川建基业。”",
            "",
            "",
            "",
            "── 输入 · Enter 发送 · Alt-Enter 换行 · ↑↓ 历史 ────────────",
            "›",
            "",
            " glm-demo · int8 │ 刘备 · 三国 │ sanguo-cosplay×1   F1 help",
        ]
        #expect(view(s).lines == expected)
        #expect(view(s).cursor.map { [$0.x, $0.y] } == [2, 13])
    }

    @Test func tooSmallShowsAMessageAndKeepsRunning() {
        var s = Fx.ready(columns: 40, rows: 10)
        let b = view(s)
        #expect(b.lines.contains { $0.contains("terminal too small: 40×10") })
        #expect(b.lines.contains { $0.contains("need at least 60×16") })
        (s, _) = Fx.run(s, Fx.type("还在") + [.resize(TerminalSize(rows: 30, columns: 100))])
        #expect(s.input.string == "还在")
        #expect(view(s).line(0).contains("演义 Yanyi"))
    }

    @Test func resizeRelaysOutAndHidesTheSidePanelWhenNarrow() {
        var s = Fx.ready(columns: 120, rows: 30)
        #expect(View.layout(s).side != nil && view(s).line(1).contains("Sliders"))
        (s, _) = Fx.run(s, [.resize(TerminalSize(rows: 20, columns: 70))])
        #expect(View.layout(s).side == nil && !view(s).text.contains("Sliders"))
        // Focusing the sliders shows the panel over the history's right side.
        (s, _) = Fx.run(s, [.key(.tab), .key(.tab)])
        #expect(s.focus == .sliders && view(s).line(1).contains("Sliders"))
    }

    @Test func slidersShowExactValuesAndApplyToTheNextReply() {
        var (s, _) = Fx.run(Fx.ready(), [.key(.tab), .key(.tab)])
        #expect(s.focus == .sliders)
        let panel = View.layout(s).sliders!
        func row(_ i: Int) -> String { String(view(s).line(panel.y + 1 + i).suffix(panel.width)) }
        #expect(row(0) == "│ max history  ━━─────────    10 │")
        #expect(row(3) == "│ temperature  ━──────────  0.10 │")
        (s, _) = Fx.run(s, [.key(.down), .key(.down), .key(.down), .key(.right), .key(.right), .key(.right)])
        #expect(s.sliders.temperature == 0.25)
        #expect(row(3) == "│ temperature  ━──────────  0.25 │")
        #expect(view(s)[panel.x + 2, panel.y + 4].style.bg == .role(.selection))   // the focused row
        (s, _) = Fx.run(s, [.key(.up), .key(.up), .key(.char(" ")), .key(.down), .key(.right), .key(.down), .key(.down), .key(.down), .key(.left)])
        #expect(s.sliders.doSample && s.sliders.beams == 2 && s.sliders.topK == 35)
        #expect(row(1) == "│ do sample    ━━━━━━━━━━━    on │")
        (s, _) = Fx.run(s, [.key(.char("0"))])
        #expect(s.sliders.topK == 40)                                  // back to the persona's
        (s, _) = Fx.run(s, [.key(.escape)] + Fx.type("问") + [.key(.enter)])
        let r = Fx.request(Fx.run(s, []).1 + (update(s, .tick(s.now)).1))
        _ = r
        let sampling = s.generation!.persona.sampling
        #expect(sampling.temperature == 0.25 && sampling.doSample == true && sampling.numBeams == 2 && sampling.topK == 40)
    }

    @Test func adapterScaleSliderAppliesAtOnce() {
        var (s, _) = Fx.run(Fx.ready(), [.key(.tab), .key(.tab)] + Array(repeating: .key(.down), count: 8))
        #expect(SliderSpec.all(s)[s.sliderIndex].id == .adapter(0))
        let fx: [Effect]
        (s, fx) = Fx.run(s, [.key(.left), .key(.left)])
        #expect(s.adapters[0].scale == 0.9)
        #expect(fx.last == .setAdapters([AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 0.9)]))
        #expect(view(s).line(s.size.rows - 1).contains("sanguo-cosplay×0.9"))
    }

    @Test func personaPickerGroupsFiltersAndShowsAdapters() {
        var (s, _) = Fx.run(Fx.ready(), [.key(.f(2))])
        let text = view(s).text
        for heading in ["三国 · 三国演义", "西游 · 西游记", "RulaiGPT", "assistants"] { #expect(text.contains(heading)) }
        #expect(text.contains("sanguo-cosplay×1") && text.contains("classics-cosplay×0.8") && text.contains("no adapters"))
        // Group order: 三国, 西游, …, RulaiGPT, assistants — whatever order the library had.
        let order = ["三国 · 三国演义", "西游 · 西游记", "RulaiGPT", "assistants"].map { h in view(s).lines.firstIndex { $0.contains(h) }! }
        #expect(order == order.sorted())
        (s, _) = Fx.run(s, Fx.type("行者"))
        #expect(PersonaGroups.filtered(s.personas, "行者").map(\.id) == ["xiyou/sunwukong"])
        #expect(!view(s).text.contains("刘备  ") && view(s).text.contains("孙悟空"))
        let fx: [Effect]
        (s, fx) = Fx.run(s, [.key(.enter)])
        #expect(s.persona?.id == "xiyou/sunwukong" && s.overlay == nil)
        #expect(s.path.map(\.text) == ["俺老孙来也！"])                 // nothing said yet: starts over with the greeting
        #expect(s.adapters.map(\.path) == ["/m/adapters/classics-cosplay"] && s.adapters[0].scale == 0.8)
        #expect(fx.contains(.loadAdapter("/m/adapters/classics-cosplay")))
        #expect(view(s).line(0).hasSuffix("与 孙悟空（西游记）对话"))
    }

    @Test func switchingPersonaMidConversationIsNotedAndRecorded() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("问") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["答"])
        let fx: [Effect]
        (s, fx) = Fx.run(s, [.choosePersona("sanguo/caocao")])
        #expect(s.path.last?.role == .system && s.path.last?.text == "换成 曹操（三国）")
        #expect(s.conversation.persona == "sanguo/caocao")
        #expect(fx.contains { if case .record(let ev) = $0 { ev.first == .persona("sanguo/caocao") } else { false } })
        (s, _) = Fx.run(s, Fx.type("再问") + [.key(.enter)])
        #expect(s.generation?.persona.id == "sanguo/caocao" && s.path.last?.text == "再问，操曰：")
    }

    @Test func adapterPanelLoadsUnloadsTogglesAndScales() {
        var (s, fx) = Fx.run(Fx.ready(), [.key(.f(4)), .key(.char("l"))] + Fx.type("/a/llama-qv") + [.key(.enter)])
        #expect(fx.last == .loadAdapter("/a/llama-qv"))
        #expect(s.adapters.map(\.name) == ["sanguo-cosplay", "llama-qv"] && s.adapters[1].status == .loading)
        (s, fx) = Fx.run(s, [.backend(.adapterLoaded(path: "/a/llama-qv", AdapterInfo(summary: "8 modules, r 8")))])
        #expect(fx.last == .setAdapters([AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 1), AdapterSetting(path: "/a/llama-qv", scale: 1)]))
        let panel = View.layout(s).adapters!
        let rows = view(s).lines[(panel.y + 1)...(panel.y + 4)].map { String($0.suffix(panel.width)) }
        #expect(rows == ["│ [x] sanguo-cosplay       ×1.00 │", "│     28 modules, r 8 · persona  │",
                         "│ [x] llama-qv             ×1.00 │", "│     8 modules, r 8             │"])
        (s, fx) = Fx.run(s, [.key(.char(" ")), .key(.right)])
        #expect(s.adapters[1].enabled == false && s.adapters[1].scale == 1.05)
        #expect(fx.last == .setAdapters([AdapterSetting(path: "/m/adapters/sanguo-cosplay", scale: 1)]))
        #expect(view(s).line(panel.y + 3).hasSuffix("│ [ ] llama-qv             ×1.05 │"))
        (s, fx) = Fx.run(s, [.key(.char("u"))])
        #expect(s.adapters.map(\.name) == ["sanguo-cosplay"] && view(s).line(s.size.rows - 2).contains("unloaded llama-qv"))
        // A folder that fails: a one-line error, the entry says why.
        (s, _) = Fx.run(s, [.key(.char("l"))] + Fx.type("/nope") + [.key(.enter),
                  .backend(.adapterFailed(path: "/nope", message: "/nope/adapter_config.json: cannot read"))])
        #expect(view(s).line(s.size.rows - 2) == " ✗ /nope/adapter_config.json: cannot read")
        #expect(view(s).text.contains("failed: /nope/adapter_co"))
    }

    @Test func statusLineShowsModelPersonaAdaptersAndStats() {
        var (s, _) = Fx.run(Fx.ready(columns: 140), Fx.type("问") + [.key(.enter)])
        (s, _) = Fx.reply(s, ["甲", "乙"])
        let line = view(s).line(29)
        #expect(line.hasPrefix(" glm-demo · int8 │ 刘备 · 三国 │ sanguo-cosplay×1 │ 10.0 tok/s │ TTFT 0.10 s │ ctx 22/2048   "))
        #expect(line.hasSuffix("   F1 help") && line.displayWidth == 139)
    }

    @Test func loadProgressBarWithPercentAndETA() {
        var s = State(size: TerminalSize(rows: 20, columns: 80), personas: Fx.all, persona: Fx.liubei, modelName: "glm-demo")
        s = Fx.run(s, [.backend(.loadProgress(0.5, eta: 3))]).0
        #expect(view(s).line(18) == " loading glm-demo [█████████████████████░░░░░░░░░░░░░░░░░░░░░]  50%  ETA 3.00 s")
        #expect(view(s).line(19).contains("glm-demo · loading 50%"))
        s = Fx.run(s, [.backend(.loadFailed("Models/glm-demo: no such folder"))]).0
        #expect(view(s).line(18) == " ✗ Models/glm-demo: no such folder")
    }

    @Test func helpOverlayListsEveryKey() {
        var (s, _) = Fx.run(Fx.ready(columns: 120, rows: 40), [.key(.f(1))])
        let text = view(s).text
        for section in Keymap.sections {
            #expect(text.contains(section.title))
            for e in section.entries { #expect(text.contains(e.keys.map(\.label).joined(separator: " ").prefix(18)), "\(e.action)") }
        }
        (s, _) = Fx.run(s, [.key(.char("x"))])
        #expect(s.overlay == nil && s.input.isEmpty)                 // the key closed help, nothing typed
        (s, _) = Fx.run(s, [.key(.tab), .key(.char("?"))])
        #expect(s.overlay == .help(0))                               // ? outside the input line
        (s, _) = Fx.run(s, [.key(.escape), .key(.escape), .key(.char("?"))])
        #expect(s.input.string == "?")                               // in the input line it is text
        // Narrow and short: one column, scrolled.
        var t = Fx.run(Fx.ready(columns: 70, rows: 20), [.key(.f(1))]).0
        #expect(view(t).text.contains("Anywhere") && !view(t).text.contains("Pickers and lists"))
        t = Fx.run(t, Array(repeating: .key(.pageDown), count: 5)).0
        #expect(view(t).text.contains("Pickers and lists"))
    }

    @Test func themesSwitchLive() {
        var s = Fx.ready()
        let ink = Theme(id: "ink", name: "水墨 (ink)", colours: Theme.builtIn.colours)
        s.themes = [Theme.builtIn, ink]
        (s, _) = Fx.run(s, [.key(.f(8))])
        #expect(s.theme.id == "ink" && view(s).line(28).contains("theme: 水墨 (ink)"))
        (s, _) = Fx.run(s, [.key(.f(8))])
        #expect(s.theme.id == "dark")
    }

    @Test func historyFocusSelectsScrollsAndBranches() {
        var s = Fx.ready(columns: 70, rows: 16)
        for i in 0..<4 {
            s = Fx.run(s, Fx.type("第\(i)问") + [.key(.enter)]).0
            s = Fx.reply(s, ["第\(i)答"]).0
        }
        s.conversation.id = "20260101-000000"
        var fx: [Effect]
        (s, _) = Fx.run(s, [.key(.tab)])
        #expect(s.focus == .history && s.selected == 8)
        (s, _) = Fx.run(s, [.key(.home)])
        #expect(s.selected == 0 && s.scroll > 0 && view(s).text.contains("开场白"))
        (s, fx) = Fx.run(s, [.key(.down), .key(.down), .key(.char("b"))])
        #expect(fx == [.branchSession("20260101-000000", at: s.path[2].id)])
        (s, _) = Fx.run(s, [.key(.end)])
        #expect(s.scroll == 0)
        (s, _) = Fx.run(s, [.key(.pageUp)])
        #expect(s.scroll > 0 && view(s).text.contains("more"))
    }

    @Test func sessionListResumesStartsAndBranches() throws {
        let dir = TempDir()
        let store = try SessionStore(directory: dir.path)
        let a = try store.create(persona: "sanguo/liubei", title: "荆州之议")
        try a.add(.user, "问")
        try a.add(.assistant, "答")
        var (s, fx) = Fx.run(Fx.ready(), [.key(.f(3))])
        #expect(fx == [.listSessions] && view(s).text.contains("reading…"))
        (s, _) = Fx.run(s, [.sessionsListed(store.list().sessions, errors: [])])
        #expect(view(s).text.contains("荆州之议") && view(s).text.contains("2 msgs"))
        (s, fx) = Fx.run(s, [.key(.enter)])
        #expect(fx == [.resumeSession(a.id)] && s.overlay == nil)
        (s, _) = Fx.run(s, [.sessionOpened(try store.read(a.id).conversation, warnings: [])])
        #expect(s.path.map(\.text) == ["问", "答"] && s.conversation.id == a.id)
        (s, fx) = Fx.run(s, [.key(.ctrl("s")), .sessionsListed(store.list().sessions, errors: []), .key(.char("b"))])
        #expect(fx.last == .branchSession(a.id, at: ""))
        (s, fx) = Fx.run(s, [.key(.ctrl("n"))])
        #expect(fx == [.closeSession] && s.path.map(\.text) == ["备乃汉室宗亲。"] && s.conversation.id.isEmpty)
    }

    @Test func lowerLayerErrorsAreOneLine() {
        var (s, _) = Fx.run(Fx.ready(), Fx.type("问") + [.key(.enter)])
        (s, _) = Fx.run(s, [.backend(.failed(id: s.generation!.id, message: "Personas/sanguo/liubei.yaml: history.overflow: the conversation no longer fits\nsecond line"))])
        #expect(s.generation == nil)
        let line = view(s).line(28)
        #expect(line.hasPrefix(" ✗ Personas/sanguo/liubei.yaml: history.overflow") && !line.contains("\n"))
        (s, _) = Fx.run(s, [.failed("not saved: /x: write failed")])
        #expect(view(s).line(28) == " ✗ not saved: /x: write failed")
        (s, _) = Fx.run(s, [.key(.char("a"))])
        #expect(s.notice == nil)            // an error stays until the next key
    }
}

@Suite struct KeymapTests {
    /// Every key listed under "Anywhere" does something from an ordinary state.
    @Test func everyGlobalKeyDoesSomething() {
        var base = Fx.ready(columns: 70, rows: 16)
        for q in ["一问", "二问", "问"] {
            base = Fx.run(base, Fx.type(q) + [.key(.enter)]).0
            base = Fx.reply(base, ["甲"]).0
        }
        base = Fx.run(base, [.key(.ctrl("r"))]).0
        base = Fx.reply(base, ["乙"]).0
        base.themes = [Theme.builtIn, Theme(id: "x", name: "x", colours: [:])]
        base.focus = .history
        base.notice = Notice(text: "n", kind: .info, at: base.now)
        for e in Keymap.sections[0].entries {
            for k in e.keys {
                var from = base
                if k == .escape || k == .ctrl("c") { from = Fx.run(base, [.key(.ctrl("r"))]).0 }   // while a reply streams
                if k == .pageDown { from.scroll = 3 }
                let (s, fx) = update(from, .key(k))
                #expect(s != from || !fx.isEmpty, "\(k.label): \(e.action)")
            }
        }
    }
}

@Suite struct RobustnessTests {
    /// Thousands of random keys, engine events and sizes (down to 1×1): update and view never
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
        var s = Fx.ready(columns: 90, rows: 24)
        s.themes = [Theme.builtIn]
        for i in 0..<3000 {
            var msg: Msg
            switch next(10) {
            case 0:
                msg = .resize(TerminalSize(rows: 1 + next(40), columns: 1 + next(130)))
            case 1:
                let id = s.generation?.id ?? next(5)
                let events: [BackendEvent] = [
                    .token(id: id, text: ["甲", "", "e\u{301}", "😀", "\n", "\t"][next(6)]),
                    .finished(id: id, reply: "完", stats: GenerationStats(promptTokens: 3, newTokens: 2, timeToFirstToken: 0.1, tokensPerSecond: 5, contextLimit: 64), cancelled: false),
                    .failed(id: id, message: "boom"), .started(id: id, promptTokens: 5, contextLimit: 64, dropped: 1),
                    .adapterLoaded(path: "/x", AdapterInfo(summary: "s")), .adapterFailed(path: "/m/adapters/sanguo-cosplay", message: "bad"),
                    .loadProgress(0.3, eta: nil), .notice("n"),
                ]
                msg = .backend(events[next(events.count)])
            case 2:
                msg = [.sessionsListed([], errors: ["e"]), .choosePersona(Fx.all[next(Fx.all.count)].id), .addAdapter("/x", scale: 3), .tick(Double(1000 + i))][next(4)]
            default:
                msg = .key(keys[next(keys.count)])
            }
            let (n, _) = update(s, msg)
            s = n
            if s.quit { s.quit = false }
            let b = view(s)
            #expect(b.rows == s.size.rows && b.columns == s.size.columns)
        }
    }
}

/// Picking a persona made for another base loads that base (its adapters are checked against
/// it), unless the user named the model with --model.
@Suite struct PersonaBaseSwitchTests {
    @Test func aPersonaOnAnotherBaseLoadsIt() {
        let s = Fx.ready()                                      // glm-demo loaded, 刘备
        let (t, fx) = Fx.run(s, [.choosePersona(Fx.rulai.id)])
        let loadAt = fx.firstIndex(of: .loadModel("/m/baichuan-demo"))
        #expect(loadAt != nil)
        #expect(fx.firstIndex(of: .loadAdapter("/m/adapters/rulai-v2")).map { $0 > loadAt! } == true)
        if case .loading = t.model {} else { Issue.record("model should be loading, is \(t.model)") }
        #expect(t.modelName == "baichuan-demo")
        let (u, _) = Fx.run(t, [.backend(.loaded(ModelInfo(name: "baichuan-demo", precision: "int8", contextLength: 4096)))])
        #expect(u.model == .ready(ModelInfo(name: "baichuan-demo", precision: "int8", contextLength: 4096)))
        // Same base: nothing reloads.
        let (_, same) = Fx.run(s, [.choosePersona(Fx.caocao.id)])
        #expect(!same.contains { if case .loadModel = $0 { true } else { false } })
    }

    @Test func aPinnedModelStays() {
        var s = Fx.ready()
        s.modelPinned = true
        let (t, fx) = Fx.run(s, [.choosePersona(Fx.rulai.id)])
        #expect(!fx.contains { if case .loadModel = $0 { true } else { false } })
        #expect(t.model == .ready(ModelInfo(name: "glm-demo", precision: "int8", contextLength: 2048)))
    }
}
