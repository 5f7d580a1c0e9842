import CKernels
import Foundation

/// The small per-vector operations of the forward passes, in the order a layer uses them.
/// Everything here is fp32; the heavy lifting (projections) is in Quant and CKernels.
enum Ops {
    /// RMSNorm (LLaMA/Baichuan): out = x / sqrt(mean(x²) + eps) * w. x, out, w: [n].
    static func rmsnorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        n: Int, eps: Float) {
        var ss: Float = 0
        for i in 0..<n { ss += x[i] * x[i] }
        let inv = 1 / (ss / Float(n) + eps).squareRoot()
        for i in 0..<n { out[i] = x[i] * inv * w[i] }
    }

    /// LayerNorm (ChatGLM): out = (x - mean) / sqrt(var + eps) * w + b. All [n].
    static func layernorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ out: UnsafeMutablePointer<Float>, n: Int, eps: Float) {
        var mean: Float = 0
        for i in 0..<n { mean += x[i] }
        mean /= Float(n)
        var v: Float = 0
        for i in 0..<n { let d = x[i] - mean; v += d * d }
        let inv = 1 / (v / Float(n) + eps).squareRoot()
        for i in 0..<n { out[i] = (x[i] - mean) * inv * w[i] + b[i] }
    }

    /// cos/sin of the rotary angles for each position: [positions][dims/2] cos, then the same for sin.
    /// Angles as HF computes them: inv_freq[i] = 1 / theta^(2i/dims) in fp32, angle = pos · inv_freq[i]
    /// in fp32. `fp16Frequencies`: inv_freq rounded to binary16 first (round to nearest even) and
    /// used as fp32 — ChatGLM-6B's RotaryEmbedding calls `.half()` on its inv_freq buffer, so the
    /// released model, run in fp32 on CPU, turns by those rounded frequencies (up to 3e-4 relative
    /// off; unrounded ones move its logits by ~2e-3).
    struct RopeTable {
        let half: Int
        let cos: [Float]     // [positions][half]
        let sin: [Float]

        init(positions: [Int], dims: Int, theta: Float, fp16Frequencies: Bool = false) {
            half = dims / 2
            let invFreq = (0..<half).map { i -> Float in
                let f = 1 / pow(theta, Float(2 * i) / Float(dims))
                return fp16Frequencies ? Float(Float16(f)) : f
            }
            var c = [Float](repeating: 0, count: positions.count * half), s = c
            for (p, pos) in positions.enumerated() {
                for i in 0..<half {
                    let angle = Float(pos) * invFreq[i]
                    c[p * half + i] = Foundation.cos(angle)
                    s[p * half + i] = Foundation.sin(angle)
                }
            }
            cos = c
            sin = s
        }

        /// Rotate-half (GPT-NeoX / HF LLaMA layout) on 2·half values of `v` for position row `p`:
        /// pairs (i, i + half) turn by angle[p][i].
        func apply(_ v: UnsafeMutablePointer<Float>, row p: Int) {
            cos.withUnsafeBufferPointer { c in
                sin.withUnsafeBufferPointer { s in
                    let c = c.baseAddress! + p * half, s = s.baseAddress! + p * half
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        v[i] = a * c[i] - b * s[i]
                        v[i + half] = b * c[i] + a * s[i]
                    }
                }
            }
        }
    }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// GELU, tanh approximation (ChatGLM's gelu_impl).
    @inline(__always) static func geluTanh(_ x: Float) -> Float {
        0.5 * x * (1 + tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)))
    }
}

/// A scratch buffer for one forward call: sized once, reached through a raw pointer.
struct Scratch {
    private(set) var buffer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = max(count, 1)
        buffer = .allocate(capacity: self.count)
        buffer.initialize(repeating: 0, count: self.count)
    }

    func free() { buffer.deallocate() }
}
