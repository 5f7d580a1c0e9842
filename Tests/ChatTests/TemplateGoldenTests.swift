import Engine
import Foundation
import Testing
@testable import Chat

/// Every template's rendered prompt, byte for byte, and its token ids against what the seed
/// systems' Python formatting code and the real tokenizers gave (Tests/Fixtures/chat/templates.json,
/// written by tools/fixtures/make_template_fixtures.py).
@Suite struct TemplateGoldenTests {
    struct Case: Decodable {
        var name: String
        var template: String
        var history: [[String]]
        var input: String
        var max_history: Int?
        var preamble: String?
        var text: String
        var add_special_tokens: Bool
        var model_folder: String
        var ids: [Int32]
    }
    struct File: Decodable { var cases: [Case] }

    static let cases = (try? ChatFixtures.json("templates.json", as: File.self).cases) ?? []

    @Test func fixtureCoversEveryTemplate() {
        #expect(Set(Self.cases.map(\.template)) == Set(TemplateRegistry.ids))
        #expect(Self.cases.count >= 30)
    }

    @Test(arguments: cases.map(\.name)) func rendersLikeTheSeed(name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let template = try #require(TemplateRegistry.make(c.template, .init(preamble: c.preamble)))
        let tokenizer = try TokenizerLoader.load(folder: ChatFixtures.path(c.model_folder))
        // max_history applied by the budget with room to spare: only the seed's own limit acts.
        let fitted = try PromptBudget(contextLength: 1_000_000, maxNewTokens: 1)
            .fit(template, history: utterances(c.history), input: c.input, maxHistory: c.max_history, tokenizer: tokenizer)
        #expect(fitted.droppedForBudget.isEmpty)
        #expect(Array(fitted.prompt.text.utf8) == Array(c.text.utf8), "\(name): prompt text differs")
        #expect(fitted.prompt.addSpecialTokens == c.add_special_tokens)
        #expect(fitted.tokenIDs == c.ids, "\(name): token ids differ")
    }

    @Test func cosplayCountsUtterancesNotRounds() {
        let t = GLMCosplayTemplate()
        let h: [Utterance] = [.user("甲曰："), .assistant("“一”"), .user("乙曰："), .assistant("“二”")]
        #expect(t.units(h).count == 4)
        #expect(t.render(history: Array(h.suffix(3)), input: "丙曰：").text == "“一”乙曰：“二”丙曰：")
    }

    @Test func cosplayInputHelper() {
        #expect(GLMCosplayTemplate.input(context: "曹操引兵至长坂", speaker: "玄德") == "曹操引兵至长坂，玄德曰：")
        #expect(GLMCosplayTemplate.input(context: "张飞大叫：“吾乃燕人张翼德也！”", speaker: "操", verb: "急问曰")
            == "张飞大叫：“吾乃燕人张翼德也！”操急问曰：")
        #expect(GLMCosplayTemplate.input(context: "与众商议。", speaker: "曹洪") == "与众商议。曹洪曰：")
        #expect(GLMCosplayTemplate.input(context: "  ", speaker: "凤姐", verb: "笑道") == "凤姐笑道：")
    }

    @Test func glmChatFirstTurnIsRaw() {
        #expect(GLMChatTemplate().render(history: [], input: "你好").text == "你好")
        let greetingFirst = GLMChatTemplate().render(history: [.assistant("欢迎")], input: "嗯")
        #expect(greetingFirst.text == "[Round 0]\n问：\n答：欢迎\n[Round 1]\n问：嗯\n答：")
    }

    @Test func roundsPairing() {
        let r = Round.pair([.assistant("g"), .user("q1"), .user("q2"), .assistant("a2"), .user("q3")])
        #expect(r == [Round("", "g"), Round("q1", ""), Round("q2", "a2"), Round("q3", "")])
    }
}

/// Reply post-processing against the seeds' own functions (ChatGLM-6B's process_response called
/// from its modeling file; CuteGPT's replace chain).
@Suite struct ReplyProcessingTests {
    struct File: Decodable {
        struct P: Decodable { var raw: String; var processed: String }
        struct C: Decodable { var raw: String; var cleaned: String }
        var chatglm_process_response: [P]
        var cutegpt_clean: [C]
    }

    @Test func chatGLMProcessResponse() throws {
        let f = try ChatFixtures.json("replies.json", as: File.self)
        #expect(f.chatglm_process_response.count >= 10)
        for c in f.chatglm_process_response {
            #expect(ChatGLMResponse.process(c.raw) == c.processed, "\(c.raw.debugDescription)")
            #expect(GLMChatTemplate().finishReply(c.raw) == c.processed)
        }
        // glm-cosplay keeps the raw reply unless asked (the demo did not post-process).
        #expect(GLMCosplayTemplate().finishReply(" 好,走 ") == " 好,走 ")
        #expect(GLMCosplayTemplate(chatGLMPostprocess: true).finishReply(" 好,走 ") == "好，走")
    }

    @Test func cuteGPTClean() throws {
        let f = try ChatFixtures.json("replies.json", as: File.self)
        for c in f.cutegpt_clean { #expect(CuteGPTTemplate().finishReply(c.raw) == c.cleaned) }
    }

    @Test func cuteGPTStopsOnIDsAndText() throws {
        let tok = try TokenizerLoader.load(folder: ChatFixtures.path("models/llama/safetensors"))
        let t = CuteGPTTemplate()
        #expect(t.stop.tokenIDs(in: tok) == [1, 2])
        #expect(t.stop.texts == ["<end>"])
        #expect(tok.encode(t.render(history: [], input: "hi").text, addSpecialTokens: false).first != 1)   // no BOS
        let p = Persona(id: "a/cute", name: "CuteGPT", group: "a", template: "cutegpt", model: "llama-demo")
        #expect(p.finishReply("你好！<end>问：下一题") == "你好！")
        #expect(p.finishReply("<s>答案</s>") == "答案")
    }

    @Test func glmStopsOnEop() throws {
        let tok = try TokenizerLoader.load(folder: ChatFixtures.path("models/chatglm/safetensors"))
        #expect(GLMCosplayTemplate().stop.tokenIDs(in: tok) == [1005])   // <eop> in the fixture vocabulary
        #expect(GLMCosplayTemplate().render(history: [], input: "玄德曰：").tokenIDs(tok).suffix(2) == [1001, 1004])
    }
}
