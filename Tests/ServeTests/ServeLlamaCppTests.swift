import Chat
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// Logprobs on the OpenAI routes and llama.cpp's native routes, over the canned engine: shapes,
/// streams, errors. (Values against the model's own logits: ServeLogprobValueTests.)
@Suite struct ServeLlamaCppTests {
    static let reply = ServeRouteTests.reply
    static let replyTokens = ServeRouteTests.replyTokens
    static let m = ServeFixtures.llama

    func app(_ host: CannedHost = CannedHost()) -> some ApplicationProtocol { makeServer(host).0.application() }

    static func parse(_ events: [String]) -> [JSON] { events.filter { $0 != "[DONE]" }.map { (try? JSON.parse(Data($0.utf8))) ?? .null } }

    /// Top lists most likely first, their probabilities summing to at most 1.
    static func checkTop(_ logprobs: [Double]) {
        #expect(logprobs == logprobs.sorted(by: >), "\(logprobs)")
        #expect(logprobs.reduce(0) { $0 + exp($1) } <= 1 + 1e-6)
        #expect(logprobs.allSatisfy { $0 <= 0 })
    }

    // MARK: - OpenAI logprobs

    @Test func completionLogprobsAreParallelLists() async throws {
        try await app().test(.router) { client in
            let r = try await client.post("/v1/completions", #"{"model": "\#(Self.m)", "prompt": "x", "max_tokens": 5, "logprobs": 2}"#)
            #expect(r.status == .ok, "\(r.text)")
            let lp = try #require(r.json["choices"]?[0]?["logprobs"])
            let tokens = lp["tokens"]?.array?.compactMap(\.string) ?? []
            #expect(tokens == ["T", " ", "i", " ", "a"])   // the canned engine's ids: a piece's first character
            let values = lp["token_logprobs"]?.array?.compactMap(\.number) ?? []
            #expect(values.count == 5 && values.allSatisfy { $0 <= 0 })
            let top = lp["top_logprobs"]?.array ?? []
            #expect(top.count == 5)
            for (i, t) in top.enumerated() {
                let o = t.object ?? [:]
                #expect(o.count == 2)
                #expect(o[tokens[i]]?.number == values[i])   // the chosen token is the most likely here
                Self.checkTop(o.values.compactMap(\.number).sorted(by: >))
            }
            #expect(lp["text_offset"]?.array?.compactMap(\.int) == [0, 1, 2, 3, 4])
            // SillyTavern asks for 10 (OpenAI stops at 5, vLLM at 20)
            let ten = try await client.post("/v1/completions", #"{"model": "\#(Self.m)", "prompt": "x", "max_tokens": 1, "logprobs": 10}"#)
            #expect(ten.json["choices"]?[0]?["logprobs"]?["top_logprobs"]?[0]?.object?.count == 10, "\(ten.text)")
        }
    }

    @Test func chatLogprobsHaveTokensBytesAndTops() async throws {
        try await app().test(.router) { client in
            let body = #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "logprobs": true, "top_logprobs": 3}"#
            let r = try await client.post("/v1/chat/completions", body)
            #expect(r.status == .ok, "\(r.text)")
            let content = r.json["choices"]?[0]?["logprobs"]?["content"]?.array ?? []
            #expect(content.count == 4)
            for c in content {
                let token = try #require(c["token"]?.string)
                #expect(c["bytes"]?.array?.compactMap(\.int) == Array(token.utf8).map(Int.init))
                let top = c["top_logprobs"]?.array ?? []
                #expect(top.count == 3)
                #expect(top.first?["token"]?.string == token && top.first?["logprob"]?.number == c["logprob"]?.number)
                #expect(top.allSatisfy { $0["bytes"]?.array != nil && $0["top_logprobs"] == nil })
                Self.checkTop(top.compactMap { $0["logprob"]?.number })
            }
            // off: null, as before
            let off = try await client.post("/v1/chat/completions", #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#)
            #expect(off.json["choices"]?[0]?["logprobs"] == .null)
            // logprobs without alternatives: empty top lists
            let bare = try await client.post("/v1/chat/completions", #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "logprobs": true}"#)
            #expect(bare.json["choices"]?[0]?["logprobs"]?["content"]?[0]?["top_logprobs"]?.array?.isEmpty == true)
        }
    }

    @Test func streamedChunksCarryTheirTokensLogprobs() async throws {
        try await app().test(.router) { client in
            let r = try await client.post("/v1/completions", #"{"model": "\#(Self.m)", "prompt": "x", "logprobs": 1, "stream": true}"#)
            let chunks = Self.parse(r.events)
            var tokens: [String] = []
            var offsets: [Int] = []
            for c in chunks {
                guard let lp = c["choices"]?[0]?["logprobs"], lp != .null else { continue }
                tokens += lp["tokens"]?.array?.compactMap(\.string) ?? []
                offsets += lp["text_offset"]?.array?.compactMap(\.int) ?? []
                #expect(lp["token_logprobs"]?.array?.count == lp["tokens"]?.array?.count)
            }
            #expect(tokens.count == Self.replyTokens)
            #expect(offsets == Array(0..<Self.replyTokens))   // one character per canned id

            let chat = try await client.post("/v1/chat/completions",
                                             #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 2, "stream": true}"#)
            var n = 0
            for c in Self.parse(chat.events) {
                for e in c["choices"]?[0]?["logprobs"]?["content"]?.array ?? [] {
                    n += 1
                    #expect(e["top_logprobs"]?.array?.count == 2)
                }
            }
            #expect(n == Self.replyTokens)
        }
    }

    @Test func logprobRequestErrors() async throws {
        try await app().test(.router) { client in
            func error(_ uri: String, _ body: String) async throws -> (Int, JSON) {
                let r = try await client.post(uri, body)
                return (r.status.code, r.json["error"] ?? .null)
            }
            var (s, e) = try await error("/v1/completions", #"{"model": "\#(Self.m)", "prompt": "x", "logprobs": 21}"#)
            #expect(s == 400 && e["param"]?.string == "logprobs")
            (s, e) = try await error("/v1/chat/completions", #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}"#)
            #expect(s == 400 && e["param"]?.string == "top_logprobs")
            (s, e) = try await error("/v1/chat/completions", #"{"model": "\#(Self.m)", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21}"#)
            #expect(s == 400 && e["param"]?.string == "top_logprobs")
            (s, e) = try await error("/v1/completions", #"{"model": "\#(Self.m)", "prompt": "x", "logprobs": 1, "num_beams": 2}"#)
            #expect(s == 400 && e["code"]?.string == "unsupported_parameter")
        }
    }

    // MARK: - llama.cpp routes

    @Test func completionIsLlamaCppShaped() async throws {
        try await app().test(.router) { client in
            let r = try await client.post("/completion", #"{"model": "\#(Self.m)", "prompt": "你好", "n_predict": 64, "temperature": 0}"#)
            #expect(r.status == .ok, "\(r.text)")
            let j = r.json
            #expect(j["content"]?.string == Self.reply)
            #expect(j["stop"]?.bool == true && j["stop_type"]?.string == "eos" && j["stopping_word"]?.string == "")
            #expect(j["tokens_predicted"]?.int == Self.replyTokens && j["tokens_evaluated"]?.int == 2)
            #expect(j["model"]?.string == Self.m && j["prompt"]?.string == "你好")
            #expect(j["generation_settings"]?["n_predict"]?.int == 64 && j["generation_settings"]?["temperature"]?.number == 0)
            let timings = Set(j["timings"]?.object?.keys.map { $0 } ?? [])
            #expect(timings == ["prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second",
                                "predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second"])
            #expect(j["completion_probabilities"] == nil)

            let limit = try await client.post("/completion", #"{"model": "\#(Self.m)", "prompt": "x", "n_predict": 3}"#).json
            #expect(limit["content"]?.string == "This is" && limit["stop_type"]?.string == "limit")
            let word = try await client.post("/completion", #"{"model": "\#(Self.m)", "prompt": "x", "stop": ["canned"]}"#).json
            #expect(word["content"]?.string == "This is a " && word["stop_type"]?.string == "word" && word["stopping_word"]?.string == "canned")
            // n_predict -1 (llama.cpp: no limit) is the server's default
            let unlimited = try await client.post("/completion", #"{"model": "\#(Self.m)", "prompt": "x", "n_predict": -1}"#).json
            #expect(unlimited["content"]?.string == Self.reply)
            // token ids as the prompt; no model: the first base
            let ids = try await client.post("/completion", #"{"prompt": [20320, 22909], "n_predict": 1}"#)
            #expect(ids.status == .ok && ids.json["tokens_evaluated"]?.int == 2 && ids.json["content"]?.string == "This")
        }
    }

    @Test func completionStreamEndsWithTheSummary() async throws {
        try await app().test(.router) { client in
            let r = try await client.post("/completion", #"{"model": "\#(Self.m)", "prompt": "x", "stream": true, "n_probs": 2}"#)
            #expect(r.status == .ok && r.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            let events = r.events
            #expect(!events.contains("[DONE]") && !events.contains { $0.hasPrefix("<bad frame") })
            let parsed = Self.parse(events)
            #expect(parsed.dropLast().allSatisfy { $0["stop"]?.bool == false })
            let last = try #require(parsed.last)
            #expect(last["stop"]?.bool == true && last["stop_type"]?.string == "eos" && last["tokens_predicted"]?.int == Self.replyTokens)
            #expect(parsed.map { $0["content"]?.string ?? "" }.joined() == Self.reply)
            let probs = parsed.flatMap { $0["completion_probabilities"]?.array ?? [] }
            #expect(probs.count == Self.replyTokens)
            for p in probs {
                #expect(p["id"]?.int != nil && p["token"]?.string != nil && p["bytes"]?.array != nil && p["logprob"]?.number != nil)
                let top = p["top_logprobs"]?.array ?? []
                #expect(top.count == 2 && top.first?["id"]?.int == p["id"]?.int)
                Self.checkTop(top.compactMap { $0["logprob"]?.number })
            }
        }
    }

    @Test func completionErrorsAreLlamaCppShaped() async throws {
        try await app().test(.router) { client in
            func error(_ body: String) async throws -> (Int, JSON) {
                let r = try await client.post("/completion", body)
                let e = r.json["error"] ?? .null
                #expect(e.object.map { Set($0.keys) } == ["code", "message", "type"], "\(r.text)")
                #expect(e["code"]?.int == Int(r.status.code))
                return (r.status.code, e)
            }
            var (s, e) = try await error("{not json")
            #expect(s == 400 && e["type"]?.string == "invalid_request_error")
            (s, e) = try await error(#"{"model": "\#(Self.m)", "prompt": "x", "temperature": "hot"}"#)
            #expect(s == 400 && e["message"]?.string?.contains("temperature") == true)
            (s, _) = try await error(#"{"model": "\#(Self.m)"}"#)
            #expect(s == 400)
            (s, _) = try await error(#"{"model": "nope", "prompt": "x"}"#)
            #expect(s == 404)
            (s, _) = try await error(#"{"model": "\#(Self.m)", "prompt": "x", "n_probs": 50}"#)
            #expect(s == 400)
            (s, _) = try await error(#"{"model": "\#(Self.m)", "prompt": ["a", "b"]}"#)
            #expect(s == 400)
            let t = try await client.post("/tokenize", #"{"model": "\#(Self.m)"}"#)
            #expect(t.status == .badRequest && t.json["error"]?["code"]?.int == 400)
        }
    }

    /// What SillyTavern sends with the "llama.cpp" text-completion type (textgen-settings.js:
    /// the common fields, then llama.cpp's names; text-completions.js posts it to /completion).
    @Test func sillyTavernLlamaCppRequest() async throws {
        let host = CannedHost()
        let qv = try #require(makeServer(host).0.service.catalog.adapters.first { $0.id == "adapters/llama-qv" })
        try await app(host).test(.router) { client in
            let body = #"""
            {"prompt": "孔明曰：", "model": "\#(Self.m)", "max_new_tokens": 300, "max_tokens": 300, "temperature": 0.7,
             "top_p": 0.9, "typical_p": 1, "typical": 1, "sampler_seed": -1, "min_p": 0.05, "repetition_penalty": 1.1,
             "frequency_penalty": 0, "presence_penalty": 0, "top_k": 40, "skew": 0, "min_tokens": 0, "add_bos_token": true,
             "smoothing_factor": 0, "smoothing_curve": 1, "dry_allowed_length": 2, "dry_multiplier": 0, "dry_base": 1.75,
             "dry_sequence_breakers": ["\n", ":"], "dry_penalty_last_n": 0, "max_tokens_second": 0,
             "stopping_strings": ["用于", "\n用户："], "stop": ["用于", "\n用户："], "truncation_length": 4096,
             "ban_eos_token": false, "skip_special_tokens": true, "include_reasoning": true, "top_a": 0, "tfs": 1,
             "mirostat_mode": 0, "mirostat_tau": 5, "mirostat_eta": 0.1, "custom_token_bans": "", "banned_strings": [],
             "xtc_threshold": 0.1, "xtc_probability": 0, "nsigma": 0, "top_n_sigma": 0, "min_keep": 0,
             "n_predict": 300, "repeat_penalty": 1.1, "repeat_last_n": 0, "tfs_z": 2, "penalize_nl": false,
             "dynatemp_range": 0, "dynatemp_exponent": 1, "mirostat": 0, "seed": -1, "ignore_eos": false, "n_probs": 0,
             "cache_prompt": true, "logit_bias": [], "grammar": "", "json_schema": {},
             "samplers": ["top_k", "typ_p", "top_p", "min_p", "temperature"], "lora": [{"id": \#(qv.index), "scale": 0.5}],
             "api_type": "llamacpp", "stream": true}
            """#
            let r = try await client.post("/completion", body)
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.headers[HTTPField.Name("X-Yanyi-Ignored")!] == "tfs_z")
            let parsed = Self.parse(r.events)
            #expect(parsed.map { $0["content"]?.string ?? "" }.joined() == "This is a canned reply from the fake backend: 这是一条")
            #expect(parsed.last?["stop_type"]?.string == "word" && parsed.last?["stopping_word"]?.string == "用于")
        }
        let p = try #require(host.engine.requests.last?.parameters)
        #expect(p.doSample == true && p.temperature == 0.7 && p.topP == 0.9 && p.topK == 40 && p.minP == 0.05)
        #expect(p.repetitionPenalty == 1.1 && p.maxNewTokens == 300 && p.seed == nil)
        #expect(host.engine.adapterLog.last?.map(\.scale) == [0.5])
        #expect(host.engine.adapterLog.last?.first?.path.hasSuffix("adapters/llama-qv") == true)
    }

    @Test func tokenizeDetokenizeAndProps() async throws {
        try await app().test(.router) { client in
            // the canned tokenizer: one id per Unicode scalar
            let t = try await client.post("/tokenize", #"{"content": "你好"}"#)
            #expect(t.status == .ok)
            #expect(t.json["tokens"]?.array?.compactMap(\.int) == [0x4F60, 0x597D])
            let pieces = try await client.post("/tokenize", #"{"model": "\#(Self.m)", "content": "a你", "with_pieces": true}"#).json
            #expect(pieces["tokens"]?[1]?["id"]?.int == 0x4F60 && pieces["tokens"]?[1]?["piece"]?.string == "你")
            let d = try await client.post("/detokenize", #"{"tokens": [20320, 22909]}"#)
            #expect(d.status == .ok && d.json["content"]?.string == "你好")
            let bad = try await client.post("/detokenize", #"{"tokens": [-1]}"#)
            #expect(bad.status == .badRequest && bad.json["error"]?["type"]?.string == "invalid_request_error")
            let props = try await client.get("/props")
            #expect(props.status == .ok, "\(props.text)")
            let dg = props.json["default_generation_settings"]
            #expect(dg?["n_ctx"]?.int == 2048 && props.json["model_path"]?.string?.isEmpty == false)
            #expect(dg?["params"]?["n_predict"]?.int == 256 && dg?["params"]?["temperature"] != nil)
        }
    }
}

extension JSON {
    /// A number, whole or not.
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}
