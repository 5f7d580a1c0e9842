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

    /// Rotary embedding in the rotate-half (GPT-NeoX / HF LLaMA) layout on `dims` values of `v`:
    /// pairs (i, i + dims/2) turn by pos · invFreq[i], invFreq[i] = theta^(-2i/dims).
    static func ropeRotateHalf(_ v: UnsafeMutablePointer<Float>, dims: Int, pos: Int, theta: Float) {
        let half = dims / 2
        for i in 0..<half {
            // Same op order as HF: inv_freq in fp32, then t * inv_freq, then cos/sin.
            let invFreq = 1 / pow(theta, Float(2 * i) / Float(dims))
            let angle = Float(pos) * invFreq
            let c = cos(angle), s = sin(angle)
            let a = v[i], b = v[i + half]
            v[i] = a * c - b * s
            v[i + half] = b * c + a * s
        }
    }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// GELU, tanh approximation (ChatGLM's gelu_impl).
    @inline(__always) static func geluTanh(_ x: Float) -> Float {
        0.5 * x * (1 + tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)))
    }

    /// One query head against the first `visible` cached positions:
    /// out[hd] = Σ_j softmax_j(scale · q·k_j) · v_j, softmax in fp32.
    /// keys/values point at position 0 of this head's slice; `stride` floats between positions.
    static func attend(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                       stride: Int, visible: Int, headDim: Int, scale: Float,
                       scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        var maxScore = -Float.infinity
        for j in 0..<visible {
            let k = keys + j * stride
            var d: Float = 0
            for t in 0..<headDim { d += q[t] * k[t] }
            d *= scale
            scores[j] = d
            if d > maxScore { maxScore = d }
        }
        var sum: Float = 0
        for j in 0..<visible {
            let e = exp(scores[j] - maxScore)
            scores[j] = e
            sum += e
        }
        let inv = 1 / sum
        for t in 0..<headDim { out[t] = 0 }
        for j in 0..<visible {
            let p = scores[j] * inv
            let v = values + j * stride
            for t in 0..<headDim { out[t] += p * v[t] }
        }
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
