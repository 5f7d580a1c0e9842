import Chat
import Engine
import Foundation

/// The real backend over what Engine offers today: ModelRegistry.load, LanguageModel.forward,
/// greedy decoding (GreedyDecoder.argmax), StreamingDetokenizer and LoRA adapters; prompts from
/// Chat's TurnPlan. Everything lives in this one file so it can move to the streaming generator
/// (Sources/Engine/Generation) when that lands: generate() is the only part that changes.
///
/// Threads: the model is touched only on `work` (serial): load, prefill, decode, setAdapters.
/// Adapter files are read on `io`. cancel() and setAdapters() only set flags under the lock,
/// which the decode loop reads between tokens.
public final class EngineBackend: ChatBackend, @unchecked Sendable {
    public let modelPath: String
    public let precision: Precision
    public let threads: Int?

    private let lock = NSLock()
    private var send: (@Sendable (BackendEvent) -> Void)?
    private var stopped = false
    private var cancelled: Set<Int> = []
    /// Adapter folders read so far, by path.
    private var loaded: [String: LoRAAdapter] = [:]
    /// The adapter list wanted, when it differs from what the model has.
    private var pendingAdapters: [AdapterSetting]?
    private var warnedSampling = false
    /// The loaded model's projection shapes, for checking adapters off the `work` queue.
    private var shapes: [String: (rows: Int, cols: Int)]?

    private let work = DispatchQueue(label: "yanyi.engine")
    private let io = DispatchQueue(label: "yanyi.adapters")
    // Owned by `work`.
    private var folder: ModelFolder?
    private var model: (any LanguageModel)?
    private var session: ModelSession?

    public init(modelPath: String, precision: Precision = .int8, threads: Int? = nil) {
        self.modelPath = modelPath
        self.precision = precision
        self.threads = threads
    }

