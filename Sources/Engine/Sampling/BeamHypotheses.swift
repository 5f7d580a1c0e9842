import Foundation

/// transformers 4.30 BeamHypotheses: the `numBeams` best finished sequences of a beam search, and
/// whether a running beam could still beat them. Lengths count the prompt (decoder-only models
/// pass the whole input_ids), scores are Σ log-probs / length^length_penalty.
public struct BeamHypotheses: Sendable {
    public struct Hypothesis: Sendable, Equatable {
        public var score: Double
        /// Prompt + generated ids, without the EOS that finished it.
        public var ids: [Int32]
        /// The EOS id that finished it; nil when it ran to the length limit.
        public var eos: Int32?
    }

    public let numBeams: Int
    public let lengthPenalty: Double
    public let earlyStopping: EarlyStopping
    public let maxLength: Int
    public private(set) var beams: [Hypothesis] = []
    public private(set) var worstScore = 1e9

    public init(numBeams: Int, lengthPenalty: Double, earlyStopping: EarlyStopping, maxLength: Int) {
        self.numBeams = numBeams
        self.lengthPenalty = lengthPenalty
        self.earlyStopping = earlyStopping
        self.maxLength = maxLength
    }

    public var count: Int { beams.count }

    public mutating func add(_ ids: [Int32], sumLogprobs: Double, eos: Int32?) {
        let score = sumLogprobs / pow(Double(ids.count), lengthPenalty)
        guard beams.count < numBeams || score > worstScore else { return }
        beams.append(Hypothesis(score: score, ids: ids, eos: eos))
        if beams.count > numBeams {
            // sorted((s, idx)): the lowest score goes, the lowest index among equal scores
            let sorted = beams.indices.sorted { (beams[$0].score, $0) < (beams[$1].score, $1) }
            worstScore = beams[sorted[1]].score
            beams.remove(at: sorted[0])
        } else {
            worstScore = min(score, worstScore)
        }
    }

    /// True when enough hypotheses are finished and (by the early-stopping rule) no running beam,
    /// the best of which has `bestSumLogprobs` at length `curLen`, can beat the worst of them.
    public func isDone(bestSumLogprobs: Double, curLen: Int) -> Bool {
        guard beams.count >= numBeams else { return false }
        switch earlyStopping {
        case .yes:
            return true
        case .heuristic:
            return worstScore >= bestSumLogprobs / pow(Double(curLen), lengthPenalty)
        case .never:
            let len = lengthPenalty > 0 ? maxLength : curLen
            return worstScore >= bestSumLogprobs / pow(Double(len), lengthPenalty)
        }
    }

    /// Best first. Python's stable sort by score then pop() from the end: among equal scores the
    /// one added last comes first.
    public var best: [Hypothesis] {
        Array(beams.enumerated().sorted { ($0.element.score, $0.offset) > ($1.element.score, $1.offset) }.map(\.element))
    }
}
