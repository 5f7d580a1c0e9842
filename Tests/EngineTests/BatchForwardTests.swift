import Foundation
import Testing
@testable import Engine

/// One forward over several sequences (`forwardBatch`) against each sequence run alone through
/// `forward` (the reference path: ForwardReferenceTests, AdapterTests and GenerationReferenceTests
/// check it against transformers / PEFT).
/// Decode steps (every sequence one token) must match bit for bit in both precisions, whatever the
/// sequences' lengths, positions and adapter sets: each row's products are those of a forward of
/// its own (`matvecRows` is `matvec` per row; adapter deltas run per sequence). A step where some
/// sequences run several tokens matches bit for bit with int8 weights (the int8 GEMM's rows do not
/// depend on the other rows) and within 1e-5 with fp32 ones (OpenBLAS's sgemm may block the rows
/// of a larger product differently: one rounding per term, logits of magnitude ≤ ~20).
@Suite struct BatchForwardTests {
    /// (trained fixture model, adapters that fit it)
    static let models: [(String, [String])] = [
        ("llama", ["llama-qv", "llama-all"]), ("baichuan", ["baichuan-wpack"]), ("chatglm", ["chatglm-qkv"]),
    ]
    static let cases = models.flatMap { m in [Precision.f32, .int8].map { (m.0, m.1, $0) } }

    static func load(_ kind: String, _ p: Precision) throws -> any LanguageModel {
        try ModelRegistry.load(ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/\(kind)-trained/safetensors").path),
                               precision: p, pool: ThreadPool(threads: 2))
    }

    /// Prompts of different lengths (ChatGLM's end in [gMASK] <sop>, as its 2-D positions need).
    static func prompts(_ lm: any LanguageModel, lengths: [Int]) -> [[Int32]] {
        lengths.enumerated().map { i, n in
            var p = (0..<n).map { Int32(5 + (37 * ($0 + 1) + 101 * i) % 900) }
            if let glm = lm as? ChatGLMModel { p += [glm.gmaskID, glm.sopID] }
            return p
        }
    }

