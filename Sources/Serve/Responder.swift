import Chat
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Which endpoint a response is for.
enum Endpoint: Sendable {
    case completion, chat

    var idPrefix: String { self == .chat ? "chatcmpl-" : "cmpl-" }
    var object: String { self == .chat ? "chat.completion" : "text_completion" }
    var chunkObject: String { self == .chat ? "chat.completion.chunk" : "text_completion" }
}

/// A reply's text as a stream sends it: raw deltas through the template's `finish`, sending only
/// what can no longer change (see `PreparedGeneration.holdBack`).
struct ReplyText {
    let prepared: PreparedGeneration
    private var raw = ""
    private(set) var sent = ""

    init(_ prepared: PreparedGeneration) { self.prepared = prepared }

    /// What to send after raw delta `d` (may be empty).
    mutating func push(_ d: String) -> String {
        guard let finish = prepared.finish else {
            sent += d
            return d
        }
        raw += d
        let f = finish(raw)
        guard f.hasPrefix(sent) else { return "" }
        let ready = f.count - prepared.holdBack - sent.count
        guard ready > 0 else { return "" }
        let out = String(f.dropFirst(sent.count).prefix(ready))
        sent += out
        return out
    }

    /// The rest, once the engine's whole raw text is known. A finish that rewrote text already
    /// sent (longer than the hold-back) cannot be taken back: what was sent stands.
    mutating func end(_ rawText: String) -> String {
        let f = prepared.finish?(rawText) ?? rawText
        guard f.hasPrefix(sent) else { return "" }
        let out = String(f.dropFirst(sent.count))
        sent = f
        return out
    }
}

