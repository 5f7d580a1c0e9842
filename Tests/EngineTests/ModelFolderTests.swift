import Foundation
import Testing
@testable import Engine

/// Opening whole model folders: family detection, the refusals, and the one-line errors for
/// broken configs and tokenizers (the weights' own errors are in the Checkpoint* tests).
@Suite struct ModelFolderTests {
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    /// A scratch copy of a fixture folder that a test may break (all removed when the tests exit).
    static func copy(_ model: String) throws -> URL {
        let dst = scratchRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: scratchRoot, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: models.appendingPathComponent(model), to: dst)
        return dst
    }

    static let scratchRoot: URL = {
        atexit { try? FileManager.default.removeItem(at: ModelFolderTests.scratchRootPath) }
        return scratchRootPath
    }()
    static let scratchRootPath = FileManager.default.temporaryDirectory
        .appendingPathComponent("yanyi-tests-\(getpid())")

    static func expectError(_ folder: URL, file: String? = nil, _ words: [String],
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFolder.open(folder.path)
            Issue.record("expected an error mentioning \(words)", sourceLocation: sourceLocation)
        } catch {
            let text = error.description
            #expect(!text.contains("\n"), sourceLocation: sourceLocation)
            if let file { #expect(error.file.hasSuffix(file), "\(text)", sourceLocation: sourceLocation) }
            for w in words { #expect(text.contains(w), "\(text)", sourceLocation: sourceLocation) }
        }
    }

    static func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
    }

    @Test(arguments: [("llama/safetensors", ModelFamily.llama), ("baichuan/bin", .baichuan),
                      ("chatglm/bin-sharded", .chatGLM), ("chatglm-preslim/safetensors", .chatGLM)])
    func opensEveryFamily(model: String, family: ModelFamily) throws {
        let m = try ModelFolder.open(Self.models.appendingPathComponent(model).path)
        #expect(m.family == family)
        // Every parameter counted once, in a role; the embedding is the only float matrix.
        let p = m.parameterCounts
        let total = m.checkpoint.names.filter { !m.family.isIgnored($0) }
            .compactMap { m.checkpoint.info($0)?.count }.reduce(0, +)
        #expect(p.total == total)
        let embed = m.checkpoint.names.first { $0.contains("embed_tokens") || $0.contains("word_embeddings") }
        #expect(p.embedding == embed.flatMap { m.checkpoint.info($0)?.count })
        #expect(m.int8Bytes() == p.linear + (p.linear + 31) / 32 * 4 + (p.embedding + p.other) * 4)
    }

    @Test func tokenizerVocabFitsTheEmbedding() throws {
        for model in ["llama/bin", "baichuan/bin", "chatglm/bin", "chatglm-preslim/safetensors"] {
            let m = try ModelFolder.open(Self.models.appendingPathComponent(model).path)
            #expect(m.tokenizer.vocabSize <= m.config.vocabSize ?? 0, "\(model)")
        }
    }

    @Test func refusesRelativesItDoesNotRunExactly() throws {
        let glm2 = try Self.copy("chatglm/safetensors")
        try Self.editConfig(glm2) { $0["multi_query_group_num"] = 2; $0["architectures"] = ["ChatGLMModel"] }
        Self.expectError(glm2, file: "config.json", ["ChatGLM2/ChatGLM3", "not supported"])

        let b13 = try Self.copy("baichuan/safetensors")
        try Self.editConfig(b13) { $0["max_position_embeddings"] = nil; $0["model_max_length"] = 4096 }
        Self.expectError(b13, file: "config.json", ["Baichuan-13B", "ALiBi"])

        let scaled = try Self.copy("llama/safetensors")
        try Self.editConfig(scaled) { $0["rope_scaling"] = ["type": "linear", "factor": 2.0] }
        Self.expectError(scaled, file: "config.json", ["rope_scaling", "linear"])

        let other = try Self.copy("llama/safetensors")
        try Self.editConfig(other) { $0["architectures"] = ["MistralForCausalLM"]; $0["model_type"] = "mistral" }
        Self.expectError(other, file: "config.json", ["MistralForCausalLM", "not supported"])
    }

    @Test func brokenConfigsNameTheFileAndTheProblem() throws {
        let bad = try Self.copy("llama/safetensors")
        try Data("{\"architectures\": [\"LlamaForCausalLM\"], ".utf8).write(to: bad.appendingPathComponent("config.json"))
        Self.expectError(bad, file: "config.json", ["invalid JSON"])

        let wrongType = try Self.copy("llama/safetensors")
        try Self.editConfig(wrongType) { $0["hidden_size"] = "big" }
        Self.expectError(wrongType, file: "config.json", ["hidden_size", "integer"])

        let none = try Self.copy("llama/safetensors")
        try FileManager.default.removeItem(at: none.appendingPathComponent("config.json"))
        Self.expectError(none, file: "config.json", ["not found"])

        let badGen = try Self.copy("llama/safetensors")
        try Data("[1, 2".utf8).write(to: badGen.appendingPathComponent("generation_config.json"))
        Self.expectError(badGen, file: "generation_config.json", ["invalid JSON"])

        Self.expectError(Self.models.appendingPathComponent("nope"), ["no such folder"])
        Self.expectError(Self.models.appendingPathComponent("llama/safetensors/config.json"), ["not a folder"])
    }

    @Test func brokenTokenizersNameTheFileAndTheProblem() throws {
        let corrupt = try Self.copy("llama/safetensors")
        try Data("this is not a protobuf".utf8).write(to: corrupt.appendingPathComponent("tokenizer.model"))
        Self.expectError(corrupt, file: "tokenizer.model", ["not a SentencePiece model"])

        let truncated = try Self.copy("baichuan/safetensors")
        let tm = truncated.appendingPathComponent("tokenizer.model")
        try Data(try Data(contentsOf: tm).prefix(1000)).write(to: tm)
        Self.expectError(truncated, file: "tokenizer.model", ["not a SentencePiece model"])

        let missing = try Self.copy("llama/safetensors")
        try FileManager.default.removeItem(at: missing.appendingPathComponent("tokenizer.model"))
        Self.expectError(missing, ["no tokenizer.model"])

        let fastOnly = try Self.copy("llama/safetensors")
        try FileManager.default.removeItem(at: fastOnly.appendingPathComponent("tokenizer.model"))
        try Data("{}".utf8).write(to: fastOnly.appendingPathComponent("tokenizer.json"))
        Self.expectError(fastOnly, ["tokenizer.json", "fast tokenizer"])

        let badAdded = try Self.copy("llama/safetensors")
        try Data("{\"<end>\": \"x\"}".utf8).write(to: badAdded.appendingPathComponent("added_tokens.json"))
        Self.expectError(badAdded, file: "added_tokens.json", ["<end>"])

        let glm = try Self.copy("chatglm/safetensors")
        try FileManager.default.removeItem(at: glm.appendingPathComponent("ice_text.model"))
        Self.expectError(glm, ["ChatGLMTokenizer", "ice_text.model is missing"])
    }
}
