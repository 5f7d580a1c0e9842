import Chat
import Engine
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's, plus the connection (to notice a client that leaves).
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// `yanyi serve`: OpenAI-compatible routes over a scheduler of engines.
///
///     GET  /v1/models              bases, adapters and personas (`persona:ID`) as model ids
///     POST /v1/completions         a raw prompt
///     POST /v1/chat/completions    messages through a persona's (or the `plain`) template
///     GET  /lora-adapters          llama.cpp's adapter list (ids for `"lora": [{"id", "scale"}]`)
///     POST /completion             llama.cpp's native completion (LlamaCppRoutes.swift), and its
///     POST /tokenize, /detokenize  tokenizer routes and
///     GET  /props                  default settings
///     GET  /health                 `{"status": "ok", …}` (no API key needed)
///     GET  /metrics                Prometheus text
///
/// The same routes answer without the `/v1` prefix, as llama.cpp's do.
public final class OpenAIServer: Sendable {
    public let service: OpenAIService

    public init(service: OpenAIService) { self.service = service }

    public var options: ServeOptions { service.options }

    public func router() -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        let service = self.service
        router.add(middleware: ErrorMiddleware(metrics: service.metrics))
        if let key = options.apiKey { router.add(middleware: AuthMiddleware(key: key)) }
        let maxBody = options.maxBodyBytes

        @Sendable func json(_ data: Data) -> Response {
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        @Sendable func body(_ request: Request) async throws -> Data {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody { throw APIError.bodyTooLarge(maxBody) }
            do {
                var buffer = try await request.body.collect(upTo: maxBody)
                return buffer.readData(length: buffer.readableBytes) ?? Data()
            } catch is NIOTooManyBytesError {
                throw APIError.bodyTooLarge(maxBody)
            }
        }
        for prefix in ["/v1", ""] {
            router.get("\(prefix)/models") { _, _ in json(service.models()) }
            router.post("\(prefix)/completions") { request, context in
                try await service.completions(try await body(request), channel: context.channel)
            }
            router.post("\(prefix)/chat/completions") { request, context in
                try await service.chatCompletions(try await body(request), channel: context.channel)
            }
        }
        router.get("/lora-adapters") { _, _ in json(service.loraAdapters()) }
        // llama.cpp's native routes answer errors in llama.cpp's shape
        @Sendable func llama(_ handle: () async throws -> Response) async -> Response {
            do {
                return try await handle()
            } catch let e as APIError {
                service.metrics.error(e.code)
                return e.llamaResponse()
            } catch {
                return APIError.internalError("\(error)").llamaResponse()
            }
        }
        router.post("/completion") { request, context in
            await llama { try await service.llamaCompletion(try await body(request), channel: context.channel) }
        }
        router.post("/tokenize") { request, _ in await llama { json(try await service.llamaTokenize(try await body(request))) } }
        router.post("/detokenize") { request, _ in await llama { json(try await service.llamaDetokenize(try await body(request))) } }
        router.get("/props") { request, _ in await llama { json(try await service.llamaProps(model: request.uri.queryParameters["model"].map(String.init))) } }
        router.get("/health") { _, _ in json(service.health()) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: service.metricsText())))
        }
        return router
    }

    /// The application on `options.host:port` (port 0: any free one). `onListening` gets the
    /// port once the socket is bound.
    public func application(logger: Logger? = nil, onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let watch = service.watch
        var log = logger ?? Logger(label: "yanyi-serve")
        if logger == nil { log.logLevel = .warning }
        return Application(
            router: router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [ClientGoneHandler(watch: watch)])),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "yanyi"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: log)
    }
}

// MARK: - Middleware

