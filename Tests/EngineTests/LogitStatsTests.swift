import Foundation
import Testing
@testable import Engine

@Suite struct LogitStatsTests {
    /// KL(p ‖ q) for two 3-way distributions worked out by hand.
    @Test func klMatchesHandComputation() {
        let p: [Double] = [0.7, 0.2, 0.1], q: [Double] = [0.5, 0.3, 0.2]
        let want = zip(p, q).reduce(0.0) { $0 + $1.0 * log($1.0 / $1.1) }   // 0.08512…
        var s = LogitStats()
        s.add(reference: p.map { Float(log($0)) }[...], test: q.map { Float(log($0) + 3) }[...], next: 1)
        #expect(abs(s.meanKL - want) < 1e-6)
        #expect(s.sameTopFraction == 1)
        #expect(abs(s.perplexityRef - 1 / 0.2) < 1e-4)     // exp(-log p[1])
        #expect(abs(s.perplexity - 1 / 0.3) < 1e-4)
    }

    @Test func identicalLogitsHaveZeroKLAndFullAgreement() {
        var s = LogitStats()
        let l: [Float] = [1, 5, -2, 0.5]
        for _ in 0..<10 { s.add(reference: l[...], test: l[...], next: nil) }
        #expect(s.meanKL < 1e-12 && s.p99KL < 1e-12)
        #expect(s.sameTopFraction == 1)
        #expect(s.scored == 0)
    }

    @Test func disagreementAndP99() {
        var s = LogitStats()
        for i in 0..<100 {
            // Position 99 flips the top token; the others agree.
            let test: [Float] = i == 99 ? [0, 4] : [4, 0]
            s.add(reference: [4, 0][...], test: test[...], next: 0)
        }
        #expect(s.sameTopFraction == 0.99)
        #expect(s.p99KL == s.kl.sorted()[98])
        #expect(s.maxKL > 3.5)
    }

    @Test func greedyArgmaxTakesTheFirstOfTies() {
        #expect(GreedyDecoder.argmax([1, 3, 3, 2][...]) == 1)
        #expect(GreedyDecoder.argmax([7, 3, 3, 9][1...]) == 2)
    }
}
