import Foundation
import Testing
@testable import Engine

/// Speculative decoding by prompt lookup: the drafter's guesses, and generation with guesses against
/// generation without them. Every token is still picked from the model's logits for it with the same
/// random draws, so the output must not change — greedy, and sampled under a seed.
@Suite struct PromptLookupTests {
    @Test func draftsWhatFollowedTheLatestLongestMatch() {
        let p = PromptLookup(maxDraft: 3)
        // the trigram 1 2 3 occurred at the start: what followed it
        #expect(p.draft([1, 2, 3, 4, 5, 9, 2, 3, 6, 7, 1, 2, 3], limit: 8) == [4, 5, 9])
        // no earlier 8 2 3: the bigram 2 3, its latest earlier occurrence
        #expect(p.draft([5, 2, 3, 6, 7, 2, 3, 9, 8, 2, 3], limit: 8) == [9, 8, 2])
        #expect(p.draft([5, 2, 3, 6, 7, 8, 2, 3], limit: 2) == [6, 7])
        // a run: the match may overlap the suffix
        #expect(p.draft([4, 4, 4], limit: 8) == [4])
        #expect(p.draft([1, 2, 3], limit: 8) == [])
        #expect(p.draft([1, 2, 1], limit: 0) == [])
        #expect(PromptLookup(maxDraft: 0).draft([1, 1, 1], limit: 8) == [])
    }

    @Test func settingIsValidated() throws {
        var s = GenerationSettings()
        s.promptLookupTokens = PromptLookup.maxTokens + 1
        #expect(throws: GenerationError.self) { try s.validate() }
        var p = GenerationParameters()
        p.promptLookupNumTokens = 4
        #expect(try p.resolved(promptLength: 3).promptLookupTokens == 4)
        let yaml = try JSONDecoder().decode(GenerationParameters.self, from: Data(#"{"prompt_lookup_num_tokens": 5}"#.utf8))
        #expect(yaml.promptLookupNumTokens == 5)
    }

    /// The premise, int8 where the row kernel runs a forward of a few tokens: each token's logits
    /// from one forward of four are those of four forwards of one, bit for bit, with and without an
    /// adapter (its delta takes the lone-token path too).
    @Test(arguments: BatchDecoderTests.models) func aForwardOfFourIsFourForwardsOfOne(kind: String, adapterNames: [String]) throws {
        guard Int8Matrix.rowsMaxTokens >= 4 else { return }
        try Self.withoutAndWithAdapter(kind, adapterNames[0], Self.compareFourWithOne)
    }

    /// `body` on the fixture model, first with no adapter, then under `adapter`.
    static func withoutAndWithAdapter(_ kind: String, _ adapter: String,
                                      _ body: (BatchDecoderTests.Fixture, String) throws -> Void) throws {
        let f = try BatchDecoderTests.load(kind)
        for adapters in [[], [(adapter: try AdapterTests.adapter(adapter), multiplier: Float(1))]] {
            try f.model.setAdapters(adapters)
            defer { f.model.lora.set([]) }
            try body(f, kind)
        }
    }

    static func compareFourWithOne(_ f: BatchDecoderTests.Fixture, _ kind: String) throws {
        let prompt = BatchDecoderTests.prompt(f, 6, 2)
        let tail: [Int32] = [17, 230, 41, 99]
        let a = f.model.makeSession(capacity: 16), b = f.model.makeSession(capacity: 16)
        _ = try f.model.forward(prompt, session: a, logits: .last)
        _ = try f.model.forward(prompt, session: b, logits: .last)
        let together = try f.model.forward(tail, session: a, logits: .all)
        let v = f.model.vocabSize
        for (i, t) in tail.enumerated() {
            let one = try f.model.forward([t], session: b, logits: .last)
            let differ = zip(together[(i * v)..<((i + 1) * v)], one).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differ == 0, "\(kind) token \(i): \(differ) of \(v) logits differ")
        }
    }

    static func run(_ f: BatchDecoderTests.Fixture, _ prompt: [Int32], _ s: GenerationSettings) throws -> (GenerationResult, ModelSession) {
        let session = f.model.makeSession(capacity: prompt.count + s.maxNewTokens)
        let gen = try TokenGenerator(model: f.model, tokenizer: f.tokenizer, prompt: prompt, settings: s, session: session)
        while let e = try gen.next() {
            if case .finished(let r) = e { return (r, session) }
        }
        throw GenerationError("no finish")
    }

    /// A prompt that repeats itself (guesses find matches), greedy and seeded sampling, with and without
    /// guesses, without and with an adapter: the same tokens, text and ending; fewer forwards; the
    /// session as plain decoding leaves it.
    @Test(arguments: BatchDecoderTests.models) func outputIsUnchanged(kind: String, adapterNames: [String]) throws {
        try Self.withoutAndWithAdapter(kind, adapterNames[0], Self.checkUnchanged)
    }

    static func checkUnchanged(_ f: BatchDecoderTests.Fixture, _ kind: String) throws {
        var prompt = BatchDecoderTests.prompt(f, 8, 3)
        let body = Array(prompt.prefix(8))
        prompt = body + body + prompt
        var accepted = 0
        for sample in [false, true] {
            var s = BatchDecoderTests.settings(40, sample: sample, seed: 11)
            s.repetitionPenalty = sample ? 1.0 : 1.05
            let (plain, plainSession) = try Self.run(f, prompt, s)
            s.promptLookupTokens = 4
            let (fast, fastSession) = try Self.run(f, prompt, s)
            #expect(fast.tokens == plain.tokens, "\(kind) sample \(sample)")
            #expect(fast.text == plain.text && fast.reason == plain.reason)
            #expect(fastSession.tokens == plainSession.tokens && fastSession.tokens == prompt + plain.tokens.dropLast())
            let st = fast.stats
            #expect(st.acceptedDraftTokens <= st.draftTokens && st.draftTokens > 0, "\(st)")
            #expect(st.forwards == plain.stats.forwards - st.acceptedDraftTokens, "\(st) vs \(plain.stats.forwards)")
            accepted += st.acceptedDraftTokens
        }
        #expect(accepted > 0, "\(kind): no guess was ever picked")
    }

    /// After a cancel mid-reply the session holds what it would without guesses: prompt + picks but the last.
    @Test func cancelLeavesTheSessionConsistent() throws {
        let f = try BatchDecoderTests.load("llama")
        let body = Array(BatchDecoderTests.prompt(f, 6, 4))
        let prompt = body + body + body
        var s = BatchDecoderTests.settings(30)
        s.promptLookupTokens = 5
        let session = f.model.makeSession(capacity: 64)
        let gen = try TokenGenerator(model: f.model, tokenizer: f.tokenizer, prompt: prompt, settings: s, session: session)
        var picked: [Int32] = []
        while let e = try gen.next() {
            if case .token(let id, _) = e {
                picked.append(id)
                if picked.count == 7 { gen.cancel() }
            }
            if case .finished(let r) = e {
                #expect(r.reason == .cancelled && r.tokens == picked)
            }
        }
        #expect(session.tokens == prompt + picked.dropLast())
    }
}
