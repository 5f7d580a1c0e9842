import Foundation

/// ChatGLM-6B v1 (THUDM's modeling_chatglm.py, `ChatGLMModel` / `ChatGLMForConditionalGeneration`).
/// Per layer ("DeepNorm" on the normalised input):
///   a = LN_in(x);  h = a·alpha + dense(attn(a));  m = LN_post(h);  x = m·alpha + 4h_to_h(gelu_tanh(h_to_4h(m)))
/// alpha = sqrt(2·28): upstream's GLMBlock has `num_layers=28` as a default argument that
/// ChatGLMModel never overrides, so alpha does not follow config.num_layers.
/// The fused query_key_value output is interleaved per head: [h0: q k v][h1: q k v]…, with bias.
/// 2-D rotary: in each head, dims [0, hd/2) turn by the position id and [hd/2, hd) by the block
/// position id, rotate-half within each half, base 10000, frequencies rounded to fp16 as the
/// original's `inv_freq.half()` leaves them (angles and cos/sin in fp32, as on CPU; within 2e-5 of
/// its logits, ChatGLMUpstreamTests). For `ctx … [gMASK] <sop> gen…` the position ids run 0 … up to [gMASK] and then stay at [gMASK]'s index; block ids are 0 for the
/// context, 1 for <sop>, 2, 3, … after. Prefix-LM mask: the context (everything before <sop>)
/// attends bidirectionally, <sop> and later tokens causally.
public final class ChatGLMModel: LanguageModel, DecoderModel, @unchecked Sendable {
    public struct Shape: DecoderShape {
        public var dim: Int              // hidden_size
        public var layers: Int           // num_layers
        public var heads: Int
        public var inner: Int            // inner_hidden_size
        public var vocab: Int
        public var context: Int          // max_sequence_length
        public var eps: Float
        public var headDim: Int { dim / heads }
        public var kvDim: Int { dim }
    }

    struct Layer: Sendable {
        var inputNormW: [Float], inputNormB: [Float]     // [dim]
        var qkv: Projection                              // [3·dim, dim] + bias, interleaved per head
        var dense: Projection                            // [dim, dim] + bias
        var postNormW: [Float], postNormB: [Float]       // [dim]
        var up: Projection                               // dense_h_to_4h [inner, dim] + bias
        var down: Projection                             // dense_4h_to_h [dim, inner] + bias
    }

    public let family = ModelFamily.chatGLM
    public let shape: Shape
    public let precision: Precision
    /// Ids that shape positions and the mask: <sop> (bos), [MASK], [gMASK].
    public let sopID: Int32, maskID: Int32, gmaskID: Int32
    let alpha: Float = (2 * 28 as Float).squareRoot()
    let embed: EmbeddingTable
    let layers: [Layer]
    let finalNormW: [Float], finalNormB: [Float]
    let head: Projection
    let pool: ThreadPool
    public let lora = LoRAStack()

    init(shape: Shape, precision: Precision, ids: (sop: Int32, mask: Int32, gmask: Int32), embed: EmbeddingTable,
         layers: [Layer], finalNorm: ([Float], [Float]), head: Projection, pool: ThreadPool) {
        self.shape = shape
        self.precision = precision
        (sopID, maskID, gmaskID) = ids
        self.embed = embed
        self.layers = layers
        (finalNormW, finalNormB) = finalNorm
        self.head = head
        self.pool = pool
    }

    static func load(_ m: ModelFolder, _ w: WeightLoader, pool: ThreadPool) throws(LoadError) -> any LanguageModel {
        let d = m.dims
        let dim = d.hidden
        let s = Shape(dim: dim, layers: d.layers, heads: d.heads, inner: d.mlp, vocab: d.vocab, context: d.context,
                      eps: Float(d.normEps))
        // Special ids come from config.json (the tokenizer agrees; the model reads them from here).
        guard let ids = d.glm else { throw LoadError(m.path, "not a ChatGLM config") }
        let (sop, mask, gmask) = (ids.sop, ids.mask, ids.gmask)
        var layers: [Layer] = []
        for l in 0..<s.layers {
            let p = "transformer.layers.\(l)."
            layers.append(Layer(
                inputNormW: try w.vector(p + "input_layernorm.weight", count: dim),
                inputNormB: try w.vector(p + "input_layernorm.bias", count: dim),
                qkv: try w.projection(p + "attention.query_key_value", rows: 3 * dim, cols: dim, bias: true),
                dense: try w.projection(p + "attention.dense", rows: dim, cols: dim, bias: true),
                postNormW: try w.vector(p + "post_attention_layernorm.weight", count: dim),
                postNormB: try w.vector(p + "post_attention_layernorm.bias", count: dim),
                up: try w.projection(p + "mlp.dense_h_to_4h", rows: s.inner, cols: dim, bias: true),
                down: try w.projection(p + "mlp.dense_4h_to_h", rows: dim, cols: s.inner, bias: true)))
        }
        let embed = try w.embedding("transformer.word_embeddings.weight", rows: s.vocab, cols: dim)
        // The released checkpoint stores lm_head equal to the embedding; tie when it is absent.
        let headName = w.has("lm_head.weight") ? "lm_head" : "transformer.word_embeddings"
        let head = try w.projection(headName, rows: s.vocab, cols: dim, bias: false)
        return ChatGLMModel(shape: s, precision: w.precision, ids: (sop, mask, gmask),
                            embed: embed, layers: layers,
                            finalNorm: (try w.vector("transformer.final_layernorm.weight", count: dim),
                                        try w.vector("transformer.final_layernorm.bias", count: dim)),
                            head: head, pool: pool)
    }

    var projections: [Projection] { layers.flatMap { [$0.qkv, $0.dense, $0.up, $0.down] } }

