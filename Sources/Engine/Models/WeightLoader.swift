import CKernels

/// Reads the weights an architecture asks for, one tensor at a time from the mapped checkpoint,
/// checks each shape against what config.json implies, and turns linear weights into int8 (or
/// fp32 for `--precision f32`) as it goes — so loading never holds more than one fp32 tensor
/// beside what is already quantized.
public struct WeightLoader {
    public let checkpoint: Checkpoint
    public let precision: Precision
    /// Int8 block size along the input dimension.
    public let block: Int
    /// Threads that quantize each tensor.
    public let pool: ThreadPool?
    /// A valid weight-cache entry: tensors come from it (mapped) instead of the checkpoint.
    let cached: WeightCacheReader?
    /// Collects every tensor handed out, for writing a weight-cache entry.
    let recorder: WeightRecorder?

    public init(checkpoint: Checkpoint, precision: Precision, block: Int = 32, pool: ThreadPool? = nil) {
        self.init(checkpoint: checkpoint, precision: precision, block: block, pool: pool, cached: nil, recorder: nil)
    }

    init(checkpoint: Checkpoint, precision: Precision, block: Int, pool: ThreadPool?, cached: WeightCacheReader?, recorder: WeightRecorder?) {
        self.checkpoint = checkpoint
        self.precision = precision
        self.block = block
        self.pool = pool
        self.cached = cached
        self.recorder = recorder
    }

    /// `item`'s tensor from the cache entry when it has it, else from `load`; recorded either way.
    private func cachedOr<T>(_ hit: T?, _ item: (T) -> WeightCacheFile.Item, _ load: () throws(LoadError) -> T) throws(LoadError) -> T {
        if let hit {
            recorder?.add(item(hit))
            return hit
        }
        if cached != nil { recorder?.misses += 1 }
        let v = try load()
        recorder?.add(item(v))
        return v
    }

    /// The tensor's table entry, after checking it exists with the shape config.json implies.
    func check(_ name: String, shape: [Int]) throws(LoadError) -> TensorInfo {
        guard let info = checkpoint.info(name) else {
            throw LoadError(checkpoint.folder, "tensor \(name) is missing")
        }
        guard info.shape == shape else {
            throw LoadError(info.file, "tensor \(name) has shape \(info.shape), config.json implies \(shape)")
        }
        return info
    }

    /// A 1-d float tensor (norm weight, bias) as fp32.
    func floats(_ name: String, shape: [Int]) throws(LoadError) -> [Float] {
        _ = try check(name, shape: shape)
        guard recorder != nil, shape.count == 1 else { return try read(name) }
        return try cachedOr(cached?.floats(name, count: shape[0]), { .floats(name, $0) }) { () throws(LoadError) in try read(name) }
    }

    /// The fp32 copy of a tensor already checked, refused if it holds NaN or ±Inf; its mapped
    /// pages are dropped afterwards.
    private func read(_ name: String) throws(LoadError) -> [Float] {
        defer { checkpoint.releasePages(name) }
        let v = try checkpoint.floats(name)
        try refuseNonFinite(name, v.withUnsafeBufferPointer(countNonFinite), of: v.count)
        return v
    }

    /// One line naming the tensor when `bad` of its values are NaN or ±Inf: such a weight makes
    /// every logit NaN, and the reply empty, without it.
    func refuseNonFinite(_ name: String, _ bad: Int, of count: Int, unit: String = "values") throws(LoadError) {
        guard bad > 0 else { return }
        throw LoadError(checkpoint.info(name)?.file ?? checkpoint.folder,
                        "tensor \(name) holds NaN or infinite values (\(bad) of \(count) \(unit))")
    }

    public func has(_ name: String) -> Bool { checkpoint.info(name) != nil }

    /// A linear layer's weight [rows = out, cols = in], quantized per `precision`. int8 streams
    /// from the mapped bytes in chunks of rows (fp32 exists one chunk at a time, and each chunk's
    /// source pages are dropped as soon as it is quantized).
    public func linear(_ name: String, rows: Int, cols: Int) throws(LoadError) -> any LinearWeight {
        let info = try check(name, shape: [rows, cols])
        if precision == .f32 {
            let w = try read(name)
            return w.withUnsafeBufferPointer { F32Matrix($0, rows: rows, cols: cols) }
        }
        guard recorder != nil else { return try quantize(name, info, rows: rows, cols: cols) }
        return try cachedOr(cached?.int8(name, rows: rows, cols: cols, block: block, pool: pool), { .int8(name, $0) }) { () throws(LoadError) in
            try quantize(name, info, rows: rows, cols: cols)
        }
    }

