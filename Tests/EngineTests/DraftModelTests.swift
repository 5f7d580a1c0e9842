import Foundation
import Testing
@testable import Engine

/// Speculative decoding with a draft model: the guesses come from another model's greedy picks, and
/// every token is still picked from the big model's logits with the same random draws, so the output
/// must be plain decoding's — greedy and seeded — whatever the draft model says.
@Suite struct DraftModelTests {
    static func run(_ f: BatchDecoderTests.Fixture, _ prompt: [Int32], _ s: GenerationSettings,
                    draft: DraftModel? = nil) throws -> (GenerationResult, ModelSession) {
        let session = f.model.makeSession(capacity: prompt.count + s.maxNewTokens)
        let gen = try TokenGenerator(model: f.model, tokenizer: f.tokenizer, prompt: prompt, settings: s, session: session, draft: draft)
        while let e = try gen.next() {
            if case .finished(let r) = e { return (r, session) }
        }
        throw GenerationError("no finish")
    }

    /// The model drafting for itself, greedy: every guess is picked, and each forward of guesses
    /// stands for all of them.
    @Test(arguments: ["llama", "baichuan", "chatglm"]) func aModelDraftingForItselfIsAlwaysRight(kind: String) throws {
        let f = try BatchDecoderTests.load(kind)
        let prompt = BatchDecoderTests.prompt(f, 9, 1)
        let s = BatchDecoderTests.settings(30)
        let (plain, _) = try Self.run(f, prompt, s)
        let draft = try DraftModel(model: f.model, maxDraft: 4)
        let (fast, session) = try Self.run(f, prompt, s, draft: draft)
        #expect(fast.tokens == plain.tokens && fast.text == plain.text && fast.reason == plain.reason)
        #expect(session.tokens == prompt + plain.tokens.dropLast())
        let st = fast.stats
        #expect(st.draftTokens > 0 && st.acceptedDraftTokens == st.draftTokens, "\(st)")
        #expect(st.forwards == plain.stats.forwards - st.acceptedDraftTokens && st.forwards <= 1 + (30 + 3) / 5 + 1, "\(st)")
        #expect(st.draftModelSeconds > 0 && st.draftModelForwards >= st.draftTokens, "\(st)")
    }

    /// A draft that is often wrong (the same weights under an adapter, a second copy of the model):
    /// greedy and seeded sampling give plain decoding's tokens, text and session; some guesses are
    /// dropped, so the draft's own session is cut back and read on from where it went wrong.
    @Test(arguments: BatchDecoderTests.models) func aWrongDraftChangesNothing(kind: String, adapterNames: [String]) throws {
        let f = try BatchDecoderTests.load(kind)
        let other = try BatchDecoderTests.load(kind)
        try other.model.setAdapters([(adapter: try AdapterTests.adapter(adapterNames[0]), multiplier: 2)])
        let prompt = BatchDecoderTests.prompt(f, 7, 2)
        var dropped = 0
        for sample in [false, true] {
            let s = BatchDecoderTests.settings(40, sample: sample, seed: 5)
            let (plain, plainSession) = try Self.run(f, prompt, s)
            let draft = try DraftModel(model: other.model, maxDraft: 5)
            let (fast, fastSession) = try Self.run(f, prompt, s, draft: draft)
            #expect(fast.tokens == plain.tokens, "\(kind) sample \(sample)")
            #expect(fast.text == plain.text && fast.reason == plain.reason)
            #expect(fastSession.tokens == plainSession.tokens)
            let st = fast.stats
            #expect(st.forwards == plain.stats.forwards - st.acceptedDraftTokens, "\(st)")
            dropped += st.draftTokens - st.acceptedDraftTokens
            // the same draft object again (its session holds the last reply's sequence): same output
            let (again, _) = try Self.run(f, prompt, s, draft: draft)
            #expect(again.tokens == plain.tokens)
        }
        #expect(dropped > 0, "\(kind): the adapter's draft was never wrong; the test shows nothing")
    }

    /// An unsure draft stops early: with a minimum probability of 1 no guess survives (a softmax over
    /// thousands of ids never gives one id all of it), and decoding is plain decoding.
    @Test func minimumProbabilityStopsDrafting() throws {
        let f = try BatchDecoderTests.load("llama")
        let prompt = BatchDecoderTests.prompt(f, 5, 3)
        let s = BatchDecoderTests.settings(12)
        let (plain, _) = try Self.run(f, prompt, s)
        let (fast, _) = try Self.run(f, prompt, s, draft: try DraftModel(model: f.model, maxDraft: 4, minProbability: 1))
        #expect(fast.tokens == plain.tokens && fast.stats.draftTokens == 0 && fast.stats.forwards == plain.stats.forwards)
        #expect(throws: GenerationError.self) { try DraftModel(model: f.model, maxDraft: 0) }
        #expect(throws: GenerationError.self) { try DraftModel(model: f.model, maxDraft: PromptLookup.maxTokens + 1) }
        #expect(throws: GenerationError.self) { try DraftModel(model: f.model, maxDraft: 2, minProbability: 1.5) }
    }

    /// Near the end of max_new_tokens and of the session, only guesses that fit are drafted.
    @Test func guessesFitTheRoomLeft() throws {
        let f = try BatchDecoderTests.load("baichuan")
        let prompt = BatchDecoderTests.prompt(f, 6, 4)
        for n in [1, 2, 3, 6] {
            let s = BatchDecoderTests.settings(n)
            let (plain, _) = try Self.run(f, prompt, s)
            let (fast, session) = try Self.run(f, prompt, s, draft: try DraftModel(model: f.model, maxDraft: 7))
            #expect(fast.tokens == plain.tokens && fast.tokens.count == n)
            #expect(fast.stats.draftTokens <= max(n - 2, 0), "\(n): \(fast.stats)")
            #expect(session.count <= session.capacity && session.tokens == prompt + plain.tokens.dropLast())
        }
    }

    /// Tokenizers: a draft must give every id the piece the model gives it.
    @Test func tokenizersMustMatch() throws {
        let llama = try BatchDecoderTests.load("llama"), glm = try BatchDecoderTests.load("chatglm")
        #expect(DraftModel.mismatch(draft: llama.tokenizer, target: llama.tokenizer) == nil)
        let why = try #require(DraftModel.mismatch(draft: glm.tokenizer, target: llama.tokenizer))
        #expect(why.contains("chatglm") && why.contains("sentencepiece"), "\(why)")
        let b = try DemoModelTests.folder("baichuan-demo"), l = try DemoModelTests.folder("llama-demo")
        let other = try #require(DraftModel.mismatch(draft: l.tokenizer, target: b.tokenizer))
        #expect(other.hasPrefix("id ") && other.contains("in the model's"), "\(other)")
    }
}
