import Chat
import Engine
import Foundation

// Logprobs as OpenAI's two endpoints write them, from what the engine logged (LogprobLog): the
// log-softmax of each step's logits after the processors (repetition penalty, …) and before the
// warpers (temperature, top-k, top-p, min-p); see `TokenLogprob`. In a stream each chunk carries
// the tokens logged since the previous chunk: the engine logs a token before handing on its
// text, so a chunk has the tokens behind its text and, when the engine is ahead of the reader,
// a few after it; every token is sent exactly once.

/// A logprob as JSON can carry it: −∞ (a banned token) as −9999, as OpenAI writes it.
func wireLogprob(_ x: Float) -> Double { x.isFinite ? Double(x) : -9999 }

/// What a request asks for: logprobs with `top` alternatives per token.
enum LogprobRequest {
    /// `/v1/completions`: `logprobs: N`; null or false: none. OpenAI allows 0–5; this takes
    /// 0–20 as vLLM does, since SillyTavern asks for 10.
    static func completions(_ f: RequestFields) throws(APIError) -> Int? {
        switch f.value("logprobs") {
        case nil, .null?, .bool(false)?: return nil
        default: return try f.int("logprobs", in: 0...20, "a whole number from 0 to 20 (alternatives per token)")
        }
    }

    /// `/v1/chat/completions`: `logprobs: true` and `top_logprobs: N` (0–20).
    static func chat(_ f: RequestFields) throws(APIError) -> Int? {
        let on = try f.bool("logprobs") ?? false
        let top = try f.int("top_logprobs", in: 0...20, "a whole number from 0 to 20")
        if top != nil && !on { throw APIError.invalid("'top_logprobs' needs 'logprobs': true.", param: "top_logprobs") }
        return on ? top ?? 0 : nil
    }

    /// Beams pick whole sequences, not one token from one distribution.
    static func check(_ top: Int?, _ s: SamplingRequest) throws(APIError) {
        if top != nil, let b = s.parameters.numBeams, b > 1 {
            throw APIError.unsupported("logprobs", "logprobs are not reported with beam search (num_beams > 1).")
        }
    }
}

/// `/v1/completions`' `choices[].logprobs`: parallel lists, `text_offset` counting characters
/// of the completion text before each token (continued across a stream's chunks).
struct CompletionLogprobs: Encodable, Sendable {
    var tokens: [String] = []
    var tokenLogprobs: [Double] = []
    var topLogprobs: [[String: Double]] = []
    var textOffset: [Int] = []

    enum CodingKeys: String, CodingKey {
        case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
    }

    /// `entries` from character `offset` of the completion on; advances `offset` past them.
    init(_ entries: [RenderedLogprob], offset: inout Int) {
        for e in entries {
            tokens.append(e.chosen.token)
            tokenLogprobs.append(wireLogprob(e.chosen.logprob))
            var top: [String: Double] = [:]
            for t in e.top where top[t.token] == nil { top[t.token] = wireLogprob(t.logprob) }   // most likely first wins a shared spelling
            topLogprobs.append(top)
            textOffset.append(offset)
            offset += String(decoding: e.chosen.bytes, as: UTF8.self).count
        }
    }
}

/// `/v1/chat/completions`' `choices[].logprobs`: `{content: [...], refusal: null}`.
struct ChatLogprobs: Encodable, Sendable {
    struct Entry: Encodable, Sendable {
        var token: String
        var logprob: Double
        var bytes: [UInt8]
        var topLogprobs: [Entry]?

        enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }

        init(_ p: PieceLogprob, top: [PieceLogprob]?) {
            token = p.token
            logprob = wireLogprob(p.logprob)
            bytes = p.bytes
            topLogprobs = top?.map { Entry($0, top: nil) }
        }
    }

    var content: [Entry]

    enum CodingKeys: String, CodingKey { case content, refusal }

    init(_ entries: [RenderedLogprob]) { content = entries.map { Entry($0.chosen, top: $0.top) } }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(content, forKey: .content)
        try c.encodeNil(forKey: .refusal)
    }
}