    private func quantize(_ name: String, _ info: TensorInfo, rows: Int, cols: Int) throws(LoadError) -> Int8Matrix {
        let m: Int8Matrix
        if info.isContiguous && [.f32, .f16, .bf16].contains(info.dtype) {
            let chunkRows = max(1, (1 << 20) / cols)          // ≈ 4 MB of fp32 per chunk
            do {
                m = try checkpoint.withRawBytes(name) { raw in
                    Int8Matrix(rows: rows, cols: cols, block: block, chunkRows: chunkRows, pool: pool) { r, out in
                        let elements = (r.lowerBound * cols)..<(r.upperBound * cols)
                        Self.convert(raw, info.dtype, elements, into: out)
                        checkpoint.releasePages(name, elements: elements)
                    }
                }
            } catch let e as LoadError {
                throw e
            } catch {
                throw LoadError(info.file, "tensor \(name): \(error)")
            }
        } else {
            let w = try read(name)
            m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block, pool: pool) }
        }
        try refuseNonFinite(name, m.nonFiniteBlocks, of: m.rows * m.blocksPerRow, unit: "blocks of \(block)")
        return m
    }

    /// Converts elements `range` of a mapped contiguous tensor (possibly unaligned) to fp32.
    static func convert(_ raw: UnsafeRawBufferPointer, _ dtype: DType, _ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let base = raw.baseAddress! + range.lowerBound * dtype.byteSize
        let n = range.count
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: n * 4)
        case .f16, .bf16:
            let convert = dtype == .f16 ? ck_f16_to_f32 : ck_bf16_to_f32
            if Int(bitPattern: base) % 2 == 0 {
                convert(base.assumingMemoryBound(to: UInt16.self), out, n)
            } else {
                let bits = (0..<n).map { base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
                convert(bits, out, n)
            }
        default:
            preconditionFailure("convert: \(dtype) is not a float storage type")
        }
    }

    /// A projection: weight, optional bias, and the checkpoint name adapters are keyed by.
    public func projection(_ prefix: String, rows: Int, cols: Int, bias: Bool) throws(LoadError) -> Projection {
        let w = try linear(prefix + ".weight", rows: rows, cols: cols)
        let b = bias ? try floats(prefix + ".bias", shape: [rows]) : nil
        return Projection(name: prefix, weight: w, bias: b)
    }

    /// A norm's weight (and bias), a bias vector, … kept fp32.
    public func vector(_ name: String, count: Int) throws(LoadError) -> [Float] {
        try floats(name, shape: [count])
    }

    /// The token embedding [vocab, dim], kept float at its stored width (f16/bf16 rows convert on lookup).
    public func embedding(_ name: String, rows: Int, cols: Int) throws(LoadError) -> EmbeddingTable {
        let info = try check(name, shape: [rows, cols])
        guard recorder != nil else { return try embedding(name, info, rows: rows, cols: cols) }
        return try cachedOr(cached?.embedding(name, rows: rows, cols: cols), { .embedding(name, $0) }) { () throws(LoadError) in
            try embedding(name, info, rows: rows, cols: cols)
        }
    }

    private func embedding(_ name: String, _ info: TensorInfo, rows: Int, cols: Int) throws(LoadError) -> EmbeddingTable {
        defer { checkpoint.releasePages(name) }
        if (info.dtype == .f16 || info.dtype == .bf16) && info.isContiguous {
            var bits = [UInt16](repeating: 0, count: rows * cols)
            var bad = 0
            let exponent: UInt16 = info.dtype == .f16 ? 0x7C00 : 0x7F80
            do {
                try checkpoint.withRawBytes(name) { raw in
                    bits.withUnsafeMutableBytes { dst in
                        // Copy in slices, dropping each slice's source pages as it is done.
                        let step = 1 << 22
                        var o = 0
                        while o < raw.count {
                            let n = min(step, raw.count - o)
                            dst.baseAddress!.advanced(by: o).copyMemory(from: raw.baseAddress!.advanced(by: o), byteCount: n)
                            // Counted as it is copied, while the slice is in cache.
                            bad += countNonFinite(UnsafeBufferPointer(start: dst.baseAddress!.advanced(by: o).assumingMemoryBound(to: UInt16.self),
                                                                      count: n / 2), exponent: exponent)
                            checkpoint.releasePages(name, elements: (o / 2)..<((o + n) / 2))
                            o += n
                        }
                    }
                }
            } catch let e as LoadError {
                throw e
            } catch {
                throw LoadError(info.file, "tensor \(name): \(error)")
            }
            try refuseNonFinite(name, bad, of: rows * cols)
            return EmbeddingTable(rows: rows, cols: cols, storage: info.dtype == .f16 ? .f16(bits) : .bf16(bits))
        }
        return EmbeddingTable(rows: rows, cols: cols, storage: .f32(try read(name)))
    }
}

