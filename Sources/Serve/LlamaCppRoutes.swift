import Chat
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// llama.cpp's native routes (tools/server/README.md), for front ends set up for llama.cpp
// (SillyTavern's "llama.cpp" text-completion type):
//
//     POST /completion    {prompt, n_predict, temperature, top_k, top_p, min_p, repeat_penalty, seed,
//                          stop, stream, n_probs, lora: [{id, scale}], …} -> {content, stop, stop_type, …}
//     POST /tokenize      {content, add_special, with_pieces} -> {tokens}
//     POST /detokenize    {tokens} -> {content}
//     GET  /props         default generation settings, n_ctx, model path
//
// /completion is `/v1/completions`' job (same parsing, same generation path) with the result
// put in llama.cpp's shape. Errors are llama.cpp's `{"error": {"code", "message", "type"}}`.
// Without `model` these routes use the models folder's first base (llama.cpp serves one model).

extension APIError {
    /// llama.cpp's error body: `{"error": {"code": 400, "message": …, "type": …}}`.
    var llamaJSON: JSON {
        .object(["error": .object(["code": .int(Int(status.code)), "message": .string(message), "type": .string(type)])])
    }

    func llamaResponse() -> Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: llamaJSON.data())))
    }
}

/// A value set on the engine's worker and read by the route that waits for it.
private final class EngineResult<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.withLock { value = v } }
    func get() -> T? { lock.withLock { value } }
}

extension OpenAIService {
    // MARK: - Requests

    /// The request's fields with llama.cpp's conventions mapped: `n_predict` < 0 (unlimited)
    /// left to the server's default, and `model` the first base when absent.
    func llamaFields(_ body: Data) throws(APIError) -> RequestFields {
        var o = try RequestFields(body).object
        if case .int(let n)? = o["n_predict"], n < 0 { o["n_predict"] = nil }
        if (o["model"]?.string ?? "").isEmpty {
            guard let first = catalog.bases.first else { throw APIError.unavailable("The models folder holds no base model.", code: "no_model") }
            o["model"] = .string(first.id)
        }
        return RequestFields(object: o)
    }

    /// Runs `body` on the worker of `base` with its loaded engine (the tokenizer belongs to that
    /// thread): a job that generates nothing, queued like any other.
    func onEngine<T: Sendable>(_ base: String, _ body: @escaping @Sendable (any ReplyEngine) throws(APIError) -> T) async throws(APIError) -> T {
        let result = EngineResult<T>()
        let job = GenerationJob(base: base, adapters: [], streams: false) { (e: any ReplyEngine) throws(APIError) -> PreparedGeneration in
            result.set(try body(e))
            // the job's work is done: end it before it would generate (the route reads `result`)
            throw APIError.internalError("no generation")
        }
        try scheduler.submit([job])
        while let e = await next(job) {
            if case .failed(let err) = e {
                if let v = result.get() { return v }
                throw err
            }
        }
        if let v = result.get() { return v }
        throw APIError.internalError("The engine did not answer.")
    }

    // MARK: - Routes

    /// `POST /tokenize`: `{content, add_special (false), with_pieces (false)}` -> `{tokens}`,
    /// special-token text parsed as llama.cpp parses it.
    func llamaTokenize(_ body: Data) async throws(APIError) -> Data {
        let f = try llamaFields(body)
        guard let content = try f.string("content") else { throw APIError.invalid("'content' is required.", param: "content") }
        let addSpecial = try f.bool("add_special") ?? false
        let withPieces = try f.bool("with_pieces") ?? false
        let base = try Target.resolve(f, in: catalog).base
        let tokens: JSON = try await onEngine(base) { e throws(APIError) -> JSON in
            let ids = e.tokenizer.encode(content, addSpecialTokens: addSpecial, parseSpecialTokens: true)
            guard withPieces else { return .array(ids.map { .int(Int($0)) }) }
            return .array(ids.map { id in
                let b = e.tokenizer.pieceBytes(id)
                let piece: JSON = String(validating: b, as: UTF8.self).map { .string($0) } ?? .array(b.map { .int(Int($0)) })
                return .object(["id": .int(Int(id)), "piece": piece])
            })
        }
        return JSON.object(["tokens": tokens]).data()
    }

