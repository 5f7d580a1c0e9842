import Foundation

/// One stage of the sampling chain: rewrites the scores [vocab] for the next token of `ids` (the
/// whole sequence so far, prompt included — transformers' `input_ids`). Each stage copies the
/// semantics of one transformers 4.30 LogitsProcessor / LogitsWarper (min-p: 4.39's
/// MinPLogitsWarper). They read what they need from `ids`, so a beam's chain needs no state of its own.
/// Removed tokens get -infinity (transformers' filter_value).
public protocol LogitTransform: Sendable {
    func apply(_ scores: inout [Float], ids: [Int32])
}

// MARK: - Processors (greedy, sampling and beams)

/// RepetitionPenaltyLogitsProcessor: every id already in the sequence (prompt included) has its
/// score divided by `penalty` when positive, multiplied when negative.
public struct RepetitionPenalty: LogitTransform {
    public var penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        var seen = Set<Int32>(minimumCapacity: ids.count)
        for id in ids where seen.insert(id).inserted && Int(id) < scores.count {
            let s = scores[Int(id)]
            scores[Int(id)] = s < 0 ? s * penalty : s / penalty
        }
    }
}

/// NoRepeatNGramLogitsProcessor: a token that would complete an n-gram already present anywhere in
/// the sequence is banned.
public struct NoRepeatNGram: LogitTransform {
    public var size: Int
    public init(size: Int) { self.size = size }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        let n = ids.count
        guard size > 0, n + 1 >= size else { return }
        let prefix = ids[(n - size + 1)...]          // the last size-1 tokens
        for start in 0...(n - size) where ids[start..<(start + size - 1)].elementsEqual(prefix) {
            let banned = Int(ids[start + size - 1])
            if banned < scores.count { scores[banned] = -.infinity }
        }
    }
}

/// Yanyi's guard for small models (`max_repeat_run`, no transformers counterpart): among the
/// generated tokens, no unit of 1…`maxPeriod` tokens repeats more than `maxRun` times in a row
/// (`何何何何`, `吾不吾不吾不吾不`). Only the token that would complete one more repetition is
/// banned, so text moves on instead of looping. Off (absent) unless a persona or the user asks.
public struct RunGuard: LogitTransform {
    public var maxRun: Int
    public var maxPeriod: Int
    public var start: Int               // the prompt length: runs are counted in the reply only

    public init(maxRun: Int, maxPeriod: Int = 4, start: Int) {
        self.maxRun = maxRun
        self.maxPeriod = maxPeriod
        self.start = start
    }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        guard maxRun > 0 else { return }
        let generated = ids.count - start
        for period in 1...max(1, maxPeriod) {
            // The next token completes repetition maxRun + 1 when the last period·(maxRun+1) − 1
            // tokens repeat with this period; the token it would have to be is ids[count − period].
            let span = period * (maxRun + 1) - 1
            guard generated >= span, span >= period else { continue }
            let tail = ids.count - span
            var periodic = true
            for i in tail..<(ids.count - period) where ids[i] != ids[i + period] { periodic = false; break }
            let banned = Int(ids[ids.count - period])
            if periodic && banned < scores.count { scores[banned] = -.infinity }
        }
    }
}

/// MinLengthLogitsProcessor (`min_length`, prompt included) and MinNewTokensLengthLogitsProcessor
/// (`min_new_tokens`): EOS ids are suppressed until the sequence is long enough.
public struct SuppressEOSUntil: LogitTransform {
    public var length: Int              // total sequence length at which EOS becomes allowed
    public var eos: [Int32]
    public init(length: Int, eos: [Int32]) {
        self.length = length
        self.eos = eos
    }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        guard ids.count < length else { return }
        for e in eos where Int(e) < scores.count { scores[Int(e)] = -.infinity }
    }
}

/// SuppressTokensAtBeginLogitsProcessor: `tokens` are banned for the first generated token only.
public struct SuppressAtBegin: LogitTransform {
    public var tokens: [Int32]
    public var beginIndex: Int          // the prompt length
    public init(tokens: [Int32], beginIndex: Int) {
        self.tokens = tokens
        self.beginIndex = beginIndex
    }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        guard ids.count == beginIndex else { return }
        for t in tokens where Int(t) < scores.count { scores[Int(t)] = -.infinity }
    }
}

