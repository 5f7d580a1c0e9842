// CKernels: stateless C hot loops. Every kernel has a scalar ck_<op>_ref (the specification)
// and SIMD twins chosen once at run time by the dispatcher; Swift decides threads and lifetimes.
#ifndef YANYI_CKERNELS_H
#define YANYI_CKERNELS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

// Which variant the dispatcher uses: 0 = scalar, 1 = AVX2(+F16C), 2 = AVX-512.
typedef enum { CK_ISA_SCALAR = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2 } ck_isa;
ck_isa ck_isa_best(void);
const char *ck_isa_name(ck_isa isa);

// ---- dtype conversion: checkpoint storage -> fp32 -------------------------------------
// in (n,) IEEE binary16 bits -> out (n,) fp32, exact (every half is representable).
void ck_f16_to_f32_ref(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_f16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_f16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_f16_to_f32(const uint16_t *restrict in, float *restrict out, size_t n);

// in (n,) bfloat16 bits -> out (n,) fp32, exact (a shift).
void ck_bf16_to_f32_ref(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_bf16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_bf16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n);
void ck_bf16_to_f32(const uint16_t *restrict in, float *restrict out, size_t n);

// ---- int8 weights: absmax scales over blocks along the input dimension ----------------------
// W (rows, cols) fp32 row-major as in the checkpoint (y = W·x). block: a multiple of 32 (the
// SIMD tails assume it); nb = ceil(cols / block), the last block of each row short when block
// does not divide cols. Storage:  q (rows, cols) int8 row-major;  scales (rows, nb) fp32.
// Per block: amax = max|w|; scale = amax / 127; q = rint(w * (127 / amax)), half to even (the
// default rounding mode). A zero block (amax == 0, or 127 / amax overflows: amax < 3.7e-37)
// has scale 0, q 0. A block holding NaN or ±Inf has scale NaN, q 0 (every output touching it
// is NaN); the return value counts those blocks. q is never -128 (the int8 x int8 kernels rely
// on it). All variants are bit-identical.
size_t ck_q8_quantize_ref(const float *restrict w, int8_t *restrict q, float *restrict scales,
                          size_t rows, size_t cols, size_t block);
size_t ck_q8_quantize_avx2(const float *restrict w, int8_t *restrict q, float *restrict scales,
                           size_t rows, size_t cols, size_t block);
size_t ck_q8_quantize_avx512(const float *restrict w, int8_t *restrict q, float *restrict scales,
                             size_t rows, size_t cols, size_t block);
size_t ck_q8_quantize(const float *restrict w, int8_t *restrict q, float *restrict scales,
                      size_t rows, size_t cols, size_t block);

// out (rows, cols) fp32 = q * scale of its block (one multiply: bit-identical across variants).
void ck_q8_dequant_ref(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                       size_t rows, size_t cols, size_t block);
void ck_q8_dequant_avx2(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                        size_t rows, size_t cols, size_t block);
void ck_q8_dequant_avx512(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                          size_t rows, size_t cols, size_t block);
void ck_q8_dequant(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                   size_t rows, size_t cols, size_t block);

// Decode's hot loop. W (rows, cols) as q + scales @ x (cols,) -> y (rows,):
//   y[r] = sum_b scale[r,b] * sum_{i in b} q[r,i] * x[i]
// Threads take row ranges by offsetting q (r0*cols), scales (r0*nb) and y (r0). The ref sums in
// double; the SIMD twins use fp32 lanes (w = float(q)*scale, acc = fma(w, x, acc), fixed-order
// horizontal sum), each row independent of which rows were called with it.
void ck_q8_matvec_ref(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                      float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8_matvec_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                         float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8_matvec(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                  float *restrict y, size_t rows, size_t cols, size_t block);

// Prefill. X (n, cols) @ Wᵀ -> Y (n, rows) with row stride ldy >= rows (so a thread's row range
// writes into Y + r0). Each Y[t, r] is bit-identical to ck_q8_matvec of token t (same variant).
void ck_q8_matmul_ref(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                      float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy);
void ck_q8_matmul_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy);
void ck_q8_matmul_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                         float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy);
void ck_q8_matmul(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                  float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy);

// ---- int8 weights x int8 activations ----------------------------------------------------------
// x (cols,) -> xq (cols,) int8, xs (nb,) fp32: the weight rule above applied to one row.
size_t ck_q8_quantize_act_ref(const float *restrict x, int8_t *restrict xq, float *restrict xs,
                              size_t cols, size_t block);
size_t ck_q8_quantize_act_avx2(const float *restrict x, int8_t *restrict xq, float *restrict xs,
                               size_t cols, size_t block);
size_t ck_q8_quantize_act_avx512(const float *restrict x, int8_t *restrict xq, float *restrict xs,
                                 size_t cols, size_t block);
size_t ck_q8_quantize_act(const float *restrict x, int8_t *restrict xq, float *restrict xs,
                          size_t cols, size_t block);