    /// `POST /detokenize`: `{tokens}` -> `{content}`.
    func llamaDetokenize(_ body: Data) async throws(APIError) -> Data {
        let f = try llamaFields(body)
        guard case .array(let list)? = f.value("tokens") else { throw APIError.invalid("'tokens' must be an array of token ids.", param: "tokens") }
        var ids: [Int32] = []
        for (i, v) in list.enumerated() {
            guard case .int(let x) = v, let id = Int32(exactly: x) else {
                throw APIError.invalid("'tokens[\(i)]' must be a token id.", param: "tokens[\(i)]")
            }
            ids.append(id)
        }
        let base = try Target.resolve(f, in: catalog).base
        let content: String = try await onEngine(base) { [ids] e throws(APIError) -> String in
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= e.tokenizer.vocabSize }) {
                throw APIError.invalid("Token id \(bad) is outside the model's vocabulary (0–\(e.tokenizer.vocabSize - 1)).", param: "tokens")
            }
            return e.tokenizer.decode(ids, skipSpecialTokens: false)
        }
        return JSON.object(["content": .string(content)]).data()
    }

    /// `GET /props`: the first base's (or `?model=`'s) default generation settings and context.
    func llamaProps(model: String?) async throws(APIError) -> Data {
        var o: [String: JSON] = [:]
        if let model, !model.isEmpty { o["model"] = .string(model) }
        let f = try llamaFields(JSON.object(o).data())
        let target = try Target.resolve(f, in: catalog)
        let id = f.value("model")?.string ?? ""
        let (settings, context, name) = try await onEngine(target.base) { e throws(APIError) -> (JSON, Int, String) in
            var p = GenerationParameters.layered(model: e.defaults, persona: target.persona?.sampling.generationParameters, user: GenerationParameters())
            p.maxNewTokens = p.maxNewTokens ?? self.options.defaultMaxTokens
            return (Self.llamaSettings(p, promptLength: 1, nProbs: 0, stream: false), e.info.contextLength, e.info.name)
        }
        var defaults = settings.object ?? [:]
        defaults["n_ctx"] = .int(context)
        defaults["model"] = .string(id)
        defaults["params"] = settings
        return JSON.object([
            "default_generation_settings": .object(defaults),
            "total_slots": .int(1),
            "model_path": .string(id),
            "model_alias": .string(name),
            "n_ctx": .int(context),
            "chat_template": .string(""),
            "build_info": .string("yanyi"),
        ]).data()
    }

    /// `POST /completion`.
    func llamaCompletion(_ body: Data, channel: (any Channel)?) async throws(APIError) -> Response {
        let f = try llamaFields(body)
        let s = try SamplingRequest(f, maxTokensCap: options.maxTokens, maxChoices: options.maxChoices)
        guard s.n == 1 else { throw APIError.unsupported("n", "/completion gives one completion; ask /v1/completions for n choices.") }
        let nProbs = try f.int("n_probs", in: 0...20, "a whole number from 0 to 20") ?? 0
        let logprobs = nProbs > 0 ? nProbs : nil
        try LogprobRequest.check(logprobs, s)
        let prompts = try PromptInput.parse(f)
        guard prompts.count == 1 else { throw APIError.unsupported("prompt", "/completion takes one prompt (a string or token ids).") }
        let target = try Target.resolve(f, in: catalog)
        let addBOS = try f.bool("add_bos_token") ?? true
        let job = completionJob(prompts[0], choice: 0, target: target, sampling: s, addBOS: addBOS, logprobs: logprobs)
        let model = f.value("model")?.string ?? ""
        let promptText: String = if case .text(let t) = prompts[0] { t } else { "" }
        let summary = LlamaSummary(model: model, prompt: promptText, nProbs: nProbs, stream: s.stream, returnTokens: s.returnTokens)

        let finishRequest = try admit([job], channel: channel)
        var headers = Self.headers(ignored: s.ignored)

        guard s.stream else {
            defer { finishRequest() }
            let (prepared, reply) = try await outcome(of: job, siblings: [job])
            if let err = reply.error { throw APIError.internalError("The generation failed: \(err.description)") }
            if let at = job.firstTokenAt { metrics.firstToken(after: at - job.submitted) }
            var o = summary.fields(prepared, reply)
            o["content"] = .string(reply.text)
            if let log = prepared.request.logprobs { o["completion_probabilities"] = Self.llamaProbabilities(log.all) }
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSON.object(o).data())))
        }

        // a stream: the status goes out once the job has started, so a prompt that does not fit is still a 400
        let first = try await streamStart([job], headers: &headers, finishRequest: finishRequest)
        let service = self
        let stream = ResponseBody { writer in
            defer { finishRequest() }
            var pending = first
            var prepared: PreparedGeneration?
            var text = ""
            do {
                loop: while true {
                    let e: JobEvent
                    if let p = pending { e = p; pending = nil } else if let n = await service.next(job) { e = n } else { break }
                    switch e {
                    case .started(let p, _): prepared = p
                    case .delta(let d):
                        text += d
                        var o: [String: JSON] = ["content": .string(d), "stop": .bool(false), "index": .int(0), "id_slot": .int(0)]
                        if let log = prepared?.request.logprobs { o["completion_probabilities"] = Self.llamaProbabilities(log.take()) }
                        try await writer.write(Self.llamaFrame(o))
                    case .finished(let r):
                        if let err = r.error {
                            try await writer.write(SSEWriter.frame(APIError.internalError("The generation failed: \(err.description)").llamaJSON.data()))
                            break loop
                        }
                        guard let p = prepared else { break loop }
                        var o = summary.fields(p, r)
                        // text the engine had held back (a possible stop string that was not one) comes last
                        o["content"] = .string(r.text.hasPrefix(text) ? String(r.text.dropFirst(text.count)) : "")
                        if let log = p.request.logprobs { o["completion_probabilities"] = Self.llamaProbabilities(log.take()) }
                        try await writer.write(Self.llamaFrame(o))
                        break loop
                    case .failed(let err):
                        service.metrics.error(err.code)
                        try await writer.write(SSEWriter.frame(err.llamaJSON.data()))
                        break loop
                    }
                }
                try await writer.finish(nil)
            } catch {
                service.scheduler.cancel(job)
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: stream)
    }

    // MARK: - Shapes

    /// One `data: {…}` event of a `/completion` stream (llama.cpp sends no `[DONE]`).
    static func llamaFrame(_ o: [String: JSON]) -> ByteBuffer { SSEWriter.frame(JSON.object(o).data()) }

    /// `completion_probabilities` as llama.cpp writes them (since b4500):
    /// `[{id, token, logprob, bytes, top_logprobs: [{id, token, logprob, bytes}]}]`.
    static func llamaProbabilities(_ entries: [RenderedLogprob]) -> JSON {
        func one(_ p: PieceLogprob) -> [String: JSON] {
            ["id": .int(Int(p.id)), "token": .string(p.token), "logprob": .double(wireLogprob(p.logprob)),
             "bytes": .array(p.bytes.map { .int(Int($0)) })]
        }
        return .array(entries.map { e in
            var o = one(e.chosen)
            o["top_logprobs"] = .array(e.top.map { .object(one($0)) })
            return .object(o)
        })
    }

    /// llama.cpp's `generation_settings` for the settings a generation ran with.
    static func llamaSettings(_ p: GenerationParameters, promptLength: Int, nProbs: Int, stream: Bool) -> JSON {
        let s = (try? p.resolved(promptLength: promptLength)) ?? GenerationSettings()
        return .object([
            "n_predict": .int(s.maxNewTokens),
            "temperature": .double(s.doSample ? Double(s.temperature) : 0),
            "top_k": .int(s.topK),
            "top_p": .double(Double(s.topP)),
            "min_p": .double(Double(s.minP)),
            "repeat_penalty": .double(Double(s.repetitionPenalty)),
            "seed": s.seed.map { .int(Int(truncatingIfNeeded: $0)) } ?? .int(-1),
            "stop": .array(s.stopStrings.map { .string($0) }),
            "n_probs": .int(nProbs),
            "stream": .bool(stream),
            "do_sample": .bool(s.doSample),
        ])
    }
}