// MARK: - Warpers (sampling only)

/// TemperatureLogitsWarper: scores / temperature.
public struct Temperature: LogitTransform {
    public var value: Float
    public init(_ value: Float) { self.value = value }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        for i in scores.indices { scores[i] /= value }
    }
}

/// TopKLogitsWarper: scores below the k-th largest are removed (ties with it are kept).
public struct TopK: LogitTransform {
    public var k: Int
    public init(_ k: Int, minTokensToKeep: Int = 1) { self.k = max(k, minTokensToKeep) }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        let k = min(self.k, scores.count)
        guard k > 0, k < scores.count else { return }
        let kth = Self.kthLargest(scores, k)
        for i in scores.indices where scores[i] < kth { scores[i] = -.infinity }
    }

    /// The k-th largest value: a min-heap of the k largest seen so far.
    static func kthLargest(_ x: [Float], _ k: Int) -> Float {
        var heap = Array(x[0..<k])
        func down(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < k && heap[l] < heap[m] { m = l }
                if r < k && heap[r] < heap[m] { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { down(i) }
        for v in x[k...] where v > heap[0] {
            heap[0] = v
            down(0)
        }
        return heap[0]
    }
}

/// TopPLogitsWarper: sort ascending, softmax, cumulative sum; tokens whose cumulative probability
/// is ≤ 1 − top_p are removed, but never the `minTokensToKeep` largest.
public struct TopP: LogitTransform {
    public var p: Float
    public var minTokensToKeep: Int
    public init(_ p: Float, minTokensToKeep: Int = 1) {
        self.p = p
        self.minTokensToKeep = minTokensToKeep
    }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        // Tokens already at -inf have probability 0 and stay removed: sort only the others.
        var order = scores.indices.filter { scores[$0] > -.infinity }
        guard !order.isEmpty else { return }
        order.sort { scores[$0] < scores[$1] }
        let probs = Softmax.probabilities(order.map { scores[$0] })
        let threshold = 1 - Double(p)
        let keepFrom = order.count - min(minTokensToKeep, order.count)  // sorted positions ≥ this are kept
        var cum = 0.0
        for (j, i) in order.enumerated() {
            cum += probs[j]
            if cum <= threshold && j < keepFrom { scores[i] = -.infinity }
        }
    }
}

/// Min-p (transformers 4.39 MinPLogitsWarper, llama.cpp's min_p): tokens whose probability is below
/// min_p × the largest probability are removed, but never the `minTokensToKeep` largest.
public struct MinP: LogitTransform {
    public var p: Float
    public var minTokensToKeep: Int
    public init(_ p: Float, minTokensToKeep: Int = 1) {
        self.p = p
        self.minTokensToKeep = minTokensToKeep
    }

    public func apply(_ scores: inout [Float], ids: [Int32]) {
        let probs = Softmax.probabilities(scores)
        guard let top = probs.max() else { return }
        let cut = Double(p) * top
        var keep = Set<Int>()
        if minTokensToKeep > 1 {
            keep = Set(scores.indices.sorted { scores[$0] > scores[$1] }.prefix(minTokensToKeep))
        } else if let best = scores.indices.max(by: { scores[$0] < scores[$1] }) {
            keep.insert(best)
        }
        for i in scores.indices where probs[i] < cut && !keep.contains(i) { scores[i] = -.infinity }
    }
}

// MARK: - Softmax

public enum Softmax {
    /// exp(x − max) / Σ, in Double; -inf entries get 0.
    public static func probabilities(_ x: [Float]) -> [Double] {
        guard let m = x.max(), m > -.infinity else { return [Double](repeating: 0, count: x.count) }
        var out = x.map { Foundation.exp(Double($0 - m)) }
        let sum = out.reduce(0, +)
        for i in out.indices { out[i] /= sum }
        return out
    }

    /// log_softmax as torch computes it for fp32 rows: x − max − log Σ exp(x − max).
    public static func logProbabilities(_ x: [Float]) -> [Float] {
        guard let m = x.max(), m > -.infinity else { return x }
        var sum = 0.0
        for v in x { sum += Foundation.exp(Double(v - m)) }
        let lse = Float(Foundation.log(sum))
        return x.map { ($0 - m) - lse }
    }
}
