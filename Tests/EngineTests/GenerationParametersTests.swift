import Foundation
import Testing
@testable import Engine

/// generation_config.json < persona < user, transformers' defaults, and refusals.
@Suite struct GenerationParametersTests {
    @Test func layersOverrideInOrder() throws {
        let model = try JSONDecoder().decode(GenerationParameters.self, from: Data("""
            {"do_sample": true, "temperature": 0.3, "top_p": 0.7, "top_k": 5, "eos_token_id": [2, 7],
             "max_length": 60, "early_stopping": "never", "num_beams": 2, "pad_token_id": 0}
            """.utf8))
        var persona = GenerationParameters()
        persona.temperature = 0.9
        persona.stop = ["<end>"]
        var user = GenerationParameters()
        user.temperature = 1.1
        user.topK = 0
        let p = GenerationParameters.layered(model: model, persona: persona, user: user)
        #expect(p.temperature == 1.1 && p.topK == 0 && p.topP == 0.7 && p.doSample == true)
        #expect(p.stop == ["<end>"] && p.earlyStopping == .never && p.eosTokenId?.values == [2, 7])
        let s = try p.resolved(promptLength: 20)
        #expect(s.maxNewTokens == 40)                           // max_length 60 − 20 prompt tokens
        #expect(s.eos == [2, 7] && s.numBeams == 2 && s.earlyStopping == .never)
        var q = p
        q.maxNewTokens = 5
        #expect(try q.resolved(promptLength: 20).maxNewTokens == 5)   // max_new_tokens wins
    }

    @Test func transformersDefaults() throws {
        let s = try GenerationParameters().resolved(promptLength: 3)
        #expect(s.topK == 50 && s.topP == 1 && s.temperature == 1 && s.numBeams == 1 && s.lengthPenalty == 1)
        #expect(s.earlyStopping == .heuristic && !s.doSample && s.maxNewTokens == 128)
        // sampling with only a temperature still gets top_k 50, as in transformers
        var p = GenerationParameters()
        p.doSample = true
        let chain = SamplerChain(try p.resolved(promptLength: 3), promptLength: 3)
        #expect(chain.warpers.count == 1 && chain.warpers[0] is TopK)
    }

    @Test func modelFolderDefaults() throws {
        let folder = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/chatglm-trained/safetensors").path)
        // no generation_config.json: EOS from config.json (<eop>)
        #expect(try GenerationParameters.defaults(for: folder).eosTokenId?.values == [1005])
        let llama = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/llama-trained/safetensors").path)
        #expect(try GenerationParameters.defaults(for: llama).eosTokenId?.values == [2])
    }

    @Test func refusesWhatTransformersRefuses() {
        func refused(_ edit: (inout GenerationSettings) -> Void) -> Bool {
            var s = GenerationSettings()
            edit(&s)
            return (try? s.validate()) == nil
        }
        #expect(refused { $0.doSample = true; $0.temperature = 0 })
        #expect(refused { $0.topP = 1.5 })
        #expect(refused { $0.numBeams = 9 })
        #expect(refused { $0.numBeams = 2; $0.numReturnSequences = 3 })
        #expect(refused { $0.repetitionPenalty = 0 })
        #expect(refused { $0.maxNewTokens = 0 })
        #expect(!refused { $0.numBeams = 8; $0.numReturnSequences = 8 })
        #expect(EarlyStopping("never") == .never && EarlyStopping("true") == .yes && EarlyStopping("False") == .heuristic)
    }
}
