import Chat
import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// The server over the real int8 engine and the tiny trained LLaMA fixture with its two adapters.
@Suite(.serialized) struct ServeEngineTests {
    static let base = ServeFixtures.root + "/" + ServeFixtures.llama
    static let qv = ServeFixtures.root + "/adapters/llama-qv"
    static let all = ServeFixtures.root + "/adapters/llama-all"
    /// One thread: the machine running the tests is small and shared.
    static let host = LocalModelHost(pool: ThreadPool(threads: 1))

    /// The reply a freshly loaded engine gives alone: greedy, `maxNew` tokens at most.
    static func alone(_ prompt: String, adapters: [AdapterSetting], maxNew: Int, stop: [String] = [],
                      repetitionPenalty: Float? = nil) throws -> EngineReply {
        let e = try host.load(base) { _, _ in }
        try e.setAdapters(adapters)
        var user = GenerationParameters()
        user.doSample = false
        user.maxNewTokens = maxNew
        user.stop = stop.isEmpty ? nil : stop
        user.repetitionPenalty = repetitionPenalty
        let ids = e.tokenizer.encode(prompt, addSpecialTokens: true)
        return e.generate(EngineRequest(promptIDs: ids, parameters: GenerationParameters.layered(model: e.defaults, persona: nil, user: user)),
                          cancelled: CancellationFlag()) { _ in }
    }

    static func body(_ prompt: String, _ model: String, extra: String = "") -> String {
        #"{"model": "\#(model)", "prompt": "\#(prompt)", "temperature": 0, "max_tokens": 12, "return_tokens": true\#(extra)}"#
    }

