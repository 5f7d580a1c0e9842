import Foundation
import Testing
@testable import Engine

/// The forward passes against fp32 reference logits from PyTorch (transformers 4.30.2 for LLaMA,
/// the fixture script's reference forwards for Baichuan and ChatGLM, cross-checked against
/// upstream code): Tests/Fixtures/expected/logits-<model>.{json,safetensors}.
@Suite struct ForwardReferenceTests {
    struct Expected: Decodable {
        struct Prompt: Decodable {
            var name: String
            var tensor: String
            var ids: [Int32]
        }
        var prompts: [Prompt]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func reference(_ model: String) throws -> (Expected, SafeTensorsFile) {
        let json = fixtures.appendingPathComponent("expected/logits-\(model).json")
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: json))
        let st = try SafeTensorsFile(path: fixtures.appendingPathComponent("expected/logits-\(model).safetensors").path)
        return (e, st)
    }

    static func load(_ folder: String, _ precision: Precision) throws -> any LanguageModel {
        let m = try ModelFolder.open(fixtures.appendingPathComponent("models/\(folder)").path)
        return try ModelRegistry.load(m, precision: precision, pool: ThreadPool(threads: 2))
    }

    static func maxAbsDiff(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    static let cases: [(String, String)] = [
        ("llama", "llama/safetensors"), ("llama", "llama/bin-sharded"),
        ("baichuan", "baichuan/safetensors"), ("baichuan", "baichuan/bin"),
        ("chatglm", "chatglm/safetensors"), ("chatglm", "chatglm/bin-sharded"),
        ("chatglm-preslim", "chatglm-preslim/safetensors"),
    ]

    /// fp32 path, whole prompt in one batch: every position within 1e-3 of the reference.
    @Test(arguments: cases) func f32PrefillMatchesReference(model: String, folder: String) throws {
        let (e, st) = try Self.reference(model)
        let lm = try Self.load(folder, .f32)
        for p in e.prompts {
            let want = try st.floats(p.tensor)
            let session = lm.makeSession(capacity: 64)
            let got = try lm.forward(p.ids, session: session, logits: .all)
            #expect(got.count == want.count)
            let d = Self.maxAbsDiff(got[...], want[...])
            #expect(d <= 1e-3, "\(folder) \(p.name): max |Δlogit| = \(d)")
        }
    }

    /// fp32 path fed one token at a time through the KV cache (for ChatGLM: the context up to and
    /// including <sop> in one batch, as the prefix-LM mask needs, then one token at a time).
    @Test(arguments: cases) func f32DecodeMatchesReference(model: String, folder: String) throws {
        let (e, st) = try Self.reference(model)
        let lm = try Self.load(folder, .f32)
        for p in e.prompts {
            let want = try st.floats(p.tensor)
            let v = lm.vocabSize
            let session = lm.makeSession(capacity: 64)
            var first = 1
            if let glm = lm as? ChatGLMModel, let sop = p.ids.firstIndex(of: glm.sopID) { first = sop + 1 }
            let head = try lm.forward(Array(p.ids[..<first]), session: session, logits: .all)
            var worst = Self.maxAbsDiff(head[...], want[0..<(first * v)])
            for i in first..<p.ids.count {
                let row = try lm.forward([p.ids[i]], session: session, logits: .last)
                worst = max(worst, Self.maxAbsDiff(row[...], want[(i * v)..<((i + 1) * v)]))
            }
            #expect(worst <= 1e-3, "\(folder) \(p.name): max |Δlogit| = \(worst)")
        }
    }
}