    private func emit(_ e: BackendEvent) {
        lock.lock()
        let s = stopped ? nil : send
        lock.unlock()
        s?(e)
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    public func start(send: @escaping @Sendable (BackendEvent) -> Void) {
        locked { self.send = send }
        work.async { [self] in load() }
    }

    /// Loads on `work`; a second thread reports progress as the share of the expected weight
    /// bytes that resident memory has grown by (quantization streams the checkpoint in), and
    /// an ETA from the rate so far. The loader offers no callback; this needs none.
    private func load() {
        let f: ModelFolder
        do {
            f = try ModelFolder.open(modelPath)
        } catch {
            emit(.loadFailed(error.description))
            return
        }
        let expected = Double(max(precision == .int8 ? f.int8Bytes() : f.parameterCounts.total * 4, 1))
        let rss0 = Double(Measure.currentRSS() ?? 0)
        let t0 = Measure.now()
        let done = Flag()
        let monitor = Thread { [self] in
            while !done.isSet {
                Thread.sleep(forTimeInterval: 0.1)
                let grown = Double(Measure.currentRSS() ?? 0) - rss0
                let fraction = min(max(grown / expected, 0), 0.99)
                let elapsed = Measure.now() - t0
                let eta = fraction > 0.02 ? elapsed * (1 - fraction) / fraction : nil
                if !done.isSet { emit(.loadProgress(fraction, eta: eta)) }
            }
        }
        monitor.start()
        do {
            let pool = threads.map { ThreadPool(threads: $0) } ?? ThreadPool()
            let lm = try ModelRegistry.load(f, precision: precision, pool: pool)
            done.set()
            folder = f
            model = lm
            session = lm.makeSession(capacity: lm.contextLength)
            let projections = lm.projectionShapes
            locked { shapes = projections }
            emit(.loadProgress(1, eta: 0))
            emit(.loaded(ModelInfo(name: URL(fileURLWithPath: modelPath).lastPathComponent, precision: lm.precision.rawValue,
                                   contextLength: lm.contextLength)))
            applyPendingAdapters()
        } catch {
            done.set()
            emit(.loadFailed(error.description))
        }
    }

    public func generate(_ r: GenerationRequest) {
        work.async { [self] in
            do {
                try run(r)
            } catch {
                emit(.failed(id: r.id, message: "\(error)"))
            }
        }
    }

    /// One reply: plan the prompt, prefill what the session does not already hold, decode
    /// greedily token by token (cancellation and adapter changes checked between tokens).
    private func run(_ r: GenerationRequest) throws {
        guard let folder, let lm = model, let session else {
            emit(.failed(id: r.id, message: "no model loaded"))
            return
        }
        let t0 = Measure.now()
        let tokenizer = folder.tokenizer
        // The utterance already carries the cosplay handover; without a speaker TurnPlan keeps it as is.
        var planned = r.persona
        planned.speaker = nil
        let plan = try TurnPlan(persona: planned, history: r.history, typed: r.utterance, tokenizer: tokenizer,
                                contextLength: lm.contextLength)
        var ids = plan.fitted.tokenIDs
        if !r.prefix.isEmpty { ids += tokenizer.encode(r.prefix, addSpecialTokens: false) }
        let room = lm.contextLength - ids.count
        guard room >= 1 else {
            emit(.failed(id: r.id, message: "the prompt is \(ids.count) tokens; the model's context is \(lm.contextLength)"))
            return
        }
        let maxNew = min(plan.sampling.maxNewTokens ?? 256, room)
        emit(.started(id: r.id, promptTokens: ids.count, contextLimit: lm.contextLength, dropped: plan.fitted.droppedForBudget.count))
        let s = r.persona.sampling
        if (s.doSample == true || (s.numBeams ?? 1) > 1 || (s.repetitionPenalty ?? 1) != 1) && !locked({ warnedSampling }) {
            locked { warnedSampling = true }
            emit(.notice("sampling, beams and repetition penalty arrive with the generation work; replies are greedy for now"))
        }
        var stops = plan.stopTokenIDs
        for e in folder.generation?.eosTokenId?.values ?? folder.config.eosTokenId?.values ?? [] { stops.insert(Int32(e)) }
        if let e = tokenizer.specials.eos { stops.insert(e) }

        applyPendingAdapters()
        // Reuse the cached prefix (the conversation so far) when the adapters are the same.
        var common = 0
        while common < min(session.tokens.count, ids.count) && session.tokens[common] == ids[common] { common += 1 }
        if common == ids.count { common -= 1 }
        session.truncate(to: common)
        var logits = try lm.forward(Array(ids[common...]), session: session, logits: .last)

        var stream = tokenizer.makeStreamingDecoder()
        var raw = ""
        var n = 0
        var first: Double?
        var wasCancelled = false
        while n < maxNew {
            if locked({ stopped || cancelled.contains(r.id) }) { wasCancelled = true; break }
            let next = GreedyDecoder.argmax(logits[...])
            n += 1
            if first == nil { first = Measure.now() }
            if stops.contains(next) { break }
            let piece = stream.push(next)
            raw += piece
            emit(.token(id: r.id, text: piece))
            if plan.stop.cut(raw) != raw { break }
            if n == maxNew || session.count + 1 >= lm.contextLength { break }
            applyPendingAdapters()
            logits = try lm.forward([next], session: session, logits: .last)
        }
        let tail = stream.flush()
        if !tail.isEmpty { raw += tail; emit(.token(id: r.id, text: tail)) }
        let end = Measure.now()
        let f = first ?? end
        let stats = GenerationStats(promptTokens: ids.count, newTokens: n, timeToFirstToken: f - t0,
                                    tokensPerSecond: n > 1 ? Double(n - 1) / max(end - f, 1e-9) : 0, contextLimit: lm.contextLength)
        emit(.finished(id: r.id, reply: r.persona.finishReply(raw), stats: stats, cancelled: wasCancelled))
    }

    public func cancel(_ id: Int) {
        locked { _ = cancelled.insert(id) }
    }

    public func loadAdapter(path: String) {
        io.async { [self] in
            do {
                let a = try LoRAAdapter(folder: path)
                // Checked against the base when the model is there (else when it is applied).
                if let shapes = locked({ shapes }) { try a.check(against: shapes) }
                locked { loaded[path] = a }
                emit(.adapterLoaded(path: path, AdapterInfo(summary: Self.summary(a))))
            } catch {
                emit(.adapterFailed(path: path, message: "\(error)"))
            }
        }
    }

    public func setAdapters(_ list: [AdapterSetting]) {
        locked { pendingAdapters = list }
        work.async { [self] in applyPendingAdapters() }
    }

    /// On `work`: gives the model the wanted adapters if they changed.
    private func applyPendingAdapters() {
        guard let lm = model, let want = locked({ pendingAdapters }) else { return }
        locked { pendingAdapters = nil }
        let list = want.compactMap { s in locked { loaded[s.path] }.map { (adapter: $0, multiplier: Float(s.scale)) } }
        do {
            try lm.setAdapters(list)
        } catch {
            emit(.notice("adapters not applied: \(error.description)"))
        }
    }

    public func shutdown() {
        locked {
            stopped = true
            send = nil
        }
    }

    /// "24 modules, r 8" for the adapter panel.
    static func summary(_ a: LoRAAdapter) -> String {
        let ranks = Set(a.modules.values.map(\.rank)).sorted().map(String.init).joined(separator: "/")
        return "\(a.modules.count) modules, r \(ranks.isEmpty ? "\(a.config.r)" : ranks)"
    }
}

/// A flag one thread sets and another reads.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
