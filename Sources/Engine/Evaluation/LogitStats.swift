import Foundation

/// Comparing two runs of the same text (reference vs int8), as llama-perplexity --kl-divergence
/// reports it: per position the KL divergence of the test distribution from the reference, and
/// whether both pick the same top token; plus the perplexity of each on the true next tokens.
public struct LogitStats: Sendable {
    public private(set) var kl: [Double] = []          // per position KL(ref ‖ test), nats
    public private(set) var sameTop = 0
    public private(set) var positions = 0
    /// Positions where the reference's top token leads the second by at least `decisiveMargin`
    /// in probability, and how many of them the test agrees on. A near-tie flips on rounding
    /// alone (the order of a sum differs between CPUs' kernels); these must not.
    public private(set) var decisive = 0
    public private(set) var sameTopDecisive = 0
    public static let decisiveMargin = 0.05
    public private(set) var nllRef = 0.0                // Σ -log p_ref(next)
    public private(set) var nllTest = 0.0
    public private(set) var scored = 0                  // positions with a known next token
    /// Characters of the scored text (see EvalWindows.Window.scoredCharacters): nats per character compare
    /// models whose tokenizers cut the text differently.
    public private(set) var characters = 0

    public init() {}

    /// log-softmax in Double (the reference side of a KL must not lose small probabilities).
    static func logSoftmax(_ x: ArraySlice<Float>) -> [Double] {
        let m = Double(x.max() ?? 0)
        var s = 0.0
        for v in x { s += exp(Double(v) - m) }
        let lse = m + log(s)
        return x.map { Double($0) - lse }
    }

    /// One position: reference and test logits [vocab]; `next` the true next token if known.
    public mutating func add(reference: ArraySlice<Float>, test: ArraySlice<Float>, next: Int32?) {
        let lr = Self.logSoftmax(reference), lt = Self.logSoftmax(test)
        var d = 0.0
        for i in lr.indices { d += exp(lr[i]) * (lr[i] - lt[i]) }
        kl.append(max(d, 0))
        positions += 1
        let top = lr.indices.max(by: { lr[$0] < lr[$1] })
        let agree = top == lt.indices.max(by: { lt[$0] < lt[$1] })
        if agree { sameTop += 1 }
        if let top {
            var second = -Double.infinity
            for i in lr.indices where i != top { second = max(second, lr[i]) }
            if exp(lr[top]) - exp(second) >= Self.decisiveMargin {
                decisive += 1
                if agree { sameTopDecisive += 1 }
            }
        }
        if let next, Int(next) < lr.count {
            nllRef -= lr[Int(next)]
            nllTest -= lt[Int(next)]
            scored += 1
        }
    }

    /// Perplexity alone (no comparison): one position's logits and its true next token.
    public mutating func addPerplexity(_ logits: ArraySlice<Float>, next: Int32) {
        let l = Self.logSoftmax(logits)
        nllTest -= l[Int(next)]
        scored += 1
        positions += 1
    }

    public mutating func addCharacters(_ n: Int) { characters += n }

    public var natsPerCharacter: Double { characters == 0 ? .nan : nllTest / Double(characters) }

    public var meanKL: Double { kl.isEmpty ? 0 : kl.reduce(0, +) / Double(kl.count) }
    public var p99KL: Double {
        guard !kl.isEmpty else { return 0 }
        let s = kl.sorted()
        return s[min(s.count - 1, Int((Double(s.count) * 0.99).rounded(.up)) - 1)]
    }
    public var maxKL: Double { kl.max() ?? 0 }
    public var sameTopFraction: Double { positions == 0 ? 0 : Double(sameTop) / Double(positions) }
    /// Agreement where the reference is decisive (1 when no position is).
    public var sameTopDecisiveFraction: Double { decisive == 0 ? 1 : Double(sameTopDecisive) / Double(decisive) }
    public var perplexityRef: Double { scored == 0 ? .nan : exp(nllRef / Double(scored)) }
    public var perplexity: Double { scored == 0 ? .nan : exp(nllTest / Double(scored)) }
}