/// The summary fields of a finished `/completion` (the whole answer, or a stream's last event).
struct LlamaSummary: Sendable {
    var model: String
    var prompt: String
    var nProbs: Int
    var stream: Bool
    var returnTokens: Bool

    func fields(_ prepared: PreparedGeneration, _ reply: EngineReply) -> [String: JSON] {
        let stats = reply.stats ?? GenerationStats()
        let promptN = stats.promptTokens - stats.reusedPromptTokens
        let predictedN = stats.generatedTokens
        let promptMs = stats.prefillSeconds * 1000, predictedMs = stats.decodeSeconds * 1000
        func rounded(_ x: Double) -> JSON { .double((x * 1000).rounded() / 1000) }
        let stopType: String = switch reply.reason {
        case .eos?: "eos"
        case .stopString?: "word"
        case .maxNewTokens?, .contextFull?: "limit"
        case .cancelled?, nil: "none"
        }
        let timings: [String: JSON] = [
            "prompt_n": .int(promptN),
            "prompt_ms": rounded(promptMs),
            "prompt_per_token_ms": rounded(promptN > 0 ? promptMs / Double(promptN) : 0),
            "prompt_per_second": rounded(promptMs > 0 ? Double(promptN) / (promptMs / 1000) : 0),
            "predicted_n": .int(predictedN),
            "predicted_ms": rounded(predictedMs),
            "predicted_per_token_ms": rounded(predictedN > 1 ? predictedMs / Double(predictedN - 1) : 0),
            // tokens after the first per second of decoding, as `yanyi bench` counts them
            "predicted_per_second": rounded(predictedN > 1 && predictedMs > 0 ? Double(predictedN - 1) / (predictedMs / 1000) : 0),
        ]
        return [
            "content": .string(""),
            "stop": .bool(true),
            "index": .int(0),
            "id_slot": .int(0),
            "model": .string(model),
            "prompt": .string(prompt),
            "tokens": .array(returnTokens ? reply.tokens.map { .int(Int($0)) } : []),
            "tokens_predicted": .int(predictedN),
            "tokens_evaluated": .int(stats.promptTokens),
            "tokens_cached": .int(stats.reusedPromptTokens),
            "truncated": .bool(false),
            "has_new_line": .bool(reply.text.contains("\n")),
            "stop_type": .string(stopType),
            "stopping_word": .string(reply.stopString ?? ""),
            "generation_settings": OpenAIService.llamaSettings(prepared.request.parameters, promptLength: prepared.request.promptIDs.count,
                                                              nProbs: nProbs, stream: stream),
            "timings": .object(timings),
        ]
    }
}
