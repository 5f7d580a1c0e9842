/// The forward pass around the layers, written once for every architecture, so that an
/// architecture file holds only its own math (as llama2.c's `forward` does):
///   check the input -> align the session with the active adapter set -> embed the tokens
///   -> forwardLayers (the architecture's) -> final norm -> LM head -> logits
/// An architecture lists its weights and writes `forwardLayers` and `finalNorm` (and, where a
/// token's position is more than its index, `positions`); the sizes and `makeSession` follow
/// from its shape and the weights it lists.
protocol DecoderModel: LanguageModel {
    associatedtype Shape: DecoderShape
    /// Where each token of a sequence sits, as the layers' rotary embedding and mask need it.
    /// None for a causal model whose position is the cache index (LLaMA).
    associatedtype Positions = Void

    var shape: Shape { get }
    var embed: EmbeddingTable { get }        // [vocab, dim]
    var head: Projection { get }             // lm_head [vocab, dim]
    var pool: ThreadPool { get }
    /// Every projection of every layer (not the head): what adapters attach to.
    var projections: [Projection] { get }
    /// Every float vector beside them: the norms' weights and biases, the final norm's included.
    var vectors: [[Float]] { get }

    /// Positions of the whole sequence the session will hold after this call; throws for input
    /// the architecture refuses.
    func positions(_ sequence: [Int32]) throws(ModelError) -> Positions
    /// How many leading positions of keys/values computed for `cached` still hold for `sequence`
    /// (a snapshot of another adapter set; default: the common prefix, as for any causal model).
    func reusable(_ cached: [Int32], _ sequence: [Int32]) -> Int
    /// Whether the first `count` cached keys/values are stale for a sequence at `p` (default: no).
    func invalidates(cached count: Int, _ p: Positions) -> Bool
    /// The transformer blocks, in place on x [n, dim] (the embedded tokens in, the last block's
    /// residual stream out). Row i is a token of sequence `batch.owner[i]`, at cache position
    /// `batch.position(i)` of that sequence's cache, where each layer's key/value for it goes; it
    /// attends to its own sequence only. Projections run once over all rows (`batch.projection`).
    func forwardLayers(_ x: Scratch, _ batch: BatchRows<Positions>)
    /// The norm before the head, on one row: x [dim] -> out [dim].
    func finalNorm(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>)
}

/// What the shared forward and the bookkeeping read from an architecture's shape.
protocol DecoderShape: Sendable {
    var dim: Int { get }         // hidden size: one row of the residual stream
    var layers: Int { get }
    var vocab: Int { get }
    var context: Int { get }     // longest sequence the positions support
    var headDim: Int { get }
    var kvDim: Int { get }       // keys (or values) cached per position and layer
}

extension DecoderModel where Positions == Void {
    func positions(_ sequence: [Int32]) {}
}

extension DecoderModel {
    func reusable(_ cached: [Int32], _ sequence: [Int32]) -> Int { commonPrefix(cached, sequence) }
    func invalidates(cached count: Int, _ p: Positions) -> Bool { false }

    public var vocabSize: Int { shape.vocab }
    public var contextLength: Int { shape.context }

    public func forward(_ tokens: [Int32], session: ModelSession, logits: LogitsWanted) throws(ModelError) -> [Float] {
        try run([BatchItem(tokens: tokens, session: session)], allRows: logits == .all)[0]
    }

    public func forwardBatch(_ items: [BatchItem]) throws(ModelError) -> [[Float]] {
        try run(items, allRows: false)
    }

