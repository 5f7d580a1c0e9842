import Foundation
import Testing
@testable import Engine

/// Small models trained on the novels (tools/fixtures/make_trained_fixtures.py), where logits
/// mean something: the fp32 path must reproduce the PyTorch reference and its greedy
/// continuations exactly, and int8 must cost little (the acceptance figures of the engine issue).
@Suite struct TrainedModelTests {
    struct Expected: Decodable {
        struct Greedy: Decodable { var ids: [Int32] }
        struct Prompt: Decodable {
            var name: String
            var tensor: String
            var ids: [Int32]
            var greedy: Greedy
        }
        var prompts: [Prompt]
    }

    static let models = ["llama-trained", "baichuan-trained", "chatglm-trained"]

    /// fp32 bar against logits-<model>.safetensors. Those ChatGLM references come from the fixture
    /// script's forward with unrounded fp32 rotary frequencies, which the engine no longer uses
    /// (ChatGLM-6B rounds them to fp16; that moves these logits by up to 2.6e-3): they keep the
    /// greedy continuations honest, and ChatGLMUpstreamTests holds the same model to 1e-4 against
    /// the upstream modeling code.
    static func tolerance(_ model: String) -> Float { model.hasPrefix("chatglm") ? 4e-3 : 1e-3 }

    static func setup(_ model: String, _ precision: Precision) throws -> (Expected, SafeTensorsFile, any LanguageModel) {
        let fx = ForwardReferenceTests.fixtures
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fx.appendingPathComponent("expected/logits-\(model).json")))
        let st = try SafeTensorsFile(path: fx.appendingPathComponent("expected/logits-\(model).safetensors").path)
        let lm = try ForwardReferenceTests.load("\(model)/safetensors", precision)
        return (e, st, lm)
    }

    @Test(arguments: models) func f32LogitsAndGreedyMatchReference(model: String) throws {
        let (e, st, lm) = try Self.setup(model, .f32)
        for p in e.prompts {
            let want = try st.floats(p.tensor)
            let got = try lm.forward(p.ids, session: lm.makeSession(capacity: 128), logits: .all)
            let d = ForwardReferenceTests.maxAbsDiff(got[...], want[...])
            #expect(d <= Self.tolerance(model), "\(model) \(p.name): max |Δlogit| = \(d)")
            let cont = try GreedyDecoder(model: lm, stopIDs: []).run(
                prompt: p.ids, maxNewTokens: p.greedy.ids.count, session: lm.makeSession(capacity: p.ids.count + 40))
            #expect(cont == p.greedy.ids, "\(model) \(p.name) greedy continuation")
        }
    }

    /// int8 against the fp32 reference over every position: mean KL ≤ 1e-3, same top token ≥ 98%.
    @Test(arguments: models) func int8CostsLittle(model: String) throws {
        let (e, st, lm) = try Self.setup(model, .int8)
        var stats = LogitStats()
        let v = lm.vocabSize
        for p in e.prompts {
            let want = try st.floats(p.tensor)
            let got = try lm.forward(p.ids, session: lm.makeSession(capacity: 128), logits: .all)
            for i in 0..<p.ids.count {
                stats.add(reference: want[(i * v)..<((i + 1) * v)], test: got[(i * v)..<((i + 1) * v)],
                          next: i + 1 < p.ids.count ? p.ids[i + 1] : nil)
            }
        }
        print("int8 \(model): mean KL \(stats.meanKL), p99 KL \(stats.p99KL), same top \(stats.sameTop)/\(stats.positions), ppl \(stats.perplexityRef) -> \(stats.perplexity)")
        #expect(stats.meanKL <= 1e-3, "\(model): mean KL \(stats.meanKL)")
        #expect(stats.sameTopDecisiveFraction >= 0.99,
                "\(model): same top \(stats.sameTopDecisive)/\(stats.decisive) decisive positions (all: \(stats.sameTop)/\(stats.positions))")
    }
}
