import Chat
import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// The batch scheduler (continuous batching) over the real int8 engine and the tiny trained LLaMA
/// fixture: concurrent requests decode together, and each gets exactly what it gets alone.
@Suite(.serialized) struct ServeBatchTests {
    static let host = ServeEngineTests.host
    static let base = ServeEngineTests.base

    static func tokens(_ j: JSON) -> [Int32]? { j["choices"]?[0]?["tokens"]?.array?.compactMap { $0.int.map(Int32.init) } }

    /// Sends `bodies` together; the replies in the bodies' order.
    static func together(_ client: some TestClientProtocol, _ bodies: [String]) async throws -> [JSON] {
        try await withThrowingTaskGroup(of: (Int, JSON).self) { group in
            for (i, b) in bodies.enumerated() { group.addTask { (i, try await client.post("/v1/completions", b).json) } }
            var out = [JSON](repeating: .null, count: bodies.count)
            for try await (i, j) in group { out[i] = j }
            return out
        }
    }

    /// Two concurrent greedy requests with different adapters, and one without, give exactly the
    /// tokens of each request run alone; the prompts are prefilled in chunks of 8 tokens (counted,
    /// not timed; BatchDecoderTests holds the per-step budget).
    @Test func mixedAdaptersGiveTheTokensOfEachAlone() async throws {
        let prompt = "Once upon a time"
        let long = "Once upon a time there was a little fox who lived in the forest and liked to run"
        let expected = [
            try ServeEngineTests.alone(prompt, adapters: [AdapterSetting(path: ServeEngineTests.qv, scale: 1)], maxNew: 12),
            try ServeEngineTests.alone(prompt, adapters: [AdapterSetting(path: ServeEngineTests.all, scale: 0.7)], maxNew: 12),
            try ServeEngineTests.alone(long, adapters: [], maxNew: 12),
        ]
        #expect(expected[0].tokens != expected[1].tokens)   // the adapters matter on this prompt
        let bodies = [
            ServeEngineTests.body(prompt, ServeFixtures.llama, extra: #", "adapters": [{"name": "adapters/llama-qv", "scale": 1}]"#),
            ServeEngineTests.body(prompt, ServeFixtures.llama + "+llama-all@0.7"),
            ServeEngineTests.body(long, ServeFixtures.llama),
        ]
        // a budget no step reaches: each prompt's chunks are cut by `chunk` alone, whenever it arrives
        let (server, scheduler) = makeBatchServer(Self.host, chunk: 8, prefillBudget: 1000)
        try await server.application().test(.router) { client in
            let replies = try await Self.together(client, bodies)
            for (i, j) in replies.enumerated() {
                #expect(Self.tokens(j) == expected[i].tokens, "request \(i): \(j)")
                #expect(j["choices"]?[0]?["text"]?.string == expected[i].text)
                #expect(j["usage"]?["completion_tokens"]?.int == expected[i].tokens.count)
            }
            let promptTokens = replies.compactMap { $0["usage"]?["prompt_tokens"]?.int }
            #expect(promptTokens.count == 3)
            #expect(scheduler.counters.prefillChunks == promptTokens.reduce(0) { $0 + ($1 + 7) / 8 }, "\(promptTokens)")
        }
        scheduler.shutdown()
    }

    /// Four identical concurrent greedy requests give identical text (that of the request alone).
    @Test func fourIdenticalRequestsGiveIdenticalText() async throws {
        let prompt = "The king said"
        let expected = try ServeEngineTests.alone(prompt, adapters: [AdapterSetting(path: ServeEngineTests.qv, scale: 1)], maxNew: 12)
        let body = ServeEngineTests.body(prompt, ServeFixtures.llama + "+llama-qv")
        let (server, scheduler) = makeBatchServer(Self.host)
        try await server.application().test(.router) { client in
            let replies = try await Self.together(client, Array(repeating: body, count: 4))
            for j in replies {
                #expect(j["choices"]?[0]?["text"]?.string == expected.text, "\(j)")
                #expect(Self.tokens(j) == expected.tokens)
            }
            // Per-step metrics: one count per step the scheduler ran, none running now.
            let metrics = try await client.get("/metrics").text
            func value(_ name: String) -> Double? {
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            let steps = scheduler.counters.steps
            #expect(steps >= 12)
            #expect(value("yanyi_batch_steps_total") == Double(steps), "\(metrics)")
            #expect(value("yanyi_batch_step_sequences_count") == Double(steps))
            #expect(value("yanyi_batch_sequences_running") == 0)
            // every sequence-step counted: 4 sequences, each in 12 decode steps plus its prefill step(s)
            #expect((value("yanyi_batch_step_sequences_sum") ?? 0) >= 4 * 12)
        }
        scheduler.shutdown()
    }

    /// Sampled requests with a seed give the same tokens batched as alone.
    @Test func seededSamplingGivesTheTokensOfEachAlone() async throws {
        let prompt = "Once upon a time"
        func alone(seed: UInt64) throws -> EngineReply {
            let e = try Self.host.load(Self.base) { _, _ in }
            var user = GenerationParameters()
            user.doSample = true
            user.temperature = 0.9
            user.maxNewTokens = 16
            user.seed = seed
            let ids = e.tokenizer.encode(prompt, addSpecialTokens: true)
            return e.generate(EngineRequest(promptIDs: ids, parameters: GenerationParameters.layered(model: e.defaults, persona: nil, user: user)),
                              cancelled: CancellationFlag()) { _ in }
        }
        let expected = [try alone(seed: 5), try alone(seed: 9)]
        let bodies = [5, 9].map {
            #"{"model": "\#(ServeFixtures.llama)", "prompt": "\#(prompt)", "temperature": 0.9, "top_p": 1, "max_tokens": 16, "seed": \#($0), "return_tokens": true}"#
        }
        let (server, scheduler) = makeBatchServer(Self.host)
        try await server.application().test(.router) { client in
            let replies = try await Self.together(client, bodies)
            for (i, j) in replies.enumerated() { #expect(Self.tokens(j) == expected[i].tokens, "seed \(i): \(j)") }
        }
        scheduler.shutdown()
    }

    /// A job cancelled while its sequence decodes leaves before the next step (the worker is held
    /// after step 3, the cancel lands, the worker goes on): it ends cancelled with the 3 tokens it
    /// had, and the sequences beside it finish exactly as alone.
    @Test func cancelledSequenceLeavesBeforeTheNextStep() async throws {
        let scheduler = BatchScheduler(host: Self.host)
        let reached = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0)
        scheduler.afterStep = { step in
            if step == 3 {
                reached.signal()
                go.wait()
            }
        }
        func job(_ prompt: String, maxNew: Int, adapters: [AdapterSetting] = []) -> GenerationJob {
            GenerationJob(base: Self.base, adapters: adapters) { (e: any ReplyEngine) throws(APIError) -> PreparedGeneration in
                var user = GenerationParameters()
                user.doSample = false
                user.maxNewTokens = maxNew
                user.minNewTokens = maxNew        // no EOS before the cancel
                let ids = e.tokenizer.encode(prompt, addSpecialTokens: true)
                return PreparedGeneration(request: EngineRequest(promptIDs: ids, parameters: GenerationParameters.layered(model: e.defaults, persona: nil, user: user)))
            }
        }
        let qv = [AdapterSetting(path: ServeEngineTests.qv, scale: 1)]
        let a = job("Once upon a time", maxNew: 40), b = job("The king said", maxNew: 10), c = job("Once upon a time", maxNew: 10, adapters: qv)
        try scheduler.submit([a, b, c])
        let watcher = Thread {
            reached.wait()
            scheduler.cancel(a)
            go.signal()
        }
        watcher.start()
        func reply(_ j: GenerationJob) async -> EngineReply? {
            var r: EngineReply?
            while let e = await j.events.next() { if case .finished(let x) = e { r = x } }
            return r
        }
        let ra = await reply(a), rb = await reply(b), rc = await reply(c)
        #expect(ra?.reason == .cancelled)
        #expect(ra?.tokens.count == 3, "\(ra?.tokens ?? [])")
        func alone(_ prompt: String, _ adapters: [AdapterSetting]) throws -> EngineReply {
            let e = try Self.host.load(Self.base) { _, _ in }
            try e.setAdapters(adapters)
            var user = GenerationParameters()
            user.doSample = false
            user.maxNewTokens = 10
            user.minNewTokens = 10
            let ids = e.tokenizer.encode(prompt, addSpecialTokens: true)
            return e.generate(EngineRequest(promptIDs: ids, parameters: GenerationParameters.layered(model: e.defaults, persona: nil, user: user)),
                              cancelled: CancellationFlag()) { _ in }
        }
        #expect(rb?.tokens == (try alone("The king said", [])).tokens)
        #expect(rc?.tokens == (try alone("Once upon a time", qv)).tokens)
        scheduler.shutdown()
    }

    /// An engine that does not batch (the canned one) runs its jobs one at a time on the batch
    /// worker; the queue limit answers 429 with OpenAI's error shape as before.
    @Test func cannedEngineRunsAloneAndLimitsHold() async throws {
        let (server, scheduler) = makeBatchServer(CannedHost(), maxQueue: 1)
        try await server.application().test(.router) { client in
            let r = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "max_tokens": 5}"#)
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.json["choices"]?[0]?["text"]?.string?.isEmpty == false)
            let q = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "n": 2}"#)
            #expect(q.status == .tooManyRequests && q.json["error"]?["code"]?.string == "queue_full")
            #expect(q.json["error"]?["type"]?.string == "rate_limit_error")
        }
        scheduler.shutdown()
    }
}
