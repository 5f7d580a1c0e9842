#if os(Linux)
import Glibc
#endif
// A linear layer's weight W (rows = out, cols = in), as the forward pass uses it: y = W·x for one
// token (decode) or Y = X·Wᵀ for many (prefill). Int8Matrix and F32Matrix are the two storages.
public protocol LinearWeight: Sendable {
    /// Output features (rows of W).
    var rows: Int { get }
    /// Input features (columns of W).
    var cols: Int { get }
    /// Bytes held for the weights (what decode streams from memory per token).
    var byteSize: Int { get }
    /// x (cols,) -> y (rows,), rows split across the pool's threads.
    func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool)
    /// x (n, cols) -> y (n, rows): n independent rows (n sequences' next tokens, batched decode),
    /// each bit-identical to `matvec` of that row alone, the weights read from memory once for all.
    func matvecRows(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool)
    /// x (n, cols) -> y (n, rows), row-major.
    func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool)
    /// W (rows, cols) as fp32, the values the products above use.
    func dequantized() -> [Float]
}

/// 64-byte aligned, uninitialised storage for a weight array (SIMD rows start on cache lines).
/// Arrays of 2 MiB and more are 2 MiB aligned and asked to live on transparent huge pages:
/// decode streams every weight once per token, and with 4 KiB pages that is a TLB miss per 4 KiB.
final class AlignedStorage<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    let count: Int

    static var hugePage: Int { 2 << 20 }

    init(count: Int) {
        self.count = count
        let bytes = max(1, count * MemoryLayout<T>.stride)
        let huge = bytes >= Self.hugePage
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? Self.hugePage : 64)
        #if os(Linux)
        if huge { madvise(raw, bytes, MADV_HUGEPAGE) }
        #endif
        pointer = raw.bindMemory(to: T.self, capacity: count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
