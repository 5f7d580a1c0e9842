import Foundation
import Testing
@testable import Engine

/// `transformers.generate` (4.30.2) on the trained fixture models, fp32
/// (tools/fixtures/make_generate_fixtures.py): greedy, repetition penalty, min_new_tokens,
/// no_repeat_ngram_size and beam search (2–8 beams, length penalties, early_stopping True / False /
/// "never", n-best) must give the same ids.
@Suite struct GenerationReferenceTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var name: String
            var kwargs: GenerationParameters
            var sequences: [[Int32]]
            var sequence_scores: [Double]?
        }
        struct Prompt: Decodable {
            var name: String
            var ids: [Int32]
            var eos_token_id: [Int]
            var cases: [Case]
        }
        var prompts: [Prompt]
    }

    static func fixture(_ kind: String) throws -> Fixture {
        let url = ForwardReferenceTests.fixtures.appendingPathComponent("expected/generate-\(kind).json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func open(_ kind: String) throws -> (ModelFolder, any LanguageModel) {
        let folder = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/\(kind)-trained/safetensors").path)
        return (folder, try ModelRegistry.load(folder, precision: .f32, pool: ThreadPool(threads: 1)))  // tiny models: one thread is fastest
    }

    /// Runs one case to the end; returns the result.
    static func generate(_ lm: any LanguageModel, _ tokenizer: any Tokenizer, prompt: [Int32],
                         _ p: GenerationParameters) throws -> GenerationResult {
        let g = try TokenGenerator(model: lm, tokenizer: tokenizer, prompt: prompt,
                                   settings: p.resolved(promptLength: prompt.count))
        while let e = try g.next() {
            if case .finished(let r) = e { return r }
        }
        throw GenerationError("no finished event")
    }

    @Test(arguments: ["llama", "baichuan", "chatglm"]) func idsMatchTransformers(kind: String) throws {
        let fx = try Self.fixture(kind)
        let (folder, lm) = try Self.open(kind)
        var checked = 0, beamCases = 0, finishedHyps = 0
        for p in fx.prompts {
            for c in p.cases {
                var params = c.kwargs
                params.eosTokenId = OneOrMany(p.eos_token_id)
                let r = try Self.generate(lm, folder.tokenizer, prompt: p.ids, params)
                let beams = params.numBeams ?? 1
                if beams == 1 {
                    #expect(r.tokens == c.sequences[0], "\(kind) \(p.name) \(c.name)")
                    #expect(r.sequences.isEmpty)
                } else {
                    beamCases += 1
                    #expect(r.sequences.count == c.sequences.count, "\(kind) \(p.name) \(c.name): n-best size")
                    for (j, (got, want)) in zip(r.sequences, c.sequences).enumerated() {
                        // transformers writes eos_token_id[0] after a finished hypothesis, whichever EOS ended it
                        var ids = got.tokens
                        if got.finishedByEOS { ids[ids.count - 1] = Int32(p.eos_token_id[0]); finishedHyps += 1 }
                        #expect(ids == want, "\(kind) \(p.name) \(c.name) sequence \(j)")
                        if let s = c.sequence_scores?[j] {
                            #expect(abs(got.score - s) <= 1e-4 * max(1, abs(s)), "\(kind) \(p.name) \(c.name) score \(got.score) vs \(s)")
                        }
                    }
                    #expect(r.tokens == r.sequences[0].tokens)
                }
                checked += 1
            }
        }
        print("\(kind): \(checked) generate cases identical (\(beamCases) beam cases, \(finishedHyps) EOS-finished hypotheses)")
        #expect(checked >= 30 && beamCases >= 20)
    }
}
