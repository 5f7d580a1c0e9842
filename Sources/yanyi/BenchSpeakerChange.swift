import Engine
import Foundation

/// What a change of speaker costs in a scene: two personas on one base with different adapter
/// sets take turns over one conversation. Each turn feeds what was said since (`said` tokens)
/// under the speaker's set, then the speaker replies (`reply` tokens, greedy, not timed). The
/// time to first token of a turn is what the user waits for; it is measured three ways on the
/// same token stream:
///   - change: the speaker alternates; the session restores the speaker's KV snapshot and re-runs
///     only what was said since it last spoke;
///   - same: one speaker throughout (no change at all: the floor);
///   - no snapshots: the speaker alternates with snapshots off (the whole history re-runs).
struct SpeakerChangeCost {
    var change: Double
    var same: Double
    var noSnapshots: Double
    /// Tokens restored from the snapshot and tokens run again, on the last measured change.
    var restored: Int
    var rerun: Int
    var turns: Int

    static func measure(_ lm: any LanguageModel, prompt: [Int32], a: [(adapter: LoRAAdapter, multiplier: Float)],
                        b: [(adapter: LoRAAdapter, multiplier: Float)], turns: Int = 6, said: Int = 24, reply: Int = 32,
                        vocab: Int32) throws -> SpeakerChangeCost {
        var rng = SplitMix64(seed: 7)
        let lines = (0..<turns).map { _ in (0..<said).map { _ in Int32(3 + Int(rng.next() % UInt64(max(Int(vocab) - 3, 1)))) } }
        let capacity = prompt.count + turns * (said + reply) + 1

        /// Seconds to first token of each turn; `sets(t)` is turn t's adapter set.
        func run(snapshots: Bool, _ sets: (Int) -> [(adapter: LoRAAdapter, multiplier: Float)]) throws -> (times: [Double], last: (Int, Int)?) {
            let s = lm.makeSession(capacity: capacity)
            if !snapshots { s.snapshotLimit = 0 }
            try lm.setAdapters(a)
            var logits = try lm.forward(prompt, session: s, logits: .last)
            var times: [Double] = []
            for t in 0..<turns {
                try lm.setAdapters(sets(t))
                let t0 = Measure.now()
                logits = try lm.forward(lines[t], session: s, logits: .last)
                _ = GreedyDecoder.argmax(logits[...])
                times.append(Measure.now() - t0)
                for _ in 0..<reply { logits = try lm.forward([GreedyDecoder.argmax(logits[...])], session: s, logits: .last) }
            }
            return (times, s.lastSwitch)
        }
        // Turn 0 is b's first word (no snapshot of b yet: the history runs once under it); the
        // changes measured are turns 1…: each speaker has spoken before.
        let alternate: (Int) -> [(adapter: LoRAAdapter, multiplier: Float)] = { $0 % 2 == 0 ? b : a }
        let change = try run(snapshots: true, alternate)
        let same = try run(snapshots: true) { _ in a }
        let none = try run(snapshots: false, alternate)
        try lm.setAdapters(a)
        return SpeakerChangeCost(change: median(Array(change.times.dropFirst())), same: median(Array(same.times.dropFirst())),
                                 noSnapshots: median(Array(none.times.dropFirst())), restored: change.last?.0 ?? 0,
                                 rerun: change.last?.1 ?? 0, turns: turns - 1)
    }
}
