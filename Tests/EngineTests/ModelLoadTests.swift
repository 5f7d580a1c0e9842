import Foundation
import Testing
@testable import Engine

/// Loading weights into an architecture: shape and name checks name the file and the tensor.
@Suite struct ModelLoadTests {
    static func load(_ dir: URL, _ p: Precision = .f32) throws(LoadError) -> any LanguageModel {
        try ModelRegistry.load(ModelFolder.open(dir.path), precision: p, pool: ThreadPool(threads: 1))
    }

    @Test func configThatDisagreesWithTheTensorsIsRefused() throws {
        let dir = try ModelFolderTests.copy("llama/safetensors")
        try ModelFolderTests.editConfig(dir) { $0["intermediate_size"] = 96 }
        do throws(LoadError) {
            _ = try Self.load(dir)
            Issue.record("loaded a model whose config disagrees with its tensors")
        } catch {
            #expect(error.file.hasSuffix("model.safetensors"), "\(error)")
            #expect(error.reason.contains("mlp.gate_proj.weight") && error.reason.contains("[96, 32]"), "\(error)")
        }
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try ModelFolderTests.copy("chatglm/bin-sharded")
        try ModelFolderTests.editConfig(dir) { $0["num_layers"] = 3 }
        do throws(LoadError) {
            _ = try Self.load(dir)
            Issue.record("loaded 3 layers from a 2-layer checkpoint")
        } catch {
            #expect(error.reason.contains("transformer.layers.2.") && error.reason.contains("missing"), "\(error)")
        }
    }

    @Test func outOfRangeTokensAndOverflowAreErrorsNotCrashes() throws {
        let lm = try Self.load(ModelFolderTests.models.appendingPathComponent("baichuan/safetensors"))
        let s = lm.makeSession(capacity: 4)
        #expect(throws: ModelError.self) { try lm.forward([Int32(lm.vocabSize)], session: s, logits: .last) }
        #expect(throws: ModelError.self) { try lm.forward([1, 2, 3, 4, 5], session: s, logits: .last) }
        #expect(s.count == 0)
    }

    /// Precision changes only the linear weights: the int8 model is smaller and close to f32.
    @Test func int8IsSmallerAndClose() throws {
        let dir = ModelFolderTests.models.appendingPathComponent("llama/bin")
        let f = try Self.load(dir, .f32), q = try Self.load(dir, .int8)
        #expect(q.weightBytes < f.weightBytes)
        let ids: [Int32] = [1, 502, 326, 518]
        let a = try f.forward(ids, session: f.makeSession(capacity: 8), logits: .last)
        let b = try q.forward(ids, session: q.makeSession(capacity: 8), logits: .last)
        let d = zip(a, b).map { abs($0 - $1) }.max() ?? 1
        #expect(d > 0 && d < 0.5, "max |Δ| = \(d)")
    }

    /// A session can be truncated and continued: the cached prefix stays valid.
    @Test func truncateAndContinue() throws {
        let lm = try Self.load(ModelFolderTests.models.appendingPathComponent("llama/safetensors"))
        let ids: [Int32] = [1, 502, 326, 518, 232, 141]
        let full = try lm.forward(ids, session: lm.makeSession(capacity: 8), logits: .last)
        let s = lm.makeSession(capacity: 8)
        _ = try lm.forward(ids + [7, 8], session: s, logits: .last)
        s.truncate(to: 5)
        let again = try lm.forward([ids[5]], session: s, logits: .last)
        #expect(zip(full, again).map { abs($0 - $1) }.max()! < 1e-5)
    }
}

extension ModelLoadTests {
    /// A ChatGLM tokenizer numbering <sop>/[gMASK] otherwise than config.json is refused.
    @Test func chatGLMTokenizerMustAgreeWithConfig() throws {
        let dir = try ModelFolderTests.copy("chatglm/safetensors")
        let tc = dir.appendingPathComponent("tokenizer_config.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: tc)) as! [String: Any]
        obj["num_image_tokens"] = 20000
        try JSONSerialization.data(withJSONObject: obj).write(to: tc)
        do throws(LoadError) {
            _ = try Self.load(dir)
            Issue.record("loaded a ChatGLM whose tokenizer disagrees with its config")
        } catch {
            #expect(error.file.hasSuffix("tokenizer_config.json"), "\(error)")
            #expect(error.reason.contains("<sop> = 21004") && error.reason.contains("1004"), "\(error)")
        }
    }
}