    var vectors: [[Float]] {
        [finalNormW, finalNormB] + layers.flatMap { [$0.inputNormW, $0.inputNormB, $0.postNormW, $0.postNormB] }
    }

    func finalNorm(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        Ops.layernorm(x, finalNormW, finalNormB, out, n: shape.dim, eps: shape.eps)
    }

    /// Position and block-position ids, and how far each token sees, for a whole sequence.
    struct Positions {
        var position: [Int]
        var block: [Int]
        var contextLength: Int     // tokens before <sop>: they attend to each other both ways
    }

    func positions(_ seq: [Int32]) throws(ModelError) -> Positions {
        let sop = seq.firstIndex(of: sopID)
        let ctx = sop ?? seq.count
        var pos = Array(0..<seq.count)
        var block = [Int](repeating: 0, count: seq.count)
        if let sop {
            let context = seq[..<sop]
            guard let maskPos = context.firstIndex(of: gmaskID) ?? context.firstIndex(of: maskID) else {
                throw ModelError("ChatGLM input has <sop> but no [gMASK] or [MASK] before it")
            }
            for i in sop..<seq.count {
                pos[i] = maskPos
                block[i] = i - sop + 1
            }
        }
        return Positions(position: pos, block: block, contextLength: ctx)
    }

    /// A snapshot's keys/values hold only where its context (everything before <sop>) is the
    /// same: context tokens see each other both ways.
    func reusable(_ cached: [Int32], _ sequence: [Int32]) -> Int {
        guard let c = cached.firstIndex(of: sopID), sequence.firstIndex(of: sopID) == c else { return 0 }
        let common = commonPrefix(cached, sequence)
        return common > c ? common : 0
    }

    /// New context invalidates cached context (it attended to the context as it was): all of it
    /// runs again.
    func invalidates(cached count: Int, _ p: Positions) -> Bool { count < p.contextLength }

    /// x [n, dim]: each row a token of its sequence, whose Positions hold its position and block ids.
    func forwardLayers(_ x: Scratch, _ batch: BatchRows<Positions>) {
        let s = shape, n = batch.n, rows = batch.projection
        let hd = s.headDim
        let a = Scratch(n * s.dim), att = Scratch(n * s.dim), y = Scratch(n * s.dim)
        let qkv = Scratch(n * 3 * s.dim), hb = Scratch(n * s.inner)
        defer { for b in [a, att, y, qkv, hb] { b.free() } }

        let scale = 1 / Float(hd).squareRoot()
        let alpha = self.alpha
        // 2-D rotary: one table for the position ids, one for the block position ids, with the
        // fp16-rounded frequencies of the original (its inv_freq buffer is `.half()`ed).
        let ids = (0..<n).map { i in (batch.sequences[batch.owner[i].sequence].positions, batch.position(i)) }
        let ropePos = Ops.RopeTable(positions: ids.map { $0.0.position[$0.1] }, dims: hd / 2, theta: 10000,
                                    fp16Frequencies: true)
        let ropeBlock = Ops.RopeTable(positions: ids.map { $0.0.block[$0.1] }, dims: hd / 2, theta: 10000,
                                      fp16Frequencies: true)

        /// x = a·alpha + y, row by row.
        func residual() {
            pool.eachRow(n) { i in
                let o = i * s.dim
                for t in o..<(o + s.dim) { x.buffer[t] = a.buffer[t] * alpha + y.buffer[t] }
            }
        }

        for (l, layer) in layers.enumerated() {
            pool.eachRow(n) { i in
                Ops.layernorm(x.buffer + i * s.dim, layer.inputNormW, layer.inputNormB, a.buffer + i * s.dim, n: s.dim, eps: s.eps)
            }
            layer.qkv(a.buffer, rows, qkv.buffer, pool: pool)
            for i in 0..<n {
                let cache = batch.sequences[batch.owner[i].sequence].cache
                for h in 0..<s.heads {
                    let q = qkv.buffer + i * 3 * s.dim + h * 3 * hd
                    let k = q + hd, v = q + 2 * hd
                    for vec in [q, k] {
                        ropePos.apply(vec, row: i)
                        ropeBlock.apply(vec + hd / 2, row: i)
                    }
                    cache.store(layer: l, pos: batch.position(i), at: h * hd, key: k, value: v, count: hd)
                }
            }
            pool.parallelFor(n * s.heads) { task in
                let i = task / s.heads, h = task % s.heads
                // Prefix-LM: the whole context, and causally everything up to this token, of its own
                // sequence (whose cache holds positions up to its last row's after this call).
                let seq = batch.sequences[batch.owner[i].sequence]
                let visible = min(max(seq.positions.contextLength, batch.position(i) + 1), seq.start + seq.rows.count)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: visible) { scores in
                    seq.cache.attend(q: qkv.buffer + i * 3 * s.dim + h * 3 * hd, layer: l, head: h,
                                 visible: visible, scale: scale,
                                 scores: scores.baseAddress!, out: att.buffer + i * s.dim + h * hd)
                }
            }
            layer.dense(att.buffer, rows, y.buffer, pool: pool)
            residual()   // h

            pool.eachRow(n) { i in
                Ops.layernorm(x.buffer + i * s.dim, layer.postNormW, layer.postNormB, a.buffer + i * s.dim, n: s.dim, eps: s.eps)
            }
            layer.up(a.buffer, rows, hb.buffer, pool: pool)
            pool.eachRow(n) { i in
                let o = i * s.inner
                for t in o..<(o + s.inner) { hb.buffer[t] = Ops.geluTanh(hb.buffer[t]) }
            }
            layer.down(hb.buffer, rows, y.buffer, pool: pool)
            residual()
        }
    }
}