    /// The forward of `forward` and `forwardBatch`: every item's logits [vocab] of its last token,
    /// or (`allRows`, one item) of all its tokens.
    private func run(_ items: [BatchItem], allRows: Bool) throws(ModelError) -> [[Float]] {
        let s = shape
        // Where an error names an item: only when there are several.
        func fault(_ i: Int, _ what: String) -> ModelError {
            items.count > 1 ? ModelError("sequence \(i) of the batch: " + what, sequence: i) : ModelError(what)
        }
        guard !items.isEmpty else { return [] }
        for (i, item) in items.enumerated() {
            let session = item.session
            guard !item.tokens.isEmpty else { throw fault(i, "no tokens to run") }
            guard session.count + item.tokens.count <= session.capacity else {
                throw fault(i, "sequence of \(session.count + item.tokens.count) tokens exceeds the context of \(session.capacity)")
            }
            if let bad = item.tokens.first(where: { $0 < 0 || Int($0) >= s.vocab }) {
                throw fault(i, "token id \(bad) is outside the vocabulary of \(s.vocab)")
            }
            if items[..<i].contains(where: { $0.session === session }) {
                throw fault(i, "its session is already in the batch")
            }
        }
        // Positions of each whole sequence (what align below leaves to run is always a suffix of
        // it), checked before any session changes.
        var wholePositions: [Positions] = []
        for (i, item) in items.enumerated() {
            do { wholePositions.append(try positions(item.session.tokens + item.tokens)) } catch { throw fault(i, error.description) }
        }
        // Keys/values cached under another adapter set are stale: restore a snapshot of the new set
        // where one exists (as far as `reusable` allows), run the rest again.
        var prepared: [(item: Int, lora: LoRAStack, run: [Int32], start: Int, positions: Positions)] = []
        for (i, item) in items.enumerated() {
            let session = item.session, lora = item.adapters ?? self.lora
            var run = session.align(item.tokens, signature: lora.signature, reusable: reusable)
            let p = wholePositions[i]
            if session.count > 0 && invalidates(cached: session.count, p) {
                run = session.tokens + run
                session.reset()
            }
            prepared.append((item: i, lora: lora, run: run, start: session.count, positions: p))
        }
        // Rows: short runs first (decode steps' single tokens, short prompts: the row kernel),
        // then the others (the GEMM); see ProjectionRows.
        let short = ProjectionRows.rowKernelMaxTokens
        let order = prepared.filter { $0.run.count <= short } + prepared.filter { $0.run.count > short }
        var sequences: [BatchRows<Positions>.Sequence] = []
        var n = 0
        for q in order {
            sequences.append(.init(rows: n..<(n + q.run.count), start: q.start, cache: items[q.item].session.cache, positions: q.positions))
            n += q.run.count
        }
        let batch = BatchRows(sequences, projection: ProjectionRows(segments: order.map { ($0.run.count, $0.lora) }))
        let x = Scratch(n * s.dim)               // the residual stream [n, dim]
        defer { x.free() }
        for (q, seq) in zip(order, sequences) {
            for (j, token) in q.run.enumerated() { embed.lookup(Int(token), into: x.buffer + (seq.rows.lowerBound + j) * s.dim) }
        }
        forwardLayers(x, batch)
        for q in order { items[q.item].session.tokens += q.run }

        // Final norm and head, on each sequence's last row only unless every row's logits are
        // wanted; sequences with one head row first, as for the layers.
        let headRows = order.map { allRows ? $0.run.count : 1 }
        let headOrder = order.indices.filter { headRows[$0] == 1 } + order.indices.filter { headRows[$0] > 1 }
        let rows = headRows.reduce(0, +)
        let xn = Scratch(rows * s.dim)
        defer { xn.free() }
        var firstRow = [Int](repeating: 0, count: order.count)      // of each sequence's head rows in xn
        var r = 0
        for k in headOrder {
            firstRow[k] = r
            let last = sequences[k].rows.upperBound
            for j in 0..<headRows[k] { finalNorm(x.buffer + (last - headRows[k] + j) * s.dim, xn.buffer + (r + j) * s.dim) }
            r += headRows[k]
        }
        var out = [Float](repeating: 0, count: rows * s.vocab)
        let headProjection = ProjectionRows(segments: headOrder.map { (headRows[$0], order[$0].lora) })
        out.withUnsafeMutableBufferPointer { head(xn.buffer, headProjection, $0.baseAddress!, pool: pool) }
        // NaN or ±Inf anywhere in a layer reaches every logit of the rows after it: one scan of the
        // logits catches it. Then no sequence advances: every session drops this call's keys/values
        // (they hold the same values) and the error names the one at fault.
        for k in order.indices {
            let q = order[k]
            if let bad = (0..<headRows[k]).first(where: { j in
                out.withUnsafeBufferPointer { countNonFinite(UnsafeBufferPointer(rebasing: $0[((firstRow[k] + j) * s.vocab)..<((firstRow[k] + j + 1) * s.vocab)])) } > 0
            }) {
                for p in order { items[p.item].session.truncate(to: p.start) }
                throw fault(q.item, "the logits at position \(q.start + q.run.count - headRows[k] + bad) are not finite (NaN or infinite): \(nonFiniteCause(q.lora))")
            }
        }
        var result = [[Float]](repeating: [], count: items.count)
        for k in order.indices {
            let q = order[k]
            var logits = order.count == 1 ? out : Array(out[(firstRow[k] * s.vocab)..<((firstRow[k] + headRows[k]) * s.vocab)])
            // Tokens run again (adapter switch, grown context) come first: their logits are not asked for.
            let asked = items[q.item].tokens.count
            if allRows && q.run.count > asked { logits = Array(logits.suffix(asked * s.vocab)) }
            result[q.item] = logits
        }
        return result
    }

    /// The likely cause of non-finite logits, in words: the weights were checked finite at load, so
    /// an adapter's deltas or values that overflow fp32 on the way.
    func nonFiniteCause(_ lora: LoRAStack) -> String {
        let active = lora.entries.filter { $0.multiplier != 0 }
        if active.isEmpty {
            return "the activations overflow fp32; the weights were finite at load, so their magnitudes (or norm eps) do not suit this input"
        }
        let names = active.map { "\($0.adapter.path) ×\($0.multiplier)" }.joined(separator: ", ")
        return "the active adapter\(active.count == 1 ? "" : "s") (\(names)) push\(active.count == 1 ? "es" : "") the activations past fp32's range; lower the multiplier or check its lora_B weights and lora_alpha"
    }

    public func makeSession(capacity: Int?) -> ModelSession {
        ModelSession(cache: KVCache(layers: shape.layers, capacity: min(capacity ?? shape.context, shape.context),
                                    kvDim: shape.kvDim, headDim: shape.headDim, precision: precision.kvCache))
    }

    public var weightBytes: Int {
        embed.byteSize + head.byteSize + vectors.reduce(0) { $0 + $1.count * 4 } + projections.reduce(0) { $0 + $1.byteSize }
    }

    public var bytesPerToken: Int { weightBytes - embed.byteSize }

    public var projectionShapes: [String: (rows: Int, cols: Int)] {
        var out: [String: (rows: Int, cols: Int)] = [:]
        for p in projections { out[p.name] = (p.rows, p.cols) }
        return out
    }
}
