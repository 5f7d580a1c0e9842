import Foundation

/// LLaMA (transformers' LlamaForCausalLM, as CuteGPT / Chinese-LLaMA use it), and the Baichuan-7B
/// variant whose q/k/v projections are one fused `W_pack` (see Baichuan.swift). Per layer:
///   h = x + o_proj(attn(rmsnorm(x)))          RoPE rotate-half over head_dim, theta = rope_theta
///   x = h + down(silu(gate(n)) * up(n)), n = rmsnorm(h)
/// then rmsnorm and lm_head (Forward.swift runs those and the rest that every architecture shares).
/// GQA: kv heads may be fewer than query heads.
public final class LlamaModel: LanguageModel, DecoderModel, @unchecked Sendable {
    public struct Shape: DecoderShape {
        public var dim: Int              // hidden_size
        public var layers: Int
        public var heads: Int
        public var kvHeads: Int
        public var ffn: Int              // intermediate_size
        public var vocab: Int
        public var context: Int
        public var eps: Float
        public var theta: Float
        public var headDim: Int { dim / heads }
        public var kvDim: Int { kvHeads * headDim }
    }

    /// q, k, v as separate projections (LLaMA) or one fused Q|K|V projection (Baichuan W_pack).
    enum QKV: Sendable {
        case separate(q: Projection, k: Projection, v: Projection)
        case fused(Projection)       // rows: q [dim] | k [kvDim] | v [kvDim]
    }

    struct Layer: Sendable {
        var attnNorm: [Float]        // [dim]
        var qkv: QKV
        var o: Projection            // [dim, dim]
        var mlpNorm: [Float]         // [dim]
        var gate: Projection         // [ffn, dim]
        var up: Projection           // [ffn, dim]
        var down: Projection         // [dim, ffn]
    }

    public let family: ModelFamily
    public let shape: Shape
    public let precision: Precision
    let embed: EmbeddingTable
    let layers: [Layer]
    let norm: [Float]
    let head: Projection             // lm_head [vocab, dim]
    let pool: ThreadPool
    public let lora = LoRAStack()

    init(family: ModelFamily, shape: Shape, precision: Precision, embed: EmbeddingTable, layers: [Layer],
         norm: [Float], head: Projection, pool: ThreadPool) {
        self.family = family
        self.shape = shape
        self.precision = precision
        self.embed = embed
        self.layers = layers
        self.norm = norm
        self.head = head
        self.pool = pool
    }

    /// The shape from config.json's checked dimensions (ModelDimensions, validated when the folder opened).
    static func makeShape(_ d: ModelDimensions) -> Shape {
        Shape(dim: d.hidden, layers: d.layers, heads: d.heads, kvHeads: d.kvHeads, ffn: d.mlp, vocab: d.vocab,
              context: d.context, eps: Float(d.normEps), theta: Float(d.ropeTheta))
    }

    /// LLaMA's tensors (transformers' names). `fusedQKV` names Baichuan's W_pack instead.
    static func load(_ m: ModelFolder, _ w: WeightLoader, pool: ThreadPool, fusedQKV: String? = nil) throws(LoadError) -> LlamaModel {
        let s = makeShape(m.dims)
        var layers: [Layer] = []
        for l in 0..<s.layers {
            let p = "model.layers.\(l)."
            let qkv: QKV
            if let fused = fusedQKV {
                qkv = .fused(try w.projection(p + "self_attn." + fused, rows: s.dim + 2 * s.kvDim, cols: s.dim, bias: false))
            } else {
                qkv = .separate(q: try w.projection(p + "self_attn.q_proj", rows: s.dim, cols: s.dim, bias: false),
                                k: try w.projection(p + "self_attn.k_proj", rows: s.kvDim, cols: s.dim, bias: false),
                                v: try w.projection(p + "self_attn.v_proj", rows: s.kvDim, cols: s.dim, bias: false))
            }
            layers.append(Layer(
                attnNorm: try w.vector(p + "input_layernorm.weight", count: s.dim),
                qkv: qkv,
                o: try w.projection(p + "self_attn.o_proj", rows: s.dim, cols: s.dim, bias: false),
                mlpNorm: try w.vector(p + "post_attention_layernorm.weight", count: s.dim),
                gate: try w.projection(p + "mlp.gate_proj", rows: s.ffn, cols: s.dim, bias: false),
                up: try w.projection(p + "mlp.up_proj", rows: s.ffn, cols: s.dim, bias: false),
                down: try w.projection(p + "mlp.down_proj", rows: s.dim, cols: s.ffn, bias: false)))
        }
        let embed = try w.embedding("model.embed_tokens.weight", rows: s.vocab, cols: s.dim)
        // Tied checkpoints (tie_word_embeddings) have no lm_head of their own.
        let headName = w.has("lm_head.weight") || m.config.tieWordEmbeddings != true ? "lm_head" : "model.embed_tokens"
        let head = try w.projection(headName, rows: s.vocab, cols: s.dim, bias: false)
        return LlamaModel(family: m.family, shape: s, precision: w.precision, embed: embed, layers: layers,
                          norm: try w.vector("model.norm.weight", count: s.dim), head: head, pool: pool)
    }

    var projections: [Projection] {
        layers.flatMap { l -> [Projection] in
            switch l.qkv {
            case .separate(let q, let k, let v): return [q, k, v, l.o, l.gate, l.up, l.down]
            case .fused(let p): return [p, l.o, l.gate, l.up, l.down]
            }
        }
    }

    var vectors: [[Float]] { [norm] + layers.flatMap { [$0.attnNorm, $0.mlpNorm] } }

    func finalNorm(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        norm.withUnsafeBufferPointer { w in Ops.rmsnorm(x, w.baseAddress!, out, n: shape.dim, eps: shape.eps) }
    }