// y[r] = sum_b scale[r,b] * xs[b] * sum_{i in b} q[r,i] * xq[i]; block sums exact in int32.
// The VNNI variant needs avx512vnni (ck_cpu_has_avx512vnni); the dispatcher checks.
void ck_q8q8_matvec_ref(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                        const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                         const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8q8_matvec_avx512vnni(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                               const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block);
void ck_q8q8_matvec(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block);
int ck_cpu_has_avx512vnni(void);

// Batched decode: n activation rows against the same weights -> y (n, ldy), ldy >= rows (a
// thread's row range writes into y + r0). Activations as ck_q8q8_act_rows gives them (below):
// xu (n, kp) offset-binary, xs (n, nb). Each y row is bit-identical to ck_q8q8_matvec of that
// activation alone (xq = xu - 128; the same variant); the VNNI variant reads each weight row
// from memory once for up to 8 activations.
void ck_q8q8_matvec_rows_ref(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                             const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                             size_t n, size_t ldy);
void ck_q8q8_matvec_rows_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                                    size_t n, size_t ldy);
void ck_q8q8_matvec_rows(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                         const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                         size_t n, size_t ldy);

// Prefill as an int8 GEMM (q8q8_matmul.c). Activations: each row of x (n, cols) quantized by
// the rule of ck_q8_quantize_act and stored offset-binary, xu = xq + 128, in rows of
// kp = nb * block bytes (the tail past cols holds xq = 0); xs (n, nb). Returns non-finite blocks.
size_t ck_q8q8_act_rows(const float *restrict x, uint8_t *restrict xu, float *restrict xs,
                        size_t n, size_t cols, size_t block);
// Bytes of one packed 16-row weight tile; the VNNI kernel needs 2 of them as scratch, 64-byte aligned.
size_t ck_q8q8_tile_bytes(size_t cols, size_t block);
// Y[t, r] (row stride ldy) = sum_b scale[r,b] * xs[t,b] * sum_{i in b} q[r,i] * xq[t,i]; block
// sums exact in int32, the ref combines blocks in double, the VNNI variant in fp32.
void ck_q8q8_matmul_ref(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                        const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                        size_t n, size_t ldy);
void ck_q8q8_matmul_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                               const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                               size_t n, size_t ldy, uint8_t *restrict scratch);
// The VNNI kernel where the CPU has it, else the ref (callers without VNNI use ck_q8_matmul).
void ck_q8q8_matmul(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                    size_t n, size_t ldy, uint8_t *restrict scratch);

// ---- Packed 16-row tiles (q8_tiles.c): the weights' layout where the CPU has VNNI ---------------
// Tile k holds rows 16k..16k+15: codes (nb, block/4, 16, 4) uint8 offset-binary (q + 128), scales
// (nb, 16) fp32; rows past the matrix are q = 0 with scale 0, columns past cols q = 0. A range of
// whole tiles is contiguous: 16 * nb * block code bytes and 16 * nb scales per tile.
size_t ck_q8t_padded_rows(size_t rows);
// Row-major codes and scales (ck_q8_quantize's) of `rows` rows into tiles (padded to 16 rows).
void ck_q8t_pack(const int8_t *restrict q, const float *restrict scales, size_t rows, size_t cols, size_t block,
                 uint8_t *restrict codes, float *restrict tscales);
// Back to row-major codes and scales (tests, tools).
void ck_q8t_unpack(const uint8_t *restrict codes, const float *restrict tscales, size_t rows, size_t cols, size_t block,
                   int8_t *restrict q, float *restrict scales);
// out (rows, cols) fp32 = q * scale, bit-identical to ck_q8_dequant of the row-major codes.
void ck_q8t_dequant(const uint8_t *restrict codes, const float *restrict tscales, size_t rows, size_t cols, size_t block,
                    float *restrict out);
// y (rows,) = W x with fp32 activations: per tile and block the 16 rows' block sums in fp32, then
// scaled into the totals (one fixed order: matvec and per-token matmul agree bit for bit).
void ck_q8t_matvec_f32(const uint8_t *restrict codes, const float *restrict tscales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block);
// Activations for ck_q8t_matmul: each row of x (n, cols) quantized by ck_q8_quantize_act into xq
// (n, kp) int8 (zero past cols), xs (n, nb), and xc (n, nb) = -128 * the block's sum of xq.
// Returns non-finite blocks.
size_t ck_q8t_act(const float *restrict x, int8_t *restrict xq, float *restrict xs, int32_t *restrict xc,
                  size_t n, size_t cols, size_t block);