    /// Requests with different adapter sets, sent together and in turn, each give exactly the
    /// tokens of the same request run alone on a fresh engine (the engine's per-adapter-set KV
    /// snapshots never leak between them).
    @Test func differentAdaptersGiveTheTokensOfEachAlone() async throws {
        let prompt = "Once upon a time"
        let expected = [
            try Self.alone(prompt, adapters: [AdapterSetting(path: Self.qv, scale: 1)], maxNew: 12),
            try Self.alone(prompt, adapters: [AdapterSetting(path: Self.all, scale: 0.7)], maxNew: 12),
            try Self.alone(prompt, adapters: [], maxNew: 12),
        ]
        #expect(expected[0].tokens != expected[1].tokens)   // the adapters matter on this prompt
        let requests = [
            Self.body(prompt, ServeFixtures.llama, extra: #", "adapters": [{"name": "adapters/llama-qv", "scale": 1}]"#),
            Self.body(prompt, ServeFixtures.llama + "+llama-all@0.7"),
            Self.body(prompt, ServeFixtures.llama),
        ]
        let (server, scheduler) = makeServer(Self.host)
        try await server.application().test(.router) { client in
            for _ in 0..<2 {
                let replies = try await withThrowingTaskGroup(of: (Int, JSON).self) { group in
                    for (i, r) in (requests + requests).enumerated() {
                        group.addTask { (i % 3, try await client.post("/v1/completions", r).json) }
                    }
                    var out: [(Int, JSON)] = []
                    for try await x in group { out.append(x) }
                    return out
                }
                #expect(replies.count == 6)
                for (i, j) in replies {
                    let tokens = j["choices"]?[0]?["tokens"]?.array?.compactMap { $0.int.map(Int32.init) }
                    #expect(tokens == expected[i].tokens, "request \(i): \(j)")
                    #expect(j["choices"]?[0]?["text"]?.string == expected[i].text)
                    #expect(j["usage"]?["completion_tokens"]?.int == expected[i].tokens.count)
                }
            }
        }
        scheduler.shutdown()
    }

    /// A chat through a persona is the reply the chat runtime gives to the same conversation.
    @Test func chatMatchesTheRuntime() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yanyi-serve-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let persona = try #require(ServeFixtures.personas.first { $0.id == "runtime/llama-plain" })
        let controller = ChatController(options: .init(modelsRoot: ServeFixtures.root), host: Self.host,
                                        library: PersonaLibrary.load(from: ServeFixtures.fixtures.appendingPathComponent("chat/personas-runtime").path),
                                        store: try SessionStore(directory: dir), persona: persona)
        let first = try controller.send("Tell me a story")
        let second = try controller.send("And then?")

        let (server, scheduler) = makeServer(Self.host)
        try await server.application().test(.router) { client in
            let body = #"""
                {"model": "persona:runtime/llama-plain", "return_tokens": true, "messages": [
                  {"role": "user", "content": "Tell me a story"}, {"role": "assistant", "content": \#(String(data: encodeJSON(first.text), encoding: .utf8)!)},
                  {"role": "user", "content": "And then?"}]}
                """#
            let j = try await client.post("/v1/chat/completions", body).json
            #expect(j["choices"]?[0]?["message"]?["content"]?.string == second.text, "\(j)")
            #expect(j["choices"]?[0]?["tokens"]?.array?.compactMap { $0.int.map(Int32.init) } == second.tokens)
            #expect(j["usage"]?["prompt_tokens"]?.int == second.promptIDs.count)
        }
        scheduler.shutdown()
    }

    /// SillyTavern's request shape on the real engine: `stopping_strings` ends the reply where
    /// the text first shows it, streamed.
    @Test func sillyTavernStopStringsOnTheEngine() async throws {
        let prompt = "孔明曰："
        // the request's repetition_penalty 1.1 applies to greedy decoding too
        let free = try Self.alone(prompt, adapters: [], maxNew: 300, repetitionPenalty: 1.1)
        let chars = Array(free.text)
        try #require(chars.count >= 6)
        let stop = String(chars[3...4])
        let cut = try Self.alone(prompt, adapters: [], maxNew: 300, stop: [stop], repetitionPenalty: 1.1)
        #expect(cut.text == String(free.text[..<free.text.range(of: stop)!.lowerBound]))
        let (server, scheduler) = makeServer(Self.host)
        try await server.application().test(.router) { client in
            var body = ServeRouteTests.sillyTavernBody(model: ServeFixtures.llama, stop: stop)
            body = body.replacingOccurrences(of: #""temperature": 0.7"#, with: #""temperature": 0"#)
            let r = try await client.post("/v1/completions", body)
            #expect(r.status == .ok, "\(r.text)")
            #expect(streamedText(r.events) == cut.text)
            #expect(r.events.last == "[DONE]")
        }
        scheduler.shutdown()
    }

    /// llama.cpp's `ignore_eos` (and text-generation-webui's `ban_eos_token`): a reply that would end
    /// on the end-of-sequence token runs on to max_tokens, with the same tokens up to that point.
    @Test func ignoreEOSRunsToMaxTokens() async throws {
        // A prompt whose greedy reply ends by itself on this fixture (its end-of-sequence token).
        var found: (String, EngineReply)?
        for p in ["孔明曰：", "你好", "Once upon a time", "曹操", "The end", "玄德", "。", "问："] where found == nil {
            let r = try Self.alone(p, adapters: [], maxNew: 120)
            if r.tokens.count < 120 { found = (p, r) }
        }
        let (prompt, free) = try #require(found, "no candidate prompt's greedy reply ends by itself")
        let want = free.tokens.count + 4
        let (server, scheduler) = makeServer(Self.host)
        try await server.application().test(.router) { client in
            for key in ["ignore_eos", "ban_eos_token"] {
                let body = #"{"model": "\#(ServeFixtures.llama)", "prompt": "\#(prompt)", "temperature": 0, "max_tokens": \#(want), "return_tokens": true, "\#(key)": true}"#
                let j = try await client.post("/v1/completions", body).json
                let tokens = j["choices"]?[0]?["tokens"]?.array?.compactMap { $0.int.map(Int32.init) } ?? []
                #expect(tokens.count == want, "\(key): \(j)")
                // the same tokens up to where the free reply took its end-of-sequence token, then others
                #expect(Array(tokens.prefix(free.tokens.count - 1)) == Array(free.tokens.dropLast()), "\(key)")
                #expect(tokens[free.tokens.count - 1] != free.tokens.last, "\(key)")
                #expect(j["choices"]?[0]?["finish_reason"]?.string == "length", "\(key)")
            }
            let plain = try await client.post("/v1/completions", Self.body(prompt, ServeFixtures.llama, extra: #", "max_tokens": 120"#)
                .replacingOccurrences(of: #""max_tokens": 12, "#, with: "")).json
            #expect(plain["choices"]?[0]?["finish_reason"]?.string == "stop")
        }
        scheduler.shutdown()
    }
}
