import Engine
import Foundation

/// Loads bases into this process: ModelRegistry at int8 (or f32), through the quantized-weights cache.
public struct LocalModelHost: ModelHost {
    public var precision: Precision
    /// int8 quantization block.
    public var block: Int
    public var weightCache: WeightCache?
    public var pool: ThreadPool
    /// Notices from the weights cache (a damaged entry rebuilt, no disk space).
    public var notice: (@Sendable (String) -> Void)?
    /// A draft model loaded beside each base whose tokenizer it shares (speculative decoding); beside
    /// any other base a notice says it is not used.
    public var draft: DraftSetting?

    public init(precision: Precision = .int8, block: Int = 32, weightCache: WeightCache? = nil, pool: ThreadPool = ThreadPool(),
                notice: (@Sendable (String) -> Void)? = nil, draft: DraftSetting? = nil) {
        self.draft = draft
        self.precision = precision
        self.block = block
        self.weightCache = weightCache
        self.pool = pool
        self.notice = notice
    }

    /// MemAvailable of /proc/meminfo, in bytes (nil where there is none).
    static func availableMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kb * 1024
    }

    /// Progress is the share of the expected weight bytes that resident memory has grown by
    /// (quantization streams the checkpoint in), polled on a thread of its own: the loader
    /// offers no callback and needs none.
    public func load(_ path: String, progress: @escaping @Sendable (Double, Double?) -> Void) throws(ChatError) -> any ReplyEngine {
        do {
            let folder = try ModelFolder.open(path)
            let expected = Double(max(precision == .int8 ? folder.int8Bytes() : folder.parameterCounts.total * 4, 1))
            if let free = Self.availableMemory(), expected > Double(free) {
                throw ChatError(path, String(format: "needs %.2f GiB at %@; %.2f GiB of memory is available", expected / 1073741824,
                                             precision.rawValue, Double(free) / 1073741824))
            }
            let rss0 = Double(Measure.currentRSS() ?? 0)
            let t0 = Measure.now()
            let done = CancellationFlag()
            let monitor = Thread {
                while !done.isCancelled {
                    Thread.sleep(forTimeInterval: 0.1)
                    let fraction = min(max((Double(Measure.currentRSS() ?? 0) - rss0) / expected, 0), 0.99)
                    let elapsed = Measure.now() - t0
                    if !done.isCancelled { progress(fraction, fraction > 0.02 ? elapsed * (1 - fraction) / fraction : nil) }
                }
            }
            monitor.start()
            defer { done.cancel() }
            var cache = weightCache
            if let notice { cache?.notice = notice }
            let model = try ModelRegistry.load(folder, precision: precision, block: block, pool: pool, cache: cache)
            var draftModel: DraftModel?
            if let draft {
                do throws(ChatError) {
                    draftModel = try draft.load(for: folder, precision: precision, pool: pool, cache: cache)
                } catch {
                    notice?("\(error.description); decoding without a draft model")
                }
            }
            let engine = LocalEngine(path: path, folder: folder, model: model, defaults: try GenerationParameters.defaults(for: folder),
                                     draft: draftModel)
            progress(1, 0)
            return engine
        } catch {
            throw ChatError("", "\(error)")
        }
    }
}

/// A base model loaded here, with its one ModelSession (reused across turns, so the engine reuses
/// the prompt prefix and keeps per-adapter KV snapshots) and the adapters read for it.
public final class LocalEngine: BatchingEngine, @unchecked Sendable {
    public let path: String
    public let folder: ModelFolder
    public let model: any LanguageModel
    public let session: ModelSession
    public let defaults: GenerationParameters
    public let info: EngineInfo
    /// Adapters read from disk, by resolved folder: switching back reuses the same object, so the
    /// engine's adapter signature matches its KV snapshot.
    private var adapters: [String: LoRAAdapter] = [:]
    private let lock = NSLock()
    private var running: TokenGenerator?
    /// Guesses for speculative decoding (in place of prompt lookup), from a model sharing the tokenizer.
    public let draft: DraftModel?

    public init(path: String, folder: ModelFolder, model: any LanguageModel, defaults: GenerationParameters, draft: DraftModel? = nil) {
        self.draft = draft
        self.path = path
        self.folder = folder
        self.model = model
        self.defaults = defaults
        session = model.makeSession(capacity: nil)
        info = EngineInfo(name: URL(fileURLWithPath: path).lastPathComponent, precision: model.precision.rawValue,
                          contextLength: model.contextLength, family: folder.family.rawValue)
    }

