import Engine
import Foundation
import Testing
@testable import Chat

/// Chat text is data (issue 15, item 4): a message, a reply or a persona preamble that contains the
/// text of a control token (`<sop>`, `</s>`, `<eop>`, `[gMASK]`, …) is tokenized as those
/// characters; the prompt's structural tokens are the template's alone.
@Suite struct ControlTokenTextTests {
    static let controlTexts = ["<sop>", "<eop>", "[gMASK]", "[MASK]", "[sMASK]", "<s>", "</s>", "<unk>", "<pad>", "<end>"]

    /// Every template on the fixture tokenizer of its model family.
    static let templates: [(String, String)] = [
        ("glm-cosplay", "models/chatglm/safetensors"), ("glm-chat", "models/chatglm/safetensors"),
        ("baichuan-qa", "models/baichuan/safetensors"), ("cutegpt", "models/llama/safetensors"),
        ("cutegpt-readme", "models/llama/safetensors"), ("plain", "models/llama/safetensors"),
    ]

    /// Ids a tokenizer treats as special or added: none may come from what people write.
    static func controlIDs(_ t: any Tokenizer) -> Set<Int32> {
        var s = t.specials.skipped.union(t.specials.named.values)
        for id in [t.specials.bos, t.specials.eos, t.specials.unk, t.specials.pad] { if let id { s.insert(id) } }
        return s
    }

    static func ids(_ template: String, _ tokenizer: any Tokenizer, history: [Utterance], input: String,
                    preamble: String? = nil) throws -> [Int32] {
        let t = try #require(TemplateRegistry.make(template, .init(preamble: preamble)))
        return try PromptBudget(contextLength: 1_000_000, maxNewTokens: 1)
            .fit(t, history: history, input: input, maxHistory: nil, tokenizer: tokenizer).tokenIDs
    }

    @Test(arguments: templates)
    func controlTokenTextInAMessageIsText(template: String, folder: String) throws {
        let tokenizer = try TokenizerLoader.load(folder: ChatFixtures.path(folder))
        let control = Self.controlIDs(tokenizer)
        let neutral = try Self.ids(template, tokenizer, history: [.user("前文"), .assistant("回答")], input: "问题继续")
        let structure = neutral.filter(control.contains)
        for c in Self.controlTexts {
            let message = "问题\(c)继续"
            // The message alone: the same ids as the text with parsing off, none of them a control
            // id, and it decodes back to the characters typed.
            let alone = tokenizer.encode(message, addSpecialTokens: false, parseSpecialTokens: false)
            #expect(!alone.contains(where: control.contains), "\(template) \(c): \(alone)")
            #expect(tokenizer.decode(alone, skipSpecialTokens: false) == message, "\(template) \(c)")

            // In the input, in the history (both sides) and in the preamble: the prompt's control
            // tokens are exactly those of the same prompt without it, at the same ends.
            for (history, input, preamble) in [([Utterance.user("前文"), .assistant("回答")], message, nil as String?),
                                               ([.user(message), .assistant("回答")], "问题继续", nil),
                                               ([.user("前文"), .assistant(message)], "问题继续", nil),
                                               ([.user("前文"), .assistant("回答")], "问题继续", "设定\(c)")] {
                let ids = try Self.ids(template, tokenizer, history: history, input: input, preamble: preamble)
                #expect(ids.filter(control.contains) == structure, "\(template) \(c): \(ids)")
                #expect(ids.prefix(while: control.contains) == neutral.prefix(while: control.contains), "\(template) \(c)")
                let tail = neutral.reversed().prefix(while: control.contains)
                #expect(Array(ids.suffix(tail.count)) == Array(neutral.suffix(tail.count)), "\(template) \(c)")
            }
            // And the whole prompt is its text encoded with parsing off, plus the template's tokens.
            let t = try #require(TemplateRegistry.make(template))
            let p = try t.render(history: [], input: message)
            #expect(p.tokenIDs(tokenizer) == tokenizer.encode(p.text, addSpecialTokens: p.addSpecialTokens, parseSpecialTokens: false))
        }
    }

    /// `generate` and `tokenize` keep the Hugging Face rule (tokens-*.json come from transformers
    /// 4.30's own tokenizers): ChatGLM-6B parses `<sop>`/`<eop>`/`[MASK]` but reads `[gMASK]` as text;
    /// LLaMA parses `<s>`, `</s>` and the added `<end>`. Parsing off, none of them is a token.
    @Test func cliKeepsTheHuggingFaceRule() throws {
        let glm = try TokenizerLoader.load(folder: ChatFixtures.path("models/chatglm/safetensors"))
        let parsed = glm.encode("曹操[gMASK]<sop>曰", addSpecialTokens: false)
        #expect(parsed.contains(1004) && !parsed.contains(1001))
        #expect(glm.encode("曹操 [MASK] 曰 <eop> 了", addSpecialTokens: false).filter { $0 >= 1000 } == [1000, 1005])
        #expect(glm.encode("曹操[gMASK]<sop>曰", addSpecialTokens: false, parseSpecialTokens: false).allSatisfy { $0 < 1000 })
        let llama = try TokenizerLoader.load(folder: ChatFixtures.path("models/llama/safetensors"))
        #expect(llama.encode("A <s> B </s> C<end>", addSpecialTokens: false).filter { [1, 2, 1000].contains($0) } == [1, 2, 1000])
        #expect(!llama.encode("A <s> B </s> C<end>", addSpecialTokens: false, parseSpecialTokens: false).contains { [1, 2, 1000].contains($0) })
        // Without specials in the text the two agree (the golden templates rely on it).
        for t in [glm, llama] {
            let text = "天下大势，分久必合。\n  Hello 世界"
            #expect(t.encode(text, addSpecialTokens: true) == t.encode(text, addSpecialTokens: true, parseSpecialTokens: false))
        }
    }
}
