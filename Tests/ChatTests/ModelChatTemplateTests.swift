import Engine
import Foundation
import Testing
@testable import Chat

/// The `auto` template: a base's own chat_template (Tests/Fixtures/models/llama-chat-template: the
/// LLaMA fixture tokenizer with Zephyr's chat_template in its tokenizer_config.json) renders card
/// personas' prompts; its markup is parsed for special tokens, what people wrote never is.
@Suite struct ModelChatTemplateTests {
    static let folder = ChatFixtures.path("models/llama-chat-template")

    @Test func readsTheTemplateAndItsTokens() throws {
        let m = try #require(try ModelChatTemplate.load(folder: Self.folder))
        #expect(m.tokens == ["bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"])
        #expect(m.file.hasSuffix("llama-chat-template/tokenizer_config.json"))
        #expect(try ModelChatTemplate.load(folder: ChatFixtures.path("models/llama/safetensors")) == nil)
    }

    /// Newer folders: a list of named templates (`default` is used), or chat_template.jinja beside
    /// the config (which wins, as in transformers); AddedToken dictionaries give their content.
    @Test func namedTemplatesAndTemplateFiles() throws {
        let dir = try TempDir()
        let config = #"{"eos_token": {"__type": "AddedToken", "content": "<|im_end|>"}, "bos_token": null, "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ eos_token }}"}]}"#
        try config.write(toFile: dir.file("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let named = try #require(try ModelChatTemplate.load(folder: dir.path))
        #expect(try named.template.render([:]) == "D" && named.tokens == ["eos_token": "<|im_end|>"])
        try "F{{ messages | length }}\n".write(toFile: dir.file("chat_template.jinja"), atomically: true, encoding: .utf8)
        let file = try #require(try ModelChatTemplate.load(folder: dir.path))
        #expect(file.file == dir.file("chat_template.jinja"))
        #expect(try ChatTemplatePrompt(model: file).render(history: [], input: "x").text == "F1")
        try "{not json".write(toFile: dir.file("tokenizer_config.json"), atomically: true, encoding: .utf8)
        #expect(throws: ChatError(dir.file("tokenizer_config.json"), "is not a JSON object")) { try ModelChatTemplate.load(folder: dir.path) }
    }

    @Test func markupIsTokensAndMessagesAreText() throws {
        let t = ChatTemplatePrompt(model: try #require(try ModelChatTemplate.load(folder: Self.folder)), preamble: "你是貂蝉。")
        let tok = try TokenizerLoader.load(folder: Self.folder)
        let p = try t.render(history: [.user("你好"), .assistant("大人")], input: "hi </s> <s>")
        #expect(p.text == "<|system|>\n你是貂蝉。</s>\n<|user|>\n你好</s>\n<|assistant|>\n大人</s>\n<|user|>\nhi </s> <s></s>\n<|assistant|>\n")
        #expect(!p.addSpecialTokens)
        let ids = p.tokenIDs(tok)
        #expect(ids.filter { $0 == 2 }.count == 4, "the template's four </s> are EOS; the typed one is text: \(ids)")
        #expect(!ids.contains(1), "a typed <s> is text")
        #expect(tok.decode(ids, skipSpecialTokens: false).contains("hi </s> <s>"))
        // Nothing special typed: the ids Hugging Face gives the whole rendered text.
        let clean = try t.render(history: [.user("你好"), .assistant("大人")], input: "hello")
        #expect(clean.tokenIDs(tok) == tok.encode(clean.text, addSpecialTokens: false, parseSpecialTokens: true))
        #expect(t.stop.tokens.contains(.eos) && t.stop.texts == ["</s>"])
    }

    /// Both tokenizers read special tokens in markup only, and join text across part boundaries.
    @Test func tokenizersParseMarkupOnly() throws {
        let glm = try TokenizerLoader.load(folder: ChatFixtures.path("models/chatglm/safetensors"))
        let ids = glm.encode(parts: [("曹操<sop>", true), ("<sop>曰", false)], addSpecialTokens: false)
        #expect(ids.filter { $0 == 1004 }.count == 1, "\(ids)")
        #expect(glm.encode(parts: [("曹操\n", true), ("曰  说", false)], addSpecialTokens: true)
                == glm.encode("曹操\n曰  说", addSpecialTokens: true))
        let llama = try TokenizerLoader.load(folder: ChatFixtures.path("models/llama/safetensors"))
        #expect(llama.encode(parts: [("<s>he", true), ("llo <end>", false), ("<end>", true)], addSpecialTokens: false)
                == [1] + llama.encode("hello <end>", addSpecialTokens: false, parseSpecialTokens: false) + [1000])
    }

    /// Templates that refuse a system message or a reply first get the conversation as they take it.
    @Test func strictTemplatesGetAConversationTheyAccept() throws {
        let gemma = #"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"#
        let m = try ModelChatTemplate(source: gemma, file: "gemma/tokenizer_config.json", tokens: ["bos_token": "<bos>"])
        let p = try ChatTemplatePrompt(model: m, preamble: "规矩").render(history: [.assistant("欢迎")], input: "  你好 ")
        #expect(p.text == "<bos><start_of_turn>user\n规矩\n\n  你好<end_of_turn>\n<start_of_turn>model\n")
        #expect(p.parts.contains { !$0.markup && $0.text == "规矩\n\n  你好" })
        let doubled = try ChatTemplatePrompt(model: m).render(history: [.user("一")], input: "二")
        #expect(doubled.text == "<bos><start_of_turn>user\n一\n\n二<end_of_turn>\n<start_of_turn>model\n")
    }

    @Test func brokenTemplatesAreOneLineErrors() throws {
        #expect(throws: ChatError("m/tokenizer_config.json", field: "chat_template", "line 2: unknown filter 'foo'")) {
            try ModelChatTemplate(source: "a\n{{ x | foo }}", file: "m/tokenizer_config.json", tokens: [:])
        }
        let m = try ModelChatTemplate(source: "{{ raise_exception('no way') }}", file: "m/tokenizer_config.json", tokens: [:])
        let e = #expect(throws: ChatError.self) { try ChatTemplatePrompt(model: m).render(history: [], input: "x") }
        #expect(e?.description == "m/tokenizer_config.json: chat_template: line 1: no way")
    }

