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
    /// The transformer blocks, in place on x [n, dim] (the embedded tokens at cache positions
    /// start..<start+n in, the last block's residual stream out); each layer's keys/values go
    /// into `cache` at those positions.
    func forwardLayers(_ x: Scratch, n: Int, start: Int, _ p: Positions, cache: KVCache)
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
        let s = shape
        guard !tokens.isEmpty else { throw ModelError("no tokens to run") }
        guard session.count + tokens.count <= session.capacity else {
            throw ModelError("sequence of \(session.count + tokens.count) tokens exceeds the context of \(session.capacity)")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= s.vocab }) {
            throw ModelError("token id \(bad) is outside the vocabulary of \(s.vocab)")
        }
        // Keys/values cached under another adapter set are stale: restore a snapshot of the new set
        // where one exists (as far as `reusable` allows), run the rest again.
        var run = session.align(tokens, signature: lora.signature, reusable: reusable)
        let p = try positions(session.tokens + run)
        if session.count > 0 && invalidates(cached: session.count, p) {
            run = session.tokens + run
            session.reset()
        }
        let n = run.count
        let start = session.count
        let x = Scratch(n * s.dim)               // the residual stream [n, dim]
        defer { x.free() }
        for i in 0..<n { embed.lookup(Int(run[i]), into: x.buffer + i * s.dim) }
        forwardLayers(x, n: n, start: start, p, cache: session.cache)
        session.tokens += run

        // Final norm and head, on the last row only unless every row's logits are wanted.
        let rows = logits == .all ? n : 1
        let first = n - rows
        let xn = Scratch(rows * s.dim)
        defer { xn.free() }
        for i in 0..<rows { finalNorm(x.buffer + (first + i) * s.dim, xn.buffer + i * s.dim) }
        var out = [Float](repeating: 0, count: rows * s.vocab)
        out.withUnsafeMutableBufferPointer { head(xn.buffer, n: rows, $0.baseAddress!, pool: pool, lora: lora) }
        // NaN or ±Inf anywhere in a layer reaches every logit of the rows after it: one scan of the
        // logits catches it. Its keys/values are dropped (they hold the same values).
        if let bad = (0..<rows).first(where: { r in out.withUnsafeBufferPointer { countNonFinite(UnsafeBufferPointer(rebasing: $0[(r * s.vocab)..<((r + 1) * s.vocab)])) } > 0 }) {
            session.truncate(to: start)
            throw ModelError("the logits at position \(start + first + bad) are not finite (NaN or infinite): \(nonFiniteCause)")
        }
        // Tokens run again (adapter switch, grown context) come first: their logits are not asked for.
        return logits == .all && n > tokens.count ? Array(out.suffix(tokens.count * s.vocab)) : out
    }

    /// The likely cause of non-finite logits, in words: the weights were checked finite at load, so
    /// an adapter's deltas or values that overflow fp32 on the way.
    var nonFiniteCause: String {
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
