// int8 weights x fp32 activations: decode's matvec (the hot loop) and prefill's batched matmul.
// The SIMD variants share one register tile (R weight rows x T tokens) whose per-lane arithmetic
// does not depend on R or T:  w = float(q) * scale;  acc = fma(w, x, acc);  y = hsum(acc).
// So a row of ck_q8_matmul is bit-identical to ck_q8_matvec of that token, whatever the row
// range a thread was given. The scalar reference sums in double (the exact value, rounded once).
#include "CKernels.h"
#include "simd_util.h"

// ---- specification ----------------------------------------------------------------------------
static float q8_row_dot_ref(const int8_t *restrict q, const float *restrict s, const float *restrict x,
                            size_t cols, size_t block) {
    double acc = 0;
    for (size_t i0 = 0, b = 0; i0 < cols; i0 += block, b++) {
        double sum = 0;
        for (size_t i = i0; i < ck_min(i0 + block, cols); i++) sum += (double)q[i] * (double)x[i];
        acc += (double)s[b] * sum;
    }
    return (float)acc;
}

void ck_q8_matvec_ref(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                      float *restrict y, size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    for (size_t r = 0; r < rows; r++) y[r] = q8_row_dot_ref(q + r * cols, scales + r * nb, x, cols, block);
}

void ck_q8_matmul_ref(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                      float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) {
    size_t nb = ck_blocks(cols, block);
    for (size_t t = 0; t < n; t++)
        for (size_t r = 0; r < rows; r++)
            y[t * ldy + r] = q8_row_dot_ref(q + r * cols, scales + r * nb, x + t * cols, cols, block);
}

#ifdef CK_X86
// Rows of weights kept hot in L2 while every token tile passes over them (64 x 11008 B = 704 KiB).
enum { MC_ROWS = 64 };

// ---- AVX2: tile of R <= 4 rows x T <= 4 tokens, 8 lanes ----------------------------------------
__attribute__((target("avx2,fma"))) CK_INLINE void tile256(
    const int8_t *restrict q, const float *restrict s, const float *restrict x, float *restrict y,
    size_t cols, size_t block, size_t ldy, const int R, const int T) {
    const size_t nb = ck_blocks(cols, block);
    __m256 acc[4][4];
    CK_UNROLL
    for (int r = 0; r < R; r++)
        CK_UNROLL
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * block, end = ck_min(i0 + block, cols);
        __m256 sv[4];
        CK_UNROLL
        for (int r = 0; r < R; r++) sv[r] = _mm256_broadcast_ss(s + r * nb + b);
        size_t i = i0;
        for (; i + 8 <= end; i += 8) {
            __m256 w[4];
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + r * cols + i)));
                w[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(v), sv[r]);
            }
            CK_UNROLL
            for (int t = 0; t < T; t++) {
                __m256 xv = _mm256_loadu_ps(x + t * cols + i);
                CK_UNROLL
                for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(w[r], xv, acc[r][t]);
            }
        }
        if (i < end) {  // short last block: zero-padded copies, same arithmetic
            const size_t k = end - i;
            const __m256i m = ck_mask256(k);
            __m256 w[4];
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                int8_t pad[8] = {0};
                memcpy(pad, q + r * cols + i, k);
                __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)pad));
                w[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(v), sv[r]);
            }
            CK_UNROLL
            for (int t = 0; t < T; t++) {
                __m256 xv = _mm256_maskload_ps(x + t * cols + i, m);
                CK_UNROLL
                for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(w[r], xv, acc[r][t]);
            }
        }
    }
    CK_UNROLL
    for (int r = 0; r < R; r++)
        CK_UNROLL
        for (int t = 0; t < T; t++) y[t * ldy + r] = ck_hsum256(acc[r][t]);
}

__attribute__((target("avx2,fma")))
void ck_q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block) {
    const size_t nb = ck_blocks(cols, block);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) tile256(q + r * cols, scales + r * nb, x, y + r, cols, block, 1, 4, 1);
    for (; r < rows; r++) tile256(q + r * cols, scales + r * nb, x, y + r, cols, block, 1, 1, 1);
}

__attribute__((target("avx2,fma")))
void ck_q8_matmul_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) {
    const size_t nb = ck_blocks(cols, block);
    for (size_t r0 = 0; r0 < rows; r0 += MC_ROWS) {
        const size_t r1 = ck_min(r0 + MC_ROWS, rows);
        for (size_t t = 0; t < n; t += 4) {
            const float *xt = x + t * cols;
            float *yt = y + t * ldy;
            const size_t T = ck_min(4, n - t);
            size_t r = r0;
            for (; r + 2 <= r1; r += 2) {
                const int8_t *qr = q + r * cols;
                const float *sr = scales + r * nb;
                switch (T) {
                case 4: tile256(qr, sr, xt, yt + r, cols, block, ldy, 2, 4); break;
                case 3: tile256(qr, sr, xt, yt + r, cols, block, ldy, 2, 3); break;
                case 2: tile256(qr, sr, xt, yt + r, cols, block, ldy, 2, 2); break;
                default: tile256(qr, sr, xt, yt + r, cols, block, ldy, 2, 1); break;
                }
            }
            for (; r < r1; r++)
                for (size_t u = 0; u < T; u++)
                    tile256(q + r * cols, scales + r * nb, xt + u * cols, yt + u * ldy + r, cols, block, ldy, 1, 1);
        }
    }
}

