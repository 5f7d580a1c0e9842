import Chat
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
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

    /// `rounds` pairs of `tokens`-token greedy decodes after `prompt`, each arm first in every other pair.
    static func measure(_ lm: any LanguageModel, _ folder: ModelFolder, prompt: [Int32], tokens: Int,
                        rounds: Int) throws -> [Pair] {
        let (port, id) = try start(lm, folder)
        let body: [String: Any] = ["model": id, "prompt": prompt.map(Int.init), "max_tokens": tokens, "temperature": 0,
                                   "stream": true, "stream_options": ["include_usage": true], "ignore_eos": true]
        var pairs: [Pair] = []
        func benchArm() throws -> Double {
            let session = lm.makeSession(capacity: prompt.count + tokens)
            var logits = try lm.forward(prompt, session: session, logits: .last)
            return Double(tokens - 1) / (try Bench.greedyDecode(lm, tokens - 1, session, &logits))
        }
        func serverArm() throws -> Double {
            let (arrivals, usage) = try stream(port: port, body: body)
            guard arrivals.count > 1, let first = arrivals.first, let last = arrivals.last, last > first else {
                throw PairError("the server streamed \(arrivals.count) tokens of \(tokens)")
            }
            return Double((usage ?? arrivals.count) - 1) / (last - first)
        }
        for r in 0..<rounds {
            // which arm goes first alternates, so a drift in the machine's speed favours neither
            if r % 2 == 0 {
                let b = try benchArm()
                pairs.append(Pair(bench: b, server: try serverArm()))
            } else {
                let sv = try serverArm()
                pairs.append(Pair(bench: try benchArm(), server: sv))
            }
        }
        return pairs
    }

    /// Posts a streamed completion; the arrival time of each event that carries text, and the usage's
    /// completion tokens (what bench.py's client measures). A blocking socket on this thread, as
    /// bench.py's http.client: URLSession's client on Linux keeps threads polling and waking on the
    /// same two cores the forward runs on, which cost the server arm tens of per cent here.
    static func stream(port: Int, body: [String: Any]) throws -> (arrivals: [Double], usage: Int?) {
        let payload = try JSONSerialization.data(withJSONObject: body)
        let conn = try LoopbackConnection(port: port)
        defer { conn.close() }
        try conn.send(Data("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".utf8)
                      + Data("Content-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8) + payload)
        let status = try conn.line()
        guard status.hasPrefix("HTTP/1.1 200") else { throw PairError("the in-process server answered \(status)") }
        var chunked = false
        while true {
            let h = try conn.line()
            if h.isEmpty { break }
            if h.lowercased().hasPrefix("transfer-encoding:") && h.lowercased().contains("chunked") { chunked = true }
        }
        var arrivals: [Double] = [], usage: Int?
        var text = Data()
        func events() throws {
            while let nl = text.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: text[text.startIndex..<nl], as: UTF8.self)
                text.removeSubrange(text.startIndex...nl)
                guard line.hasPrefix("data: "), line != "data: [DONE]",
                      let j = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any] else { continue }
                if let e = j["error"] { throw PairError("the in-process server: \(e)") }
                if let u = j["usage"] as? [String: Any], let n = u["completion_tokens"] as? Int { usage = n }
                if let c = j["choices"] as? [[String: Any]], let t = c.first?["text"] as? String, !t.isEmpty { arrivals.append(Measure.now()) }
            }
        }
        while true {
            if chunked {
                guard let size = Int(try conn.line().split(separator: ";")[0], radix: 16) else { throw PairError("a bad chunk size") }
                if size == 0 { break }
                text += try conn.bytes(size)
                _ = try conn.line()
            } else {
                guard let more = try conn.some() else { break }
                text += more
            }
            try events()
        }
        return (arrivals, usage)
    }
}

/// One blocking TCP connection to 127.0.0.1, read through a buffer.
private final class LoopbackConnection {
    private let fd: Int32
    private var buffer = Data()

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PairError("socket: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Glibc.close(fd); throw PairError("connect to port \(port): errno \(errno)") }
    }

    func close() { Glibc.close(fd) }

    func send(_ d: Data) throws {
        try d.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            var off = 0
            while off < p.count {
                let n = Glibc.send(fd, p.baseAddress! + off, p.count - off, 0)
                guard n > 0 else { throw PairError("send: errno \(errno)") }
                off += n
            }
        }
    }

    /// Whatever arrives next (buffered first); nil at the end of the stream.
    func some() throws -> Data? {
        if !buffer.isEmpty { defer { buffer = Data() }; return buffer }
        var tmp = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &tmp, tmp.count, 0)
        guard n >= 0 else { throw PairError("recv: errno \(errno)") }
        return n == 0 ? nil : Data(tmp[0..<n])
    }

    private func fill() throws {
        guard let d = try some() else { throw PairError("the server closed the connection early") }
        buffer += d
    }

    /// The next line, without its CR LF.
    func line() throws -> String {
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var l = buffer[buffer.startIndex..<nl]
                if l.last == UInt8(ascii: "\r") { l = l.dropLast() }
                let s = String(decoding: l, as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                return s
            }
            try fill()
        }
    }

    func bytes(_ n: Int) throws -> Data {
        while buffer.count < n { try fill() }
        let out = buffer.prefix(n)
        buffer.removeFirst(n)
        return Data(out)
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

struct PairError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
