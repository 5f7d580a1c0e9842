import Engine

/// Fits a prompt into the model's context on top of `max_history`: the prompt's tokens plus
/// the reply's `maxNewTokens` never exceed `contextLength` (2048 for ChatGLM-6B). History units
/// go oldest first; the preamble and the new input always stay. When even no history leaves
/// too little room, the reply's allowance shrinks; when the prompt alone fills the context,
/// fitting fails.
public struct PromptBudget: Sendable, Equatable {
    public var contextLength: Int
    public var maxNewTokens: Int

    public init(contextLength: Int, maxNewTokens: Int) {
        self.contextLength = contextLength
        self.maxNewTokens = maxNewTokens
    }

    /// A rendered prompt and what was left out to make it fit.
    public struct Fitted: Sendable, Equatable {
        public var prompt: Prompt
        public var tokenIDs: [Int32]
        /// History that went into the prompt, oldest first.
        public var kept: [Utterance]
        /// History left out by `max_history` (the seed's own rule), oldest first.
        public var droppedByLimit: [Utterance]
        /// History left out to fit the context, oldest first (what the UI shows as dropped).
        public var droppedForBudget: [Utterance]
        /// New tokens the reply may use (less than asked when the prompt alone is long).
        public var maxNewTokens: Int

        public var dropped: [Utterance] { droppedByLimit + droppedForBudget }
    }

    /// `maxHistory` counts the template's units (nil: the template's default; a negative value
    /// keeps everything).
    public func fit(_ template: any PromptTemplate, history: [Utterance], input: String,
                    maxHistory: Int?, tokenizer: any Tokenizer) throws(ChatError) -> Fitted {
        let units = template.units(history)
        let limit = maxHistory ?? template.defaultMaxHistory
        let start = limit.map { $0 < 0 ? 0 : max(0, units.count - $0) } ?? 0
        let byLimit = units[..<start].flatMap { $0 }
        let allowed = contextLength - maxNewTokens

        func render(_ drop: Int) throws(ChatError) -> (Prompt, [Int32]) {
            let prompt = try template.render(history: units[drop...].flatMap { $0 }, input: input)
            return (prompt, prompt.tokenIDs(tokenizer))
        }
        // Token counts are taken on the whole rendered prompt (tokenizing a concatenation is not
        // the sum of its parts). Binary search for a drop count that fits while keeping one more
        // unit would not: prompts shrink as units go, so this is the fewest dropped.
        var drop = start
        var best = try render(start)
        if best.1.count > allowed {
            var lo = start, hi = units.count   // fits(lo) false; hi unknown
            let last = try render(hi)
            if last.1.count > allowed {
                drop = hi
                best = last
            } else {
                best = last
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2
                    let r = try render(mid)
                    if r.1.count <= allowed { hi = mid; best = r } else { lo = mid }
                }
                drop = hi
            }
        }
        var room = maxNewTokens
        if best.1.count > allowed {
            room = contextLength - best.1.count
            guard room >= 1 else {
                throw ChatError("", "the prompt alone is \(best.1.count) tokens; the model's context is \(contextLength)")
            }
        }
        return Fitted(prompt: best.0, tokenIDs: best.1, kept: units[drop...].flatMap { $0 }, droppedByLimit: byLimit,
                      droppedForBudget: units[start..<drop].flatMap { $0 }, maxNewTokens: room)
    }
}