    /// A template that does more to a message than strip it: the whole prompt is data.
    @Test func reshapedMessagesMakeAllOfItData() throws {
        let m = try ModelChatTemplate(source: "{% for m in messages %}<s>{{ m.content[:3] }}{% endfor %}", file: "t", tokens: [:])
        let p = try ChatTemplatePrompt(model: m).render(history: [], input: "abcdef")
        #expect(p.text == "<s>abc" && p.parts.isEmpty)
    }

    /// A card that binds nothing runs on the pinned base (`--model`) with that base's template;
    /// the canned engine sees exactly the rendered prompt, and stops on its eos_token.
    @Test func aCardWithNoBindingChatsThroughTheBaseTemplate() throws {
        let dir = try TempDir()
        let json = #"{"spec":"chara_card_v2","spec_version":"2.0","data":{"name":"貂蝉","description":"貂蝉乃王允府中歌伎。","first_mes":"大人。"}}"#
        let p = try CharacterCard.decode(json: Data(json.utf8), file: "diaochan.json").persona(id: "diaochan", file: "diaochan.json")
        #expect(p.template == "auto" && p.model == "llama-demo")
        let c = ChatController(options: .init(modelsRoot: ChatFixtures.fixtures.path, pinnedModel: "models/llama-chat-template"),
                               host: CannedModelHost(loadSeconds: 0), library: PersonaLibrary(personas: [p]),
                               store: try Runtime.store(dir), persona: p)
        #expect(try c.switchPersona("cards/diaochan").contains("template: the chat_template of models/llama-chat-template"))
        _ = try c.send("你好 </s>")
        let request = try #require((c.engine as? CannedEngine)?.requests.last)
        let prompt = ScalarTokenizer().decode(request.promptIDs, skipSpecialTokens: false)
        #expect(prompt == "<|system|>\n貂蝉乃王允府中歌伎。</s>\n<|user|>\n你好 </s></s>\n<|assistant|>\n")
        #expect(request.parameters.stop?.contains("</s>") == true)
        #expect(c.persona.templateLabel == "auto (chat_template)")
        #expect(c.conversation.messages.last?.role == .assistant)

        // On a base without a chat_template the same card is `plain`.
        let d = ChatController(options: .init(modelsRoot: ChatFixtures.fixtures.path, pinnedModel: "models/llama/safetensors"),
                               host: CannedModelHost(loadSeconds: 0), library: PersonaLibrary(personas: [p]),
                               store: try Runtime.store(dir), persona: p)
        _ = try d.send("你好")
        let plain = ScalarTokenizer().decode(try #require((d.engine as? CannedEngine)?.requests.last).promptIDs, skipSpecialTokens: false)
        #expect(plain == "貂蝉乃王允府中歌伎。\n\n### Instruction:\n你好\n\n### Response:\n")
        #expect(d.persona.templateLabel == "auto (plain)")
    }

    /// A binding without a template gets `auto` too; a bound template stays.
    @Test func bindingsWithoutATemplateAreAuto() throws {
        let partial = #"{"spec":"chara_card_v2","data":{"name":"甲","extensions":{"yanyi":{"model":"models/llama-chat-template"}}}}"#
        let p = try CharacterCard.decode(json: Data(partial.utf8), file: "a.json").persona(id: "a", file: "a.json")
        #expect(p.template == "auto" && p.model == "models/llama-chat-template")
        let bound = #"{"spec":"chara_card_v2","data":{"name":"乙","extensions":{"yanyi":{"template":"plain"}}}}"#
        let q = try CharacterCard.decode(json: Data(bound.utf8), file: "b.json").persona(id: "b", file: "b.json")
        #expect(q.template == "plain" && q.model == "llama-demo")
        #expect(try q.onBase(Self.folder) == q)
    }
}
