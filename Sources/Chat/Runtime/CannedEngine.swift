import Engine
import Foundation

/// A host with no model: a simulated load with progress, then canned replies streamed one token
/// (an ASCII word or one other character) at a time, ending at the request's stop strings. For `yanyi chat --fake`, the tmux end-to-end
/// test and the runtime's tests: everything above the engine seam is the real runtime.
public struct CannedModelHost: ModelHost {
    public var tokenDelay: Double
    public var loadSeconds: Double
    /// Paths whose load fails (tests of the failure path), with the reason.
    public var failing: [String: String]
    /// Adapter folders under this one that are not installed load as stand-ins (the shipped
    /// personas run without their adapters); anywhere else a missing folder is an error.
    public var standInRoot: String?

    public init(tokenDelay: Double = 0.03, loadSeconds: Double = 0.5, failing: [String: String] = [:], standInRoot: String? = nil) {
        self.tokenDelay = tokenDelay
        self.loadSeconds = loadSeconds
        self.failing = failing
        self.standInRoot = standInRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    public func load(_ path: String, progress: @escaping @Sendable (Double, Double?) -> Void) throws(ChatError) -> any ReplyEngine {
        let steps = max(Int(loadSeconds / 0.05), 1)
        for i in 1...steps {
            if loadSeconds > 0 { Thread.sleep(forTimeInterval: loadSeconds / Double(steps)) }
            progress(Double(i) / Double(steps), loadSeconds * Double(steps - i) / Double(steps))
        }
        if let why = failing[path] { throw ChatError(path, why) }
        return CannedEngine(name: "fake", tokenDelay: tokenDelay, standInRoot: standInRoot)
    }
}

public final class CannedEngine: ReplyEngine, @unchecked Sendable {
    public let info: EngineInfo
    public let tokenDelay: Double
    public let tokenizer: any Tokenizer = ScalarTokenizer()
    public let defaults = GenerationParameters()
    private let lock = NSLock()
    private var applied: [AdapterSetting] = []
    /// Every request, in order, with the adapters it ran under (tests read them).
    public private(set) var requests: [EngineRequest] = []
    public private(set) var adapterLog: [[AdapterSetting]] = []

    let standInRoot: String?

    public init(name: String = "fake", contextLength: Int = 2048, tokenDelay: Double = 0, standInRoot: String? = nil) {
        info = EngineInfo(name: name, precision: "canned", contextLength: contextLength, family: "canned")
        self.tokenDelay = tokenDelay
        self.standInRoot = standInRoot
    }

    /// The adapter list last set.
    public var adapters: [AdapterSetting] { lock.withLock { applied } }