// ---- AVX-512: tile of R <= 4 rows x T <= 5 tokens, 16 lanes ------------------------------------
__attribute__((target("avx512f,avx512bw,avx512vl"))) CK_INLINE void tile512(
    const int8_t *restrict q, const float *restrict s, const float *restrict x, float *restrict y,
    size_t cols, size_t block, size_t ldy, const int R, const int T) {
    const size_t nb = ck_blocks(cols, block);
    __m512 acc[4][5];
    CK_UNROLL
    for (int r = 0; r < R; r++)
        CK_UNROLL
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    // Blocks of 32 (the default) with whole blocks: the same arithmetic as the general loop below,
    // without its per-block bookkeeping, which at B = 32 bounds the kernel by compute (BENCHMARKS.md).
    const size_t full = block == 32 ? cols / 32 : 0;
    for (size_t b = 0; b < full; b++) {
        const size_t i = b * 32;
        __m512 w0[4], w1[4];
        CK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 sv = _mm512_set1_ps(s[r * nb + b]);
            w0[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + r * cols + i)))), sv);
            w1[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + r * cols + i + 16)))), sv);
        }
        CK_UNROLL
        for (int t = 0; t < T; t++) {
            const __m512 x0 = _mm512_loadu_ps(x + t * cols + i);
            CK_UNROLL
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(w0[r], x0, acc[r][t]);
        }
        CK_UNROLL
        for (int t = 0; t < T; t++) {
            const __m512 x1 = _mm512_loadu_ps(x + t * cols + i + 16);
            CK_UNROLL
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(w1[r], x1, acc[r][t]);
        }
    }
    for (size_t b = full; b < nb; b++) {
        const size_t i0 = b * block, end = ck_min(i0 + block, cols);
        __m512 sv[4];
        CK_UNROLL
        for (int r = 0; r < R; r++) sv[r] = _mm512_set1_ps(s[r * nb + b]);
        size_t i = i0;
        for (; i + 16 <= end; i += 16) {
            __m512 w[4];
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + r * cols + i)));
                w[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(v), sv[r]);
            }
            CK_UNROLL
            for (int t = 0; t < T; t++) {
                __m512 xv = _mm512_loadu_ps(x + t * cols + i);
                CK_UNROLL
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(w[r], xv, acc[r][t]);
            }
        }
        if (i < end) {  // short last block: masked (zero) lanes, same arithmetic
            const __mmask16 m = (__mmask16)((1u << (end - i)) - 1);
            __m512 w[4];
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                __m512i v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + r * cols + i));
                w[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(v), sv[r]);
            }
            CK_UNROLL
            for (int t = 0; t < T; t++) {
                __m512 xv = _mm512_maskz_loadu_ps(m, x + t * cols + i);
                CK_UNROLL
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(w[r], xv, acc[r][t]);
            }
        }
    }
    CK_UNROLL
    for (int r = 0; r < R; r++)
        CK_UNROLL
        for (int t = 0; t < T; t++) y[t * ldy + r] = ck_hsum512(acc[r][t]);
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
void ck_q8_matvec_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                         float *restrict y, size_t rows, size_t cols, size_t block) {
    const size_t nb = ck_blocks(cols, block);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) tile512(q + r * cols, scales + r * nb, x, y + r, cols, block, 1, 4, 1);
    for (; r < rows; r++) tile512(q + r * cols, scales + r * nb, x, y + r, cols, block, 1, 1, 1);
}

// Prefill tile: MR weight rows x NT tokens = 20 accumulators + 4 converted weight vectors + 4
// scales + one x vector: 29 of the 32 zmm registers, no spills. The fastest of the tile shapes
// measured (4x6 spills a register; BENCHMARKS.md).
#define CK_MM512_MR 4
#define CK_MM512_NT 5
#define CK_TILE512_CASE(T) case T: tile512(qr, sr, xt, yt + r, cols, block, ldy, CK_MM512_MR, T); break;

__attribute__((target("avx512f,avx512bw,avx512vl")))
void ck_q8_matmul_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                         float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) {
    const size_t nb = ck_blocks(cols, block);
    for (size_t r0 = 0; r0 < rows; r0 += MC_ROWS) {
        const size_t r1 = ck_min(r0 + MC_ROWS, rows);
        for (size_t t = 0; t < n; t += CK_MM512_NT) {
            const float *xt = x + t * cols;
            float *yt = y + t * ldy;
            const size_t T = ck_min(CK_MM512_NT, n - t);
            size_t r = r0;
            for (; r + CK_MM512_MR <= r1; r += CK_MM512_MR) {
                const int8_t *qr = q + r * cols;
                const float *sr = scales + r * nb;
                switch (T) {
                CK_TILE512_CASE(1) CK_TILE512_CASE(2) CK_TILE512_CASE(3) CK_TILE512_CASE(4)
                CK_TILE512_CASE(5)
                default: break;
                }
            }
            for (; r < r1; r++)
                for (size_t u = 0; u < T; u++)
                    tile512(q + r * cols, scales + r * nb, xt + u * cols, yt + u * ldy + r, cols, block, ldy, 1, 1);
        }
    }
}
#else
void ck_q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x, float *restrict y, size_t rows, size_t cols, size_t block) { ck_q8_matvec_ref(q, scales, x, y, rows, cols, block); }
void ck_q8_matvec_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x, float *restrict y, size_t rows, size_t cols, size_t block) { ck_q8_matvec_ref(q, scales, x, y, rows, cols, block); }
void ck_q8_matmul_avx2(const int8_t *restrict q, const float *restrict scales, const float *restrict x, float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) { ck_q8_matmul_ref(q, scales, x, y, rows, cols, block, n, ldy); }
void ck_q8_matmul_avx512(const int8_t *restrict q, const float *restrict scales, const float *restrict x, float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) { ck_q8_matmul_ref(q, scales, x, y, rows, cols, block, n, ldy); }
#endif
