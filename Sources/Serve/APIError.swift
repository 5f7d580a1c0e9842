import Foundation
import Hummingbird

/// An error as OpenAI's API reports it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`. Every failure the server answers with is
/// one of these (unknown routes and oversized bodies included), so clients written for OpenAI
/// show the message.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible, HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, `rate_limit_error`, `server_error`.
    public var type: String
    /// The request field at fault (`temperature`, `messages[2].content`), if one is.
    public var param: String?
    /// A stable machine-readable name (`model_not_found`, `queue_full`, …).
    public var code: String?
    /// Seconds a client should wait before retrying (429 and 503).
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type)\(param.map { " (\($0))" } ?? ""): \(message)" }

    // MARK: - The kinds the server uses

    /// 400: a field has the wrong type or value, or asks for something not supported.
    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(.badRequest, message, type: "invalid_request_error", param: param, code: code)
    }

    /// 400 for a field the server understands but does not implement.
    public static func unsupported(_ param: String, _ message: String) -> APIError {
        APIError(.badRequest, message, type: "invalid_request_error", param: param, code: "unsupported_parameter")
    }

    public static func modelNotFound(_ id: String, known: [String]) -> APIError {
        let list = known.prefix(12).joined(separator: ", ") + (known.count > 12 ? ", … (GET /v1/models lists all)" : "")
        return APIError(.notFound, "The model '\(id)' does not exist here; models: \(list.isEmpty ? "none" : list)",
                        type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    public static let unauthorized = APIError(
        .unauthorized, "Incorrect API key provided. Send it as 'Authorization: Bearer KEY' (the key `yanyi serve --api-key` was given).",
        type: "invalid_request_error", code: "invalid_api_key")

    public static func notFound(_ method: String, _ path: String) -> APIError {
        APIError(.notFound, "No route \(method) \(path); routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions, GET /lora-adapters, POST /completion, POST /tokenize, POST /detokenize, GET /props, GET /health, GET /metrics",
                 type: "invalid_request_error", code: "unknown_url")
    }

    public static func bodyTooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, "The request body is larger than this server's limit of \(limit) bytes (yanyi serve --max-body-bytes).",
                 type: "invalid_request_error", code: "request_too_large")
    }

    public static func queueFull(_ waiting: Int, model: String) -> APIError {
        APIError(.tooManyRequests, "Too many requests are waiting for \(model) (\(waiting) queued; yanyi serve --max-queue); retry later.",
                 type: "rate_limit_error", code: "queue_full", retryAfter: 1)
    }

    public static func unavailable(_ message: String, code: String = "service_unavailable") -> APIError {
        APIError(.serviceUnavailable, message, type: "server_error", code: code, retryAfter: 5)
    }

    public static func internalError(_ message: String) -> APIError {
        APIError(.internalServerError, message, type: "server_error", code: "internal_error")
    }

    // MARK: - Wire form

    struct Body: Encodable {
        struct Inner: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)   // null, not absent, as OpenAI sends it
                try c.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        var error: Inner
    }

    /// `{"error": {…}}` as JSON bytes.
    public var json: Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(Body(error: .init(message: message, type: type, param: param, code: code)))) ?? Data()
    }

    public var headers: HTTPFields {
        var h: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { h[.retryAfter] = String(retryAfter) }
        return h
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}
