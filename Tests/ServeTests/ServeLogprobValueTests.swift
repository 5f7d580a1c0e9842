import Chat
import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// Logprobs over the real int8 engine and the tiny trained LLaMA fixture, checked against a
/// log-softmax computed here from one direct forward over prompt + reply (what `yanyi logits
/// --all-positions` prints), with the repetition penalty applied as the engine's processor does.
@Suite(.serialized) struct ServeLogprobValueTests {
    static let base = ServeFixtures.root + "/" + ServeFixtures.llama
    static let host = LocalModelHost(pool: ThreadPool(threads: 1))
    static let prompt = "Once upon a time"

    /// log-softmax of `row`, in Double.
    static func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let m = Double(row.max()!)
        let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
        return row.map { Double($0) - lse }
    }

    /// The expected logprobs of `reply` after `promptIDs`: the logits of a direct forward
    /// (the prompt, then each reply token in turn, as the generator feeds them, so the int8
    /// kernels sum in the same order), the repetition penalty applied as its processor does.
    static func expected(_ promptIDs: [Int32], _ reply: [Int32], penalty: Float) throws -> [[Double]] {
        let e = try #require(try host.load(base) { _, _ in } as? LocalEngine)
        let session = e.model.makeSession(capacity: promptIDs.count + reply.count)
        var logits = try e.model.forward(promptIDs, session: session, logits: .last)
        var out: [[Double]] = []
        for (k, id) in reply.enumerated() {
            var row = logits
            if penalty != 1 { RepetitionPenalty(penalty).apply(&row, ids: promptIDs + reply[..<k]) }
            out.append(logSoftmax(row[...]))
            if k + 1 < reply.count { logits = try e.model.forward([id], session: session, logits: .last) }
        }
        return out
    }

    /// Greedy, with and without a repetition penalty: llama.cpp's `/completion` (ids in its
    /// top lists) checked against the forward, and `/v1/completions` giving the same values.
    @Test(arguments: [Float(1), 1.3])
    func logprobsAreTheLogSoftmaxOfTheProcessedLogits(penalty: Float) async throws {
        let (server, _) = makeServer(Self.host)
        let common = #""model": "\#(ServeFixtures.llama)", "prompt": "\#(Self.prompt)", "temperature": 0, "repetition_penalty": \#(penalty)"#
        let (llama, openai) = try await server.application().test(.router) { client in
            (try await client.post("/completion", #"{\#(common), "n_predict": 8, "n_probs": 5, "return_tokens": true}"#).json,
             try await client.post("/v1/completions", #"{\#(common), "max_tokens": 8, "logprobs": 5}"#).json)
        }
        let ids = (llama["tokens"]?.array ?? []).compactMap(\.int).map(Int32.init)
        #expect(ids.count == 8, "\(llama)")
        let probs = llama["completion_probabilities"]?.array ?? []
        #expect(probs.count == ids.count)

        let e = try #require(try Self.host.load(Self.base) { _, _ in } as? LocalEngine)
        let promptIDs = e.tokenizer.encode(Self.prompt, addSpecialTokens: true)
        let rows = try Self.expected(promptIDs, ids, penalty: penalty)
        // the same forwards in the same order: equal but for Float -> Double rounding
        for (k, p) in probs.enumerated() {
            let row = rows[k]
            let value = try #require(p["logprob"]?.number)
            #expect(p["id"]?.int == Int(ids[k]))
            #expect(abs(value - row[Int(ids[k])]) < 1e-5, "token \(k): \(value) vs \(row[Int(ids[k])])")
            // greedy: the chosen token is the most likely one
            let top = p["top_logprobs"]?.array ?? []
            let order = row.indices.sorted { row[$0] > row[$1] }.prefix(5)
            #expect(top.compactMap { $0["id"]?.int } == Array(order), "step \(k)")
            for (t, i) in zip(top, order) { #expect(abs((t["logprob"]?.number ?? 0) - row[i]) < 1e-5, "step \(k), id \(i)") }
            #expect(top.first?["id"]?.int == Int(ids[k]))
            #expect(top.reduce(0) { $0 + exp($1["logprob"]?.number ?? 0) } <= 1 + 1e-6)
        }
        // the OpenAI route: the same tokens and values (its prompt but the last token reused
        // from the session, so the last prompt position sums in another order), its tokens
        // spelling the text
        let lp = openai["choices"]?[0]?["logprobs"]
        let values = (lp?["token_logprobs"]?.array ?? []).compactMap(\.number)
        let same = probs.compactMap { $0["logprob"]?.number }
        #expect(values.count == same.count && zip(values, same).allSatisfy { abs($0 - $1) < 1e-4 }, "\(values) vs \(same)")
        let tokens = (lp?["tokens"]?.array ?? []).compactMap(\.string)
        #expect(tokens == probs.compactMap { $0["token"]?.string })
        let text = openai["choices"]?[0]?["text"]?.string ?? ""
        #expect(text == llama["content"]?.string)
        if !tokens.contains(where: { $0.hasPrefix("bytes:") }) { #expect(tokens.joined() == text) }
    }

    /// Turning logprobs on changes nothing generated: the same sampled tokens for a seed.
    @Test func logprobsDoNotChangeTheTokens() throws {
        let e = try #require(try Self.host.load(Self.base) { _, _ in } as? LocalEngine)
        let promptIDs = e.tokenizer.encode(Self.prompt, addSpecialTokens: true)
        var s = GenerationSettings()
        s.maxNewTokens = 10
        s.doSample = true
        s.temperature = 0.9
        s.topK = 20
        s.seed = 7
        func run(_ logprobs: Int?) throws -> ([Int32], [TokenLogprob]) {
            var t = s
            t.logprobs = logprobs
            let g = try TokenGenerator(model: e.model, tokenizer: e.tokenizer, prompt: promptIDs, settings: t)
            var out: [Int32] = []
            while let ev = try g.next() { if case .token(let id, _) = ev { out.append(id) } }
            return (out, g.logprobs)
        }
        let (off, none) = try run(nil)
        let (on, logged) = try run(3)
        #expect(off == on && none.isEmpty)
        #expect(logged.map(\.id) == on && logged.allSatisfy { $0.top.count == 3 && $0.logprob <= 0 })
        #expect(logged.allSatisfy { $0.top.map(\.logprob) == $0.top.map(\.logprob).sorted(by: >) })
    }
}
