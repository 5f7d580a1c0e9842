import Foundation

/// Draft tokens for speculative decoding from a smaller model that shares the tokenizer
/// (transformers' `assistant_model`, llama.cpp's `--model-draft`): its greedy continuation of the
/// sequence so far. The big model then runs the last pick and the drafts in one forward (its weights
/// read once) and still picks every token from its own logits, so the drafts change how many
/// forwards run, never what comes out.
///
/// Holds its own session, kept between calls: what the draft model has already read of the sequence
/// (everything up to the first draft the big model did not pick) is not run again.
public final class DraftModel: @unchecked Sendable {
    public let model: any LanguageModel
    /// Most tokens drafted at once (1–`PromptLookup.maxTokens`).
    public let maxDraft: Int
    /// Drafting stops after a token the draft model gives less than this probability (llama.cpp's
    /// `--draft-p-min`): an unlikely draft is seldom picked, and its forward is spent for nothing.
    public let minProbability: Float
    private var session: ModelSession?
    /// The draft model's forwards and the seconds they took, all calls together.
    public private(set) var forwards = 0
    public private(set) var seconds = 0.0

    public init(model: any LanguageModel, maxDraft: Int, minProbability: Float = 0) throws(GenerationError) {
        guard (1...PromptLookup.maxTokens).contains(maxDraft) else {
            throw GenerationError("draft tokens must be 1–\(PromptLookup.maxTokens) (is \(maxDraft))")
        }
        guard (0...1).contains(minProbability) else {
            throw GenerationError("the draft's minimum probability must be in 0–1 (is \(minProbability))")
        }
        self.model = model
        self.maxDraft = maxDraft
        self.minProbability = minProbability
    }

    /// Why `draft` cannot draft for `target` (nil: it can): the two must give every id the same piece,
    /// or a draft would stand for another token than the one the big model is asked about.
    public static func mismatch(draft: any Tokenizer, target: any Tokenizer) -> String? {
        if draft.kind != target.kind { return "its tokenizer is \(draft.kind.rawValue), the model's \(target.kind.rawValue)" }
        if draft.vocabSize != target.vocabSize {
            return "its tokenizer has \(draft.vocabSize) ids, the model's \(target.vocabSize)"
        }
        for id in 0..<Int32(target.vocabSize) where draft.piece(id) != target.piece(id) {
            return "id \(id) is \(draft.piece(id).map { "'\($0)'" } ?? "nothing") in its tokenizer, \(target.piece(id).map { "'\($0)'" } ?? "nothing") in the model's"
        }
        return nil
    }

    /// Up to `min(maxDraft, limit)` tokens the draft model picks greedily after `ids`, each below
    /// `vocab` (the big model's logits); fewer where it grows unsure or its context ends.
    public func draft(_ ids: [Int32], limit: Int, vocab: Int) throws(GenerationError) -> [Int32] {
        let want = min(maxDraft, limit)
        guard want > 0, !ids.isEmpty, ids.count + want <= model.contextLength else { return [] }
        let s = sessionHolding(ids.count + want)
        // what it read before and still agrees with the sequence stays; at least one token runs for logits
        s.truncate(to: min(commonPrefix(s.tokens, ids), ids.count - 1))
        let t0 = Measure.now()
        defer { seconds += Measure.now() - t0 }
        var out: [Int32] = []
        var feed = Array(ids[s.count...])
        while out.count < want {
            let logits: [Float]
            do {
                forwards += 1
                logits = try model.forward(feed, session: s, logits: .last)
            } catch {
                // a draft that cannot run is no draft: start its session over next time
                s.reset()
                return out
            }
            let (best, p) = Self.top(logits)
            guard best < vocab, p >= minProbability else { break }
            out.append(Int32(best))
            feed = [Int32(best)]
        }
        return out
    }

    /// The draft's session, made (or remade bigger, its cache starting over) to hold `n` tokens.
    private func sessionHolding(_ n: Int) -> ModelSession {
        if let s = session, s.capacity >= n { return s }
        let cap = min(model.contextLength, max(n, 2 * (session?.capacity ?? 0), 512))
        let s = model.makeSession(capacity: cap)
        session = s
        return s
    }

    /// The most likely id and its softmax probability.
    static func top(_ logits: [Float]) -> (Int, Float) {
        let best = Int(GreedyDecoder.argmax(logits[...]))
        let m = logits[best]
        var sum: Float = 0
        for v in logits { sum += expf(v - m) }
        return (best, 1 / sum)
    }
}
