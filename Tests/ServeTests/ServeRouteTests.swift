import Chat
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// The routes over the canned engine (no model): shapes, SSE framing, prompts and adapter sets
/// handed to the engine, errors, auth and limits.
@Suite struct ServeRouteTests {
    static let reply = CannedEngine.reply(persona: nil, continuing: false)
    /// 38 pieces: 9 ASCII words, 9 spaces, 20 other characters.
    static let replyTokens = 38

    func app(_ host: CannedHost = CannedHost(), apiKey: String? = nil, maxQueue: Int = 64, maxBodyBytes: Int = 4 << 20)
        -> some ApplicationProtocol {
        makeServer(host, apiKey: apiKey, maxQueue: maxQueue, maxBodyBytes: maxBodyBytes).0.application()
    }

    @Test func modelsListBasesAdaptersAndPersonas() async throws {
        try await app().test(.router) { client in
            let r = try await client.get("/v1/models")
            #expect(r.status == .ok)
            let data = r.json["data"]?.array ?? []
            let ids = data.compactMap { $0["id"]?.string }
            #expect(ids.contains(ServeFixtures.llama))
            #expect(ids.contains("persona:runtime/llama-plain"))
            let qv = data.first { $0["id"]?.string == "adapters/llama-qv" }
            #expect(qv?["kind"]?.string == "adapter")
            #expect(qv?["object"]?.string == "model" && qv?["owned_by"]?.string == "yanyi")
            let lora = try await client.get("/lora-adapters").json.array ?? []
            #expect(lora.first { $0["path"]?.string == "adapters/llama-qv" }?["id"]?.int == qv?["index"]?.int)
            #expect(try await client.get("/models").status == .ok)   // llama.cpp's path too
        }
    }

