import Chat
import Engine
import Foundation
import Hummingbird
import NIOCore

/// Limits and folders of one server.
public struct ServeOptions: Sendable {
    public var host: String
    public var port: Int
    /// Where bases and adapters are found (and persona paths are relative to).
    public var modelsRoot: String
    /// `Authorization: Bearer KEY` required on every route but /health (nil: none).
    public var apiKey: String?
    /// Larger request bodies are refused with 413.
    public var maxBodyBytes: Int
    /// `max_tokens` above this is refused with 400.
    public var maxTokens: Int
    /// max_tokens when the request, the persona and generation_config.json name none.
    public var defaultMaxTokens: Int
    /// Generations that may wait per base; more are refused with 429.
    public var maxQueue: Int
    /// `n` (and prompts × n) above this is refused with 400.
    public var maxChoices: Int
    /// Who `{{user}}` is in persona prompts (the profile the chat saved).
    public var user = UserProfile()
    /// The personas folder, whose `lore/` lorebooks personas name.
    public var personasRoot: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, modelsRoot: String, apiKey: String? = nil, maxBodyBytes: Int = 4 << 20,
                maxTokens: Int = 4096, defaultMaxTokens: Int = 256, maxQueue: Int = 64, maxChoices: Int = 16) {
        self.host = host
        self.port = port
        self.modelsRoot = modelsRoot
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
        self.maxTokens = maxTokens
        self.defaultMaxTokens = defaultMaxTokens
        self.maxQueue = maxQueue
        self.maxChoices = maxChoices
    }
}

/// The routes' logic, HTTP aside: requests in, jobs to the scheduler, responses out.
public final class OpenAIService: Sendable {
    public let options: ServeOptions
    public let scheduler: any GenerationScheduler
    public let metrics: ServeMetrics
    public let personas: [Persona]
    /// The lorebooks the personas name, read once at start (and why any could not be).
    let lorebooks: [String: Result<Lorebook, ChatError>]
    let watch: ConnectionWatch
    private let catalogCache: CatalogCache
    let started = Date()

    public init(options: ServeOptions, scheduler: any GenerationScheduler, personas: [Persona], metrics: ServeMetrics = ServeMetrics()) {
        self.options = options
        self.scheduler = scheduler
        self.personas = personas
        self.metrics = metrics
        if let batch = scheduler as? BatchScheduler {
            batch.onStep = { [metrics] ran, running in metrics.batchStep(ran: ran, running: running) }
        }
        var books: [String: Result<Lorebook, ChatError>] = [:]
        for name in Set(personas.flatMap(\.lore)) {
            guard let root = options.personasRoot else { books[name] = .failure(ChatError("", "lorebook '\(name)': no personas folder")); continue }
            do { books[name] = .success(try PersonaLibrary.lorebook(name, in: root)) } catch { books[name] = .failure(error) }
        }
        lorebooks = books
        watch = ConnectionWatch()
        catalogCache = CatalogCache(root: options.modelsRoot, personas: personas)
    }

    /// The models folder as it is now (rescanned at most once a second: adapters copied into the
    /// folder are served without a restart).
    public var catalog: ModelCatalog { catalogCache.current() }

    // MARK: - GET routes

    func models() -> Data {
        let c = catalog
        let created = Int(started.timeIntervalSince1970)
        var data: [ModelEntry] = c.bases.map { ModelEntry(id: $0.id, created: created, kind: "base") }
        data += c.adapters.map { ModelEntry(id: $0.id, created: created, kind: "adapter", index: $0.index, baseModel: $0.baseModel) }
        data += c.personas.map { p in
            let missing = !FileManager.default.fileExists(atPath: c.resolve(p.model) + "/config.json")
            return ModelEntry(id: "persona:" + p.id, created: created, kind: "persona", base: p.model,
                              adapters: p.adapters.map { "\($0.path)@\(formatScale($0.scale))" }, template: p.template, name: p.name,
                              available: !missing)
        }
        return encodeJSON(ModelList(data: data))
    }

    func loraAdapters() -> Data {
        encodeJSON(catalog.adapters.map { LoraEntry(id: $0.index, path: $0.id, scale: 0) })
    }