/// Every error as OpenAI-style JSON (Hummingbird's own too: an unknown route, a bad method),
/// and every answer counted in the metrics.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let metrics: ServeMetrics

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        let route = { context.endpointPath ?? "unmatched" }
        do {
            let response = try await next(request, context)
            metrics.request(route: route(), status: response.status.code)
            return response
        } catch {
            let e = Self.apiError(error, request)
            metrics.request(route: route(), status: e.status.code)
            metrics.error(e.code)
            return e.response()
        }
    }

    static func apiError(_ error: any Error, _ request: Request) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as HTTPError where e.status == .notFound: return .notFound(request.method.rawValue, request.uri.path)
        case let e as HTTPError where e.status == .methodNotAllowed:
            return APIError(e.status, "\(request.method.rawValue) is not allowed on \(request.uri.path).", type: "invalid_request_error",
                            code: "method_not_allowed")
        case let e as any HTTPResponseError:
            return APIError(e.status, (error as? HTTPError)?.body ?? "\(e.status.reasonPhrase)", type: e.status.code >= 500 ? "server_error" : "invalid_request_error")
        default:
            return .internalError("\(error)")
        }
    }
}

extension APIError {
    func response() -> Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}

/// `Authorization: Bearer KEY` on every route but /health; a wrong or missing key is a 401.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let key: String

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        let given = request.headers[.authorization].flatMap { h -> String? in
            let parts = h.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]).trimmingCharacters(in: .whitespaces) : nil
        }
        guard let given, Self.same(given, key) else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    /// Compares in time that does not depend on where the strings differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}

// MARK: - Clients that leave

/// Which connections have lost their client, and what to do when one does: a request's jobs
/// register here and are cancelled the moment the client closes its side or the connection
/// drops, without waiting for the next write to fail. Only connections whose pipeline holds a
/// `ClientGoneHandler` are watched (the router test framework's channels are not).
final class ConnectionWatch: @unchecked Sendable {
    private enum State {
        case open([Int: @Sendable () -> Void])
        case gone
    }
    private let lock = NSLock()
    private var states: [ObjectIdentifier: State] = [:]
    private var nextToken = 0

    func opened(_ id: ObjectIdentifier) { lock.withLock { states[id] = .open([:]) } }

    /// Calls `body` once when the client of `channel` goes (at once if it has gone). Returns a
    /// token for `remove`; nil when nothing is to be removed.
    func onClose(_ channel: any Channel, _ body: @escaping @Sendable () -> Void) -> Int? {
        let id = ObjectIdentifier(channel)
        lock.lock()
        switch states[id] {
        case .open(var list)?:
            nextToken += 1
            list[nextToken] = body
            states[id] = .open(list)
            lock.unlock()
            return nextToken
        case .gone?:
            lock.unlock()
            body()
            return nil
        case nil:
            lock.unlock()
            return nil
        }
    }

    func remove(_ channel: any Channel, _ token: Int) {
        lock.withLock {
            let id = ObjectIdentifier(channel)
            if case .open(var list)? = states[id] {
                list[token] = nil
                states[id] = .open(list)
            }
        }
    }

    /// The client of `id` is gone: runs its callbacks. `forget` (the connection closed) drops its entry.
    func gone(_ id: ObjectIdentifier, forget: Bool) {
        let list = lock.withLock { () -> [Int: @Sendable () -> Void] in
            let old = states[id]
            states[id] = forget ? nil : .gone
            if case .open(let l)? = old { return l }
            return [:]
        }
        for body in list.values { body() }
    }
}

/// In each connection's pipeline: reports the client closing its side (half-closure is on in
/// Hummingbird, so the connection itself stays open) and the connection dropping.
final class ClientGoneHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let watch: ConnectionWatch

    init(watch: ConnectionWatch) { self.watch = watch }

    func handlerAdded(context: ChannelHandlerContext) { watch.opened(ObjectIdentifier(context.channel)) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed? = event as? ChannelEvent { watch.gone(ObjectIdentifier(context.channel), forget: false) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.gone(ObjectIdentifier(context.channel), forget: true)
        context.fireChannelInactive()
    }
}
