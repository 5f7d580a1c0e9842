// int8 weights with absmax scales over blocks along the input dimension, quantized once at load.
// Per block: scale = max|w| / 127, q = rint(w * 127 / max|w|) (CKernels.h has the exact rule).
// Two layouts of the same codes and scales:
// - rowMajor (CPUs without VNNI):
//     q      (rows, cols) int8, 64-byte aligned
//     scales (rows, nb)   fp32, nb = ceil(cols / block), the last block of a row short if need be
// - tiles (VNNI): packed 16-row tiles (q8_tiles.c), rows padded to 16, columns to nb·block:
//     q      (rows/16, nb, block/4, 16, 4) offset-binary codes (q + 128)
//     scales (rows/16, nb, 16) fp32
//   Every product (decode, batched decode, prefill) reads them as they are: one vpdpbusd does
//   4 columns of 16 rows and each block is converted once, where row-major codes cost a convert,
//   a permute and an fma per 64 bytes per row, or a repacking per prefill call.
// Separate q and scales arrays rather than llama.cpp's interleaved Q8_0 blocks (fp32 scale + 32
// codes = 36 bytes): interleaving streams no faster for decode, since the prefetchers follow both
// streams (BENCHMARKS.md, "Kernel and layout measurements"); and plain arrays keep the SIMD loads
// aligned, any block size possible, and a thread's row range (whole tiles) a pair of pointer offsets.
import CKernels
import COpenBLAS