    func health() -> Data {
        struct Health: Encodable {
            var status = "ok"
            var loaded: [String]
            var queued: Int
        }
        let root = catalog.root
        return encodeJSON(Health(loaded: scheduler.loaded.map { $0.hasPrefix(root + "/") ? String($0.dropFirst(root.count + 1)) : $0 },
                                 queued: scheduler.waiting))
    }

    func metricsText() -> String {
        metrics.queueLength.set(Double(scheduler.waiting))
        return metrics.text()
    }

    // MARK: - Generation routes

    /// `POST /v1/completions`.
    func completions(_ body: Data, channel: (any Channel)?) async throws(APIError) -> Response {
        let arrived = Measure.now()
        let f = try RequestFields(body)
        let s = try SamplingRequest(f, maxTokensCap: options.maxTokens, maxChoices: options.maxChoices)
        let logprobs = try LogprobRequest.completions(f)
        try LogprobRequest.check(logprobs, s)
        if try f.bool("echo") == true { throw APIError.unsupported("echo", "'echo' is not supported; the prompt is yours already.") }
        if let suffix = try f.string("suffix"), !suffix.isEmpty { throw APIError.unsupported("suffix", "'suffix' (insertion) is not supported.") }
        let prompts = try PromptInput.parse(f)
        guard prompts.count * s.n <= options.maxChoices else {
            throw APIError.invalid("\(prompts.count) prompts × n \(s.n) is more than \(options.maxChoices) choices.", param: "n")
        }
        let target = try Target.resolve(f, in: catalog)
        let addBOS = try f.bool("add_bos_token") ?? true
        var jobs: [GenerationJob] = []
        for p in prompts {
            for i in 0..<s.n { jobs.append(completionJob(p, choice: i, target: target, sampling: s, addBOS: addBOS, logprobs: logprobs)) }
        }
        let model = try f.string("model").flatMap { $0.isEmpty ? nil : $0 } ?? catalog.bases.first?.id ?? ""
        return try await run(jobs, kind: .completion, model: model, sampling: s, ignored: s.ignored, arrived: arrived, channel: channel)
    }

    /// `POST /v1/chat/completions`.
    func chatCompletions(_ body: Data, channel: (any Channel)?) async throws(APIError) -> Response {
        let arrived = Measure.now()
        let f = try RequestFields(body)
        let s = try SamplingRequest(f, maxTokensCap: options.maxTokens, maxChoices: options.maxChoices)
        let logprobs = try LogprobRequest.chat(f)
        try LogprobRequest.check(logprobs, s)
        if case .array(let tools)? = f.value("tools"), !tools.isEmpty { throw APIError.unsupported("tools", "Tools are not supported.") }
        if let rf = f.value("response_format"), let type = rf["type"]?.string, type != "text" {
            throw APIError.unsupported("response_format", "Only the 'text' response format is supported.")
        }
        let chat = try ChatInput.parse(f)
        let target = try Target.resolve(f, in: catalog)
        var ignored = s.ignored
        if chat.system.contains(where: { !$0.isEmpty }) && !target.effectivePersona.promptTemplate.acceptsPreamble {
            ignored.append("messages[role=system]")
        }
        let jobs = (0..<s.n).map { chatJob(chat, choice: $0, target: target, sampling: s, logprobs: logprobs) }
        let model = try f.string("model").flatMap { $0.isEmpty ? nil : $0 } ?? catalog.bases.first?.id ?? ""
        return try await run(jobs, kind: .chat, model: model, sampling: s, ignored: ignored, arrived: arrived, channel: channel)
    }
}

/// The catalog, rescanned when older than a second.
final class CatalogCache: @unchecked Sendable {
    let root: String
    let personas: [Persona]
    private let lock = NSLock()
    private var cached: (ModelCatalog, Double)?

    init(root: String, personas: [Persona]) {
        self.root = root
        self.personas = personas
    }

    func current() -> ModelCatalog {
        let now = Measure.now()
        if let (c, at) = lock.withLock({ cached }), now - at < 1 { return c }
        let c = ModelCatalog.scan(modelsRoot: root, personas: personas)
        lock.withLock { cached = (c, now) }
        return c
    }
}

func formatScale(_ x: Double) -> String { x == x.rounded() ? String(format: "%.1f", x) : "\(x)" }