    /// Folders that exist are really read (a bad one fails as it would).
    public func prepareAdapter(_ path: String) throws(ChatError) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            if let root = standInRoot, path.hasPrefix(root + "/") { return "stand-in (not installed)" }
            throw ChatError(path, "no such adapter folder")
        }
        guard isDir.boolValue else { throw ChatError(path, "not a folder (an adapter is a folder with adapter_config.json)") }
        do {
            let a = try LoRAAdapter(folder: path)
            return "\(a.modules.count) modules, r \(a.config.r)"
        } catch {
            throw ChatError("", error.description)
        }
    }

    public func setAdapters(_ list: [AdapterSetting]) throws(ChatError) { lock.withLock { applied = list } }

    /// What a persona "says": the same lines every time, so tests can wait for them.
    public static func reply(persona: String?, continuing: Bool) -> String {
        if continuing { return "且听下回分解。" }
        let id = persona ?? ""
        if id.hasPrefix("sanguo/") {
            return "“先生所言极是。备以为，当今之计，莫若北让曹操占天时，南让孙权占地利，将军可占人和。先取荆州为家，后取西川建基业，以成鼎足之势，然后可图中原也。”"
        }
        if id.hasPrefix("xiyou/") { return "“师父放心，俺老孙去去就来！那妖精纵有千般变化，也逃不过俺这双火眼金睛。”" }
        if id.hasPrefix("shuihu/") { return "“哥哥休慌，洒家在此！路见不平一声吼，该出手时就出手。”" }
        if id.hasPrefix("honglou/") { return "“我就知道，别人不挑剩下的也不给我。这花儿落了，明年还有谁来葬它？”" }
        if id.contains("rulai") { return "如来。如来是如来，如来也不是如来，如如不动，是名如来~" }
        return "This is a canned reply from the fake backend: 这是一条用于测试的回复，它逐字流式输出。"
    }

    /// Tokens of a canned reply: ASCII words whole, other characters one by one.
    static func pieces(_ text: String) -> [String] {
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

    public func generate(_ request: EngineRequest, cancelled: CancellationFlag, onDelta: (String) -> Void) -> EngineReply {
        lock.withLock {
            requests.append(request)
            adapterLog.append(applied)
        }
        let t0 = Measure.now()
        var stats = GenerationStats()
        stats.promptTokens = request.promptIDs.count
        let limit = request.parameters.maxNewTokens ?? 128
        var text = ""
        var firstAt: Double?
        var reason = FinishReason.eos
        var logprobs: [TokenLogprob] = []
        var stopString: String?
        // stop strings end the reply as the engine's do (held back while they may be starting)
        var stops = StopStringMatcher(request.parameters.stop ?? [])
        let all = Self.pieces(Self.reply(persona: request.persona, continuing: request.continuing))
        for (i, t) in all.enumerated() {
            if cancelled.isCancelled { reason = .cancelled; break }
            if i == limit { reason = .maxNewTokens; break }
            if tokenDelay > 0 { Thread.sleep(forTimeInterval: tokenDelay) }
            if firstAt == nil { firstAt = Measure.now() }
            stats.generatedTokens += 1
            if let log = request.logprobs {
                let lp = Self.logprob(t, step: i, top: log.top)
                logprobs.append(lp)
                log.append(lp)
            }
            let (shown, stop) = stops.push(t)
            text += shown
            if !shown.isEmpty { onDelta(shown) }
            if let stop { reason = .stopString; stopString = stop; break }
        }
        if reason != .stopString {
            let rest = stops.flush()
            text += rest
            if !rest.isEmpty { onDelta(rest) }
        }
        let end = Measure.now()
        stats.timeToFirstToken = (firstAt ?? end) - t0
        stats.decodeSeconds = end - (firstAt ?? end)
        return EngineReply(text: text, reason: reason, stats: stats, tokens: tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: false),
                           logprobs: logprobs, stopString: stopString)
    }

    /// A made-up but well-formed logprob for piece `t` (its first scalar's id): the most likely
    /// token (probability 0.61 at most), then `top - 1` neighbours each e² times less likely
    /// (together below 1), the same every run.
    static func logprob(_ t: String, step: Int, top: Int) -> TokenLogprob {
        let id = Int32(t.unicodeScalars.first?.value ?? 0)
        let best = -0.5 - 0.125 * Float(step % 4)
        var alternatives: [TokenLogprob.Alternative] = []
        for k in 0..<top { alternatives.append(.init(id: k == 0 ? id : id + Int32(k), logprob: best - 2 * Float(k))) }
        return TokenLogprob(id: id, logprob: best, top: alternatives)
    }

    public func interrupt() {}
}

/// One id per Unicode scalar: the canned engine's tokenizer (budgets count characters).
public struct ScalarTokenizer: Tokenizer {
    public init() {}
    public var kind: TokenizerKind { .sentencePiece }
    public var vocabSize: Int { 0x110000 }
    public var specials: SpecialTokens { SpecialTokens() }
    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32] { text.unicodeScalars.map { Int32($0.value) } }
    public func tokenize(_ text: String) -> [String] { text.unicodeScalars.map { String($0) } }
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        String(String.UnicodeScalarView(ids.compactMap { Unicode.Scalar(UInt32(bitPattern: $0)) }))
    }
    public func piece(_ id: Int32) -> String? { Unicode.Scalar(UInt32(bitPattern: id)).map { String($0) } }
    public func makeStreamingDecoder() -> StreamingDetokenizer { StreamingDetokenizer { decode($0, skipSpecialTokens: false) } }
}
