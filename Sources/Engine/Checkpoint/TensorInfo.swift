import CKernels

/// Where one tensor's bytes are: its file, the byte offset of element [0, 0, …], and how to step
/// through them (strides in elements, as torch counts them).
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// In elements; row-major contiguous for safetensors, any non-negative strides for torch views.
    public let strides: [Int]
    /// The shard/file path it lives in.
    public let file: String
    /// Absolute byte offset in `file` of the first element (a torch storage offset included).
    public let offset: Int
    /// Number of elements (1 for a 0-dim tensor).
    public let count: Int

    /// Row-major contiguous strides for `shape`, or nil when the element count overflows.
    static func rowMajorStrides(_ shape: [Int]) -> [Int]? {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for d in shape.indices.reversed() {
            strides[d] = step
            guard shape[d] >= 0 else { return nil }
            let (next, overflow) = step.multipliedReportingOverflow(by: max(shape[d], 1))
            if overflow { return nil }
            step = next
        }
        return strides
    }

    /// Product of the dimensions, or nil for a negative dimension or an overflow.
    static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (next, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = next
        }
        return n
    }

    /// Index (in elements from `offset`) of the last element a view reaches, or nil on overflow.
    /// Callers ensure shape and strides are non-negative and count > 0.
    static func lastElementIndex(shape: [Int], strides: [Int]) -> Int? {
        var last = 0
        for (n, s) in zip(shape, strides) {
            let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(step)
            if o1 || o2 { return nil }
            last = sum
        }
        return last
    }

    /// Torch's rule: sizes of 1 may have any stride, and an empty tensor is contiguous.
    public var isContiguous: Bool {
        if count == 0 { return true }
        var expected = 1
        for d in shape.indices.reversed() where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// Bytes of a contiguous tensor.
    public var byteCount: Int { count * dtype.byteSize }
}

// ---- reading a tensor out of a mapped file ------------------------------------------------
// Little-endian hosts only (x86-64, arm64), like every checkpoint we read.
extension MappedFile {
    /// A row-major contiguous fp32 copy of one tensor, honouring its offset and strides.
    func floats(_ t: TensorInfo) throws(LoadError) -> [Float] {
        guard t.dtype.isFloatingPoint else {
            throw LoadError(path, "tensor \(t.name.quoted) is \(t.dtype.rawValue); only F32, F16, BF16 and F64 tensors convert to floats")
        }
        if t.count == 0 { return [] }
        let bs = t.dtype.byteSize
        // The whole reach of the view must lie in the file (checked at load too; checked again
        // here so nothing can read past the mapping).
        guard t.shape.count == t.strides.count,
              let last = TensorInfo.lastElementIndex(shape: t.shape, strides: t.strides),
              case let (reach, o1) = last.multipliedReportingOverflow(by: bs), !o1,
              case let (span, o2) = reach.addingReportingOverflow(bs), !o2,
              let region = bytes(t.offset, span), let base = region.baseAddress else {
            throw LoadError(path, "tensor \(t.name.quoted) reaches past the end of the file")
        }
        if t.isContiguous {
            return MappedFile.convert(UnsafeRawBufferPointer(start: base, count: t.count * bs), t.dtype, t.count)
        }
        let gathered: [UInt8] = MappedFile.gather(base, t)
        return gathered.withUnsafeBytes { MappedFile.convert($0, t.dtype, t.count) }
    }

    /// The mapped bytes of a contiguous tensor in its storage dtype (no copy, maybe unaligned).
    func withRawBytes<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard t.isContiguous else {
            throw LoadError(path, "tensor \(t.name.quoted) is not contiguous (shape \(t.shape), strides \(t.strides)); use floats(_:) for a copy")
        }
        guard let b = bytes(t.offset, t.byteCount) else {
            throw LoadError(path, "tensor \(t.name.quoted) reaches past the end of the file")
        }
        return try body(b)
    }

    /// Copies a strided view's elements, in row-major order, into contiguous bytes.
    private static func gather(_ base: UnsafeRawPointer, _ t: TensorInfo) -> [UInt8] {
        let bs = t.dtype.byteSize
        let nd = t.shape.count
        var out = [UInt8](repeating: 0, count: t.count * bs)
        out.withUnsafeMutableBytes { dst in
            guard let d = dst.baseAddress else { return }
            var index = [Int](repeating: 0, count: nd)   // odometer over all but the last dim
            let inner = t.shape[nd - 1], innerStride = t.strides[nd - 1] * bs
            var written = 0
            while written < t.count {
                var at = 0
                for k in 0..<(nd - 1) { at += index[k] * t.strides[k] }
                var src = base + at * bs
                for _ in 0..<inner {
                    (d + written * bs).copyMemory(from: src, byteCount: bs)
                    src += innerStride
                    written += 1
                }
                var k = nd - 2
                while k >= 0 {
                    index[k] += 1
                    if index[k] < t.shape[k] { break }
                    index[k] = 0
                    k -= 1
                }
            }
        }
        return out
    }

    /// Contiguous storage-dtype bytes (count elements) -> fp32.
    private static func convert(_ src: UnsafeRawBufferPointer, _ dtype: DType, _ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, filled in
            guard let o = out.baseAddress, let s = src.baseAddress else { filled = 0; return }
            switch dtype {
            case .f32:
                UnsafeMutableRawPointer(o).copyMemory(from: s, byteCount: count * 4)
            case .f64:
                for k in 0..<count { o[k] = Float(s.loadUnaligned(fromByteOffset: k * 8, as: Double.self)) }
            case .f16, .bf16:
                let halves: (UnsafePointer<UInt16>) -> Void = { h in
                    if dtype == .f16 { ck_f16_to_f32(h, o, count) } else { ck_bf16_to_f32(h, o, count) }
                }
                if Int(bitPattern: s) % 2 == 0 {
                    halves(s.assumingMemoryBound(to: UInt16.self))
                } else {
                    // The kernels want aligned uint16; an odd offset (possible in safetensors) is copied first.
                    let aligned = [UInt16](unsafeUninitializedCapacity: count) { a, n in
                        if let p = a.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: s, byteCount: count * 2) }
                        n = count
                    }
                    aligned.withUnsafeBufferPointer { if let p = $0.baseAddress { halves(p) } }
                }
            default:
                o.initialize(repeating: 0, count: count)  // unreachable: callers check isFloatingPoint
            }
            filled = count
        }
    }
}
