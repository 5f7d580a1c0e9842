import Foundation
import Testing
@testable import Engine

/// Continuous batching (`BatchDecoder`) against each sequence run alone by `TokenGenerator` (the
/// reference path, checked against transformers by GenerationReferenceTests). With int8 weights a
/// batched step's logits equal those of each sequence alone bit for bit (BatchForwardTests), so
/// greedy tokens, and sampled tokens under the same seed, must be the same ones.
@Suite struct BatchDecoderTests {
    static let models: [(String, [String])] = [("llama", ["llama-qv", "llama-all"]), ("baichuan", ["baichuan-wpack"]), ("chatglm", ["chatglm-qkv"])]

    struct Fixture {
        let model: any LanguageModel
        let tokenizer: any Tokenizer
    }

    static func load(_ kind: String) throws -> Fixture {
        let folder = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/\(kind)-trained/safetensors").path)
        return Fixture(model: try ModelRegistry.load(folder, precision: .int8, pool: ThreadPool(threads: 2)), tokenizer: folder.tokenizer)
    }

    static func settings(_ n: Int, sample: Bool = false, seed: UInt64? = nil) -> GenerationSettings {
        var s = GenerationSettings()
        s.maxNewTokens = n
        s.doSample = sample
        if sample {
            s.temperature = 0.9
            s.topK = 40
            s.seed = seed
        }
        return s
    }

    /// The tokens and text of `prompt` generated alone under `adapters`.
    static func alone(_ f: Fixture, _ prompt: [Int32], _ adapters: [(adapter: LoRAAdapter, multiplier: Float)],
                      _ s: GenerationSettings) throws -> GenerationResult {
        try f.model.setAdapters(adapters)
        defer { f.model.lora.set([]) }
        let gen = try TokenGenerator(model: f.model, tokenizer: f.tokenizer, prompt: prompt, settings: s)
        while let e = try gen.next() {
            if case .finished(let r) = e { return r }
        }
        throw GenerationError("no finish")
    }

    /// Steps until the batch is empty; each sequence's result by id, and the events of every step.
    static func drain(_ d: BatchDecoder, limit: Int = 1000) -> (results: [Int: GenerationResult], steps: [[(id: Int, event: BatchDecoder.Event)]]) {
        var results: [Int: GenerationResult] = [:], steps: [[(id: Int, event: BatchDecoder.Event)]] = []
        while !d.isEmpty && steps.count < limit {
            let events = d.step()
            for (id, e) in events {
                if case .finished(let r) = e { results[id] = r }
                if case .failed(let m) = e { Issue.record("sequence \(id) failed: \(m)") }
            }
            steps.append(events)
        }
        return (results, steps)
    }

    static func prompt(_ f: Fixture, _ n: Int, _ salt: Int) -> [Int32] {
        var p = (0..<n).map { Int32(5 + (37 * ($0 + 1) + 101 * salt) % 900) }
        if let glm = f.model as? ChatGLMModel { p += [glm.gmaskID, glm.sopID] }
        return p
    }

