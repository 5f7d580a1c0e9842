// fp32 weights kept as loaded, for `--precision f32` runs that check the int8 path. Products go
// through OpenBLAS (single-threaded, called from the pool's chunks).
//
// Note: OpenBLAS 0.3.21 (Debian) does not recognise some newer Xeons and falls back to its
// "Prescott" (SSE3) kernels, ~4x slower sgemm; `BLASInfo.coreName` says which it picked, and
// OPENBLAS_CORETYPE=SkylakeX in the environment (before the process starts) fixes it.
import COpenBLAS

public final class F32Matrix: LinearWeight, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    private let w: AlignedStorage<Float>

    public var byteSize: Int { rows * cols * MemoryLayout<Float>.size }

    /// Copies W (rows, cols), row-major.
    public init(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        precondition(rows >= 0 && cols > 0 && w.count == rows * cols, "F32Matrix: \(w.count) values for \(rows)x\(cols)")
        precondition(rows < Int(Int32.max) && cols < Int(Int32.max), "F32Matrix: \(rows)x\(cols) exceeds BLAS int")
        self.rows = rows
        self.cols = cols
        self.w = AlignedStorage(count: rows * cols)
        self.w.pointer.update(from: w.baseAddress!, count: w.count)
    }

    public func dequantized() -> [Float] { Array(UnsafeBufferPointer(start: w.pointer, count: rows * cols)) }

    public func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let wp = w.pointer, cols = cols
        pool.parallelChunks(rows, alignment: 4) { _, r in
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(r.count), Int32(cols), 1, wp + r.lowerBound * cols, Int32(cols),
                        x, 1, 0, y + r.lowerBound, 1)
        }
    }

    /// Each row by sgemv over the same row chunks as `matvec` (so bit-identical to it); a thread's
    /// chunk stays in cache across the rows (the fp32 path checks results, it is not the fast one).
    public func matvecRows(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let wp = w.pointer, rows = rows, cols = cols
        pool.parallelChunks(rows, alignment: 4) { _, r in
            for t in 0..<n {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(r.count), Int32(cols), 1, wp + r.lowerBound * cols, Int32(cols),
                            x + t * cols, 1, 0, y + t * rows + r.lowerBound, 1)
            }
        }
    }

    public func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard n > 0 else { return }
        let wp = w.pointer, rows = rows, cols = cols
        pool.parallelChunks(rows, alignment: 16) { _, r in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(r.count), Int32(cols), 1, x, Int32(cols),
                        wp + r.lowerBound * cols, Int32(cols), 0, y + r.lowerBound, Int32(rows))
        }
    }
}

/// What OpenBLAS says about itself (for `yanyi bench` / diagnostics).
public enum BLASInfo {
    /// The kernel family OpenBLAS chose for this CPU, e.g. "SkylakeX", or "Prescott" when it did not
    /// recognise the CPU (see the note above).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
    public static var config: String { openblas_get_config().map { String(cString: $0) } ?? "unknown" }
}