    /// x [n, dim]: each row a token of its sequence, at its own cache index.
    func forwardLayers(_ x: Scratch, _ batch: BatchRows<Void>) {
        let s = shape, n = batch.n, rows = batch.projection
        let qkvDim = s.dim + 2 * s.kvDim
        let xb = Scratch(n * s.dim), xb2 = Scratch(n * s.dim)
        let qkv = Scratch(n * qkvDim), hb = Scratch(n * s.ffn), hb2 = Scratch(n * s.ffn)
        defer { for b in [xb, xb2, qkv, hb, hb2] { b.free() } }

        let scale = 1 / Float(s.headDim).squareRoot()
        let rope = Ops.RopeTable(positions: (0..<n).map(batch.position), dims: s.headDim, theta: s.theta)
        // Attention's units of work: consecutive positions of one sequence (a prompt's rows) go in
        // pairs, which read each cached key and value once for both; a lone row goes alone.
        let units: [(row: Int, pair: Bool)] = {
            var units: [(row: Int, pair: Bool)] = [], r = 0
            while r < n {
                let pair = r + 1 < n && batch.owner[r + 1].sequence == batch.owner[r].sequence
                    && batch.position(r + 1) == batch.position(r) + 1
                units.append((r, pair))
                r += pair ? 2 : 1
            }
            return units
        }()

        for (l, layer) in layers.enumerated() {
            // attention block
            layer.attnNorm.withUnsafeBufferPointer { w in
                pool.eachRow(n) { i in Ops.rmsnorm(x.buffer + i * s.dim, w.baseAddress!, xb.buffer + i * s.dim, n: s.dim, eps: s.eps) }
            }
            switch layer.qkv {
            case .fused(let p):
                p(xb.buffer, rows, qkv.buffer, pool: pool)
            case .separate(let q, let k, let v) where n == 1:
                // One token: its q|k|v row is contiguous, so each projection writes in place.
                q(xb.buffer, rows, qkv.buffer, pool: pool)
                k(xb.buffer, rows, qkv.buffer + s.dim, pool: pool)
                v(xb.buffer, rows, qkv.buffer + s.dim + s.kvDim, pool: pool)
            case .separate(let q, let k, let v):
                // Separate outputs laid into the same [n, q|k|v] rows the fused path produces.
                let tq = Scratch(n * s.dim), tk = Scratch(n * s.kvDim), tv = Scratch(n * s.kvDim)
                q(xb.buffer, rows, tq.buffer, pool: pool)
                k(xb.buffer, rows, tk.buffer, pool: pool)
                v(xb.buffer, rows, tv.buffer, pool: pool)
                for i in 0..<n {
                    let row = qkv.buffer + i * qkvDim
                    row.update(from: tq.buffer + i * s.dim, count: s.dim)
                    (row + s.dim).update(from: tk.buffer + i * s.kvDim, count: s.kvDim)
                    (row + s.dim + s.kvDim).update(from: tv.buffer + i * s.kvDim, count: s.kvDim)
                }
                tq.free(); tk.free(); tv.free()
            }
            // RoPE on q and k, then k and v into the cache.
            for i in 0..<n {
                let row = qkv.buffer + i * qkvDim
                for h in 0..<s.heads { rope.apply(row + h * s.headDim, row: i) }
                for h in 0..<s.kvHeads { rope.apply(row + s.dim + h * s.headDim, row: i) }
                batch.sequences[batch.owner[i].sequence].cache.store(layer: l, pos: batch.position(i), key: row + s.dim,
                                                                     value: row + s.dim + s.kvDim, count: s.kvDim)
            }
            // Causal attention: a query at position p sees its own sequence's positions 0 … p. One
            // task per (unit, head).
            let group = s.heads / s.kvHeads
            pool.parallelFor(units.count * s.heads) { task in
                let (i, pair) = units[task / s.heads], h = task % s.heads
                let visible = batch.position(i) + 1
                let cache = batch.sequences[batch.owner[i].sequence].cache
                let q = qkv.buffer + i * qkvDim + h * s.headDim, out = xb.buffer + i * s.dim + h * s.headDim
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * visible + 1) { scores in
                    if pair {
                        cache.attendPair(qa: q, qb: q + qkvDim, layer: l, head: h / group, visible: visible, scale: scale,
                                         scores: scores.baseAddress!, outA: out, outB: out + s.dim)
                    } else {
                        cache.attend(q: q, layer: l, head: h / group, visible: visible, scale: scale,
                                     scores: scores.baseAddress!, out: out)
                    }
                }
            }
            layer.o(xb.buffer, rows, xb2.buffer, pool: pool)
            pool.eachRow(n) { i in for t in (i * s.dim)..<((i + 1) * s.dim) { x.buffer[t] += xb2.buffer[t] } }

            // MLP block
            layer.mlpNorm.withUnsafeBufferPointer { w in
                pool.eachRow(n) { i in Ops.rmsnorm(x.buffer + i * s.dim, w.baseAddress!, xb.buffer + i * s.dim, n: s.dim, eps: s.eps) }
            }
            layer.gate(xb.buffer, rows, hb.buffer, pool: pool)
            layer.up(xb.buffer, rows, hb2.buffer, pool: pool)
            pool.eachRow(n) { i in for t in (i * s.ffn)..<((i + 1) * s.ffn) { hb.buffer[t] = Ops.silu(hb.buffer[t]) * hb2.buffer[t] } }
            layer.down(hb.buffer, rows, xb2.buffer, pool: pool)
            pool.eachRow(n) { i in for t in (i * s.dim)..<((i + 1) * s.dim) { x.buffer[t] += xb2.buffer[t] } }
        }
    }
}