    /// Sequences under different adapter sets (none, each adapter, two at once), with prompts of
    /// different lengths, decode together: each gets exactly the tokens and text it gets alone.
    @Test(arguments: models) func greedyWithMixedAdaptersEqualsAlone(kind: String, adapterNames: [String]) throws {
        let f = try Self.load(kind)
        let a = try adapterNames.map(AdapterTests.adapter)
        var sets: [[(adapter: LoRAAdapter, multiplier: Float)]] = [[], [(adapter: a[0], multiplier: Float(1))]]
        let pair: [(adapter: LoRAAdapter, multiplier: Float)] = a.count > 1
            ? [(adapter: a[0], multiplier: Float(0.7)), (adapter: a[1], multiplier: Float(1))] : [(adapter: a[0], multiplier: Float(0.5))]
        sets.append(pair)
        let prompts = sets.indices.map { Self.prompt(f, [3, 9, 6][$0], $0) }
        let s = Self.settings(12)
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer, chunk: 4, prefillBudget: 8)
        var ids: [Int] = []
        for (p, set) in zip(prompts, sets) { ids.append(try d.add(prompt: p, settings: s, adapters: try f.model.makeAdapterStack(set))) }
        let (results, _) = Self.drain(d)
        for (i, id) in ids.enumerated() {
            let want = try Self.alone(f, prompts[i], sets[i], s)
            let got = try #require(results[id])
            #expect(got.tokens == want.tokens, "\(kind) sequence \(i)")
            #expect(got.text == want.text, "\(kind) sequence \(i)")
            #expect(got.reason == want.reason)
        }
        #expect(try Self.alone(f, prompts[1], [], s).tokens != results[ids[1]]?.tokens, "\(kind): the adapter matters on this prompt")
        #expect(f.model.lora.signature == "", "the model's active set is not touched")
    }

    /// Four identical greedy requests decoding together give identical tokens.
    @Test func identicalRequestsGiveIdenticalTokens() throws {
        let f = try Self.load("llama")
        let stack = try f.model.makeAdapterStack([(try AdapterTests.adapter("llama-qv"), 1)])
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer)
        let ids = try (0..<4).map { _ in try d.add(prompt: Self.prompt(f, 7, 1), settings: Self.settings(16), adapters: stack) }
        let (results, steps) = Self.drain(d)
        let tokens = ids.map { results[$0]?.tokens }
        #expect(Set(tokens.map { $0 ?? [] }).count == 1)
        #expect(tokens[0]?.count == 16)
        #expect(steps.count == 16, "one step per token for all four")
    }

    /// Seeded sampling gives the same tokens batched as alone (each sequence its own generator).
    @Test func seededSamplingEqualsAlone() throws {
        let f = try Self.load("llama")
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer)
        let empty = try f.model.makeAdapterStack([])
        let prompts = [Self.prompt(f, 5, 2), Self.prompt(f, 8, 3)]
        let seeds: [UInt64] = [7, 11]
        var ids: [Int] = []
        for i in 0..<2 { ids.append(try d.add(prompt: prompts[i], settings: Self.settings(20, sample: true, seed: seeds[i]), adapters: empty)) }
        let (results, _) = Self.drain(d)
        for i in 0..<2 {
            let want = try Self.alone(f, prompts[i], [], Self.settings(20, sample: true, seed: seeds[i]))
            #expect(results[ids[i]]?.tokens == want.tokens, "sequence \(i)")
        }
    }

    /// A long prompt admitted while two sequences decode is prefilled a chunk per step; the two keep
    /// getting one token every step meanwhile, and every sequence's tokens are those it gets alone.
    @Test func longPromptPrefillsInChunksWhileOthersDecode() throws {
        let f = try Self.load("llama")
        let empty = try f.model.makeAdapterStack([])
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer, chunk: 4, prefillBudget: 4)
        let short = [Self.prompt(f, 3, 4), Self.prompt(f, 4, 5)]
        let long = Self.prompt(f, 30, 6)
        let s = Self.settings(20)
        let a = try d.add(prompt: short[0], settings: s, adapters: empty)
        var steps: [[(id: Int, event: BatchDecoder.Event)]] = [d.step()]     // a's prompt (budget 4: b waits)
        let b = try d.add(prompt: short[1], settings: s, adapters: empty)
        steps.append(d.step())                                              // b's prompt, a decodes
        let c = try d.add(prompt: long, settings: s, adapters: empty)
        let chunksBefore = d.prefillChunks
        var during = 0
        while d.prefilling > 0 {
            let events = d.step()
            steps.append(events)
            during += 1
            #expect(events.filter { $0.id == a }.count == 1 && events.filter { $0.id == b }.count == 1,
                    "a and b each get a token in every step of c's prefill")
        }
        #expect(d.prefillChunks - chunksBefore == 8, "30 tokens in chunks of 4")
        #expect(during == 8)
        let (results, _) = Self.drain(d)
        for (id, p) in [(a, short[0]), (b, short[1]), (c, long)] {
            #expect(results[id]?.tokens == (try Self.alone(f, p, [], s)).tokens, "sequence \(id)")
        }
    }

    /// A cancelled sequence leaves at once (reason cancelled, the tokens it had); the others finish
    /// exactly as alone.
    @Test func cancelLeavesOthersUnchanged() throws {
        let f = try Self.load("llama")
        let empty = try f.model.makeAdapterStack([])
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer)
        let prompts = (0..<3).map { Self.prompt(f, 4 + $0, 7 + $0) }
        let s = Self.settings(14)
        let ids = try prompts.map { try d.add(prompt: $0, settings: s, adapters: empty) }
        for _ in 0..<3 { _ = d.step() }
        guard case .finished(let r)? = d.cancel(ids[1]) else {
            Issue.record("no finish for the cancelled sequence")
            return
        }
        #expect(r.reason == .cancelled)
        #expect(r.tokens.count == 3)
        #expect(d.cancel(ids[1]) == nil, "already gone")
        #expect(d.count == 2)
        let (results, _) = Self.drain(d)
        #expect(results[ids[1]] == nil)
        for i in [0, 2] { #expect(results[ids[i]]?.tokens == (try Self.alone(f, prompts[i], [], s)).tokens) }
    }

    /// A sequence whose forward is refused (a token outside the vocabulary) fails alone; the others
    /// run on. Beam search is refused at `add`.
    @Test func refusedSequenceFailsAlone() throws {
        let f = try Self.load("llama")
        let empty = try f.model.makeAdapterStack([])
        let d = BatchDecoder(model: f.model, tokenizer: f.tokenizer)
        let good = try d.add(prompt: Self.prompt(f, 5, 1), settings: Self.settings(4), adapters: empty)
        let bad = try d.add(prompt: [5, Int32(f.model.vocabSize + 3)], settings: Self.settings(4), adapters: empty)
        let events = d.step()
        #expect(events.contains { if $0.id == bad, case .failed(let m) = $0.event { return m.contains("vocabulary") } else { return false } })
        #expect(events.contains { $0.id == good })
        #expect(d.count == 1)
        var beams = Self.settings(4)
        beams.numBeams = 2
        #expect(throws: GenerationError.self) { try d.add(prompt: [5, 6], settings: beams, adapters: empty) }
    }
}
