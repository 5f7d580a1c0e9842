import Chat
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import Serve

enum ServeFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// Bases under models/, adapters under adapters/.
    static let root = fixtures.path
    static let personas = PersonaLibrary.load(from: fixtures.appendingPathComponent("chat/personas-runtime").path).personas
    static let llama = "models/llama-trained/safetensors"
}

/// A host that hands out one canned engine (whose request log the tests read), counting loads
/// and the text pieces it has produced so far.
final class CannedHost: ModelHost, @unchecked Sendable {
    let engine: CannedEngine
    private let lock = NSLock()
    private var paths: [String] = []
    private var pieces = 0

    init(tokenDelay: Double = 0) { engine = CannedEngine(tokenDelay: tokenDelay) }

    var loads: [String] { lock.withLock { paths } }
    /// Deltas every generation has produced so far (read while one runs).
    var produced: Int { lock.withLock { pieces } }

    func load(_ path: String, progress: @escaping @Sendable (Double, Double?) -> Void) throws(ChatError) -> any ReplyEngine {
        lock.withLock { paths.append(path) }
        return Counting(engine, self)
    }

    /// After this many pieces the engine waits until `release()` (a test's cancel then lands
    /// between two tokens however slowly the test's own threads run).
    private var holdAfter: Int?
    private let gate = DispatchSemaphore(value: 0)
    func hold(after n: Int) { lock.withLock { holdAfter = n } }
    func release() { gate.signal() }

    func count() {
        let wait = lock.withLock { () -> Bool in
            pieces += 1
            return pieces == holdAfter
        }
        if wait { gate.wait() }
    }

    /// The canned engine, its deltas counted as they come.
    final class Counting: ReplyEngine, @unchecked Sendable {
        let inner: CannedEngine
        let host: CannedHost
        init(_ inner: CannedEngine, _ host: CannedHost) { self.inner = inner; self.host = host }
        var info: EngineInfo { inner.info }
        var tokenizer: any Tokenizer { inner.tokenizer }
        var defaults: GenerationParameters { inner.defaults }
        func prepareAdapter(_ path: String) throws(ChatError) -> String { try inner.prepareAdapter(path) }
        func setAdapters(_ list: [AdapterSetting]) throws(ChatError) { try inner.setAdapters(list) }
        func interrupt() { inner.interrupt() }
        func generate(_ request: EngineRequest, cancelled: CancellationFlag, onDelta: (String) -> Void) -> EngineReply {
            inner.generate(request, cancelled: cancelled) { d in
                onDelta(d)
                host.count()   // after handing the piece on: a held engine has sent what it made
            }
        }
    }
}

/// A server over `host` on the fixture folders.
func makeServer(_ host: any ModelHost, apiKey: String? = nil, maxQueue: Int = 64, maxBodyBytes: Int = 4 << 20,
                maxTokens: Int = 4096) -> (OpenAIServer, SerialScheduler) {
    let options = ServeOptions(port: 0, modelsRoot: ServeFixtures.root, apiKey: apiKey, maxBodyBytes: maxBodyBytes, maxTokens: maxTokens,
                               maxQueue: maxQueue)
    let scheduler = SerialScheduler(host: host, maxWaiting: maxQueue)
    return (OpenAIServer(service: OpenAIService(options: options, scheduler: scheduler, personas: ServeFixtures.personas)), scheduler)
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: JSON { (try? JSON.parse(Data(text.utf8))) ?? .null }

    /// The `data:` payloads of a server-sent-event body, in order (`[DONE]` included).
    var events: [String] {
        text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : "<bad frame: \($0)>" }
    }
}

extension TestClientProtocol {
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: h, body: ByteBuffer(string: body))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }
}

extension JSON {
    var int: Int? { if case .int(let i) = self { i } else { nil } }
    subscript(index: Int) -> JSON? { array.flatMap { $0.indices.contains(index) ? $0[index] : nil } }
}

/// The concatenated text of a stream's choice `index` (completions: `text`; chat: `delta.content`).
func streamedText(_ events: [String], index: Int = 0) -> String {
    var out = ""
    for e in events where e != "[DONE]" {
        guard let j = try? JSON.parse(Data(e.utf8)), let choices = j["choices"]?.array else { continue }
        for c in choices where c["index"]?.int == index {
            out += c["text"]?.string ?? c["delta"]?["content"]?.string ?? ""
        }
    }
    return out
}

/// A blocking TCP client, for what the test client cannot do: leave in the middle of a reply.
final class RawClient {
    let fd: Int32

    init(port: Int) throws {
        var s: Int32 = -1
        for family in [AF_INET, AF_INET6] {
            s = socket(family, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { continue }
            var ok: Int32 = -1
            if family == AF_INET {
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = in_port_t(UInt16(port).bigEndian)
                a.sin_addr.s_addr = inet_addr("127.0.0.1")
                ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            } else {
                var a = sockaddr_in6()
                a.sin6_family = sa_family_t(AF_INET6)
                a.sin6_port = in_port_t(UInt16(port).bigEndian)
                a.sin6_addr = in6addr_loopback
                ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
            }
            if ok == 0 { break }
            Glibc.close(s)
            s = -1
        }
        guard s >= 0 else { throw ChatError("", "cannot connect to port \(port)") }
        fd = s
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until `marker` has arrived (or 10 s pass); returns what came. Polls without
    /// blocking: the server under test needs the same few threads this task runs on.
    func read(until marker: String) async -> String {
        var data = [UInt8]()
        let deadline = Date().addingTimeInterval(10)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) <= 0 {
                try? await Task.sleep(nanoseconds: 5_000_000)
                continue
            }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
            if String(decoding: data, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    func close() { Glibc.close(fd) }

    static func request(_ path: String, _ body: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
}

/// Waits (up to `seconds`) for `condition`.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return condition()
}

/// A server over `host` on the fixture folders, with the batch scheduler.
func makeBatchServer(_ host: any ModelHost, maxQueue: Int = 64, maxBatch: Int = 8, chunk: Int = 128,
                     prefillBudget: Int = 256) -> (OpenAIServer, BatchScheduler) {
    let options = ServeOptions(port: 0, modelsRoot: ServeFixtures.root, maxQueue: maxQueue)
    let scheduler = BatchScheduler(host: host, maxWaiting: maxQueue, maxBatch: maxBatch, chunk: chunk, prefillBudget: prefillBudget)
    return (OpenAIServer(service: OpenAIService(options: options, scheduler: scheduler, personas: ServeFixtures.personas)), scheduler)
}
