import ArgumentParser
import Chat
import Engine
import Foundation
import Hummingbird
import Serve

/// `yanyi serve`: the OpenAI-compatible HTTP server. Reads the folders and flags here and runs
/// the server until SIGINT or SIGTERM.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the models, adapters and personas over an OpenAI-compatible HTTP API.",
        discussion: """
            Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (streaming as \
            server-sent events), GET /lora-adapters, GET /health, GET /metrics (Prometheus). Model ids \
            are base folders under --models, `persona:GROUP/ID`, and `BASE+ADAPTER@SCALE`; a request \
            may also name adapters with "adapters": [{"name", "scale"}] or llama.cpp's "lora": \
            [{"id", "scale"}]. Adapters come only from the models folder. llama.cpp's own routes too: \
            POST /completion, /tokenize, /detokenize, GET /props. Up to --max-batch generations per \
            base decode together, each with its own adapters (one forward per step); the rest wait \
            in a queue.
            """)

    @Option(help: "Address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    var host = "127.0.0.1"

    @Option(help: "Port (0: any free port; the one bound is printed).")
    var port = 8080

    @Option(help: "Folder of bases and adapters (default $YANYI_MODELS, else Models/ beside the personas folder).")
    var models: String?

    @Option(help: "Personas folder (default $YANYI_PERSONAS, else Personas/ beside the executable or in the package).")
    var personas: String?

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' (default $YANYI_API_KEY; none if unset).")
    var apiKey: String?

    @Option(help: "Worker threads of each engine (default: physical cores).")
    var threads: Int?

    @Option(help: "int8 (default) or f32.")
    var precision: Precision = .int8

    @Flag(name: .customLong("no-cache"), help: "Quantize from the checkpoint; neither read nor write the quantized-weights cache.")
    var noCache = false

    @Option(name: .customLong("max-tokens"), help: "Largest max_tokens a request may ask for.")
    var maxTokens = 4096

    @Option(name: .customLong("max-queue"), help: "Generations that may wait per base; more are answered 429.")
    var maxQueue = 64

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body; larger ones are answered 413.")
    var maxBodyBytes = 4 << 20

    @Option(name: .customLong("max-batch"), help: "Generations that run together per base (one forward per step for all of them).")
    var maxBatch = 8

    @Flag(help: "One generation at a time per base (no batching; reuses the prompt prefix across requests).")
    var serial = false

    @Flag(help: "No model: canned replies streamed token by token (for trying clients and for tests).")
    var fake = false

    @Option(help: .hidden)
    var fakeTokenMs = 20

    func validate() throws {
        if let threads, let problem = ThreadPool.threadCountProblem(threads) { throw ValidationError(problem) }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0–65535") }
        if maxTokens < 1 || maxQueue < 1 || maxBatch < 1 || maxBodyBytes < 1024 {
            throw ValidationError("--max-tokens, --max-queue and --max-batch must be ≥ 1, --max-body-bytes ≥ 1024")
        }
        if fakeTokenMs < 0 { throw ValidationError("--fake-token-ms must be ≥ 0") }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let personasDir = personas ?? env["YANYI_PERSONAS"] ?? DataFolders.find("Personas")
        let library = personasDir.map(PersonaLibrary.load) ?? PersonaLibrary(errors: [])
        for e in library.errors.prefix(3) { FileHandle.standardError.write(Data("warning: \(e.description) (persona skipped)\n".utf8)) }
        let modelsRoot = models ?? env["YANYI_MODELS"]
            ?? personasDir.map { (($0 as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Models") } ?? "Models"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelsRoot, isDirectory: &isDir), isDir.boolValue else {
            fail("models folder \(modelsRoot) not found (give --models DIR)")
        }
        let pool = threads.map { ThreadPool(threads: $0) } ?? ThreadPool()
        let modelHost: any ModelHost = fake
            ? CannedModelHost(tokenDelay: Double(fakeTokenMs) / 1000, loadSeconds: 0, standInRoot: modelsRoot)
            : LocalModelHost(precision: precision, weightCache: noCache ? nil : .standard(background: true), pool: pool,
                             notice: { FileHandle.standardError.write(Data("notice: \($0)\n".utf8)) })
        var options = ServeOptions(host: host, port: port, modelsRoot: modelsRoot, apiKey: apiKey ?? env["YANYI_API_KEY"],
                                   maxBodyBytes: maxBodyBytes, maxTokens: maxTokens, maxQueue: maxQueue)
        options.personasRoot = personasDir
        // {{user}} is who the chat's saved profile says (the database is read, never created here).
        let database = DataFolders.sessionDatabase(env).database
        if FileManager.default.fileExists(atPath: database), let store = try? SessionStore(database: database) {
            options.user = store.userProfile()
        }
        let scheduler: any GenerationScheduler = serial
            ? SerialScheduler(host: modelHost, maxWaiting: maxQueue)
            : BatchScheduler(host: modelHost, maxWaiting: maxQueue, maxBatch: maxBatch)
        let service = OpenAIService(options: options, scheduler: scheduler, personas: library.personas)
        let catalog = service.catalog
        let server = OpenAIServer(service: service)
        let bindHost = self.host
        let app = server.application { port in
            let line = "yanyi serve: http://\(bindHost):\(port)/v1 — \(catalog.bases.count) bases, \(catalog.adapters.count) adapters, "
                + "\(catalog.personas.count) personas from \(catalog.root)\(fake ? " (fake engine)" : "")\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        // The server runs on Swift concurrency's threads; this one waits for it to stop.
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Task {
            do { try await app.runService() } catch { failure.set("\(error)") }
            scheduler.shutdown()
            done.signal()
        }
        done.wait()
        if let message = failure.get() { fail(message) }
        WeightCache.finishPending()
    }
}

/// The server task's error, handed to the waiting thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    func set(_ m: String) { lock.withLock { message = m } }
    func get() -> String? { lock.withLock { message } }
}