public final class Int8Matrix: LinearWeight, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// Weights per scale along a row (a multiple of 32).
    public let block: Int
    /// Scales per row.
    public let blocksPerRow: Int
    /// Blocks that held NaN or ±Inf when quantized (their scale is NaN; callers should refuse).
    public let nonFiniteBlocks: Int
    /// How the codes and scales are stored (see the top of this file).
    public let layout: Layout
    private let q: AlignedStorage<Int8>
    private let scales: AlignedStorage<Float>

    public enum Layout: Sendable { case rowMajor, tiles }
    /// Tiles where the CPU has VNNI (their kernels need it), row-major elsewhere.
    public static let preferredLayout: Layout = vnniAvailable ? .tiles : .rowMajor

    /// How decode treats the activation x: fp32 as given (`ck_q8_matvec`), or quantized per block
    /// to int8 first (`ck_q8_quantize_act` + `ck_q8q8_matvec`, VNNI where the CPU has it).
    public enum Activations: Sendable { case f32, int8 }
    /// What `matvec(_:_:pool:)` uses. int8 where the CPU has VNNI: with the next rows prefetched it
    /// streams faster from DRAM (QuantBenchmarkTests; BENCHMARKS.md has the figures), and
    /// prefill's VNNI GEMM quantizes activations by the same rule. It adds its own rounding
    /// (relative RMS error 7.9e-3 instead of 5.4e-3 at B = 32, 1.3e-2 instead of 5.5e-3 with
    /// outlier features); elsewhere fp32, which the AVX2 kernels read as fast.
    public static let defaultActivations: Activations = vnniAvailable ? .int8 : .f32

    public var byteSize: Int { q.count + scales.count * MemoryLayout<Float>.size }

    /// Quantizes W (rows, cols), row-major fp32, with `block` weights per scale; rows are split
    /// across `pool` when one is given (13e9 weights for a 13B model).
    public convenience init(quantizing w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, block: Int = 32, pool: ThreadPool? = nil,
                            layout: Layout = preferredLayout) {
        precondition(rows >= 0 && cols > 0 && w.count == rows * cols, "Int8Matrix: \(w.count) values for \(rows)x\(cols)")
        // The streaming initializer in slices of ~4 MB (bit-identical to one pass: rows are independent;
        // the closure only runs for rows > 0, so an empty matrix never touches the base address).
        self.init(rows: rows, cols: cols, block: block, chunkRows: max(1, (1 << 20) / cols), pool: pool, layout: layout) { r, out in
            out.update(from: w.baseAddress! + r.lowerBound * cols, count: r.count * cols)
        }
    }

    /// Quantizes a matrix that arrives in chunks of rows, so that only `chunkRows` rows of fp32
    /// exist at a time: `fill(r, buf)` writes rows `r` as fp32 (r.count × cols) into `buf`.
    /// The loader streams checkpoint tensors through this (peak memory ≈ result + one chunk).
    public init(rows: Int, cols: Int, block: Int = 32, chunkRows: Int, pool: ThreadPool? = nil, layout: Layout = preferredLayout,
                fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        precondition(rows >= 0 && cols > 0 && chunkRows > 0, "Int8Matrix: bad shape \(rows)x\(cols) chunk \(chunkRows)")
        precondition(block > 0 && block % 32 == 0, "Int8Matrix: block \(block) is not a positive multiple of 32")
        self.rows = rows
        self.cols = cols
        self.block = block
        self.layout = layout
        blocksPerRow = (cols + block - 1) / block
        let counts = Self.storageCounts(rows: rows, cols: cols, block: block, layout: layout)
        q = AlignedStorage(count: counts.codes)
        scales = AlignedStorage(count: counts.scales)
        let nb = blocksPerRow, kp = nb * block, qp = q.pointer, sp = scales.pointer
        // Tiles: chunks of whole tiles, quantized row-major into scratch, then packed into place.
        let tiles = layout == .tiles, step = tiles ? (chunkRows + 15) / 16 * 16 : chunkRows
        let chunk = AlignedStorage<Float>(count: min(step, max(rows, 1)) * cols)
        let rowMajor = tiles ? AlignedStorage<Int8>(count: min(step, max(rows, 1)) * cols) : nil
        let rowScales = tiles ? AlignedStorage<Float>(count: min(step, max(rows, 1)) * nb) : nil
        let threads = pool?.threads ?? 1, perThread = 4
        var bad = [Int](repeating: 0, count: threads * perThread)   // one per chunk
        // Rows sub of chunk r: quantized, and packed when tiled (sub starts on a tile).
        func quantize(_ r: Range<Int>, _ sub: Range<Int>, _ wp: UnsafeMutablePointer<Float>) -> Int {
            let first = r.lowerBound + sub.lowerBound
            guard let rowMajor, let rowScales else {
                return ck_q8_quantize(wp + sub.lowerBound * cols, qp + first * cols, sp + first * nb, sub.count, cols, block)
            }
            let tq = rowMajor.pointer + sub.lowerBound * cols, ts = rowScales.pointer + sub.lowerBound * nb
            let n = ck_q8_quantize(wp + sub.lowerBound * cols, tq, ts, sub.count, cols, block)
            (qp + first * kp).withMemoryRebound(to: UInt8.self, capacity: ck_q8t_padded_rows(sub.count) * kp) {
                ck_q8t_pack(tq, ts, sub.count, cols, block, $0, sp + first * nb)
            }
            return n
        }
        var r0 = 0
        while r0 < rows {
            let r = r0..<min(rows, r0 + step)
            fill(r, chunk.pointer)
            let wp = chunk.pointer
            bad.withUnsafeMutableBufferPointer { bad in
                if let pool, threads > 1, r.count > 1 {
                    pool.parallelChunks(r.count, alignment: tiles ? 16 : 1, perThread: perThread) { c, sub in bad[c] += quantize(r, sub, wp) }
                } else {
                    bad[0] += quantize(r, 0..<r.count, wp)
                }
            }
            r0 = r.upperBound
        }
        nonFiniteBlocks = bad.reduce(0, +)
    }

    /// Copies already quantized data (codes and scales as `withUnsafeStorage` gives them) into
    /// memory of its own, split across `pool` when one is given.
    public convenience init(rows: Int, cols: Int, block: Int, q: UnsafeBufferPointer<Int8>, scales: UnsafeBufferPointer<Float>, pool: ThreadPool? = nil,
                            layout: Layout = preferredLayout) {
        let n = Self.storageCounts(rows: rows, cols: cols, block: block, layout: layout)
        precondition(q.count == n.codes && scales.count == n.scales, "Int8Matrix: \(q.count) codes / \(scales.count) scales for \(rows)x\(cols)")
        self.init(rows: rows, cols: cols, block: block, pool: pool, layout: layout) { r, qd, sd in
            let a = Self.storageOffsets(row: r.lowerBound, cols: cols, block: block, layout: layout)
            qd.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(q)[a.codes..<(a.codes + qd.count)]))
            sd.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scales)[a.scales..<(a.scales + sd.count)]))
            return true
        }!
    }

    /// Already quantized data read in by `fill(r, codes, scales)`, which writes the stored rows r's
    /// codes and scales as `withUnsafeStorage` gives them (from byte offsets `storageOffsets(row:
    /// r.lowerBound, …)`; tiled, r is whole tiles of the padded rows), or returns false (then nil).
    /// Rows are split across `pool` when one is given.
    /// Into memory of its own, not borrowed from a mapping: decode streams weights from anonymous
    /// huge-page memory faster than from the page cache's scattered 4 KiB pages of the weight-cache
    /// file (~8% at 7B; BENCHMARKS.md).
    public init?(rows: Int, cols: Int, block: Int, pool: ThreadPool?, layout: Layout = preferredLayout,
                 fill: (Range<Int>, UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) -> Bool) {
        precondition(rows >= 0 && cols > 0 && block > 0 && block % 32 == 0, "Int8Matrix: bad shape \(rows)x\(cols) block \(block)")
        let nb = (cols + block - 1) / block
        self.rows = rows
        self.cols = cols
        self.block = block
        self.layout = layout
        blocksPerRow = nb
        let stored = layout == .tiles ? ck_q8t_padded_rows(rows) : rows  // rows padded to whole tiles
        let counts = Self.storageCounts(rows: rows, cols: cols, block: block, layout: layout)
        q = AlignedStorage(count: counts.codes)
        scales = AlignedStorage(count: counts.scales)
        let qd = UnsafeMutableRawPointer(q.pointer), sd = scales.pointer, rowBytes = counts.codes / max(stored, 1)
        let threads = pool.map { rows * cols >= Self.parallelThreshold ? $0.threads : 1 } ?? 1, perThread = 4
        // Per chunk: NaN scales (a non-finite block), or -1 when fill failed.
        var bad = [Int](repeating: 0, count: threads * perThread)
        func load(_ r: Range<Int>) -> Int {
            let s = UnsafeMutableBufferPointer(start: sd + r.lowerBound * nb, count: r.count * nb)
            guard fill(r, UnsafeMutableRawBufferPointer(start: qd + r.lowerBound * rowBytes, count: r.count * rowBytes),
                       UnsafeMutableRawBufferPointer(s)) else { return -1 }
            var n = 0
            for v in s where v.isNaN { n += 1 }
            return n
        }
        bad.withUnsafeMutableBufferPointer { bad in
            if let pool, threads > 1 {
                pool.parallelChunks(stored, alignment: layout == .tiles ? 16 : 1, perThread: perThread) { c, r in bad[c] = load(r) }
            } else if stored > 0 {
                bad[0] = load(0..<stored)
            }
        }
        if bad.contains(-1) { return nil }
        nonFiniteBlocks = bad.reduce(0, +)
    }

    /// What the bytes `withUnsafeStorage` gives mean (order, padding, packing of codes and scales)
    /// for matrices of the preferred layout: 1 row-major, 2 tiles. Bump it whenever they change:
    /// caches of quantized weights are keyed by it, so a cache written under another layout (or
    /// on a CPU that prefers the other one) is rebuilt instead of misread.
    public static let storageLayoutVersion = preferredLayout == .tiles ? 2 : 1

    /// How many codes and scales `withUnsafeStorage` gives for a matrix of this shape.
    public static func storageCounts(rows: Int, cols: Int, block: Int, layout: Layout = preferredLayout) -> (codes: Int, scales: Int) {
        let nb = (cols + block - 1) / block
        switch layout {
        case .rowMajor: return (rows * cols, rows * nb)
        case .tiles: return (ck_q8t_padded_rows(rows) * nb * block, ck_q8t_padded_rows(rows) * nb)
        }
    }

    /// Byte offsets of stored row `row`'s codes and scales in `withUnsafeStorage`'s buffers (tiled:
    /// `row` a multiple of 16, where a tile starts).
    public static func storageOffsets(row: Int, cols: Int, block: Int, layout: Layout = preferredLayout) -> (codes: Int, scales: Int) {
        let nb = (cols + block - 1) / block
        return (row * (layout == .tiles ? nb * block : cols), row * nb * MemoryLayout<Float>.size)
    }

    /// The codes and scales, for a cache writer or a test.
    public func withUnsafeStorage<R>(_ body: (UnsafeBufferPointer<Int8>, UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: q.pointer, count: q.count), UnsafeBufferPointer(start: scales.pointer, count: scales.count))
    }

    /// The codes and scales in row-major order whatever the layout: (rows, cols) and (rows, nb).
    public func rowMajorStorage() -> (codes: [Int8], scales: [Float]) {
        guard layout == .tiles else { return withUnsafeStorage { (Array($0), Array($1)) } }
        var c = [Int8](repeating: 0, count: rows * cols), s = [Float](repeating: 0, count: rows * blocksPerRow)
        ck_q8t_unpack(codes, scales.pointer, rows, cols, block, &c, &s)
        return (c, s)
    }

    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * cols) { buf, count in
            if layout == .tiles {
                ck_q8t_dequant(codes, scales.pointer, rows, cols, block, buf.baseAddress!)
            } else {
                ck_q8_dequant(q.pointer, scales.pointer, buf.baseAddress!, rows, cols, block)
            }
            count = rows * cols
        }
    }

    /// Bytes ahead that the tile layout's few-token products prefetch in each tile's stream (0: none;
    /// `ck_q8t_set_prefetch_bytes`). A benchmark's knob: set it before products run, not during.
    public static var tilePrefetchBytes: Int {
        get { Int(ck_q8t_get_prefetch_bytes()) }
        set { ck_q8t_set_prefetch_bytes(max(0, newValue)) }
    }

    /// Bytes ahead that the tile layout's many-token products prefetch into L2 on the first pass over
    /// their tiles, the one that streams them from memory, shared by the tiles read side by side
    /// (0: none; `ck_q8t_set_batch_prefetch_bytes`). A benchmark's knob, as `tilePrefetchBytes`.
    public static var tileBatchPrefetchBytes: Int {
        get { Int(ck_q8t_get_batch_prefetch_bytes()) }
        set { ck_q8t_set_batch_prefetch_bytes(max(0, newValue)) }
    }

    /// Tiles (1–4) the tile layout's few-token products read side by side, each a stream of its own
    /// (`ck_q8t_set_decode_tiles`). A benchmark's knob, as `tilePrefetchBytes`.
    public static var tileDecodeStreams: Int {
        get { Int(ck_q8t_get_decode_tiles()) }
        set { ck_q8t_set_decode_tiles(max(1, newValue)) }
    }

    /// The tile layout's offset-binary codes.
    private var codes: UnsafeMutablePointer<UInt8> { UnsafeMutableRawPointer(q.pointer).assumingMemoryBound(to: UInt8.self) }

    /// Below this many weights a product runs on the calling thread (waking workers costs more).
    static let parallelThreshold = 1 << 16

    public func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        matvec(x, y, pool: pool, activations: Self.defaultActivations)
    }

    /// y (rows,) = W·x. Each y[r] depends only on row r and x, so the split across threads does not
    /// change the result.
    public func matvec(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool, activations: Activations) {
        if layout == .tiles { return tiled(x, n: 1, y, pool: pool, f32: activations == .f32) }
        let qp = q.pointer, sp = scales.pointer, cols = cols, nb = blocksPerRow, block = block
        let threads = rows * cols < Self.parallelThreshold ? 1 : pool.threads
        switch activations {
        case .f32:
            chunks(rows, threads, pool) { r in
                ck_q8_matvec(qp + r.lowerBound * cols, sp + r.lowerBound * nb, x, y + r.lowerBound, r.count, cols, block)
            }
        case .int8:
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: cols) { xq in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: nb) { xs in
                    let xq = xq.baseAddress!, xs = xs.baseAddress!
                    _ = ck_q8_quantize_act(x, xq, xs, cols, block)
                    chunks(rows, threads, pool) { r in
                        ck_q8q8_matvec(qp + r.lowerBound * cols, sp + r.lowerBound * nb, xq, xs, y + r.lowerBound, r.count, cols, block)
                    }
                }
            }
        }
    }

    /// y (n, rows) = x (n, cols) · Wᵀ for n independent rows (batched decode), each bit-identical to
    /// `matvec` of that row alone: int8 activations go through `ck_q8q8_matvec_rows`, which streams
    /// each weight row from memory once for all n; fp32 activations run `ck_q8_matvec` per row on
    /// each thread's row range (which stays in cache between them).
    public func matvecRows(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        matvecRows(x, n: n, y, pool: pool, activations: Self.defaultActivations)
    }

    public func matvecRows(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool, activations: Activations) {
        guard n > 0 else { return }
        if layout == .tiles { return tiled(x, n: n, y, pool: pool, f32: activations == .f32) }
        let qp = q.pointer, sp = scales.pointer, rows = rows, cols = cols, nb = blocksPerRow, block = block
        let threads = rows * cols < Self.parallelThreshold ? 1 : pool.threads
        switch activations {
        case .f32:
            chunks(rows, threads, pool) { r in
                for t in 0..<n {
                    ck_q8_matvec(qp + r.lowerBound * cols, sp + r.lowerBound * nb, x + t * cols, y + t * rows + r.lowerBound, r.count, cols, block)
                }
            }
        case .int8:
            // xu (n, nb·block) offset-binary codes, xs (n, nb): quantized once, read by every thread.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n * nb * block) { xu in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: n * nb) { xs in
                    let xu = xu.baseAddress!, xs = xs.baseAddress!
                    _ = ck_q8q8_act_rows(x, xu, xs, n, cols, block)
                    chunks(rows, threads, pool) { r in
                        ck_q8q8_matvec_rows(qp + r.lowerBound * cols, sp + r.lowerBound * nb, xu, xs, y + r.lowerBound, r.count, cols, block, n, rows)
                    }
                }
            }
        }
    }

    /// How prefill multiplies: the int8 tile kernel (`ck_q8_matmul`: each weight block converted
    /// in registers once per 5 tokens; rows bit-identical to matvec), or tiles of 256 rows
    /// dequantized to fp32 and multiplied by `cblas_sgemm`. The int8 kernel runs at one speed for
    /// any n; dequantize + sgemm overtakes it from ~96 tokens, and only with OpenBLAS's AVX-512
    /// (SkylakeX) kernels: its Haswell-or-older ones, which OpenBLAS 0.3.21 picks on CPUs it does
    /// not know, never do (BENCHMARKS.md). `.automatic` takes BLAS only where it wins.
    /// `.vnniGEMM`: activations quantized to int8 per block too (`ck_q8q8_act_rows`) and
    /// multiplied with AVX-512 VNNI (`ck_q8q8_matmul`, 4 int8 products per lane per instruction).
    /// `.rows`: `matvecRows`, each weight row streamed once for all n tokens, no packing.
    /// These choices are the row-major layout's. On the tile layout (VNNI CPUs) `.automatic`,
    /// `.rows` and `.vnniGEMM` are one kernel, `ck_q8t_matmul` on the tiles as stored (no packing per
    /// call, so no crossover); `.int8Kernel` takes fp32 activations (`ck_q8t_matvec_f32`) and
    /// `.dequantizeBLAS` dequantizes tiles of rows as here.
    public enum MatmulMethod: Sendable { case automatic, int8Kernel, dequantizeBLAS, vnniGEMM, rows }

    /// Whether `.automatic` may take the VNNI GEMM (the CPU has it).
    public static let vnniAvailable = ck_cpu_has_avx512vnni() != 0

    /// `.automatic` takes `.rows` up to this many tokens; 0 where the CPU has no VNNI (there the
    /// int8 kernel's rows already equal `matvec`'s). With VNNI the GEMM packs every weight row into
    /// tiles per call (~3.5 ms for 11008x4096 on 2 threads, whatever n), which a few tokens do not
    /// repay. QuantBenchmark/fewTokens, AMD EPYC (Zen 4), 2 threads, 11008x4096, ms:
    /// n = 8: rows 2.6, GEMM 3.5; n = 12: 4.5 / 3.9; n = 16: 5.6 / 4.5; n = 64: 24.8 / 10.5.
    public static let rowsMaxTokens = vnniAvailable ? 8 : 0

    /// `.automatic` uses dequantize + sgemm from this many tokens on, when OpenBLAS runs AVX-512 kernels.
    public static let blasMinTokens = 96
    /// Whether OpenBLAS chose an AVX-512 sgemm (the only kernels that beat the int8 kernel).
    public static let blasIsFast: Bool = ["skylakex", "cooperlake", "sapphirerapids"].contains(BLASInfo.coreName.lowercased())

    public func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        matmul(x, n: n, y, pool: pool, method: .automatic)
    }

    /// y (n, rows) = x (n, cols) · Wᵀ, rows split across threads.
    public func matmul(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool, method: MatmulMethod) {
        guard n > 0 else { return }
        let qp = q.pointer, sp = scales.pointer, rows = rows, cols = cols, nb = blocksPerRow, block = block
        let threads = n * rows * cols < Self.parallelThreshold ? 1 : pool.threads
        if layout == .tiles {
            switch method {
            case .automatic, .rows, .vnniGEMM: return tiled(x, n: n, y, pool: pool, f32: false)
            case .int8Kernel: return tiled(x, n: n, y, pool: pool, f32: true)
            case .dequantizeBLAS: return dequantizeBLAS(x, n: n, y, pool: pool, threads: threads)
            }
        }
        var method = method
        if method == .automatic {
            method = n <= Self.rowsMaxTokens ? .rows : Self.vnniAvailable ? .vnniGEMM
                : Self.blasIsFast && n >= Self.blasMinTokens ? .dequantizeBLAS : .int8Kernel
        }
        switch method {
        case .rows:
            matvecRows(x, n: n, y, pool: pool, activations: .int8)
        case .vnniGEMM:
            let kp = nb * block
            // xu (n, kp) offset-binary int8 codes, xs (n, nb): quantized once, read by every thread.
            let xu = AlignedStorage<UInt8>(count: n * kp), xs = AlignedStorage<Float>(count: n * nb)
            _ = ck_q8q8_act_rows(x, xu.pointer, xs.pointer, n, cols, block)
            let tileBytes = 2 * ck_q8q8_tile_bytes(cols, block)
            let xup = xu.pointer, xsp = xs.pointer
            // Row ranges in whole 32-row tile pairs, one per thread (each packs its own tiles).
            chunks(rows, threads, pool, alignment: 32, perThread: 1) { r in
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileBytes, alignment: 64)
                defer { scratch.deallocate() }
                ck_q8q8_matmul(qp + r.lowerBound * cols, sp + r.lowerBound * nb, xup, xsp, y + r.lowerBound, r.count, cols, block, n, rows,
                               scratch.assumingMemoryBound(to: UInt8.self))
            }
        case .automatic, .int8Kernel:
            chunks(rows, threads, pool) { r in
                ck_q8_matmul(qp + r.lowerBound * cols, sp + r.lowerBound * nb, x, y + r.lowerBound, r.count, cols, block, n, rows)
            }
        case .dequantizeBLAS:
            dequantizeBLAS(x, n: n, y, pool: pool, threads: threads)
        }
    }

    /// Tiles of 256 rows dequantized to fp32 and multiplied by `cblas_sgemm`.
    private func dequantizeBLAS(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool, threads: Int) {
        precondition(rows < Int(Int32.max) && cols < Int(Int32.max) && n < Int(Int32.max), "Int8Matrix: too large for BLAS int")
        let qp = q.pointer, sp = scales.pointer, codes = codes, tiled = layout == .tiles, rows = rows, cols = cols
        let nb = blocksPerRow, kp = nb * block, block = block, tileRows = 256
        chunks(rows, threads, pool, alignment: 16) { r in
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: min(tileRows, r.count) * cols)
            defer { tile.deallocate() }
            for r0 in stride(from: r.lowerBound, to: r.upperBound, by: tileRows) {
                let tr = min(tileRows, r.upperBound - r0)
                if tiled {
                    ck_q8t_dequant(codes + r0 * kp, sp + r0 * nb, tr, cols, block, tile)
                } else {
                    ck_q8_dequant(qp + r0 * cols, sp + r0 * nb, tile, tr, cols, block)
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(tr), Int32(cols), 1, x, Int32(cols),
                            tile, Int32(cols), 0, y + r0, Int32(rows))
            }
        }
    }

    /// y (n, rows) = x (n, cols) · Wᵀ on the tile layout, whole tiles per thread. int8 activations
    /// (`ck_q8t_act`, quantized once, read by every thread) through the VNNI kernel for any n —
    /// decode, batches and prefill alike, each token's row the same bits whatever n; or fp32
    /// activations token by token (`ck_q8t_matvec_f32`).
    private func tiled(_ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool, f32: Bool) {
        let codes = codes, sp = scales.pointer, rows = rows, cols = cols, nb = blocksPerRow, block = block, kp = nb * block
        let threads = n * rows * cols < Self.parallelThreshold ? 1 : pool.threads
        // More chunks than threads, whole tile pairs for the many-token kernel: the pool hands them
        // to whichever thread is free, so a core slowed by its neighbours does not hold up the rest.
        let perThread = 4, alignment = n <= 3 ? 16 : 32
        if f32 {
            chunks(rows, threads, pool, alignment: 16, perThread: perThread) { r in
                for t in 0..<n {
                    ck_q8t_matvec_f32(codes + r.lowerBound * kp, sp + r.lowerBound * nb, x + t * cols, y + t * rows + r.lowerBound, r.count, cols, block)
                }
            }
            return
        }
        // xq (n, kp) int8, xs (n, nb), xc (n, nb) int32 = -128 · each block's sum of xq.
        let xq = AlignedStorage<Int8>(count: n * kp), xs = AlignedStorage<Float>(count: n * nb), xc = AlignedStorage<Int32>(count: n * nb)
        _ = ck_q8t_act(x, xq.pointer, xs.pointer, xc.pointer, n, cols, block)
        withExtendedLifetime((xq, xs, xc)) {
            let xqp = xq.pointer, xsp = xs.pointer, xcp = xc.pointer
            chunks(rows, threads, pool, alignment: alignment, perThread: perThread) { r in
                ck_q8t_matmul(codes + r.lowerBound * kp, sp + r.lowerBound * nb, xqp, xsp, xcp, y + r.lowerBound, r.count, cols, block, n, rows)
            }
        }
    }

    private func chunks(_ n: Int, _ threads: Int, _ pool: ThreadPool, alignment: Int = 4, perThread: Int = 4,
                        _ body: (Range<Int>) -> Void) {
        if threads == 1 { body(0..<n) } else { pool.parallelChunks(n, alignment: alignment, perThread: perThread) { _, r in body(r) } }
    }
}
