import Chat
import Engine
import Foundation

/// A backend with no model: a simulated load with progress, then canned replies streamed one
/// token (one or two characters) at a time with a delay. For tests, and `yanyi chat --fake`
/// (the end-to-end test runs it in tmux). Adapter folders that exist are really read (so bad
/// ones fail as they would); persona adapters under `modelsRoot` that are not installed load
/// as stand-ins.
public final class FakeBackend: ChatBackend, @unchecked Sendable {
    public let tokenDelay: Double
    public let loadSeconds: Double
    public let modelsRoot: String
    private let lock = NSLock()
    private var send: (@Sendable (BackendEvent) -> Void)?
    private var cancelled: Set<Int> = []
    private var stopped = false
    private let work = DispatchQueue(label: "yanyi.fake-backend")
    // Its own queue, not a global one: those can be starved by busy cooperative threads.
    private let io = DispatchQueue(label: "yanyi.fake-adapters")
    /// The adapter list last set (tests read it).
    public private(set) var applied: [AdapterSetting] = []

    public init(tokenDelay: Double = 0.03, loadSeconds: Double = 0.5, modelsRoot: String = "Models") {
        self.tokenDelay = tokenDelay
        self.loadSeconds = loadSeconds
        self.modelsRoot = modelsRoot
    }

    private func emit(_ e: BackendEvent) {
        lock.lock()
        let s = stopped ? nil : send
        lock.unlock()
        s?(e)
    }

    private func isCancelled(_ id: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped || cancelled.contains(id)
    }

    public func start(send: @escaping @Sendable (BackendEvent) -> Void) {
        lock.lock()
        self.send = send
        lock.unlock()
        work.async { [self] in
            let steps = max(Int(loadSeconds / 0.05), 1)
            for i in 1...steps {
                Thread.sleep(forTimeInterval: loadSeconds / Double(steps))
                emit(.loadProgress(Double(i) / Double(steps), eta: loadSeconds * Double(steps - i) / Double(steps)))
            }
            emit(.loaded(ModelInfo(name: "fake", precision: "canned", contextLength: 2048)))
        }
    }

    /// What a persona "says": the same lines every time, so tests can wait for them.
    public static func reply(for p: Persona, continuing: Bool) -> String {
        if continuing { return "且听下回分解。" }
        switch p.group {
        case "sanguo":
            return "“先生所言极是。备以为，当今之计，莫若北让曹操占天时，南让孙权占地利，将军可占人和。先取荆州为家，后取西川建基业，以成鼎足之势，然后可图中原也。”"
        case "xiyou": return "“师父放心，俺老孙去去就来！那妖精纵有千般变化，也逃不过俺这双火眼金睛。”"
        case "shuihu": return "“哥哥休慌，洒家在此！路见不平一声吼，该出手时就出手。”"
        case "honglou": return "“我就知道，别人不挑剩下的也不给我。这花儿落了，明年还有谁来葬它？”"
        default:
            if p.id.contains("rulai") { return "如来。如来是如来，如来也不是如来，如如不动，是名如来~" }
            return "This is a canned reply from the fake backend: 这是一条用于测试的回复，它逐字流式输出。"
        }
    }

    /// Tokens of a canned reply: ASCII words whole, other characters one by one.
    static func tokens(_ text: String) -> [String] {
        var out: [String] = []
        var word = ""
        for ch in text {
            if ch.isASCII && ch != " " {
                word.append(ch)
            } else {
                if !word.isEmpty { out.append(word); word = "" }
                out.append(String(ch))
            }
        }
        if !word.isEmpty { out.append(word) }
        return out
    }

    public func generate(_ r: GenerationRequest) {
        work.async { [self] in
            let t0 = Date().timeIntervalSince1970
            let prompt = (r.history.map(\.text).joined() + r.utterance + r.prefix).count
            emit(.started(id: r.id, promptTokens: prompt, contextLimit: 2048, dropped: 0))
            let reply = Self.reply(for: r.persona, continuing: !r.prefix.isEmpty)
            var text = ""
            var first: Double?
            var n = 0
            let limit = r.persona.sampling.maxNewTokens ?? 256
            for t in Self.tokens(reply).prefix(limit) {
                if isCancelled(r.id) { break }
                Thread.sleep(forTimeInterval: tokenDelay)
                if first == nil { first = Date().timeIntervalSince1970 }
                text += t
                n += 1
                emit(.token(id: r.id, text: t))
            }
            let end = Date().timeIntervalSince1970
            let f = first ?? end
            let stats = GenerationStats(promptTokens: prompt, newTokens: n, timeToFirstToken: f - t0,
                                        tokensPerSecond: n > 1 ? Double(n - 1) / max(end - f, 1e-9) : 0, contextLimit: 2048)
            emit(.finished(id: r.id, reply: r.persona.finishReply(text), stats: stats, cancelled: isCancelled(r.id)))
        }
    }

    public func cancel(_ id: Int) {
        lock.lock()
        cancelled.insert(id)
        lock.unlock()
    }

    public func loadAdapter(path: String) {
        io.async { [self] in
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            let root = modelsRoot.hasSuffix("/") ? modelsRoot : modelsRoot + "/"
            if !exists && path.hasPrefix(root) {
                emit(.adapterLoaded(path: path, AdapterInfo(summary: "stand-in (not installed)")))
                return
            }
            do {
                let a = try LoRAAdapter(folder: path)
                emit(.adapterLoaded(path: path, AdapterInfo(summary: EngineBackend.summary(a))))
            } catch {
                emit(.adapterFailed(path: path, message: "\(error)"))
            }
        }
    }

    public func setAdapters(_ list: [AdapterSetting]) {
        lock.lock()
        applied = list
        lock.unlock()
    }

    public func shutdown() {
        lock.lock()
        stopped = true
        send = nil
        lock.unlock()
    }
}
