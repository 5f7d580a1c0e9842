import Foundation

/// The last stage of the chain: picks token ids from processed scores.
public enum TokenPicker {
    /// Index of the largest score (the first on ties, as torch.argmax).
    public static func argmax(_ x: [Float]) -> Int32 {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return Int32(best)
    }

    /// One draw from softmax(scores) (torch.multinomial(softmax(scores), 1)); -inf scores are never drawn.
    public static func sample(_ scores: [Float], rng: inout SamplerRNG) -> Int32 {
        let p = Softmax.probabilities(scores)
        let u = rng.uniform()
        var cum = 0.0
        var last = 0
        for i in p.indices where p[i] > 0 {
            cum += p[i]
            last = i
            if u < cum { return Int32(i) }
        }
        return Int32(last)   // u landed in the rounding gap above the final cumulative sum
    }

    /// `count` distinct indices drawn from softmax(scores) without replacement, in draw order
    /// (torch.multinomial(probs, count, replacement=False)): each next index is drawn in
    /// proportion to the probabilities of those not yet drawn. Done as an exponential race — index
    /// i finishes at E_i / p_i with E_i ~ Exp(1); the first `count` to finish, in finishing order,
    /// have exactly that distribution. nil when fewer than `count` indices have probability > 0.
    public static func sampleWithoutReplacement(_ scores: [Float], count: Int, rng: inout SamplerRNG) -> [Int]? {
        let p = Softmax.probabilities(scores)
        var keys: [(key: Double, index: Int)] = []
        keys.reserveCapacity(p.count)
        for i in p.indices where p[i] > 0 {
            let e = -Foundation.log(1 - rng.uniform())     // Exp(1); 1 − u is in (0, 1]
            keys.append((e / p[i], i))
        }
        guard keys.count >= count else { return nil }
        keys.sort { $0.key < $1.key }
        return keys.prefix(count).map(\.index)
    }
}
