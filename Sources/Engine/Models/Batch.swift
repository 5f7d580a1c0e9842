/// One forward over several sequences (batched decode; continuous batching in a server).
///
/// Every sequence of a step becomes rows of one residual stream [N, dim]; each projection runs
/// once over all N rows (the int8 weights read from memory once per step, not once per
/// sequence), and attention runs per row against that row's own session cache and position.
/// A sequence may carry its own adapter set: the base product covers every row, then each
/// adapter group adds its LoRA deltas to its own rows only (Punica / S-LoRA's grouping).
///
/// What a caller gets is what running each sequence alone would give, bit for bit wherever the
/// products allow it: a sequence running one token (decode) comes out exactly as alone, int8 or
/// fp32, with or without adapters; a sequence running several tokens (a prompt, a chunk of one)
/// exactly as alone with the int8 kernels, whose rows do not depend on the other rows, and within
/// fp32 rounding with OpenBLAS's sgemm (`BatchForwardTests`).

/// For a continuous-batching scheduler (Serve's `GenerationScheduler` seam): keep one
/// `ModelSession` per stream (`makeSession`), and per stream its own sampler chain and adapter
/// stack (`makeAdapterStack`, shared by streams of the same set); each step, build one item per
/// live stream — its sampled token, or the next chunk of its prompt — call `forwardBatch`, and
/// sample each stream's logits with its own chain. Streams join and leave between steps; nothing
/// but the sessions is kept across calls. A `ModelError` with `sequence` set names the stream at
/// fault, and then no session has advanced: drop that stream and run the step again.

/// One sequence's part of a batched forward step.
public struct BatchItem {
    /// Tokens to run after what `session` holds: one for a decode step, a few for a chunk of prompt.
    public var tokens: [Int32]
    public var session: ModelSession
    /// The adapter set this sequence runs under (`LanguageModel.makeAdapterStack`); nil: the
    /// model's active set, `lora`. Its session is aligned to it as a single forward would.
    public var adapters: LoRAStack?

    public init(tokens: [Int32], session: ModelSession, adapters: LoRAStack? = nil) {
        self.tokens = tokens
        self.session = session
        self.adapters = adapters
    }
}

/// How a projection treats the rows of one forward call.
/// Rows 0..<decode belong to sequences running at most `rowKernelMaxTokens` tokens (a decode
/// step's one token, a short prompt): multiplied as `matvec` multiplies one row
/// (`LinearWeight.matvecRows`, the weights streamed once for all of them), which is what `matmul`
/// does for so few tokens of one sequence alone. Rows decode..<n belong to longer runs: `matmul`,
/// as a prefill (more than rowKernelMaxTokens rows, so the same method as each of them alone).
/// One row alone is a plain `matvec`. `groups`: which rows each adapter set adapts.
struct ProjectionRows {
    struct Group {
        var lora: LoRAStack
        /// Its sequences' rows, one range per sequence, in row order.
        var segments: [Range<Int>]
    }

    var n: Int
    var decode: Int
    var groups: [Group]

    /// One sequence's n rows under `lora` (the single-sequence forward).
    init(n: Int, lora: LoRAStack?) {
        self.n = n
        decode = n == 1 ? 1 : 0
        groups = lora.map { [Group(lora: $0, segments: [0..<n])] } ?? []
    }

    /// Runs of up to this many tokens go through the row kernel in a batch: `Int8Matrix.matmul`
    /// takes it for so few tokens of one sequence, so a row comes out with the same bits batched
    /// as alone (LoRA deltas take their lone-token path up to it too). At least 1: a decode step's single token.
    static let rowKernelMaxTokens = max(1, Int8Matrix.rowsMaxTokens)

    /// Consecutive segments of rows, each one sequence's under its adapter set; segments of at
    /// most rowKernelMaxTokens rows must come first (they go through the row kernel).
    init(segments: [(count: Int, lora: LoRAStack)]) {
        var start = 0, decode = 0
        var groups: [Group] = []
        var index: [String: Int] = [:]       // group by adapter signature
        for (count, lora) in segments {
            precondition(count > 0, "ProjectionRows: an empty segment")
            if count <= Self.rowKernelMaxTokens && decode == start { decode += count }
            let seg = start..<(start + count)
            if let g = index[lora.signature] {
                groups[g].segments.append(seg)
            } else {
                index[lora.signature] = groups.count
                groups.append(Group(lora: lora, segments: [seg]))
            }
            start += count
        }
        precondition(segments.drop(while: { $0.count <= Self.rowKernelMaxTokens }).allSatisfy { $0.count > Self.rowKernelMaxTokens },
                     "ProjectionRows: short runs after long ones")
        n = start
        self.decode = decode
        self.groups = groups
    }
}

/// What an architecture's layers see of a forward call: the rows of the residual stream, which
/// sequence each belongs to, and where it sits.
struct BatchRows<Positions> {
    struct Sequence {
        var rows: Range<Int>          // its rows of x
        var start: Int                // cache position of its first row
        var cache: KVCache
        var positions: Positions      // of the whole sequence after this call
    }

    let sequences: [Sequence]
    let projection: ProjectionRows
    /// For each row: its sequence and its index within that sequence's rows.
    let owner: [(sequence: Int, offset: Int)]

    init(_ sequences: [Sequence], projection: ProjectionRows) {
        self.sequences = sequences
        self.projection = projection
        var owner: [(sequence: Int, offset: Int)] = []
        for (i, s) in sequences.enumerated() {
            precondition(s.rows.lowerBound == owner.count, "BatchRows: rows out of order")
            for o in 0..<s.rows.count { owner.append((i, o)) }
        }
        self.owner = owner
    }

    var n: Int { owner.count }

    /// Cache position of row `row`.
    func position(_ row: Int) -> Int {
        let (s, o) = owner[row]
        return sequences[s].start + o
    }
}
