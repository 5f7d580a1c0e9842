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

    public init(checkpoint: Checkpoint, precision: Precision, block: Int = 32, pool: ThreadPool? = nil) {
        self.checkpoint = checkpoint
        self.precision = precision
        self.block = block
        self.pool = pool
    }

    func floats(_ name: String, shape: [Int]) throws(LoadError) -> [Float] {
        guard let info = checkpoint.info(name) else {
            throw LoadError(checkpoint.folder, "tensor \(name) is missing")
        }
        guard info.shape == shape else {
            throw LoadError(info.file, "tensor \(name) has shape \(info.shape), config.json implies \(shape)")
        }
        defer { checkpoint.releasePages(name) }
        return try checkpoint.floats(name)
    }

    public func has(_ name: String) -> Bool { checkpoint.info(name) != nil }

    /// A linear layer's weight [rows = out, cols = in], quantized per `precision`.
    public func linear(_ name: String, rows: Int, cols: Int) throws(LoadError) -> any LinearWeight {
        let w = try floats(name, shape: [rows, cols])
        switch precision {
        case .int8:
            let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: block, pool: pool) }
            if m.nonFiniteBlocks > 0 {
                throw LoadError(checkpoint.info(name)?.file ?? checkpoint.folder,
                                "tensor \(name) holds NaN or infinite values (\(m.nonFiniteBlocks) blocks of \(block))")
            }
            return m
        case .f32:
            return w.withUnsafeBufferPointer { F32Matrix($0, rows: rows, cols: cols) }
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
        guard let info = checkpoint.info(name) else { throw LoadError(checkpoint.folder, "tensor \(name) is missing") }
        guard info.shape == [rows, cols] else {
            throw LoadError(info.file, "tensor \(name) has shape \(info.shape), config.json implies [\(rows), \(cols)]")
        }
        defer { checkpoint.releasePages(name) }
        if (info.dtype == .f16 || info.dtype == .bf16) && info.isContiguous {
            let bits: [UInt16]
            do {
                bits = try checkpoint.withRawBytes(name) { raw in
                    (0..<raw.count / 2).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
                }
            } catch let e as LoadError {
                throw e
            } catch {
                throw LoadError(info.file, "tensor \(name): \(error)")
            }
            return EmbeddingTable(rows: rows, cols: cols, storage: info.dtype == .f16 ? .f16(bits) : .bf16(bits))
        }
        return EmbeddingTable(rows: rows, cols: cols, storage: .f32(try checkpoint.floats(name)))
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

    /// x [n, cols] -> y [n, rows].
    public func callAsFunction(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        if n == 1 {
            weight.matvec(x, y, pool: pool)
        } else {
            weight.matmul(x, n: n, y, pool: pool)
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for i in 0..<n {
                    let row = y + i * rows
                    for r in 0..<rows { row[r] += b[r] }
                }
            }
        }
    }
}

/// Token embeddings [rows = vocab, cols = dim].
public struct EmbeddingTable: Sendable {
    public enum Storage: Sendable {
        case f32([Float])
        case f16([UInt16])
        case bf16([UInt16])
    }

    public let rows: Int
    public let cols: Int
    let storage: Storage

    public var byteSize: Int {
        switch storage {
        case .f32(let a): return a.count * 4
        case .f16(let a), .bf16(let a): return a.count * 2
        }
    }

    /// Copies row `token` as fp32 into `out` [cols].
    public func lookup(_ token: Int, into out: UnsafeMutablePointer<Float>) {
        let o = token * cols
        switch storage {
        case .f32(let a): a.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + o, count: cols) }
        case .f16(let a): a.withUnsafeBufferPointer { ck_f16_to_f32($0.baseAddress! + o, out, cols) }
        case .bf16(let a): a.withUnsafeBufferPointer { ck_bf16_to_f32($0.baseAddress! + o, out, cols) }
        }
    }
}