/// y = W·x (+ b). Every projection of every architecture goes through here, so adapters have one
/// place to add their Σ s·B(A·x) without touching the base weights.
public struct Projection: Sendable {
    public let name: String
    public let weight: any LinearWeight
    public let bias: [Float]?

    public var rows: Int { weight.rows }
    public var cols: Int { weight.cols }
    public var byteSize: Int { weight.byteSize + (bias?.count ?? 0) * 4 }

    /// x [n, cols] -> y [n, rows], plus Σ s·B(A·x) for the adapters `lora` holds for this projection
    /// (one sequence's n tokens: the batch of one).
    public func callAsFunction(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool,
                               lora: LoRAStack? = nil) {
        self(x, ProjectionRows(n: n, lora: lora), y, pool: pool)
    }

    /// x [n, cols] -> y [n, rows] for the rows of a batched forward: the base product over all rows
    /// at once (the weights read once), the bias, then each adapter group's Σ s·B(A·x) on its own
    /// rows only. Every row comes out as it would in a call for its sequence alone.
    func callAsFunction(_ x: UnsafePointer<Float>, _ rows: ProjectionRows, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let n = rows.n, d = rows.decode, out = self.rows
        if n == 1 {
            weight.matvec(x, y, pool: pool)
        } else {
            if d > 0 { weight.matvecRows(x, n: d, y, pool: pool) }
            if n > d { weight.matmul(x + d * cols, n: n - d, y + d * out, pool: pool) }
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for i in 0..<n {
                    let row = y + i * out
                    for r in 0..<out { row[r] += b[r] }
                }
            }
        }
        for group in rows.groups {
            guard let deltas = group.lora.deltas(name) else { continue }
            // One group's segments back to back: its adapters' A and B come from memory once per
            // step and stay in cache for the rest of its rows (S-LoRA/Punica's grouping). Each
            // segment is one sequence's rows, multiplied as a call for that sequence alone would.
            for seg in group.segments {
                for (module, multiplier) in deltas {
                    module.apply(x + seg.lowerBound * cols, n: seg.count, y + seg.lowerBound * out, multiplier: multiplier)
                }
            }
        }
    }
}

/// Token embeddings [rows = vocab, cols = dim].
public struct EmbeddingTable: Sendable {
    enum Storage: Sendable {
        case f32([Float])
        case f16([UInt16])
        case bf16([UInt16])
        /// f32, f16 or bf16 rows in a mapped weight-cache file, from this byte offset (not copied).
        case mapped(MappedFile, offset: Int, DType)
    }

    public let rows: Int
    public let cols: Int
    let storage: Storage

    public var byteSize: Int {
        switch storage {
        case .f32(let a): return a.count * 4
        case .f16(let a), .bf16(let a): return a.count * 2
        case .mapped(_, _, let dtype): return rows * cols * dtype.byteSize
        }
    }

    /// The rows at their stored width, as the weight cache writes them.
    func withUnsafeBytes<R>(_ body: (DType, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .f32(let a): return try a.withUnsafeBytes { try body(.f32, $0) }
        case .f16(let a): return try a.withUnsafeBytes { try body(.f16, $0) }
        case .bf16(let a): return try a.withUnsafeBytes { try body(.bf16, $0) }
        case .mapped(let file, let offset, let dtype): return try body(dtype, file.bytes(offset, byteSize)!)
        }
    }

    /// Copies row `token` as fp32 into `out` [cols].
    public func lookup(_ token: Int, into out: UnsafeMutablePointer<Float>) {
        let o = token * cols
        switch storage {
        case .f32(let a): a.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + o, count: cols) }
        case .f16(let a): a.withUnsafeBufferPointer { ck_f16_to_f32($0.baseAddress! + o, out, cols) }
        case .bf16(let a): a.withUnsafeBufferPointer { ck_bf16_to_f32($0.baseAddress! + o, out, cols) }
        case .mapped(let file, let offset, let dtype):
            let row = file.bytes(offset + o * dtype.byteSize, cols * dtype.byteSize)!.baseAddress!
            switch dtype {
            case .f16: ck_f16_to_f32(row.assumingMemoryBound(to: UInt16.self), out, cols)
            case .bf16: ck_bf16_to_f32(row.assumingMemoryBound(to: UInt16.self), out, cols)
            default: out.update(from: row.assumingMemoryBound(to: Float.self), count: cols)
            }
        }
    }
}
