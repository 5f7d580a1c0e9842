import Foundation
import Testing
@testable import Engine

/// Each sampling transform against transformers' own LogitsProcessor/LogitsWarper classes
/// (tools/fixtures/make_generate_fixtures.py: one LLaMA logits row, the probabilities transformers
/// leaves after each transform): the chain's probabilities must equal them, and draws through the
/// whole chain + picker must follow them (chi-square).
@Suite struct SamplingTests {
    struct Fixture: Decodable {
        struct Params: Decodable {
            var temperature: Float?
            var top_k: Int?
            var top_p: Float?
            var min_p: Float?
            var repetition_penalty: Float?
            var min_tokens_to_keep: Int?
        }
        struct Case: Decodable {
            var name: String
            var params: Params
            var tensor: String
            var support: Int
        }
        var history: [Int32]
        var cases: [Case]
    }

    static func load() throws -> (Fixture, SafeTensorsFile) {
        let fx = ForwardReferenceTests.fixtures
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fx.appendingPathComponent("expected/generate-sampling.json")))
        return (f, try SafeTensorsFile(path: fx.appendingPathComponent("expected/generate-sampling.safetensors").path))
    }

    /// The chain `generate` would build for these parameters (top_k off unless given: the fixture
    /// applies only the named transforms; min_tokens_to_keep 2 is what beams give).
    static func chain(_ p: Fixture.Params, promptLength: Int) -> SamplerChain {
        var s = GenerationSettings()
        s.doSample = true
        s.topK = p.top_k ?? 0
        s.temperature = p.temperature ?? 1
        s.topP = p.top_p ?? 1
        s.minP = p.min_p ?? 0
        s.repetitionPenalty = p.repetition_penalty ?? 1
        s.numBeams = p.min_tokens_to_keep == 2 ? 2 : 1
        return SamplerChain(s, promptLength: promptLength)
    }

    /// Upper 0.1% point of chi-square with `df` degrees of freedom (Wilson–Hilferty; z = 3.0902).
    static func critical(df: Int) -> Double {
        let d = Double(df), z = 3.0902
        return d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
    }

    /// Pearson's statistic of `counts` against `probs`: tokens expected ≥ 5 times are bins of their
    /// own, the rest one pooled bin (folded into the smallest bin when it expects < 5).
    /// Returns (statistic, degrees of freedom).
    static func chiSquare(_ counts: [Int], _ probs: [Double]) -> (Double, Int) {
        let n = Double(counts.reduce(0, +))
        var bins: [(obs: Double, exp: Double)] = []
        var pooled = (obs: 0.0, exp: 0.0)
        for i in probs.indices {
            let e = probs[i] * n
            if e >= 5 { bins.append((Double(counts[i]), e)) } else { pooled.obs += Double(counts[i]); pooled.exp += e }
        }
        if pooled.exp >= 5 {
            bins.append(pooled)
        } else if let j = bins.indices.min(by: { bins[$0].exp < bins[$1].exp }) {
            bins[j].obs += pooled.obs
            bins[j].exp += pooled.exp
        }
        let x = bins.reduce(0.0) { $0 + ($1.obs - $1.exp) * ($1.obs - $1.exp) / $1.exp }
        return (x, bins.count - 1)
    }

    @Test func chainProbabilitiesEqualTransformers() throws {
        let (f, st) = try Self.load()
        let logits = try st.floats("logits")
        for c in f.cases {
            let want = try st.floats(c.tensor).map(Double.init)
            var scores = logits
            let chain = Self.chain(c.params, promptLength: f.history.count)
            chain.process(&scores, ids: f.history)
            chain.warp(&scores, ids: f.history)
            let got = Softmax.probabilities(scores)
            let d = zip(got, want).map { abs($0 - $1) }.max()!
            #expect(d <= 2e-6, "\(c.name): max |Δp| = \(d)")
            #expect(got.filter { $0 > 0 }.count == c.support, "\(c.name): support")
            #expect(zip(got, want).allSatisfy { ($0 > 0) == ($1 > 0) }, "\(c.name): same tokens kept")
        }
    }

    /// 4000 draws per transform through chain + picker (seeded): the chi-square statistic against
    /// transformers' probabilities stays below the 0.1% critical value, and against the
    /// untransformed softmax it exceeds it (the test can tell the transforms apart).
    @Test func drawsFollowTransformersProbabilities() throws {
        let (f, st) = try Self.load()
        let logits = try st.floats("logits")
        let plain = try st.floats("plain").map(Double.init)
        let n = 4000
        for (k, c) in f.cases.enumerated() {
            let want = try st.floats(c.tensor).map(Double.init)
            let chain = Self.chain(c.params, promptLength: f.history.count)
            var rng = SamplerRNG(seed: 20_240_521 + UInt64(k))
            var counts = [Int](repeating: 0, count: logits.count)
            for _ in 0..<n {
                counts[Int(chain.pick(logits, ids: f.history, sample: true, rng: &rng))] += 1
            }
            #expect(counts.indices.allSatisfy { want[$0] > 0 || counts[$0] == 0 }, "\(c.name): drew a removed token")
            let (x, df) = Self.chiSquare(counts, want)
            let crit = Self.critical(df: df)
            print("sampling \(c.name): chi2 \(String(format: "%.1f", x)) df \(df) (0.1% critical \(String(format: "%.1f", crit)))")
            #expect(x < crit, "\(c.name): chi2 \(x) ≥ \(crit) with \(df) df")
            if c.name != "plain" {
                let (xp, dfp) = Self.chiSquare(counts, plain)
                #expect(xp > Self.critical(df: dfp), "\(c.name): draws indistinguishable from the plain softmax")
            }
        }
    }

    /// torch.multinomial(replacement=False) semantics: P(first i, then j) = p_i · p_j / (1 − p_i).
    @Test func drawsWithoutReplacementFollowSequentialProbabilities() {
        let p: [Double] = [0.5, 0.3, 0.15, 0.05]
        let scores = p.map { Float(Foundation.log($0)) }
        var rng = SamplerRNG(seed: 99)
        var counts = [Int](repeating: 0, count: 16)
        let n = 20000
        for _ in 0..<n {
            let d = TokenPicker.sampleWithoutReplacement(scores, count: 2, rng: &rng)!
            #expect(d[0] != d[1])
            counts[d[0] * 4 + d[1]] += 1
        }
        var want = [Double](repeating: 0, count: 16)
        for i in 0..<4 { for j in 0..<4 where i != j { want[i * 4 + j] = p[i] * p[j] / (1 - p[i]) } }
        let (x, df) = Self.chiSquare(counts, want)
        #expect(x < Self.critical(df: df), "chi2 \(x) with \(df) df")
        #expect(TokenPicker.sampleWithoutReplacement([0, -.infinity, 0], count: 3, rng: &rng) == nil)
    }

    @Test func seededRngRepeatsAndSeedsDiffer() {
        var a = SamplerRNG(seed: 5), b = SamplerRNG(seed: 5), c = SamplerRNG(seed: 6)
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
        var u = SamplerRNG(seed: 1)
        let mean = (0..<10000).map { _ in u.uniform() }.reduce(0, +) / 10000
        #expect(abs(mean - 0.5) < 0.01)
    }

    // MARK: - Processors by hand (the fixtures cover them through generate too)

    @Test func repetitionPenaltyDividesPositiveMultipliesNegative() {
        var s: [Float] = [2, -2, 4, 1]
        RepetitionPenalty(2).apply(&s, ids: [0, 1, 1])
        #expect(s == [1, -4, 4, 1])
    }

    @Test func noRepeatNGramBansCompletions() {
        var s = [Float](repeating: 0, count: 6)
        // 2-grams seen: (1,2) (2,3) (3,1) (1,2); last token 2 -> 3 banned (from "2 3")
        NoRepeatNGram(size: 2).apply(&s, ids: [1, 2, 3, 1, 2])
        #expect(s == [0, 0, 0, -.infinity, 0, 0])
        var t = [Float](repeating: 0, count: 6)
        NoRepeatNGram(size: 3).apply(&t, ids: [1, 2, 3, 1, 2])   // "1 2" was followed by 3
        #expect(t[3] == -.infinity && t.filter { $0 == -.infinity }.count == 1)
    }

    /// The run guard bans only the token that would repeat a unit of 1–4 tokens a (maxRun+1)-th
    /// time in a row, counting the reply only; checked against a brute-force reading of the rule.
    @Test func runGuardBansTheNextRepetitionOnly() {
        func banned(_ ids: [Int32], run: Int, start: Int = 0) -> Set<Int> {
            var s = [Float](repeating: 0, count: 8)
            RunGuard(maxRun: run, start: start).apply(&s, ids: ids)
            return Set(s.indices.filter { s[$0] == -.infinity })
        }
        #expect(banned([5, 5, 5], run: 3) == [5])                     // 何何何 -> not a fourth 何
        #expect(banned([5, 5], run: 3) == [])
        #expect(banned([5, 5, 5], run: 3, start: 1) == [], "the prompt's tokens do not count")
        #expect(banned([1, 2, 1, 2, 1, 2, 1], run: 3) == [2])         // 吾不 ×3 + 吾 -> not 不
        #expect(banned([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2], run: 3) == [3])
        #expect(banned([1, 2, 1, 2, 1], run: 3) == [])
        #expect(banned([4, 4, 4, 4, 4], run: 1) == [4])
        // Brute force: for every short sequence over 3 symbols, a token is banned exactly when
        // appending it ends the reply with some unit (period 1–4) repeated run+1 times.
        func ends(_ s: [Int32], run: Int) -> Bool {
            (1...4).contains { p in
                let span = p * (run + 1)
                guard s.count >= span else { return false }
                let t = Array(s.suffix(span))
                return (0..<(span - p)).allSatisfy { t[$0] == t[$0 + p] }
            }
        }
        var rng = SplitMix64(seed: 3)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 12)
            let ids = (0..<n).map { _ in Int32(rng.next() % 3) }
            let run = 1 + Int(rng.next() % 3)
            let expect = Set((0..<3).filter { t in ends(ids + [Int32(t)], run: run) })
            #expect(banned(ids, run: run).subtracting([3, 4, 5, 6, 7]) == expect, "\(ids) run \(run)")
        }
    }

    @Test func eosSuppressionAndBeginSuppression() {
        var s = [Float](repeating: 0, count: 5)
        SuppressEOSUntil(length: 4, eos: [2, 3]).apply(&s, ids: [0, 1, 4])
        #expect(s == [0, 0, -.infinity, -.infinity, 0])
        var t = [Float](repeating: 0, count: 5)
        SuppressEOSUntil(length: 3, eos: [2]).apply(&t, ids: [0, 1, 4])
        #expect(t == [0, 0, 0, 0, 0])
        var settings = GenerationSettings()
        settings.beginSuppressTokens = [1]
        settings.minNewTokens = 2
        settings.eos = [4]
        let chain = SamplerChain(settings, promptLength: 3)
        var u = [Float](repeating: 0, count: 5)
        chain.process(&u, ids: [0, 0, 0])
        #expect(u == [0, -.infinity, 0, 0, -.infinity])
        var w = [Float](repeating: 0, count: 5)
        chain.process(&w, ids: [0, 0, 0, 2])          // one new token: EOS still suppressed, 1 allowed again
        #expect(w == [0, 0, 0, 0, -.infinity])
    }

    @Test func topKKeepsTiesAndTopPKeepsMinimum() {
        var s: [Float] = [1, 3, 3, 2, 0]
        TopK(2).apply(&s, ids: [])
        #expect(s == [-.infinity, 3, 3, -.infinity, -.infinity])
        var t: [Float] = [0, 10, 0, 0]
        TopP(0.1, minTokensToKeep: 2).apply(&t, ids: [])
        #expect(t.filter { $0 > -.infinity }.count == 2)
    }
}
