import Foundation

/// Cutting a text into evaluation windows the way each architecture reads plain text.
public enum EvalWindows {
    public struct Window: Sendable {
        public var ids: [Int32]
        /// Positions before this are the window's lead-in (BOS, or ChatGLM's [gMASK] <sop>) and are not scored.
        public var scoredFrom: Int

        /// Characters (Unicode scalars) of the tokens this window scores, as the tokenizer decodes them.
        public func scoredCharacters(_ t: any Tokenizer) -> Int {
            guard scoredFrom + 1 < ids.count else { return 0 }
            return t.decode(Array(ids[(scoredFrom + 1)...]), skipSpecialTokens: true).unicodeScalars.count
        }
    }

    public static func make(folder: ModelFolder, text: String, ctx: Int, limit: Int = 0) -> [Window] {
        let t = folder.tokenizer
        let ids = t.encode(text, addSpecialTokens: false)
        // ChatGLM reads plain text as a reply: [gMASK] <sop> first, so every scored token is causal.
        // LLaMA/Baichuan: BOS first where the tokenizer adds one (llama-perplexity does the same).
        var lead: [Int32] = []
        if let glm = t as? ChatGLMTokenizer {
            lead = [glm.gmaskID, glm.sopID]
        } else if let sp = t as? SentencePieceTokenizer, sp.addBos, let bos = sp.specials.bos {
            lead = [bos]
        }
        let body = ctx - lead.count
        var out: [Window] = []
        var i = 0
        while i + body <= ids.count && (limit == 0 || out.count < limit) {
            out.append(Window(ids: lead + ids[i..<(i + body)], scoredFrom: max(lead.count - 1, 0)))
            i += body
        }
        return out
    }

    /// Perplexity and nats per character of `lm` over the windows (each its own session, all logits).
    public static func score(_ lm: any LanguageModel, windows: [Window], tokenizer: any Tokenizer) throws -> LogitStats {
        var stats = LogitStats()
        let v = lm.vocabSize
        for w in windows {
            let l = try lm.forward(w.ids, session: lm.makeSession(capacity: w.ids.count), logits: .all)
            for i in w.scoredFrom..<(w.ids.count - 1) {
                stats.addPerplexity(l[(i * v)..<((i + 1) * v)], next: w.ids[i + 1])
            }
            stats.addCharacters(w.scoredCharacters(tokenizer))
        }
        return stats
    }
}