// Y[t, r] (row stride ldy) = sum_b scale[r,b] * xs[t,b] * sum_{i in b} q[r,i] * xq[t,i] for the
// `rows` rows of whole tiles starting at codes / tscales; block sums exact in int32, the ref
// combines blocks in double, the VNNI variant in fp32 (each token's bits independent of n).
void ck_q8t_matmul_ref(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                       const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                       size_t cols, size_t block, size_t n, size_t ldy);
void ck_q8t_matmul_avx512vnni(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                              const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                              size_t cols, size_t block, size_t n, size_t ldy);
void ck_q8t_matmul(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                   const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                   size_t cols, size_t block, size_t n, size_t ldy);
// Bytes ahead that the few-token VNNI products prefetch in each tile's stream (0: none); a knob
// for `yanyi bench`, set before any product runs.
void ck_q8t_set_prefetch_bytes(size_t bytes);
size_t ck_q8t_get_prefetch_bytes(void);
// Bytes ahead that the many-token VNNI products prefetch into L2 while their first pass streams
// the tiles from memory, shared by the tiles read side by side (0: none).
void ck_q8t_set_batch_prefetch_bytes(size_t bytes);
size_t ck_q8t_get_batch_prefetch_bytes(void);
// Tiles (1-4) the few-token VNNI products read side by side, each its own stream; a knob likewise.
void ck_q8t_set_decode_tiles(size_t tiles);
size_t ck_q8t_get_decode_tiles(void);

// ---- read bandwidth probe: sum of x (n,), the ref in double ----------------------------------
float ck_read_sum_f32_ref(const float *restrict x, size_t n);
float ck_read_sum_f32_avx512(const float *restrict x, size_t n);
float ck_read_sum_f32(const float *restrict x, size_t n);

// ---- fp32 vector helpers (attention) ----------------------------------------------------------
// x·y; the ref sums in double.
float ck_dot_f32_ref(const float *restrict x, const float *restrict y, size_t n);
float ck_dot_f32_avx2(const float *restrict x, const float *restrict y, size_t n);
float ck_dot_f32_avx512(const float *restrict x, const float *restrict y, size_t n);
float ck_dot_f32(const float *restrict x, const float *restrict y, size_t n);

// y += a*x, fused (one rounding per element): bit-identical across variants.
void ck_axpy_f32_ref(float a, const float *restrict x, float *restrict y, size_t n);
void ck_axpy_f32_avx2(float a, const float *restrict x, float *restrict y, size_t n);
void ck_axpy_f32_avx512(float a, const float *restrict x, float *restrict y, size_t n);
void ck_axpy_f32(float a, const float *restrict x, float *restrict y, size_t n);

// One attention head: scores[j] = scale·q·k_j; out (d,) = softmax(scores)·V over n positions
// (k_j = keys + j·stride, v_j = values + j·stride). scores (n,) is scratch. Softmax in fp32.
void ck_attend_f32_ref(const float *restrict q, const float *restrict keys, const float *restrict values,
                       size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f32_avx2(const float *restrict q, const float *restrict keys, const float *restrict values,
                        size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f32_avx512(const float *restrict q, const float *restrict keys, const float *restrict values,
                          size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f32(const float *restrict q, const float *restrict keys, const float *restrict values,
                   size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);

// ck_attend_f32 over a sequence held in two segments: n0 positions at keys0/values0 (stride0), then
// n1 at keys1/values1 (stride1); scores has n0 + n1 slots. The same operations in the same order as
// one segment holding all n0 + n1 positions, so the result is bit-identical to it (a beam reads the
// prompt's cache, shared by every beam, then its own generated positions).
void ck_attend2_f32_ref(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                        size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1,
                        size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f32_avx2(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                         size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1,
                         size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f32_avx512(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                           size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1,
                           size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f32(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                    size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1,
                    size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);

// ---- half-precision KV cache (kv_f16.c) -------------------------------------------------------
// fp32 -> binary16, round to nearest even, overflow to ±Inf, NaN quiet (F16C's rule): bit-identical.
void ck_f32_to_f16_ref(const float *restrict in, uint16_t *restrict out, size_t n);
void ck_f32_to_f16_avx2(const float *restrict in, uint16_t *restrict out, size_t n);
void ck_f32_to_f16_avx512(const float *restrict in, uint16_t *restrict out, size_t n);
void ck_f32_to_f16(const float *restrict in, uint16_t *restrict out, size_t n);

// ck_attend_f32 with binary16 keys/values (stride in elements).
void ck_attend_f16_ref(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                       size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f16_avx2(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                        size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f16_avx512(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                          size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend_f16(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                   size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out);

// ck_attend2_f32 with binary16 keys/values.
void ck_attend2_f16_ref(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                        size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1,
                        size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f16_avx2(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                         size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1,
                         size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f16_avx512(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                           size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1,
                           size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);
void ck_attend2_f16(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                    size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1,
                    size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out);

// Two queries of one head at consecutive positions of a prompt: qa over positions 0 ..< n, qb over
// 0 ..< n + 1 (its own position too); scores_a (n,), scores_b (n + 1,) scratch. Each output the bits
// ck_attend_f16 gives that query alone; with AVX-512 at d = 64 or 128 each key and value row is
// converted once for both.
void ck_attend_pair_f16_avx512(const float *restrict qa, const float *restrict qb, const uint16_t *restrict keys,
                               const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
                               float *restrict scores_a, float *restrict scores_b, float *restrict out_a, float *restrict out_b);
void ck_attend_pair_f16(const float *restrict qa, const float *restrict qb, const uint16_t *restrict keys,
                        const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
                        float *restrict scores_a, float *restrict scores_b, float *restrict out_a, float *restrict out_b);

#ifdef __cplusplus
}
#endif
#endif
