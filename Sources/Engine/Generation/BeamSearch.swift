/// transformers 4.30 `beam_search` / `beam_sample` with BeamSearchScorer, batch size 1, for 1–8
/// beams. Each step: every beam's log-softmax scores go through the chain's processors and get the
/// beam's running score added; beam search keeps the top 2·beams candidates, beam sampling draws
/// 2·beams without replacement from the warped scores of all beams together; candidates ending in
/// EOS become finished hypotheses (only those ranked within the first `beams`), the rest fill the
/// next beams. Each beam has its own session (BeamSessions) reading the one cached copy of the
/// prompt; a step is one batched forward of every beam's token (`forwardBatch`).
struct BeamSearch {
    let model: any LanguageModel
    let settings: GenerationSettings
    let chain: SamplerChain

    struct Outcome {
        /// Best first, at most numReturnSequences.
        var hypotheses: [BeamHypotheses.Hypothesis]
        var cancelled: Bool
        var steps: Int
    }

    private struct Candidate {
        var score: Float
        var token: Int32
        var beam: Int
    }

    /// Runs from `root`, which holds the prompt, and `logits`, the prompt's last-position logits.
    /// `capacity`: positions of each beam's session (prompt + new tokens). `root` is not run: it
    /// holds the prompt throughout. `cancelled` is asked before every step.
    func run(root: ModelSession, logits first: [Float], capacity: Int, rng: inout SamplerRNG,
             cancelled: () -> Bool) throws(GenerationError) -> Outcome {
        let k = settings.numBeams
        let prompt = root.tokens
        let maxLength = min(prompt.count + settings.maxNewTokens, capacity)
        let eos = Set(settings.eos)
        let sessions = BeamSessions(root: root, beams: k, capacity: capacity)
        defer { sessions.finish() }
        var hyps = BeamHypotheses(numBeams: k, lengthPenalty: settings.lengthPenalty,
                                  earlyStopping: settings.earlyStopping, maxLength: maxLength)
        var ids = [[Int32]](repeating: prompt, count: k)
        // beam_search starts the other beams at -1e9 so the first step picks from beam 0 alone;
        // beam_sample starts them all at 0.
        var beamScores = [Float](repeating: 0, count: k)
        if !settings.doSample { for b in 1..<k { beamScores[b] = -1e9 } }
        var logits = [[Float]](repeating: first, count: k)
        var done = false
        var steps = 0

        while true {
            // scores of every beam: log_softmax -> processors -> + beam score (-> warpers)
            var rows: [[Float]] = []
            for b in 0..<k {
                var s = Softmax.logProbabilities(logits[b])
                chain.process(&s, ids: ids[b])
                for i in s.indices { s[i] += beamScores[b] }
                if settings.doSample { chain.warp(&s, ids: ids[b]) }
                rows.append(s)
            }
            let cands = try settings.doSample ? drawCandidates(rows, count: 2 * k, rng: &rng)
                                              : topCandidates(rows, count: 2 * k)

            // BeamSearchScorer.process
            let curLen = ids[0].count + 1
            var next: [Candidate] = []
            for (rank, c) in cands.enumerated() {
                if eos.contains(c.token) {
                    if rank >= k { continue }
                    hyps.add(ids[c.beam], sumLogprobs: Double(c.score), eos: c.token)
                } else {
                    next.append(c)
                }
                if next.count == k { break }
            }
            guard next.count == k else {
                throw GenerationError("beam search: fewer than \(k) of the \(2 * k) candidates are not EOS")
            }
            done = done || hyps.isDone(bestSumLogprobs: Double(cands[0].score), curLen: curLen)

            ids = next.map { ids[$0.beam] + [$0.token] }
            beamScores = next.map(\.score)
            sessions.reorder(parents: next.map(\.beam))
            steps += 1
            if done || ids[0].count >= maxLength { break }
            if cancelled() {
                return Outcome(hypotheses: finalize(hyps, ids: ids, scores: beamScores, done: false),
                               cancelled: true, steps: steps)
            }
            // Every beam's next token in one forward (the weights read once per step, not per beam);
            // each beam's logits are those of a forward of its own (Batch.swift).
            do {
                logits = try model.forwardBatch((0..<k).map { BatchItem(tokens: [ids[$0].last!], session: sessions[$0]) })
            } catch {
                throw GenerationError(error.description)
            }
        }
        return Outcome(hypotheses: finalize(hyps, ids: ids, scores: beamScores, done: done),
                       cancelled: false, steps: steps)
    }

    /// BeamSearchScorer.finalize: unless done, every running beam joins the hypotheses; the best
    /// numReturnSequences come back.
    private func finalize(_ h: BeamHypotheses, ids: [[Int32]], scores: [Float], done: Bool) -> [BeamHypotheses.Hypothesis] {
        var hyps = h
        if !done {
            for b in ids.indices { hyps.add(ids[b], sumLogprobs: Double(scores[b]), eos: nil) }
        }
        return Array(hyps.best.prefix(settings.numReturnSequences))
    }

    /// torch.topk over all beams' scores flattened [beam][vocab], largest first; equal scores in
    /// flat-index order. Each beam's own top `count` suffice.
    private func topCandidates(_ rows: [[Float]], count: Int) -> [Candidate] {
        var all: [Candidate] = []
        for (b, row) in rows.enumerated() {
            let n = min(count, row.count)
            let kth = TopK.kthLargest(row, n)
            var mine: [Candidate] = []
            for (t, v) in row.enumerated() where v >= kth { mine.append(Candidate(score: v, token: Int32(t), beam: b)) }
            all += mine
        }
        all.sort { ($0.score, -$0.beam, -Int($0.token)) > ($1.score, -$1.beam, -Int($1.token)) }
        return Array(all.prefix(count))
    }

    /// beam_sample: softmax over all beams' warped scores together, `count` draws without
    /// replacement, sorted by their (warped) scores, largest first.
    private func drawCandidates(_ rows: [[Float]], count: Int, rng: inout SamplerRNG) throws(GenerationError) -> [Candidate] {
        let v = rows[0].count
        let flat = rows.flatMap { $0 }
        guard let picks = TokenPicker.sampleWithoutReplacement(flat, count: count, rng: &rng) else {
            throw GenerationError("beam sampling: fewer than \(count) tokens left to draw after top-k/top-p")
        }
        return picks.map { Candidate(score: flat[$0], token: Int32($0 % v), beam: $0 / v) }
            .sorted { $0.score > $1.score }
    }
}
