// PROVISIONAL stand-in (worktree only): replaced by helper-3's Quant layer.
import Foundation

public protocol LinearWeight: Sendable {
    var rows: Int { get }
    var cols: Int { get }
    var byteSize: Int { get }
    func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool)
    func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool)
}

public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    public init(threads: Int = 2) { self.threads = max(1, threads) }
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        for i in 0..<n { body(i) }
    }
}

public final class F32Matrix: LinearWeight, @unchecked Sendable {
    public let rows: Int, cols: Int
    let w: [Float]
    public var byteSize: Int { w.count * 4 }
    public init(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) { self.w = Array(w); self.rows = rows; self.cols = cols }
    public func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        for r in 0..<rows { var s: Float = 0; for c in 0..<cols { s += w[r * cols + c] * x[c] }; y[r] = s }
    }
    public func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        for i in 0..<n { matvec(x + i * cols, y + i * rows, pool: pool) }
    }
}

public final class Int8Matrix: LinearWeight, @unchecked Sendable {
    public let rows: Int, cols: Int, block: Int
    let q: [Int8]; let s: [Float]
    public var byteSize: Int { q.count + s.count * 4 }
    public init(quantizing w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, block: Int = 32) {
        self.rows = rows; self.cols = cols; self.block = block
        let nb = (cols + block - 1) / block
        var q = [Int8](repeating: 0, count: rows * cols); var s = [Float](repeating: 0, count: rows * nb)
        for r in 0..<rows { for b in 0..<nb {
            let lo = b * block, hi = min(cols, lo + block)
            var amax: Float = 0; for c in lo..<hi { amax = max(amax, abs(w[r * cols + c])) }
            s[r * nb + b] = amax / 127; let id: Float = amax == 0 ? 0 : 127 / amax
            for c in lo..<hi { q[r * cols + c] = Int8((w[r * cols + c] * id).rounded(.toNearestOrEven)) }
        } }
        self.q = q; self.s = s
    }
    public func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let nb = (cols + block - 1) / block
        for r in 0..<rows { var acc: Float = 0
            for b in 0..<nb { let lo = b * block, hi = min(cols, lo + block); var d: Float = 0
                for c in lo..<hi { d += Float(q[r * cols + c]) * x[c] }; acc += d * s[r * nb + b] }
            y[r] = acc }
    }
    public func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        for i in 0..<n { matvec(x + i * cols, y + i * rows, pool: pool) }
    }
}