    /// Adapter sets for the sequences: none, each adapter alone, two at once (or one at another
    /// multiplier), and the first again (so one group holds two sequences).
    static func adapterSets(_ names: [String]) throws -> [[(adapter: LoRAAdapter, multiplier: Float)]] {
        let a = try names.map(AdapterTests.adapter)
        let pair = a.count > 1 ? [(a[0], Float(0.7)), (a[1], Float(1))] : [(a[0], Float(0.5))]
        return [[], [(a[0], 1)], pair, [(a[0], 1)]] + a.dropFirst().map { [($0, Float(1.5))] }
    }

    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    static func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    /// Sequences at different positions under different adapter sets (one under the model's active
    /// set, `adapters: nil`) decode three steps together: each step's logits equal those of the same
    /// sequence decoded alone, bit for bit.
    @Test(arguments: cases) func decodeStepsEqualEachSequenceAlone(kind: String, adapters: [String], precision: Precision) throws {
        let lm = try Self.load(kind, precision)
        var sets = try Self.adapterSets(adapters)
        let active = sets[1]
        sets.append(active)                                        // the sequence that runs under lm.lora
        let prompts = Self.prompts(lm, lengths: [3, 9, 5, 12, 4, 7].prefix(sets.count).map { $0 })
        var alone: [ModelSession] = [], batched: [ModelSession] = []
        for (i, p) in prompts.enumerated() {
            try lm.setAdapters(sets[i])
            let s = lm.makeSession(capacity: 32)
            _ = try lm.forward(p, session: s, logits: .last)
            alone.append(s)
            batched.append(s.fork())
        }
        let stacks = try sets.indices.map { i in i == sets.count - 1 ? nil : try lm.makeAdapterStack(sets[i]) }
        for step in 0..<3 {
            let tokens = prompts.indices.map { Int32(11 + 97 * $0 + 13 * step) }
            var want: [[Float]] = []
            for i in prompts.indices {
                try lm.setAdapters(sets[i])
                want.append(try lm.forward([tokens[i]], session: alone[i], logits: .last))
            }
            try lm.setAdapters(active)
            let got = try lm.forwardBatch(prompts.indices.map { BatchItem(tokens: [tokens[$0]], session: batched[$0], adapters: stacks[$0]) })
            #expect(got.count == prompts.count)
            for i in prompts.indices {
                #expect(Self.bits(got[i]) == Self.bits(want[i]),
                        "\(kind) \(precision) step \(step) sequence \(i): max |Δ| \(Self.maxDiff(got[i], want[i]))")
                #expect(batched[i].tokens == alone[i].tokens)
            }
        }
    }

    /// One step holding sequences that decode and sequences that prefill (different lengths,
    /// different adapter sets), then a decode step of all of them.
    @Test(arguments: cases) func mixedStepEqualsEachSequenceAlone(kind: String, adapters: [String], precision: Precision) throws {
        let lm = try Self.load(kind, precision)
        let sets = try Self.adapterSets(adapters)
        let prompts = Self.prompts(lm, lengths: [6, 4, 10, 3])
        let tolerance: Float = precision == .int8 ? 0 : 1e-5
        // Sequences 0 and 1 already hold their prompts and decode a token; 2 and 3 prefill theirs.
        var alone: [ModelSession] = [], batched: [ModelSession] = [], first: [[Int32]] = []
        for (i, p) in prompts.enumerated() {
            let s = lm.makeSession(capacity: 32)
            if i < 2 {
                try lm.setAdapters(sets[i])
                _ = try lm.forward(p, session: s, logits: .last)
                first.append([Int32(40 + i)])
            } else {
                first.append(p)
            }
            alone.append(s)
            batched.append(s.fork())
        }
        let stacks = try sets.prefix(4).map { try lm.makeAdapterStack($0) }
        for step in 0..<2 {
            let tokens = step == 0 ? first : prompts.indices.map { [Int32(300 + $0)] }
            var want: [[Float]] = []
            for i in prompts.indices {
                try lm.setAdapters(sets[i])
                want.append(try lm.forward(tokens[i], session: alone[i], logits: .last))
            }
            try lm.setAdapters([])
            let got = try lm.forwardBatch(prompts.indices.map { BatchItem(tokens: tokens[$0], session: batched[$0], adapters: stacks[$0]) })
            for i in prompts.indices {
                let d = Self.maxDiff(got[i], want[i])
                #expect(tolerance == 0 ? Self.bits(got[i]) == Self.bits(want[i]) : d <= tolerance,
                        "\(kind) \(precision) step \(step) sequence \(i): max |Δ| \(d)")
            }
        }
    }

    /// The projection that decode batches lean on: `matvecRows` is `matvec` of each row, bit for bit.
    @Test func matvecRowsIsMatvecOfEachRow() {
        var rng = SplitMix64(seed: 5)
        let rows = 70, cols = 192, n = 5
        let w = (0..<(rows * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 250 }
        let pool = ThreadPool(threads: 2)
        let i8 = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols) }
        let f32 = w.withUnsafeBufferPointer { F32Matrix($0, rows: rows, cols: cols) }
        typealias Product = (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
        let cases: [(String, (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void, Product)] = [
            ("int8/int8", { i8.matvecRows($0, n: $1, $2, pool: pool, activations: .int8) }, { i8.matvec($0, $1, pool: pool, activations: .int8) }),
            ("int8/f32", { i8.matvecRows($0, n: $1, $2, pool: pool, activations: .f32) }, { i8.matvec($0, $1, pool: pool, activations: .f32) }),
            ("f32", { f32.matvecRows($0, n: $1, $2, pool: pool) }, { f32.matvec($0, $1, pool: pool) }),
        ]
        for (name, batched, single) in cases {
            var y = [Float](repeating: .nan, count: n * rows)
            y.withUnsafeMutableBufferPointer { batched(x, n, $0.baseAddress!) }
            for t in 0..<n {
                var one = [Float](repeating: .nan, count: rows)
                x.withUnsafeBufferPointer { xp in one.withUnsafeMutableBufferPointer { single(xp.baseAddress! + t * cols, $0.baseAddress!) } }
                #expect(Self.bits(Array(y[(t * rows)..<((t + 1) * rows)])) == Self.bits(one), "\(name) row \(t)")
            }
        }
    }

    /// Input a single forward refuses is refused before anything runs, naming the sequence; a
    /// session may not appear twice.
    @Test func refusalsNameTheSequenceAndRunNothing() throws {
        let lm = try Self.load("llama", .f32)
        let a = lm.makeSession(capacity: 8), b = lm.makeSession(capacity: 8)
        _ = try lm.forward([5, 6], session: a, logits: .last)
        for (items, bad, text) in [([BatchItem(tokens: [7], session: a), BatchItem(tokens: [99_999], session: b)], 1, "outside the vocabulary"),
                                   ([BatchItem(tokens: [7], session: a), BatchItem(tokens: [8], session: a)], 1, "already in the batch"),
                                   ([BatchItem(tokens: [7], session: b), BatchItem(tokens: Array(repeating: 9, count: 7), session: a)], 1, "exceeds the context"),
                                   ([BatchItem(tokens: [], session: b), BatchItem(tokens: [1], session: a)], 0, "no tokens")] {
            do {
                _ = try lm.forwardBatch(items)
                Issue.record("expected a refusal: \(text)")
            } catch {
                #expect(error.sequence == bad && error.description.contains("sequence \(bad) of the batch") && error.description.contains(text),
                        "\(error.description)")
            }
            #expect(a.count == 2 && b.count == 0)
        }
        #expect(try lm.forwardBatch([]).isEmpty)
    }

    /// A sequence the architecture refuses (ChatGLM: <sop> without [gMASK]) is refused before any
    /// other session is touched, even one that would switch adapter sets (and so drop its cached
    /// keys/values to run them again).
    @Test func positionsAreCheckedBeforeAnySessionChanges() throws {
        let lm = try Self.load("chatglm", .f32)
        let glm = try #require(lm as? ChatGLMModel)
        let a = lm.makeSession(capacity: 16)
        _ = try lm.forward([5, 6, glm.gmaskID, glm.sopID], session: a, logits: .last)
        let other = try lm.makeAdapterStack([(try AdapterTests.adapter("chatglm-qkv"), 1)])
        do {
            _ = try lm.forwardBatch([BatchItem(tokens: [7], session: a, adapters: other),
                                     BatchItem(tokens: [5, glm.sopID], session: lm.makeSession(capacity: 8))])
            Issue.record("expected a refusal")
        } catch {
            #expect(error.sequence == 1 && error.description.contains("[gMASK]"), "\(error.description)")
        }
        #expect(a.count == 4 && a.adapterSignature == lm.lora.signature)
    }
}
