/// The plainest decoding: feed the prompt, then always take the most likely token, until a stop
/// id or the token limit. The engine's reference checks and the bench's decode loop use it;
/// everything else (sampling, penalties, beams, streaming, stop strings) is TokenGenerator.
public struct GreedyDecoder {
    public let model: any LanguageModel
    public var stopIDs: Set<Int32>

    public init(model: any LanguageModel, stopIDs: Set<Int32>) {
        self.model = model
        self.stopIDs = stopIDs
    }

    /// Index of the largest logit (first one on ties, as torch.argmax).
    public static func argmax(_ x: ArraySlice<Float>) -> Int32 {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return Int32(best - x.startIndex)
    }

    /// Runs `prompt` then up to `maxNewTokens` greedy tokens; `onToken` sees each new id (return
    /// false to stop). Returns the new ids (a stop id included, as HF generate keeps it).
    @discardableResult
    public func run(prompt: [Int32], maxNewTokens: Int, session: ModelSession,
                    onToken: (Int32) -> Bool = { _ in true }) throws(ModelError) -> [Int32] {
        var logits = try model.forward(prompt, session: session, logits: .last)
        var out: [Int32] = []
        while out.count < maxNewTokens {
            let next = Self.argmax(logits[...])
            out.append(next)
            if !onToken(next) || stopIDs.contains(next) { break }
            if out.count == maxNewTokens { break }
            logits = try model.forward([next], session: session, logits: .last)
        }
        return out
    }
}