    @Test func completionWholeAndCut() async throws {
        try await app().test(.router) { client in
            let r = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "你好"}"#)
            #expect(r.status == .ok)
            let j = r.json
            #expect(j["object"]?.string == "text_completion")
            #expect(j["id"]?.string?.hasPrefix("cmpl-") == true)
            #expect(j["choices"]?[0]?["text"]?.string == Self.reply)
            #expect(j["choices"]?[0]?["finish_reason"]?.string == "stop")
            #expect(j["choices"]?[0]?["logprobs"] == .null)
            #expect(j["usage"]?["prompt_tokens"]?.int == 2)   // the canned tokenizer: one id per character
            #expect(j["usage"]?["completion_tokens"]?.int == Self.replyTokens)
            #expect(j["usage"]?["total_tokens"]?.int == Self.replyTokens + 2)

            let cut = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "max_tokens": 3}"#).json
            #expect(cut["choices"]?[0]?["text"]?.string == "This is")
            #expect(cut["choices"]?[0]?["finish_reason"]?.string == "length")
            #expect(cut["usage"]?["completion_tokens"]?.int == 3)
        }
    }

    @Test func completionStreamIsServerSentEvents() async throws {
        try await app().test(.router) { client in
            let body = #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}}"#
            let r = try await client.post("/v1/completions", body)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            #expect(r.text.hasSuffix("data: [DONE]\n\n"))
            let events = r.events
            #expect(!events.contains { $0.hasPrefix("<bad frame") })
            #expect(events.last == "[DONE]")
            #expect(streamedText(events) == Self.reply)
            let chunks = events.dropLast().map { (try? JSON.parse(Data($0.utf8))) ?? .null }
            #expect(chunks.allSatisfy { $0["object"]?.string == "text_completion" })
            #expect(Set(chunks.compactMap { $0["id"]?.string }).count == 1)
            let finishes = chunks.compactMap { $0["choices"]?[0]?["finish_reason"]?.string }
            #expect(finishes == ["stop"])
            #expect(chunks.last?["choices"]?.array?.isEmpty == true)
            #expect(chunks.last?["usage"]?["completion_tokens"]?.int == Self.replyTokens)
        }
    }

    @Test func chatStreamHasRoleThenContent() async throws {
        try await app().test(.router) { client in
            let body = #"{"model": "\#(ServeFixtures.llama)", "messages": [{"role": "user", "content": "你好"}], "stream": true}"#
            let events = try await client.post("/v1/chat/completions", body).events
            let chunks = events.dropLast().map { (try? JSON.parse(Data($0.utf8))) ?? .null }
            #expect(chunks.first?["choices"]?[0]?["delta"]?["role"]?.string == "assistant")
            #expect(chunks.allSatisfy { $0["object"]?.string == "chat.completion.chunk" })
            #expect(streamedText(events) == Self.reply)
            #expect(chunks.last?["choices"]?[0]?["finish_reason"]?.string == "stop")
            #expect(chunks.last?["choices"]?[0]?["delta"] == .object([:]))
            #expect(events.last == "[DONE]")
        }
    }

    /// What the engine is asked: the persona's template over the messages, fitted by TurnPlan,
    /// with the system message as its preamble, the persona's stop strings and adapters.
    @Test func chatPromptComesFromThePersona() async throws {
        let host = CannedHost()
        try await app(host).test(.router) { client in
            let body = #"""
                {"model": "persona:runtime/llama-plain", "messages": [
                  {"role": "system", "content": "你是助手。"},
                  {"role": "user", "content": "一"}, {"role": "assistant", "content": "二"},
                  {"role": "user", "content": [{"type": "text", "text": "三"}]}]}
                """#
            let r = try await client.post("/v1/chat/completions", body)
            #expect(r.status == .ok)
            #expect(r.json["object"]?.string == "chat.completion")
            // the persona's max_new_tokens (10 pieces), then its template's strip
            #expect(r.json["choices"]?[0]?["message"]?["content"]?.string == "This is a canned reply")
            #expect(r.json["choices"]?[0]?["finish_reason"]?.string == "length")
        }
        var persona = try #require(ServeFixtures.personas.first { $0.id == "runtime/llama-plain" })
        persona.preamble = "你是助手。"
        let plan = try TurnPlan(persona: persona, history: [.user("一"), .assistant("二")], utterance: "三", tokenizer: ScalarTokenizer(),
                                contextLength: 2048, defaultMaxNewTokens: 10)
        let sent = try #require(host.engine.requests.last)
        #expect(sent.promptIDs == plan.fitted.tokenIDs)
        #expect(plan.fitted.prompt.text.hasPrefix("你是助手。\n\n### Instruction:\n一"))
        #expect(sent.parameters.stop == ["### Instruction:"])
        #expect(sent.parameters.maxNewTokens == 10)
        #expect(sent.persona == "runtime/llama-plain")
        #expect(host.engine.adapterLog.last == [AdapterSetting(path: ServeFixtures.root + "/adapters/llama-qv", scale: 1)])
        #expect(host.loads == [ServeFixtures.root + "/" + ServeFixtures.llama])
    }

    @Test func adapterSetsFromModelAdaptersAndLora() async throws {
        let host = CannedHost()
        let qv = ServeFixtures.root + "/adapters/llama-qv", all = ServeFixtures.root + "/adapters/llama-all"
        let catalog = ModelCatalog.scan(modelsRoot: ServeFixtures.root, personas: [])
        let qvIndex = try #require(catalog.adapters.first { $0.id == "adapters/llama-qv" }?.index)
        try await app(host).test(.router) { client in
            func run(_ extra: String, model: String = ServeFixtures.llama) async throws -> [AdapterSetting] {
                let r = try await client.post("/v1/completions", #"{"model": "\#(model)", "prompt": "x", "max_tokens": 1\#(extra)}"#)
                #expect(r.status == .ok, "\(r.text)")
                return host.engine.adapterLog.last ?? []
            }
            var got = try await run("")
            #expect(got == [])
            got = try await run("", model: ServeFixtures.llama + "+adapters/llama-all@0.5")
            #expect(got == [AdapterSetting(path: all, scale: 0.5)])
            got = try await run(#", "adapters": [{"name": "llama-qv", "scale": 0.8}, "adapters/llama-all"]"#)
            #expect(got == [AdapterSetting(path: qv, scale: 0.8), AdapterSetting(path: all, scale: 1)])
            got = try await run(#", "lora": [{"id": \#(qvIndex), "scale": 1.5}]"#)
            #expect(got == [AdapterSetting(path: qv, scale: 1.5)])
            // a persona's adapter, its scale changed by the request; another added; scale 0 left out
            got = try await run(#", "adapters": [{"name": "adapters/llama-qv", "scale": 0.25}, {"name": "adapters/llama-all", "scale": 0}]"#,
                                model: "persona:runtime/llama-plain")
            #expect(got == [AdapterSetting(path: qv, scale: 0.25)])
        }
    }

    @Test func pathsAreRefusedAndNothingLoads() async throws {
        let host = CannedHost()
        try await app(host).test(.router) { client in
            for bad in ["../models/llama-trained/safetensors", "/etc", "adapters/../../etc", "~/x", "adapters/./llama-qv"] {
                let r = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "adapters": [{"name": "\#(bad)"}]}"#)
                #expect(r.status == .badRequest)
                #expect(r.json["error"]?["code"]?.string == "invalid_model_name", "\(bad): \(r.text)")
                #expect(r.json["error"]?["param"]?.string == "adapters[0]")
                let m = try await client.post("/v1/completions", #"{"model": "\#(bad)", "prompt": "x"}"#)
                #expect(m.json["error"]?["code"]?.string == "invalid_model_name", "\(bad): \(m.text)")
            }
            let unknown = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)+nope", "prompt": "x"}"#)
            #expect(unknown.status == .badRequest && unknown.json["error"]?["code"]?.string == "adapter_not_found")
            let noModel = try await client.post("/v1/completions", #"{"model": "gpt-4", "prompt": "x"}"#)
            #expect(noModel.status == .notFound && noModel.json["error"]?["code"]?.string == "model_not_found")
            let badLora = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "lora": [{"id": 99}]}"#)
            #expect(badLora.status == .badRequest && badLora.json["error"]?["param"]?.string == "lora[0]")
        }
        #expect(host.loads.isEmpty)
    }

    @Test func errorsAreOpenAIShaped() async throws {
        try await app().test(.router) { client in
            func error(_ uri: String, _ body: String) async throws -> (Int, JSON) {
                let r = try await client.post(uri, body)
                #expect(r.headers[.contentType] == "application/json")
                let e = r.json["error"] ?? .null
                #expect(e.object.map { Set($0.keys) } == ["message", "type", "param", "code"], "\(r.text)")
                return (r.status.code, e)
            }
            let m = ServeFixtures.llama
            var (s, e) = try await error("/v1/completions", "{not json")
            #expect(s == 400 && e["code"]?.string == "invalid_json")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(m)", "prompt": "x", "temperature": "hot"}"#)
            #expect(s == 400 && e["param"]?.string == "temperature" && e["type"]?.string == "invalid_request_error")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(m)", "prompt": "x", "logprobs": 21}"#)
            #expect(s == 400 && e["param"]?.string == "logprobs")
            (s, e) = try await error("/v1/chat/completions", #"{"model": "\#(m)", "messages": [{"role": "user", "content": "x"}], "logprobs": "yes"}"#)
            #expect(s == 400 && e["param"]?.string == "logprobs")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(m)", "prompt": "x", "max_tokens": 5000}"#)
            #expect(s == 400 && e["code"]?.string == "max_tokens_too_large")
            (s, e) = try await error("/v1/chat/completions", #"{"model": "\#(m)", "messages": [{"role": "assistant", "content": "x"}]}"#)
            #expect(s == 400 && e["param"]?.string == "messages")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(m)", "prompt": "x", "top_p": 1.5}"#)
            #expect(s == 400 && e["param"]?.string == "top_p")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(m)", "prompt": "x", "temperature": 0.7, "num_beams": 9}"#)
            #expect(s == 400 && e["param"]?.string == "num_beams")
            (s, e) = try await error("/v1/embeddings", "{}")
            #expect(s == 404 && e["code"]?.string == "unknown_url")
            let get = try await client.get("/v1/completions")
            #expect(get.status.code >= 400 && get.json["error"]?["message"]?.string != nil)
        }
    }

    @Test func apiKeyIsABearerToken() async throws {
        try await app(apiKey: "sekret").test(.router) { client in
            let body = #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "max_tokens": 1}"#
            let none = try await client.post("/v1/completions", body)
            #expect(none.status == .unauthorized && none.json["error"]?["code"]?.string == "invalid_api_key")
            #expect(try await client.post("/v1/completions", body, headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
            #expect(try await client.get("/v1/models", headers: [.authorization: "sekret"]).status == .unauthorized)
            #expect(try await client.post("/v1/completions", body, headers: [.authorization: "Bearer sekret"]).status == .ok)
            #expect(try await client.get("/metrics").status == .unauthorized)
            #expect(try await client.get("/health").status == .ok)
        }
    }

    @Test func limitsAnswer413And429() async throws {
        try await app(maxQueue: 1, maxBodyBytes: 2048).test(.router) { client in
            let big = #"{"model": "\#(ServeFixtures.llama)", "prompt": "\#(String(repeating: "x", count: 4000))"}"#
            let r = try await client.post("/v1/completions", big)
            #expect(r.status == .contentTooLarge && r.json["error"]?["code"]?.string == "request_too_large")
            // two choices need two places in a queue of one
            let q = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "n": 2}"#)
            #expect(q.status == .tooManyRequests && q.json["error"]?["code"]?.string == "queue_full")
            #expect(q.json["error"]?["type"]?.string == "rate_limit_error")
            #expect(q.headers[.retryAfter] == "1")
        }
    }

    /// What SillyTavern's Text Completion sends (textgen-settings.js, createTextGenGenerationData):
    /// the OpenAI fields plus text-generation-webui's and llama.cpp's. Unknown keys are ignored,
    /// `stopping_strings` stops, settings the server ignores are named in a header.
    @Test func sillyTavernTextCompletionRequest() async throws {
        let host = CannedHost()
        try await app(host).test(.router) { client in
            let r = try await client.post("/v1/completions", Self.sillyTavernBody(model: ServeFixtures.llama, stop: "用于"))
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.headers[HTTPField.Name("X-Yanyi-Ignored")!]?.contains("frequency_penalty") == true)
            #expect(streamedText(r.events) == "This is a canned reply from the fake backend: 这是一条")
            #expect(r.events.dropLast().last.flatMap { try? JSON.parse(Data($0.utf8)) }?["choices"]?[0]?["finish_reason"]?.string == "stop")
        }
        let p = try #require(host.engine.requests.last?.parameters)
        #expect(p.stop == ["用于", "\n用户："])
        #expect(p.doSample == true && p.temperature == 0.7 && p.topP == 0.9 && p.topK == 40 && p.minP == 0.05)
        #expect(p.repetitionPenalty == 1.1 && p.maxNewTokens == 300 && p.seed == nil)
    }

    static func sillyTavernBody(model: String, stop: String) -> String {
        let q = String(decoding: encodeJSON(stop), as: UTF8.self)
        return #"""
        {"prompt": "孔明曰：", "model": "\#(model)", "max_new_tokens": 300, "max_tokens": 300,
         "temperature": 0.7, "top_p": 0.9, "typical_p": 1, "typical": 1, "sampler_seed": -1, "min_p": 0.05,
         "repetition_penalty": 1.1, "frequency_penalty": 0.5, "presence_penalty": 0, "top_k": 40, "skew": 0,
         "min_tokens": 0, "add_bos_token": true, "smoothing_factor": 0, "smoothing_curve": 1,
         "dry_allowed_length": 2, "dry_multiplier": 0, "dry_base": 1.75, "dry_sequence_breakers": "[\"\\n\", \":\"]",
         "dry_penalty_last_n": 0, "max_tokens_second": 0, "stopping_strings": [\#(q), "\n用户："], "stop": [\#(q), "\n用户："],
         "truncation_length": 4096, "ban_eos_token": false, "skip_special_tokens": true, "include_reasoning": true,
         "top_a": 0, "tfs": 1, "mirostat_mode": 0, "mirostat_tau": 5, "mirostat_eta": 0.1, "custom_token_bans": "",
         "banned_strings": [], "api_type": "ooba", "api_server": "http://127.0.0.1:8080", "xtc_threshold": 0.1,
         "xtc_probability": 0, "nsigma": 0, "top_n_sigma": 0, "min_keep": 0, "rep_pen": 1.1, "rep_pen_range": 0,
         "repetition_penalty_range": 0, "seed": -1, "guidance_scale": 1, "negative_prompt": "", "grammar_string": "",
         "repeat_penalty": 1.1, "repeat_last_n": 0, "n_predict": 300, "num_predict": 300, "num_ctx": 4096, "mirostat": 0,
         "ignore_eos": false, "rep_pen_slope": 1, "n": 1, "logit_bias": [], "cache_prompt": true, "stream": true}
        """#
    }

    @Test func severalChoicesRunOneAfterAnother() async throws {
        let host = CannedHost()
        try await app(host).test(.router) { client in
            let r = try await client.post("/v1/chat/completions", #"""
                {"model": "\#(ServeFixtures.llama)", "messages": [{"role": "user", "content": "x"}], "n": 2, "seed": 7, "temperature": 0.5}
                """#)
            let choices = r.json["choices"]?.array ?? []
            #expect(choices.map { $0["index"]?.int } == [0, 1])
            #expect(choices.allSatisfy { $0["message"]?["content"]?.string == Self.reply })
            #expect(r.json["usage"]?["completion_tokens"]?.int == 2 * Self.replyTokens)
            let stream = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": ["a", "b"], "n": 2, "stream": true}"#)
            #expect((0..<4).map { streamedText(stream.events, index: $0) } == Array(repeating: Self.reply, count: 4))
        }
        #expect(host.engine.requests.prefix(2).map(\.parameters.seed) == [7, 8])
        #expect(host.engine.requests.prefix(2).allSatisfy { $0.parameters.doSample == true && $0.parameters.temperature == 0.5 })
    }

    @Test func metricsAndHealth() async throws {
        try await app().test(.router) { client in
            _ = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "max_tokens": 4}"#)
            _ = try await client.post("/v1/completions", #"{"model": "nope", "prompt": "x"}"#)
            let m = try await client.get("/metrics")
            #expect(m.status == .ok)
            let text = m.text
            #expect(text.contains(#"yanyi_requests_total{route="/v1/completions",status="200"} 1"#), "\(text)")
            #expect(text.contains(#"yanyi_errors_total{code="model_not_found"} 1"#))
            #expect(text.contains("yanyi_generated_tokens_total 4"))
            #expect(text.contains("yanyi_prompt_tokens_total 1"))
            #expect(text.contains("yanyi_queue_length 0"))
            #expect(text.contains("yanyi_time_to_first_token_seconds_count 1"))
            let h = try await client.get("/health").json
            #expect(h["status"]?.string == "ok")
            #expect(h["loaded"]?.array == [.string(ServeFixtures.llama)])
        }
    }
}

/// Pieces that do not need HTTP.
@Suite struct ServeUnitTests {
    @Test func modelSpecs() throws {
        #expect(try ModelSpec.parse("persona:sanguo/liubei") == ModelSpec(target: .persona("sanguo/liubei"), adapters: []))
        let s = try ModelSpec.parse("models/x+adapters/a@0.8+b")
        #expect(s.target == .base("models/x") && s.adapters.map(\.name) == ["adapters/a", "b"] && s.adapters.map(\.scale) == [0.8, 1])
        for bad in ["", "x+", "x+a@3", "x+a@", "x+@1"] { #expect(throws: APIError.self) { try ModelSpec.parse(bad) } }
    }

    /// A template that rewrites text (ChatGLM's process_response) streams text that never has
    /// to be taken back and adds up to the whole reply.
    @Test func streamedTextNeverChangesWhatWasSent() {
        let persona = Persona(id: "x", name: "x", group: "g", template: "glm-chat", model: "m")
        let prepared = PreparedGeneration(request: EngineRequest(promptIDs: [1], parameters: GenerationParameters()),
                                          finish: { persona.finishReply($0) }, holdBack: OpenAIService.holdBack(persona))
        #expect(prepared.holdBack == 8)
        let deltas = [" 你好", ",", "世界", "!", " 今天", "是[[训练", "时间]]", "。 ", " "]
        var stream = ReplyText(prepared)
        var sent = ""
        for d in deltas { sent += stream.push(d) }
        sent += stream.end(deltas.joined())
        #expect(sent == persona.finishReply(deltas.joined()))
        #expect(sent == "你好，世界！ 今天是2023年。")
        let plain = Persona(id: "p", name: "p", group: "g", template: "plain", model: "m")
        #expect(OpenAIService.holdBack(plain) == 0 && !OpenAIService.isIdentity(plain))
        #expect(OpenAIService.isIdentity(Persona(id: "b", name: "b", group: "g", template: "baichuan-qa", model: "m")))
    }

    /// A cancelled job ends before its next token; one cancelled while queued never runs.
    @Test func cancelEndsWithinOneToken() async throws {
        let host = CannedHost(tokenDelay: 0.002)
        host.hold(after: 3)
        let scheduler = SerialScheduler(host: host)
        func job() -> GenerationJob {
            GenerationJob(base: "/m", adapters: []) { (_: any ReplyEngine) throws(APIError) -> PreparedGeneration in
                PreparedGeneration(request: EngineRequest(promptIDs: [1], parameters: GenerationParameters()))
            }
        }
        let a = job(), b = job()
        try scheduler.submit([a, b])
        // The engine holds after its third piece; this thread cancels both jobs, then lets it go:
        // the cancel lands between two tokens however slowly the test's own threads run.
        let atCancel = CancellationFlag()
        let watcher = Thread {
            while host.produced < 3 { Thread.sleep(forTimeInterval: 0.001) }
            scheduler.cancel(a)
            scheduler.cancel(b)
            atCancel.cancel()
            host.release()
        }
        watcher.start()
        var reply: EngineReply?
        while let e = await a.events.next() {
            if case .finished(let r) = e { reply = r }
        }
        #expect(atCancel.isCancelled)
        #expect(reply?.reason == .cancelled)
        // the piece being made when the flag was set may still come; no other
        #expect(host.produced == 3 && reply?.stats?.generatedTokens == 3, "\(host.produced) pieces")
        var bReply: EngineReply?
        while let e = await b.events.next() { if case .finished(let r) = e { bReply = r } }
        #expect(bReply?.reason == .cancelled && bReply?.text == "")
        #expect(host.engine.requests.count == 1)
        scheduler.shutdown()
    }
}