    public var tokenizer: any Tokenizer { folder.tokenizer }

    func adapter(_ path: String) throws(ChatError) -> LoRAAdapter {
        if let a = adapters[path] { return a }
        do {
            let a = try LoRAAdapter(folder: path)
            try a.check(against: model.projectionShapes)
            adapters[path] = a
            return a
        } catch {
            throw ChatError("", error.description)
        }
    }

    public func prepareAdapter(_ path: String) throws(ChatError) -> String {
        let a = try adapter(path)
        let ranks = Set(a.modules.values.map(\.rank)).sorted().map(String.init).joined(separator: "/")
        return "\(a.modules.count) modules, r \(ranks.isEmpty ? "\(a.config.r)" : ranks)"
    }

    public func setAdapters(_ list: [AdapterSetting]) throws(ChatError) {
        var loaded: [(adapter: LoRAAdapter, multiplier: Float)] = []
        for a in list { loaded.append((try adapter(a.path), a.scale)) }
        do {
            try model.setAdapters(loaded)
        } catch {
            throw ChatError("", error.description)
        }
    }

    public func makeBatchDecoder() -> BatchDecoder { BatchDecoder(model: model, tokenizer: folder.tokenizer) }

    public func adapterStack(_ list: [AdapterSetting]) throws(ChatError) -> LoRAStack {
        var loaded: [(adapter: LoRAAdapter, multiplier: Float)] = []
        for a in list { loaded.append((try adapter(a.path), a.scale)) }
        do {
            return try model.makeAdapterStack(loaded)
        } catch {
            throw ChatError("", error.description)
        }
    }

    public func generate(_ request: EngineRequest, cancelled: CancellationFlag, onDelta: (String) -> Void) -> EngineReply {
        let gen: TokenGenerator
        do throws(GenerationError) {
            var settings = try request.parameters.resolved(promptLength: request.promptIDs.count)
            settings.logprobs = request.logprobs?.top
            gen = try TokenGenerator(model: model, tokenizer: folder.tokenizer, prompt: request.promptIDs, settings: settings,
                                     session: session, draft: draft)
        } catch {
            return EngineReply(text: "", reason: nil, error: ChatError("", error.description))
        }
        lock.withLock { running = gen }
        defer { lock.withLock { running = nil } }
        var text = ""
        do throws(GenerationError) {
            while true {
                if cancelled.isCancelled { gen.cancel() }
                guard let e = try gen.next() else { break }
                switch e {
                case .token(_, let t):
                    if let log = request.logprobs, let lp = gen.logprobs.last { log.append(lp) }
                    if !t.isEmpty { text += t; onDelta(t) }
                case .finished(let r):
                    if !r.remainingText.isEmpty { onDelta(r.remainingText) }
                    return EngineReply(text: r.text, reason: r.reason, stats: r.stats, tokens: r.tokens, logprobs: gen.logprobs,
                                       stopString: r.stopString)
                }
            }
        } catch {
            // after a failed forward the session's cache may not match its tokens: start it over
            session.reset()
            return EngineReply(text: text, reason: nil, error: ChatError("", error.description))
        }
        return EngineReply(text: text, reason: .cancelled)
    }

    public func interrupt() {
        lock.withLock { running }?.cancel()
    }
}

/// A draft model to load beside a base (speculative decoding; `DraftModel`).
public struct DraftSetting: Sendable, Equatable {
    public var path: String
    public var tokens: Int
    public var minProbability: Float

    public init(path: String, tokens: Int, minProbability: Float) {
        self.path = path
        self.tokens = tokens
        self.minProbability = minProbability
    }

    /// The draft model for `target`'s tokenizer; an error naming the draft folder where it does not share it.
    public func load(for target: ModelFolder, precision: Precision, pool: ThreadPool, cache: WeightCache?) throws(ChatError) -> DraftModel {
        do {
            let folder = try ModelFolder.open(path)
            if let why = DraftModel.mismatch(draft: folder.tokenizer, target: target.tokenizer) {
                throw ChatError(path, "cannot draft for \(target.path): \(why)")
            }
            let model = try ModelRegistry.load(folder, precision: precision, pool: pool, cache: cache)
            return try DraftModel(model: model, maxDraft: tokens, minProbability: minProbability)
        } catch let e as ChatError {
            throw e
        } catch {
            throw ChatError("", "\(error)")
        }
    }
}
