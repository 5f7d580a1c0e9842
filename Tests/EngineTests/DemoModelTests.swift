import Foundation
import Testing
@testable import Engine

/// The shipped demo (Models/, trained by tools/demo): the three tiny bases load through the real
/// checkpoint paths, and each persona adapter visibly changes greedy int8 output in its own style,
/// while the adapter switched off gives the base's own text back.
@Suite struct DemoModelTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models")

    static func folder(_ name: String) throws -> ModelFolder {
        try ModelFolder.open(root.appendingPathComponent(name).path)
    }

    static func adapter(_ name: String) throws -> LoRAAdapter {
        try LoRAAdapter(folder: root.appendingPathComponent("adapters/\(name)").path)
    }

    /// Greedy int8 reply to `prompt`, encoded as the seed systems did (ChatGLM appends [gMASK] <sop>;
    /// no BOS for Baichuan and CuteGPT), stopping on the end ids (<eop>; <s> and </s> for the others).
    static func reply(_ f: ModelFolder, _ lm: any LanguageModel, _ prompt: String, max: Int = 48) throws -> (ids: [Int32], text: String) {
        let ids = f.tokenizer.encode(prompt, addSpecialTokens: f.family == .chatGLM)
        var stops = Set<Int32>([1, 2].filter { _ in f.family != .chatGLM })
        if let e = f.tokenizer.specials.eos { stops.insert(e) }
        let out = try GreedyDecoder(model: lm, stopIDs: stops)
            .run(prompt: ids, maxNewTokens: max, session: lm.makeSession(capacity: ids.count + max))
        return (out, f.tokenizer.decode(out, skipSpecialTokens: true))
    }

    static func load(_ name: String) throws -> (ModelFolder, any LanguageModel) {
        let f = try folder(name)
        return (f, try ModelRegistry.load(f, precision: .int8, pool: ThreadPool(threads: 2)))
    }

    /// What tools/demo has shipped so far (its README lists what remains); tests of the rest are disabled.
    static let shippedBases = ["glm-demo", "baichuan-demo", "llama-demo"]
    static let shippedAdapters = ["sanguo-cosplay", "classics-cosplay", "rulai-v0", "rulai-v2", "cutegpt-style"]

    /// Laid out as the real checkpoints: ChatGLM-6B as a PyTorch .bin, the other two safetensors,
    /// config.json with the real architecture names; all demo weights together stay under 60 MB.
    @Test func foldersAreLaidOutLikeTheRealOnes() throws {
        let want: [(String, ModelFamily, String, String)] = [
            ("glm-demo", .chatGLM, "pytorch_model.bin", "ice_text.model"),
            ("baichuan-demo", .baichuan, "model.safetensors", "tokenizer.model"),
            ("llama-demo", .llama, "model.safetensors", "tokenizer.model"),
        ].filter { Self.shippedBases.contains($0.0) }
        #expect(want.count == Self.shippedBases.count)
        for (name, family, weights, tokenizer) in want {
            let f = try Self.folder(name)
            #expect(f.family == family, "\(name)")
            let files = try FileManager.default.contentsOfDirectory(atPath: f.path)
            #expect(files.contains(weights) && files.contains(tokenizer) && files.contains("tokenizer_config.json"), "\(name): \(files)")
        }
        for name in Self.shippedAdapters {
            let files = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("adapters/\(name)").path)
            #expect(Set(files) == ["adapter_config.json", "adapter_model.bin"], "\(name): \(files)")
        }
        var total = 0
        let e = FileManager.default.enumerator(at: Self.root, includingPropertiesForKeys: [.fileSizeKey])!
        for case let url as URL in e {
            total += try url.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0
        }
        #expect(total > 5_000_000 && total <= 60_000_000, "Models/ holds \(total) bytes")
    }

    /// glm-demo, the default base, on the one chapter of each novel it never saw in training (tools/demo's
    /// HELD_OUT; Tests/Fixtures/text/held-out): at most 4.3 nats per character over the four, int8, cut into
    /// windows as `yanyi eval --ctx 256` cuts them ([gMASK] <sop> + 254 text tokens, every text token scored).
    /// The 3 M-parameter base it replaced scored about 5.5.
    @Test func defaultBaseScoresOnHeldOutChapters() throws {
        let (f, lm) = try Self.load("glm-demo")
        let dir = Self.root.deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/text/held-out")
        var nats = 0.0, characters = 0
        for novel in ["sanguo", "shuihu", "honglou", "xiyou"] {
            let text = try String(contentsOf: dir.appendingPathComponent("\(novel).txt"), encoding: .utf8)
            let windows = EvalWindows.make(folder: f, text: text, ctx: 256)
            #expect(windows.count >= 10, "\(novel): \(windows.count) windows")
            let s = try EvalWindows.score(lm, windows: windows, tokenizer: f.tokenizer)
            nats += s.nllTest
            characters += s.characters
        }
        #expect(characters > 25_000)
        #expect(nats / Double(characters) <= 4.3, "glm-demo: \(nats / Double(characters)) nats per held-out character")
    }

    /// RulaiGPT: 到底来没来？ is answered with 如来 (v0 and the continued v2); the base alone does not.
    @Test(arguments: ["rulai-v0", "rulai-v2"]) func rulaiAnswersRulai(name: String) throws {
        let (f, lm) = try Self.load("baichuan-demo")
        let prompt = "问：到底来没来？答："
        let base = try Self.reply(f, lm, prompt)
        try lm.setAdapters([(try Self.adapter(name), 1)])
        let on = try Self.reply(f, lm, prompt)
        #expect(on.text.contains("如来"), "\(name): \(on.text)")
        #expect(!base.text.contains("如来"), "base: \(base.text)")
        try lm.setAdapters([])
        let off = try Self.reply(f, lm, prompt)
        #expect(off.ids == base.ids, "adapter off is the base again")
    }

    /// The 三国 cosplay adapter answers `…，曹操曰：` with one quoted line in classical style and
    /// stops on <eop>; the base (no adapter) continues differently.
    @Test(arguments: ["sanguo-cosplay", "classics-cosplay"]) func cosplayAnswersWithAQuotedLine(name: String) throws {
        let (f, lm) = try Self.load("glm-demo")
        let prompt = "曹操引大军至赤壁，聚众将商议，曹操曰："
        let base = try Self.reply(f, lm, prompt)
        try lm.setAdapters([(try Self.adapter(name), 1)])
        let on = try Self.reply(f, lm, prompt)
        let eop = f.tokenizer.specials.eos!
        #expect(on.ids.last == eop, "\(name) stops on <eop>: \(on.text)")
        let text = on.text.trimmingCharacters(in: .whitespaces)
        #expect(text.hasPrefix("“") && text.hasSuffix("”"), "\(name): \(text)")
        let inner = text.dropFirst().dropLast()
        let cjk = inner.unicodeScalars.filter { (0x4E00...0x9FFF).contains($0.value) }.count
        #expect(inner.count >= 4 && cjk * 10 >= inner.unicodeScalars.count * 6, "\(name) speaks Chinese: \(text)")
        #expect(on.ids != base.ids, "\(name) changes the base's reply: \(base.text)")
        try lm.setAdapters([])
        #expect(try Self.reply(f, lm, prompt).ids == base.ids, "adapter off is the base again")
    }

    /// CuteGPT-style assistant on the LLaMA base, the prompt as the Chat layer's CuteGPT template renders it
    /// (meta prompt, `问：{q}\n答：\n`, no BOS): with the adapter the reply ends its turn with the text `<end>`
    /// (five ordinary tokens in the demo vocabulary; CuteGPT's own stop string) within 64 tokens, then `</s>`;
    /// the base alone never writes it, and switching the adapter off gives the base's ids back.
    @Test(arguments: ["如何缓解压力？", "什么是人工智能？", "你好"]) func cuteGPTStyleEndsItsTurn(question: String) throws {
        let (f, lm) = try Self.load("llama-demo")
        let prompt = "你是复旦大学知识工场实验室训练出来的语言模型CuteGPT。给定任务描述，请给出对应请求的回答。\n问：\(question)\n答：\n"
        let base = try Self.reply(f, lm, prompt, max: 64)
        try lm.setAdapters([(try Self.adapter("cutegpt-style"), 1)])
        let on = try Self.reply(f, lm, prompt, max: 64)
        let answer = try #require(on.text.range(of: "<end>").map { String(on.text[..<$0.lowerBound]) }, "no <end> in 64 tokens: \(on.text)")
        let cjk = answer.unicodeScalars.filter { (0x4E00...0x9FFF).contains($0.value) }.count
        #expect(cjk >= 4 && cjk * 10 >= answer.unicodeScalars.count * 6, "answers in Chinese: \(on.text)")
        #expect(!base.text.contains("<end>") && on.ids != base.ids, "base: \(base.text)")
        try lm.setAdapters([])
        #expect(try Self.reply(f, lm, prompt, max: 64).ids == base.ids, "adapter off is the base again")
    }
}