extension OpenAIService {
    static func makeID(_ e: Endpoint) -> String {
        e.idPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// The next event of `job`; a cancelled waiting task cancels the job (its finish still comes).
    func next(_ job: GenerationJob) async -> JobEvent? {
        await withTaskCancellationHandler {
            await job.events.next()
        } onCancel: { [scheduler] in
            scheduler.cancel(job)
        }
    }

    /// Counts a finished generation in the metrics (on the worker, as it ends).
    var account: @Sendable (EngineReply, PreparedGeneration) -> Void {
        { [metrics] reply, prepared in Self.account(metrics, reply, prepared) }
    }

    static func account(_ metrics: ServeMetrics, _ reply: EngineReply, _ prepared: PreparedGeneration) {
        metrics.promptTokens.increment(by: Int64(prepared.request.promptIDs.count))
        metrics.generatedTokens.increment(by: Int64(reply.stats?.generatedTokens ?? reply.tokens.count))
        if reply.reason == .cancelled { metrics.cancelled.increment() }
        if reply.error != nil { metrics.error("generation_failed") }
    }

    /// Queues `jobs` and keeps a request's books (both APIs' generation routes): counted in
    /// flight, cancelled when the client's connection closes. The result undoes both; call it
    /// once the answer is written.
    func admit(_ jobs: [GenerationJob], channel: (any Channel)?) throws(APIError) -> @Sendable () -> Void {
        try scheduler.submit(jobs)
        metrics.inFlight.increment()
        let scheduler = self.scheduler
        let token = channel.flatMap { watch.onClose($0) { for j in jobs { scheduler.cancel(j) } } }
        return { [watch, metrics] in
            if let channel, let token { watch.remove(channel, token) }
            metrics.inFlight.decrement()
        }
    }

    /// The headers an answer starts with: the fields accepted but not applied, if any.
    static func headers(ignored: [String]) -> HTTPFields {
        var headers: HTTPFields = [:]
        if !ignored.isEmpty { headers[HTTPField.Name("X-Yanyi-Ignored")!] = ignored.joined(separator: ", ") }
        return headers
    }

    /// A stream's first event, awaited before any status goes out, so a request that cannot start
    /// (the prompt too long, an adapter that does not fit) is still an error status rather than an
    /// event: then the jobs are cancelled, the request finished and the error thrown. Otherwise
    /// `headers` become a server-sent-event stream's.
    func streamStart(_ jobs: [GenerationJob], headers: inout HTTPFields, finishRequest: () -> Void) async throws(APIError) -> JobEvent? {
        let first = await next(jobs[0])
        if case .failed(let err)? = first {
            for j in jobs { scheduler.cancel(j) }
            finishRequest()
            throw err
        }
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        return first
    }

    /// A whole answer's wait: `job`'s events until it ends, its prepared request and reply. A job
    /// that fails cancels `siblings` (the request's other choices) and throws.
    func outcome(of job: GenerationJob, siblings: [GenerationJob]) async throws(APIError) -> (PreparedGeneration, EngineReply) {
        var prepared: PreparedGeneration?
        var reply: EngineReply?
        while let e = await next(job) {
            switch e {
            case .started(let p, _): prepared = p
            case .delta: break
            case .finished(let r): reply = r
            case .failed(let err):
                for j in siblings { scheduler.cancel(j) }
                throw err
            }
        }
        guard let reply, let prepared else { throw APIError.internalError("The generation ended without a result.") }
        return (prepared, reply)
    }

    /// Queues `jobs` (the choices, in order) and answers: one JSON body once all are done, or a
    /// server-sent-event stream as they go. A client that goes away cancels them.
    func run(_ jobs: [GenerationJob], kind: Endpoint, model: String, sampling s: SamplingRequest, ignored: [String], arrived: Double,
             channel: (any Channel)?) async throws(APIError) -> Response {
        let finishRequest = try admit(jobs, channel: channel)
        var headers = Self.headers(ignored: ignored)
        let id = Self.makeID(kind)
        let created = Int(Date().timeIntervalSince1970)
        let perPrompt = s.n

        guard s.stream else {
            defer { finishRequest() }
            var usage = Usage()
            var timings = Timings()
            var completionChoices: [CompletionChoice] = []
            var chatChoices: [ChatChoice] = []
            for (i, job) in jobs.enumerated() {
                let (prepared, reply) = try await outcome(of: job, siblings: jobs)
                if i == 0 {
                    let ttft = (job.firstTokenAt ?? Measure.now()) - arrived
                    timings.timeToFirstTokenMs = ttft * 1000
                    metrics.firstToken(after: ttft)
                }
                if let err = reply.error {
                    for j in jobs { scheduler.cancel(j) }
                    throw APIError.internalError("The generation failed: \(err.description)")
                }
                if i % perPrompt == 0 { usage.promptTokens += prepared.request.promptIDs.count }
                usage.completionTokens += reply.stats?.generatedTokens ?? reply.tokens.count
                timings.add(reply.stats)
                let text = prepared.finish?(reply.text) ?? reply.text
                let tokens = s.returnTokens ? reply.tokens : nil
                let logged = prepared.request.logprobs?.all
                switch kind {
                case .completion:
                    var offset = 0
                    completionChoices.append(CompletionChoice(index: i, text: text, finishReason: finishReason(reply.reason), tokens: tokens,
                                                              logprobs: logged.map { CompletionLogprobs($0, offset: &offset) }))
                case .chat:
                    chatChoices.append(ChatChoice(index: i, message: ChatMessageOut(role: "assistant", content: text),
                                                  finishReason: finishReason(reply.reason), tokens: tokens, logprobs: logged.map(ChatLogprobs.init)))
                }
            }
            let data: Data
            switch kind {
            case .completion:
                data = encodeJSON(CompletionBody(id: id, object: kind.object, created: created, model: model, choices: completionChoices,
                                                 usage: usage, timings: timings))
            case .chat:
                data = encodeJSON(CompletionBody(id: id, object: kind.object, created: created, model: model, choices: chatChoices,
                                                 usage: usage, timings: timings))
            }
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        // A stream: its status and headers go out once the first choice has started.
        let first = try await streamStart(jobs, headers: &headers, finishRequest: finishRequest)
        let service = self
        let body = ResponseBody { writer in
            defer { finishRequest() }
            let sse = SSEWriter(id: id, created: created, model: model, kind: kind)
            var usage = Usage()
            var pending = first
            do {
                choices: for (i, job) in jobs.enumerated() {
                    var text: ReplyText?
                    var log: LogprobLog?
                    var offset = 0   // completions' text_offset
                    var sawDelta = false
                    while true {
                        let e: JobEvent
                        if let p = pending {
                            e = p
                            pending = nil
                        } else if let n = await service.next(job) {
                            e = n
                        } else {
                            break
                        }
                        switch e {
                        case .started(let p, _):
                            text = ReplyText(p)
                            log = p.request.logprobs
                            if i % perPrompt == 0 { usage.promptTokens += p.request.promptIDs.count }
                            if kind == .chat { try await writer.write(sse.chunk(index: i, role: "assistant", text: "", finish: nil)) }
                        case .delta(let d):
                            if i == 0 && !sawDelta { service.metrics.firstToken(after: (job.firstTokenAt ?? Measure.now()) - arrived) }
                            sawDelta = true
                            let out = text?.push(d) ?? d
                            let lps = log?.take() ?? []
                            if !out.isEmpty || !lps.isEmpty {
                                try await writer.write(sse.chunk(index: i, text: out, finish: nil, logprobs: log == nil ? nil : lps, offset: &offset))
                            }
                        case .finished(let r):
                            usage.completionTokens += r.stats?.generatedTokens ?? r.tokens.count
                            let rest = text?.end(r.text) ?? ""
                            let lps = log?.take() ?? []
                            if !rest.isEmpty || !lps.isEmpty {
                                try await writer.write(sse.chunk(index: i, text: rest, finish: nil, logprobs: log == nil ? nil : lps, offset: &offset))
                            }
                            if let err = r.error {
                                try await writer.write(sse.error(APIError.internalError("The generation failed: \(err.description)")))
                                for j in jobs { service.scheduler.cancel(j) }
                                break choices
                            }
                            try await writer.write(sse.chunk(index: i, text: nil, finish: finishReason(r.reason),
                                                             tokens: s.returnTokens ? r.tokens : nil))
                        case .failed(let err):
                            service.metrics.error(err.code)
                            try await writer.write(sse.error(err))
                            for j in jobs { service.scheduler.cancel(j) }
                            break choices
                        }
                    }
                }
                if s.includeUsage { try await writer.write(sse.usage(usage)) }
                try await writer.write(SSEWriter.done)
                try await writer.finish(nil)
            } catch {
                // the client went away mid-stream: stop what still runs
                for j in jobs { service.scheduler.cancel(j) }
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}

/// Server-sent events as OpenAI frames them: `data: {json}\n\n`, ending with `data: [DONE]\n\n`.
struct SSEWriter {
    let id: String
    let created: Int
    let model: String
    let kind: Endpoint

    static let done = ByteBuffer(string: "data: [DONE]\n\n")

    static func frame(_ json: Data) -> ByteBuffer {
        var b = ByteBuffer(string: "data: ")
        b.writeBytes(json)
        b.writeString("\n\n")
        return b
    }

    /// One choice's piece of text (`text: nil` with a finish reason ends the choice). Chat
    /// chunks carry `delta`; the first one of a choice has the role.
    func chunk(index: Int, role: String? = nil, text: String?, finish: String?, tokens: [Int32]? = nil) -> ByteBuffer {
        var offset = 0
        return chunk(index: index, role: role, text: text, finish: finish, tokens: tokens, logprobs: nil, offset: &offset)
    }

    /// The same with the logprobs of the tokens behind it (completions: `offset` is the
    /// text_offset of the first, advanced past them).
    func chunk(index: Int, role: String? = nil, text: String?, finish: String?, tokens: [Int32]? = nil, logprobs: [RenderedLogprob]?,
               offset: inout Int) -> ByteBuffer {
        switch kind {
        case .completion:
            let lp = logprobs.map { CompletionLogprobs($0, offset: &offset) }
            let c = CompletionChoice(index: index, text: text ?? "", finishReason: finish, tokens: tokens, logprobs: lp)
            return Self.frame(encodeJSON(CompletionBody(id: id, object: kind.chunkObject, created: created, model: model, choices: [c])))
        case .chat:
            let delta = ChatMessageOut(role: role, content: text)
            let c = ChatChoice(index: index, delta: delta, finishReason: finish, tokens: tokens, logprobs: logprobs.map(ChatLogprobs.init))
            return Self.frame(encodeJSON(CompletionBody(id: id, object: kind.chunkObject, created: created, model: model, choices: [c])))
        }
    }

    /// `stream_options.include_usage`: no choices, the usage.
    func usage(_ u: Usage) -> ByteBuffer {
        switch kind {
        case .completion:
            Self.frame(encodeJSON(CompletionBody<CompletionChoice>(id: id, object: kind.chunkObject, created: created, model: model, choices: [], usage: u)))
        case .chat:
            Self.frame(encodeJSON(CompletionBody<ChatChoice>(id: id, object: kind.chunkObject, created: created, model: model, choices: [], usage: u)))
        }
    }

    /// An error after the stream began: OpenAI's error object as an event.
    func error(_ e: APIError) -> ByteBuffer { Self.frame(e.json) }
}
