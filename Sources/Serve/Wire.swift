import Chat
import Engine
import Foundation

// The response bodies, field for field as OpenAI's API writes them (optional fields that OpenAI
// sends as null are encoded as null). Requests are read leniently (RequestFields.swift): unknown
// fields are ignored, so SillyTavern's and llama.cpp's extra keys pass.

struct Usage: Encodable, Sendable, Equatable {
    var promptTokens = 0
    var completionTokens = 0
    var totalTokens: Int { promptTokens + completionTokens }

    enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
    }
}

/// llama.cpp's `timings` (milliseconds), summed over the choices: what the engine measured.
struct Timings: Encodable, Sendable {
    var promptN = 0
    var promptMs = 0.0
    var predictedN = 0
    var predictedMs = 0.0
    /// Queue wait and prefill until the first token, of the first choice.
    var timeToFirstTokenMs = 0.0

    enum CodingKeys: String, CodingKey {
        case promptN = "prompt_n", promptMs = "prompt_ms", predictedN = "predicted_n", predictedMs = "predicted_ms"
        case predictedPerSecond = "predicted_per_second", timeToFirstTokenMs = "ttft_ms"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptN, forKey: .promptN)
        try c.encode((promptMs * 1000).rounded() / 1000, forKey: .promptMs)
        try c.encode(predictedN, forKey: .predictedN)
        try c.encode((predictedMs * 1000).rounded() / 1000, forKey: .predictedMs)
        // tokens after the first per second of decoding, as `yanyi bench` and GenerationStats count them
        let rate = predictedN > 1 && predictedMs > 0 ? Double(predictedN - 1) / (predictedMs / 1000) : 0
        try c.encode((rate * 100).rounded() / 100, forKey: .predictedPerSecond)
        try c.encode((timeToFirstTokenMs * 1000).rounded() / 1000, forKey: .timeToFirstTokenMs)
    }

    mutating func add(_ s: GenerationStats?) {
        guard let s else { return }
        promptN += s.promptTokens - s.reusedPromptTokens
        promptMs += s.prefillSeconds * 1000
        predictedN += s.generatedTokens
        predictedMs += s.decodeSeconds * 1000
    }
}

/// One choice of `/v1/completions`.
struct CompletionChoice: Encodable, Sendable {
    var index: Int
    var text: String
    var finishReason: String?
    /// Generated ids (`"return_tokens": true`, llama.cpp's name): for tests and token-exact clients.
    var tokens: [Int32]?
    var logprobs: CompletionLogprobs? = nil

    enum CodingKeys: String, CodingKey { case index, text, logprobs, finishReason = "finish_reason", tokens }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(text, forKey: .text)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
        try c.encodeIfPresent(tokens, forKey: .tokens)
    }
}

struct ChatMessageOut: Encodable, Sendable {
    var role: String?
    var content: String?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(role, forKey: .role)
        try c.encodeIfPresent(content, forKey: .content)
    }

    enum CodingKeys: String, CodingKey { case role, content }
}

/// One choice of `/v1/chat/completions`: `message` when whole, `delta` in a stream chunk.
struct ChatChoice: Encodable, Sendable {
    var index: Int
    var message: ChatMessageOut?
    var delta: ChatMessageOut?
    var finishReason: String?
    var tokens: [Int32]?
    var logprobs: ChatLogprobs? = nil

    enum CodingKeys: String, CodingKey { case index, message, delta, logprobs, finishReason = "finish_reason", tokens }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(delta, forKey: .delta)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
        try c.encodeIfPresent(tokens, forKey: .tokens)
    }
}

/// A whole response or one stream chunk of either endpoint.
struct CompletionBody<Choice: Encodable & Sendable>: Encodable, Sendable {
    var id: String
    /// `text_completion`, `chat.completion` or `chat.completion.chunk`.
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
    var timings: Timings?
    var systemFingerprint: String?

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, timings, systemFingerprint = "system_fingerprint" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try c.encodeIfPresent(usage, forKey: .usage)
        try c.encodeIfPresent(timings, forKey: .timings)
        try c.encodeIfPresent(systemFingerprint, forKey: .systemFingerprint)
    }
}

/// One entry of `GET /v1/models` (OpenAI's four fields, then what Yanyi adds).
struct ModelEntry: Encodable, Sendable {
    var id: String
    var object = "model"
    var created: Int
    var ownedBy = "yanyi"
    /// `base`, `adapter` or `persona`.
    var kind: String
    /// Adapters: the index llama.cpp's `"lora": [{"id": …}]` takes.
    var index: Int?
    /// Adapters: the base they were trained on (adapter_config.json), as written there.
    var baseModel: String?
    /// Personas: the base and adapters they run on, the template, and whether the folders are there.
    var base: String?
    var adapters: [String]?
    var template: String?
    var name: String?
    var available: Bool?

    enum CodingKeys: String, CodingKey {
        case id, object, created, ownedBy = "owned_by", kind, index, baseModel = "base_model", base, adapters, template, name, available
    }
}

struct ModelList: Encodable, Sendable {
    var object = "list"
    var data: [ModelEntry]
}

/// llama.cpp's `GET /lora-adapters` entry.
struct LoraEntry: Encodable, Sendable {
    var id: Int
    var path: String
    var scale: Float
}

/// Compact JSON, keys sorted (the same bytes for the same answer: logs and tests can compare them).
func encodeJSON<T: Encodable>(_ value: T) -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? e.encode(value)) ?? Data("{}".utf8)
}

/// OpenAI's finish_reason for how a generation ended.
func finishReason(_ r: FinishReason?) -> String? {
    switch r {
    case .eos?, .stopString?: "stop"
    case .maxNewTokens?, .contextFull?: "length"
    case .cancelled?: "cancelled"
    case nil: nil
    }
}
