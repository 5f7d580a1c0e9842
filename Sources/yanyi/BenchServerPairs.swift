import Chat
import Engine
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Serve

/// `yanyi bench --server-pairs N`: one stream through `yanyi serve`'s whole path (HTTP, the batch
/// scheduler, sampling, detokenizing, server-sent events) against bench's own decode loop, on the
/// same loaded weights in one process, in turn, N times. Two processes measured one after the other
/// differ by more than the server could cost (this host's bandwidth moves between runs); here each
/// pair runs within seconds on the same memory, and the median of the pairs' ratios is the figure.
enum ServerPairs {
    struct Pair {
        /// Tokens after the first per second: bench's loop, then a streamed completion as its client sees it.
        var bench: Double
        var server: Double
    }

    /// The server on a free loopback port, serving `lm` (already loaded) as the one base.
    static func start(_ lm: any LanguageModel, _ folder: ModelFolder) throws -> (port: Int, id: String) {
        let engine = LocalEngine(path: folder.path, folder: folder, model: lm, defaults: try GenerationParameters.defaults(for: folder))
        let options = ServeOptions(host: "127.0.0.1", port: 0, modelsRoot: folder.path)
        let scheduler = BatchScheduler(host: Preloaded(engine: engine), maxWaiting: 4, maxBatch: 8)
        let service = OpenAIService(options: options, scheduler: scheduler, personas: [])
        guard let id = service.catalog.bases.first?.id else { throw PairError("\(folder.path): no model the server can list") }
        let listening = PortBox()
        let app = OpenAIServer(service: service).application { listening.set($0) }
        Task { try? await app.runService() }
        guard let port = listening.wait(seconds: 30) else { throw PairError("the in-process server did not start listening") }
        return (port, id)
    }

    /// `rounds` pairs of `tokens`-token greedy decodes after `prompt`, bench's first in each pair.
    static func measure(_ lm: any LanguageModel, _ folder: ModelFolder, prompt: [Int32], tokens: Int,
                        rounds: Int) throws -> [Pair] {
        let (port, id) = try start(lm, folder)
        let body: [String: Any] = ["model": id, "prompt": prompt.map(Int.init), "max_tokens": tokens, "temperature": 0,
                                   "stream": true, "stream_options": ["include_usage": true], "ignore_eos": true]
        let request = try completionRequest(port: port, body: body)
        var pairs: [Pair] = []
        for _ in 0..<rounds {
            let session = lm.makeSession(capacity: prompt.count + tokens)
            var logits = try lm.forward(prompt, session: session, logits: .last)
            let t = Measure.now()
            for _ in 1..<tokens { logits = try lm.forward([GreedyDecoder.argmax(logits[...])], session: session, logits: .last) }
            let bench = Double(tokens - 1) / (Measure.now() - t)
            let (arrivals, usage) = try stream(request)
            guard arrivals.count > 1, let first = arrivals.first, let last = arrivals.last, last > first else {
                throw PairError("the server streamed \(arrivals.count) tokens of \(tokens)")
            }
            pairs.append(Pair(bench: bench, server: Double((usage ?? arrivals.count) - 1) / (last - first)))
        }
        return pairs
    }

    static func completionRequest(port: Int, body: [String: Any]) throws -> URLRequest {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/completions")!)
        r.httpMethod = "POST"
        r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        r.httpBody = try JSONSerialization.data(withJSONObject: body)
        r.timeoutInterval = 3600
        return r
    }

    /// Posts a streamed completion; the arrival time of each event that carries text, and the usage's
    /// completion tokens (what bench.py's client measures).
    static func stream(_ request: URLRequest) throws -> (arrivals: [Double], usage: Int?) {
        let reader = EventReader()
        let session = URLSession(configuration: .ephemeral, delegate: reader, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        reader.done.wait()
        if let e = reader.failure { throw PairError("the in-process server: \(e)") }
        return (reader.arrivals, reader.usage)
    }
}

/// Hands the server the engine already loaded, whatever path it asks for (the catalog lists one base).
private struct Preloaded: ModelHost {
    let engine: LocalEngine
    func load(_ path: String, progress: @escaping @Sendable (Double, Double?) -> Void) throws(ChatError) -> any ReplyEngine { engine }
}

private final class PortBox: @unchecked Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private var port: Int?
    func set(_ p: Int) { port = p; ready.signal() }
    func wait(seconds: Double) -> Int? { ready.wait(timeout: .now() + seconds) == .success ? port : nil }
}

/// Server-sent events as they arrive: each `data:` line parsed when its newline comes.
private final class EventReader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var arrivals: [Double] = []
    var usage: Int?
    var failure: String?
    private var pending = Data()

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let now = Measure.now()
        pending.append(data)
        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...nl)
            guard line.hasPrefix("data: "), line != "data: [DONE]",
                  let j = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any] else { continue }
            if let u = j["usage"] as? [String: Any], let n = u["completion_tokens"] as? Int { usage = n }
            if let c = j["choices"] as? [[String: Any]], let text = c.first?["text"] as? String, !text.isEmpty { arrivals.append(now) }
            if let e = j["error"] { failure = "\(e)" }
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let h = response as? HTTPURLResponse, h.statusCode != 200 { failure = "HTTP \(h.statusCode)" }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil { failure = "\(error)" }
        done.signal()
    }
}

struct PairError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
