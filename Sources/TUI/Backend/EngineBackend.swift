import Chat
import Engine
import Foundation

/// The real backend: ModelRegistry.load, Engine's TokenGenerator (transformers' generate:
/// greedy, sampling, beams, penalties, stop strings) and LoRA adapters; prompts from Chat's
/// TurnPlan. All of it in this one file.
///
/// Threads: the model is touched only on `work` (serial): load, generation, setAdapters.
/// Adapter files are read on `io`. cancel() sets the generator's flag (checked before every
/// forward); setAdapters() leaves the list under the lock for the loop to apply between tokens.
public final class EngineBackend: ChatBackend, @unchecked Sendable {
    /// The base being loaded or in use (changed by loadModel, on `work`).
    public private(set) var modelPath: String
    public let precision: Precision
    public let threads: Int?
    /// The quantized-weights cache loads go through (its notices become `.notice` events).
    public let weightCache: WeightCache?

    private let lock = NSLock()
    private var send: (@Sendable (BackendEvent) -> Void)?
    private var stopped = false
    private var cancelled: Set<Int> = []
    /// Adapter folders read so far, by path.
    private var loaded: [String: LoRAAdapter] = [:]
    /// The adapter list wanted, when it differs from what the model has.
    private var pendingAdapters: [AdapterSetting]?
    /// The adapter list the model has (owned by `work`).
    private var appliedAdapters: [AdapterSetting] = []
    /// The reply being generated, so cancel() reaches it at once.
    private var running: (id: Int, generator: TokenGenerator)?
    /// The loaded model's projection shapes, for checking adapters off the `work` queue.
    private var shapes: [String: (rows: Int, cols: Int)]?

    private let work = DispatchQueue(label: "yanyi.engine")
    private let io = DispatchQueue(label: "yanyi.adapters")
    // Owned by `work`.
    private var folder: ModelFolder?
    private var model: (any LanguageModel)?
    private var session: ModelSession?
    /// generation_config.json (and the EOS ids of config.json / the tokenizer).
    private var defaults = GenerationParameters()

    public init(modelPath: String, precision: Precision = .int8, threads: Int? = nil, weightCache: WeightCache? = nil) {
        self.modelPath = modelPath
        self.precision = precision
        self.threads = threads
        self.weightCache = weightCache
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
            var cache = weightCache
            cache?.notice = { [weak self] in self?.emit(.notice($0)) }
            let lm = try ModelRegistry.load(f, precision: precision, pool: pool, cache: cache)
            done.set()
            folder = f
            model = lm
            session = lm.makeSession(capacity: lm.contextLength)
            defaults = try GenerationParameters.defaults(for: f)
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

    /// A persona made for another base: drop this one (its memory goes when the new one is
    /// assigned), load the other, then re-apply the wanted adapter list to it.
    public func loadModel(path: String) {
        // Adapters read from now on are checked when applied to the new base, not against this one.
        locked { shapes = nil }
        work.async { [self] in
            guard path != modelPath || model == nil else { return }
            locked { if pendingAdapters == nil { pendingAdapters = appliedAdapters } }
            modelPath = path
            model = nil
            session = nil
            folder = nil
            load()
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

    /// One reply: plan the prompt (Chat's TurnPlan), then Engine's TokenGenerator with the layers
    /// generation_config.json < persona (with the side panel's values) — sampling, beams,
    /// repetition penalty, stop ids and strings — streaming each token's text. The generator
    /// reuses what the session already holds of the prompt (the conversation so far).
    private func run(_ r: GenerationRequest) throws {
        guard let folder, let lm = model, let session else {
            emit(.failed(id: r.id, message: "no model loaded"))
            return
        }
        let tokenizer = folder.tokenizer
        let plan = try TurnPlan(persona: r.persona, history: r.history, utterance: r.utterance, tokenizer: tokenizer,
                                contextLength: lm.contextLength)
        var ids = plan.fitted.tokenIDs
        if !r.prefix.isEmpty { ids += tokenizer.encode(r.prefix, addSpecialTokens: false) }
        let room = lm.contextLength - ids.count
        guard room >= 1 else {
            emit(.failed(id: r.id, message: "the prompt is \(ids.count) tokens; the model's context is \(lm.contextLength)"))
            return
        }
        var mine = r.persona.sampling.generationParameters
        mine.maxNewTokens = min(plan.sampling.maxNewTokens ?? 256, room)
        if !plan.stopTokenIDs.isEmpty { mine.eosTokenId = OneOrMany(plan.stopTokenIDs.map { Int($0) }.sorted()) }
        if !plan.stop.texts.isEmpty { mine.stop = plan.stop.texts }
        let settings = try GenerationParameters.layered(model: defaults, persona: mine, user: nil).resolved(promptLength: ids.count)
        emit(.started(id: r.id, promptTokens: ids.count, contextLimit: lm.contextLength, dropped: plan.fitted.droppedForBudget.count))

        applyPendingAdapters()
        let generator = try TokenGenerator(model: lm, tokenizer: tokenizer, prompt: ids, settings: settings, session: session)
        let cancelledAlready = locked { () -> Bool in
            running = (r.id, generator)
            return stopped || cancelled.contains(r.id)
        }
        defer { locked { running = nil } }
        if cancelledAlready { generator.cancel() }
        while let event = try generator.next() {
            switch event {
            case .token(_, let text):
                emit(.token(id: r.id, text: text))
                applyPendingAdapters()   // between two tokens: the session re-runs under the new set
            case .finished(let result):
                let st = result.stats
                let stats = GenerationStats(promptTokens: st.promptTokens, newTokens: st.generatedTokens,
                                            timeToFirstToken: st.timeToFirstToken, tokensPerSecond: st.tokensPerSecond,
                                            contextLimit: lm.contextLength)
                emit(.finished(id: r.id, reply: r.persona.finishReply(result.text), stats: stats, cancelled: result.reason == .cancelled))
            }
        }
    }

    public func cancel(_ id: Int) {
        let generator = locked { () -> TokenGenerator? in
            cancelled.insert(id)
            return running?.id == id ? running?.generator : nil
        }
        generator?.cancel()
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
            appliedAdapters = want
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
