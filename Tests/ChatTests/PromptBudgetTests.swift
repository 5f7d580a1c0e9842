import Engine
import Foundation
import Testing
@testable import Chat

/// History dropped oldest first so prompt + max new tokens fit the context, at the context's
/// edge, against the same rule run in Python with the real tokenizers (budget.json).
@Suite struct PromptBudgetTests {
    struct File: Decodable {
        struct Case: Decodable {
            var template: String
            var model_folder: String
            var history_units: Int
            var context: Int
            var max_new_tokens: Int
            var max_history: Int
            var kept_units: Int
            var prompt_tokens: Int
            var room: Int
            var ids: [Int32]
        }
        var cosplay_history: [[String]]
        var cosplay_input: String
        var chat_history: [[String]]
        var chat_input: String
        var cases: [Case]
    }

    @Test func matchesPythonAtTheEdge() throws {
        let f = try ChatFixtures.json("budget.json", as: File.self)
        #expect(f.cases.count >= 20)
        var tokenizers: [String: any Tokenizer] = [:]
        for c in f.cases {
            let tok = try tokenizers[c.model_folder] ?? TokenizerLoader.load(folder: ChatFixtures.path(c.model_folder))
            tokenizers[c.model_folder] = tok
            let template = try #require(TemplateRegistry.make(c.template))
            let (history, input) = c.template == "glm-cosplay"
                ? (utterances(f.cosplay_history), f.cosplay_input) : (utterances(f.chat_history), f.chat_input)
            let fit = try PromptBudget(contextLength: c.context, maxNewTokens: c.max_new_tokens)
                .fit(template, history: history, input: input, maxHistory: c.max_history, tokenizer: tok)
            let label = "\(c.template) context \(c.context)"
            #expect(template.units(fit.kept).count == c.kept_units, "\(label)")
            #expect(fit.tokenIDs == c.ids, "\(label)")
            #expect(fit.maxNewTokens == c.room, "\(label)")
            #expect(fit.tokenIDs.count + fit.maxNewTokens <= c.context, "\(label)")
            #expect(fit.droppedByLimit.isEmpty)
            #expect(fit.droppedForBudget + fit.kept == history, "\(label): dropped must be the oldest")
        }
    }

    /// ChatGLM-6B's 2048 context (the fixture config says so): a long cosplay conversation with a
    /// preamble, 128 new tokens. The prompt fits exactly, and keeping one more utterance would not.
    @Test func chatGLMContextEdge() throws {
        let folder = ChatFixtures.path("models/chatglm/safetensors")
        let context = try #require(try ModelConfig.load(folder + "/config.json").contextLength)
        #expect(context == 2048)
        let tok = try TokenizerLoader.load(folder: folder)
        let preamble = "建安十三年，曹操引大军南下。"
        let template = GLMCosplayTemplate(preamble: preamble)
        var history: [Utterance] = []
        for i in 0..<80 {
            history.append(.user("第\(i)回，众将于帐中议事。玄德曰："))
            history.append(.assistant("“今曹兵势大，当以仁义为本，不可轻动。第\(i)策如此。”"))
        }
        let input = "孔明曰：“主公勿忧。”玄德曰："
        let budget = PromptBudget(contextLength: context, maxNewTokens: 128)
        let fit = try budget.fit(template, history: history, input: input, maxHistory: 1000, tokenizer: tok)
        #expect(fit.tokenIDs.count + 128 <= context)
        #expect(fit.maxNewTokens == 128)
        #expect(!fit.droppedForBudget.isEmpty && !fit.kept.isEmpty)
        #expect(fit.prompt.text.hasPrefix(preamble), "the preamble is kept")
        #expect(fit.prompt.text.hasSuffix(input))
        #expect(fit.kept == Array(history.suffix(fit.kept.count)), "the newest history is kept")
        let oneMore = Array(history.suffix(fit.kept.count + 1))
        #expect(template.render(history: oneMore, input: input).tokenIDs(tok).count + 128 > context)
        // The seed's own max_history acts first and is reported apart.
        let limited = try budget.fit(template, history: history, input: input, maxHistory: 10, tokenizer: tok)
        #expect(limited.kept.count == 10 && limited.droppedByLimit.count == 150 && limited.droppedForBudget.isEmpty)
    }

    @Test func replyAllowanceShrinksThenFails() throws {
        let tok = try TokenizerLoader.load(folder: ChatFixtures.path("models/chatglm/safetensors"))
        let t = GLMChatTemplate()
        let n = t.render(history: [], input: "你好，请介绍一下你自己").tokenIDs(tok).count
        let fit = try PromptBudget(contextLength: n + 5, maxNewTokens: 100)
            .fit(t, history: [.user("a"), .assistant("b")], input: "你好，请介绍一下你自己", maxHistory: nil, tokenizer: tok)
        #expect(fit.kept.isEmpty && fit.droppedForBudget.count == 2 && fit.maxNewTokens == 5)
        #expect(throws: ChatError.self) {
            try PromptBudget(contextLength: n, maxNewTokens: 1).fit(t, history: [], input: "你好，请介绍一下你自己",
                                                                      maxHistory: nil, tokenizer: tok)
        }
    }
}

/// Persona + conversation + typed text -> the prompt and settings of one reply.
@Suite struct TurnPlanTests {
    @Test func cosplayTurnFromASession() throws {
        let tok = try TokenizerLoader.load(folder: ChatFixtures.path("models/chatglm/safetensors"))
        let liubei = try #require(PersonaLibrary.load(from: PersonaTests.shipped).persona("sanguo/liubei"))
        let dir = try TempDir()
        let s = try SessionStore(directory: dir.path).create(persona: liubei.id)
        try s.add(.assistant, liubei.greetings[0], greeting: true)
        try s.add(.user, liubei.userUtterance("张飞曰：“哥哥，曹兵来了！”"))
        try s.add(.assistant, "“三弟休慌。”")
        let history = s.conversation.utterances(includeGreetings: liubei.history.includeGreeting)
        #expect(history.count == 2, "the greeting is shown but not part of the prompt")
        let plan = try TurnPlan(persona: liubei, history: history, typed: "孔明至", tokenizer: tok, contextLength: 2048)
        #expect(plan.utterance == "孔明至，玄德曰：")
        #expect(plan.fitted.prompt.text == "张飞曰：“哥哥，曹兵来了！”玄德曰：“三弟休慌。”孔明至，玄德曰：")
        #expect(plan.fitted.tokenIDs == tok.encode(plan.fitted.prompt.text, addSpecialTokens: true))
        #expect(plan.stopTokenIDs == [1005] && plan.sampling.maxNewTokens == 128 && plan.sampling.topK == 40)
        #expect(try TurnPlan(persona: liubei, history: s.conversation.utterances(), typed: "x", tokenizer: tok,
                             contextLength: 2048).fitted.kept.count == 3)

        var strict = liubei
        strict.history.overflow = .refuse
        #expect(throws: ChatError.self) {
            try TurnPlan(persona: strict, history: history, typed: "孔明至", tokenizer: tok,
                         contextLength: plan.fitted.tokenIDs.count + 127)
        }
        let tight = try TurnPlan(persona: liubei, history: history, typed: "孔明至", tokenizer: tok,
                                 contextLength: plan.fitted.tokenIDs.count + 127)
        #expect(tight.fitted.droppedForBudget.count >= 1)
    }
}
