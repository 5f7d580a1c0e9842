import Foundation

/// One generated token's log-probability and the most likely tokens at its step.
///
/// The distribution is the log-softmax of the step's logits after the processors (repetition
/// penalty, no-repeat n-gram, the EOS suppressions) and before the sampling warpers
/// (temperature, top-k, top-p, min-p):
///
///     logprob(i) = s_i − log Σ_j exp(s_j)        s = process(logits)
///
/// With no processor active this is the raw model distribution, which is what vLLM (V1,
/// `logprobs_mode = raw_logprobs`) and llama.cpp's `n_probs` (`post_sampling_probs: false`)
/// report; a repetition penalty shows in it, a temperature does not. Processors set banned
/// tokens to −∞, so a logprob may be −∞.
public struct TokenLogprob: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float
    /// The `n` most likely ids at this step, most likely first (ties: lower id first); may
    /// or may not include `id`.
    public var top: [Alternative]

    public struct Alternative: Sendable, Equatable {
        public var id: Int32
        public var logprob: Float

        public init(id: Int32, logprob: Float) {
            self.id = id
            self.logprob = logprob
        }
    }

    public init(id: Int32, logprob: Float, top: [Alternative]) {
        self.id = id
        self.logprob = logprob
        self.top = top
    }

    /// `id`'s logprob and the `n` best alternatives under log-softmax(`scores`) (processed logits).
    public init(scores: [Float], chosen id: Int32, top n: Int) {
        let lse = Self.logSumExp(scores)
        self.id = id
        logprob = Float(Double(scores[Int(id)]) - lse)
        // n ≤ 20: a running sorted list beats sorting the vocabulary
        var best: [(Int, Float)] = []
        if n > 0 {
            best.reserveCapacity(n + 1)
            for (i, s) in scores.enumerated() where best.count < n || s > best[best.count - 1].1 {
                var at = best.count
                while at > 0 && s > best[at - 1].1 { at -= 1 }
                best.insert((i, s), at: at)
                if best.count > n { best.removeLast() }
            }
        }
        top = best.map { Alternative(id: Int32($0.0), logprob: Float(Double($0.1) - lse)) }
    }

    /// log Σ exp(x), in Double, shifted by the maximum (−∞ entries add nothing).
    public static func logSumExp(_ x: [Float]) -> Double {
        let m = Double(x.max() ?? 0)
        guard m.isFinite else { return m }
        var sum = 0.0
        for v in x { sum += exp(Double(v) - m) }
        return m + log(sum)
    }
}

extension Tokenizer {
    /// The bytes of one token's piece as it stands in text: SentencePiece's `▁` as a space, a
    /// byte-fallback piece (`<0xE4>`) as its byte, an added or special token as its text.
    public func pieceBytes(_ id: Int32) -> [UInt8] {
        guard let p = piece(id) else { return [] }
        let u = Array(p.utf8)
        // "<0xNN>"
        if u.count == 6, p.hasPrefix("<0x"), p.hasSuffix(">"), let b = UInt8(p.dropFirst(3).prefix(2), radix: 16) { return [b] }
        return Array(p.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
    }
}
