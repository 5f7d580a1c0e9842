import Foundation
import Testing
@testable import Engine

/// Session forks and the beam caches: copies hold the same keys/values, a beam continuing from
/// another copies only the generated positions, and beam search runs for 1–8 beams.
@Suite struct BeamSessionTests {
    static let prompt: [Int32] = Array(GenerationStreamTests.prompt.prefix(16))

    @Test(arguments: [Precision.f32, .int8]) func forkContinuesLikeTheOriginal(precision: Precision) throws {
        let folder = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/chatglm-trained/safetensors").path)
        let lm = try ModelRegistry.load(folder, precision: precision, pool: ThreadPool(threads: 1))
        let glmPrompt = try GenerationReferenceTests.fixture("chatglm").prompts[0].ids
        let a = lm.makeSession(capacity: 64)
        _ = try lm.forward(glmPrompt, session: a, logits: .last)
        let b = a.fork(capacity: glmPrompt.count + 4)
        let c = a.branch(capacity: glmPrompt.count + 4)      // reads a's prompt positions in place
        #expect(b.tokens == a.tokens && b.capacity == glmPrompt.count + 4)
        #expect(c.tokens == a.tokens && c.cache.sharedCount == glmPrompt.count && c.cache.byteSize == b.cache.byteSize / (glmPrompt.count + 4) * 4)
        let la = try lm.forward([7, 8], session: a, logits: .all)
        let lb = try lm.forward([7, 8], session: b, logits: .all)
        let lc = try lm.forward([7, 8], session: c, logits: .all)
        #expect(la == lb)
        #expect(lc == la)
        #expect(c.cache.sharedCount == glmPrompt.count)
    }

    @Test func continueCopiesOnlyGeneratedPositions() throws {
        let (_, lm) = try GenerationReferenceTests.open("llama")
        let root = lm.makeSession(capacity: 40)
        _ = try lm.forward(Self.prompt, session: root, logits: .last)
        let p = Self.prompt.count
        let a = root.fork(), b = root.fork()
        _ = try lm.forward([10, 11, 12], session: a, logits: .last)
        _ = try lm.forward([20], session: b, logits: .last)
        // poison a's prompt positions: continue(from:sharing:) must not read them
        let c = a.cache
        let nan = [Float](repeating: .nan, count: c.kvDim)
        for l in 0..<c.layers { for pos in 0..<p { c.store(layer: l, pos: pos, key: nan, value: nan, count: c.kvDim) } }
        b.continue(from: a, sharing: p)
        #expect(b.tokens == a.tokens)
        for l in 0..<c.layers {
            for pos in 0..<p { #expect(!b.cache.row(layer: l, pos: pos).key.contains { $0.isNaN }) }
            for pos in p..<(p + 3) {
                #expect(b.cache.row(layer: l, pos: pos).key == c.row(layer: l, pos: pos).key)
                #expect(b.cache.row(layer: l, pos: pos).value == c.row(layer: l, pos: pos).value)
            }
        }
        let want = try lm.forward(Self.prompt + [10, 11, 12, 13], session: lm.makeSession(capacity: 40), logits: .last)
        let got = try lm.forward([13], session: b, logits: .last)
        #expect(ForwardReferenceTests.maxAbsDiff(got[...], want[...]) <= 1e-4)
    }

    /// The prompt's keys/values are held once, by root: the beams' bytes are beams × the generated
    /// positions, the same for a 4-token and a 24-token prompt, and stay so through steps and
    /// reorders (no beam takes its own copy of the prompt).
    @Test(arguments: [Precision.f32, .int8]) func beamsHoldThePromptOnce(precision: Precision) throws {
        let folder = try ModelFolder.open(ForwardReferenceTests.fixtures.appendingPathComponent("models/llama-trained/safetensors").path)
        let lm = try ModelRegistry.load(folder, precision: precision, pool: ThreadPool(threads: 1))
        let new = 6
        var held: [Int] = []
        for p in [4, 24] {
            let prompt = (0..<p).map { Int32(5 + $0 % 40) }
            let root = lm.makeSession(capacity: 64)
            _ = try lm.forward(prompt, session: root, logits: .last)
            let perPosition = root.cache.byteSize / root.capacity
            let beams = BeamSessions(root: root, beams: 4, capacity: p + new)
            #expect(beams.beamBytes == 4 * new * perPosition, "prompt \(p)")
            for step in 0..<3 {
                for b in 0..<4 { _ = try lm.forward([Int32(30 + b + step)], session: beams[b], logits: .last) }
                beams.reorder(parents: [1, 1, 3, 0])
            }
            #expect((0..<4).allSatisfy { beams[$0].cache.sharedCount == p && beams[$0].cache.shared === root.cache })
            #expect(beams.beamBytes == 4 * new * perPosition, "prompt \(p) after 3 steps")
            #expect(root.tokens == prompt)
            held.append(beams.beamBytes)
        }
        #expect(held[0] == held[1])
    }

    @Test func reorderGivesEveryBeamItsParentsSequence() throws {
        let (_, lm) = try GenerationReferenceTests.open("llama")
        let root = lm.makeSession(capacity: 40)
        _ = try lm.forward(Self.prompt, session: root, logits: .last)
        let beams = BeamSessions(root: root, beams: 4, capacity: Self.prompt.count + 8)
        for b in 0..<4 { _ = try lm.forward([Int32(30 + b), Int32(40 + b)], session: beams[b], logits: .last) }
        let before = (0..<4).map { beams[$0].tokens }
        let objects = (0..<4).map { ObjectIdentifier(beams[$0]) }
        beams.reorder(parents: [2, 2, 0, 3])          // beam 1 lost its children
        #expect((0..<4).map { beams[$0].tokens } == [before[2], before[2], before[0], before[3]])
        #expect(Set((0..<4).map { ObjectIdentifier(beams[$0]) }) == Set(objects))
        // each continues as a fresh run of its sequence would
        for b in 0..<4 {
            let seq = beams[b].tokens + [50]
            let got = try lm.forward([50], session: beams[b], logits: .last)
            let want = try lm.forward(seq, session: lm.makeSession(capacity: 40), logits: .last)
            #expect(ForwardReferenceTests.maxAbsDiff(got[...], want[...]) <= 1e-4, "beam \(b)")
        }
        beams.finish()
        #expect(root.tokens == Self.prompt)
    }

    /// 1–8 beams, search and sampling, with n-best: sequences sorted by score, the session left
    /// holding the prompt, nothing crashes.
    @Test func oneToEightBeams() throws {
        let (folder, lm) = try GenerationReferenceTests.open("baichuan")
        let prompt = try GenerationReferenceTests.fixture("baichuan").prompts[3].ids   // stops on ， 。 </s>
        for beams in 1...8 {
            for sample in [false, true] {
                var s = GenerationSettings()
                s.numBeams = beams
                s.numReturnSequences = beams
                s.doSample = sample
                s.seed = 1
                s.maxNewTokens = 12
                s.eos = [2]
                let session = lm.makeSession(capacity: prompt.count + 12)
                let (_, r) = try GenerationStreamTests.collect(
                    TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: prompt, settings: s, session: session))
                if beams == 1 {
                    #expect(r.sequences.isEmpty)
                } else {
                    #expect(r.sequences.count == beams, "\(beams) beams sample=\(sample)")
                    #expect(zip(r.sequences, r.sequences.dropFirst()).allSatisfy { $0.score >= $1.score })
                    #expect(r.tokens == r.sequences[0].tokens)
                    #expect(session.tokens == prompt)
                    #expect(r.stats.beamSteps >= 1)
                }
            }
        }
    }

    @Test func beamHypothesesFollowTransformers() {
        var h = BeamHypotheses(numBeams: 2, lengthPenalty: 1, earlyStopping: .heuristic, maxLength: 10)
        h.add([1, 2], sumLogprobs: -2, eos: 3)          // score -1
        h.add([1, 2, 3, 4], sumLogprobs: -2, eos: 3)    // -0.5
        h.add([1, 2, 3, 4], sumLogprobs: -8, eos: 3)    // -2: worse than the worst, not added
        #expect(h.best.map(\.score) == [-0.5, -1])
        h.add([1, 2, 3, 4], sumLogprobs: -2, eos: 5)    // -0.5 again: the -1 goes
        #expect(h.best.map(\.score) == [-0.5, -0.5] && h.best[0].eos == 5)   // equal scores: the later first
        #expect(h.worstScore == -0.5)
        #expect(h.isDone(bestSumLogprobs: -3, curLen: 5))          // -0.6 cannot beat -0.5
        #expect(!h.isDone(bestSumLogprobs: -2, curLen: 5))         // -0.4 can
        let never = BeamHypotheses(numBeams: 1, lengthPenalty: 2, earlyStopping: .never, maxLength: 10)
        var n = never
        n.add([1, 2], sumLogprobs: -4, eos: 3)                      // -1
        #expect(!n.isDone(bestSumLogprobs: -90, curLen: 3))         // -90/100 = -0.9 could still win
        #expect(n.isDone(bestSumLogprobs: -110, curLen: 3))
        var yes = BeamHypotheses(numBeams: 1, lengthPenalty: 2, earlyStopping: .yes, maxLength: 10)
        yes.add([1], sumLogprobs: -100, eos: 3)
        #expect(yes.isDone(bestSumLogprobs: 0, curLen: 2))
    }
}
