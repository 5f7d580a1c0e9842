// int8 weights x int8 activations (x quantized per block by ck_q8_quantize_act, same block size):
//   y[r] = sum_b scale[r,b] * xs[b] * sum_{i in b} q[r,i] * xq[i]
// The block dot products are exact integers in every variant; only the fp32 combination of the
// blocks differs in rounding from the reference (which sums in double). Block must be a
// multiple of 32 so that every 32-byte half of a SIMD chunk lies in one block.
//
// The unsigned x signed operand problem: vpmaddubsw / vpdpbusd multiply unsigned bytes by signed
// bytes. AVX2 uses the sign trick, |xq| * (q * sign(xq)); q is never -128, so negating it is
// safe. AVX-512 VNNI uses the offset trick: (q ^ 0x80) is q + 128 as an unsigned byte, and the
// surplus 128 * sum(xq) of each 4-byte group is taken off exactly by starting the dpbusd
// accumulator at -dpbusd(0x80.., xq), computed once per chunk and shared by the rows.
#include "CKernels.h"
#include "simd_util.h"

void ck_q8q8_matvec_ref(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                        const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    for (size_t r = 0; r < rows; r++) {
        const int8_t *qr = q + r * cols;
        double acc = 0;
        for (size_t b = 0; b < nb; b++) {
            int32_t dot = 0;
            for (size_t i = b * block; i < ck_min((b + 1) * block, cols); i++) dot += (int32_t)qr[i] * xq[i];
            acc += (double)scales[r * nb + b] * (double)xs[b] * (double)dot;
        }
        y[r] = (float)acc;
    }
}

void ck_q8q8_matvec_rows_ref(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                             const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                             size_t n, size_t ldy) {
    size_t nb = ck_blocks(cols, block), kp = nb * block;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *xt = xu + t * kp;
        for (size_t r = 0; r < rows; r++) {
            const int8_t *qr = q + r * cols;
            double acc = 0;  // ck_q8q8_matvec_ref's sum, with xq = xu - 128
            for (size_t b = 0; b < nb; b++) {
                int32_t dot = 0;
                for (size_t i = b * block; i < ck_min((b + 1) * block, cols); i++) dot += (int32_t)qr[i] * ((int32_t)xt[i] - 128);
                acc += (double)scales[r * nb + b] * (double)xs[t * nb + b] * (double)dot;
            }
            y[t * ldy + r] = (float)acc;
        }
    }
}

#ifdef CK_X86
// ---- AVX2: 32-byte chunks (one block each), 4 rows share the chunk of x ------------------------
__attribute__((target("avx2,fma"))) CK_INLINE void q8q8_rows256(
    const int8_t *restrict q, const float *restrict s, const int8_t *restrict xq, const float *restrict xs,
    float *restrict y, size_t cols, size_t block, const int R) {
    const size_t nb = ck_blocks(cols, block);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    CK_UNROLL
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    const size_t chunks = block / 32;  // 32-byte chunks per block
    size_t b = 0, pos = 0;              // block of this chunk, and the chunk's index within it
    for (size_t i = 0; i < cols; i += 32) {
        const size_t k = ck_min(32, cols - i);
        int8_t xpad[32] = {0};
        const int8_t *xp = xq + i;
        if (k < 32) { memcpy(xpad, xp, k); xp = xpad; }
        const __m256i xv = _mm256_loadu_si256((const __m256i *)xp);
        const __m256i ax = _mm256_sign_epi8(xv, xv);  // |xq|
        CK_UNROLL
        for (int r = 0; r < R; r++) {
            int8_t wpad[32] = {0};
            const int8_t *wp = q + r * cols + i;
            if (k < 32) { memcpy(wpad, wp, k); wp = wpad; }
            __m256i sw = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)wp), xv);
            __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), ones);
            __m256 sc = _mm256_set1_ps(s[r * nb + b] * xs[b]);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), sc, acc[r]);
        }
        if (++pos == chunks) { pos = 0; b++; }
    }
    CK_UNROLL
    for (int r = 0; r < R; r++) y[r] = ck_hsum256(acc[r]);
}

__attribute__((target("avx2,fma")))
void ck_q8q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                         const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) {
    const size_t nb = ck_blocks(cols, block);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) q8q8_rows256(q + r * cols, scales + r * nb, xq, xs, y + r, cols, block, 4);
    for (; r < rows; r++) q8q8_rows256(q + r * cols, scales + r * nb, xq, xs, y + r, cols, block, 1);
}

// ---- AVX-512 VNNI: 64-byte chunks (two 32-byte halves, each in one block) ----------------------
// Lanes 0-7 take the scale of the block holding bytes [i, i+32), lanes 8-15 that of [i+32, i+64).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) CK_INLINE __m512 scale_pair(
    const float *p, size_t lo, size_t hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_broadcast_ss(p + lo)), _mm256_broadcast_ss(p + hi), 1);
}

// `ahead`: rows of codes to prefetch while these are read (the next group's; NULL for none).
// A 4096-column row is one 4 KiB page, where the hardware streamer stops and must ramp up
// again; asking for the next rows early keeps DRAM busy across those page boundaries.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) CK_INLINE void q8q8_rows512(
    const int8_t *restrict q, const float *restrict s, const int8_t *restrict xq, const float *restrict xs,
    float *restrict y, size_t cols, size_t block, const int R, const int8_t *ahead) {
    const size_t nb = ck_blocks(cols, block);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    CK_UNROLL
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const size_t halves = block / 32;  // 32-byte halves per block
    size_t lo = 0, pos = 0;             // block of the chunk's first half, and that half's index in it
    for (size_t i = 0; i < cols; i += 64) {
        const size_t k = ck_min(64, cols - i);
        const __mmask64 m = k == 64 ? ~(__mmask64)0 : (((__mmask64)1 << k) - 1);
        const size_t hi = ck_min(pos + 1 == halves ? lo + 1 : lo, nb - 1);
        const __m512i xv = k == 64 ? _mm512_loadu_si512(xq + i) : _mm512_maskz_loadu_epi8(m, xq + i);
        // -(128 * xq) summed per 4-byte group: cancels the +128 offset of the weights exactly.
        const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv));
        const __m512 sx = scale_pair(xs, lo, hi);
        if (ahead) {
            CK_UNROLL
            for (int r = 0; r < R; r++) _mm_prefetch((const char *)(ahead + r * cols + i), _MM_HINT_T0);
        }
        CK_UNROLL
        for (int r = 0; r < R; r++) {
            const int8_t *wp = q + r * cols + i;
            __m512i w = k == 64 ? _mm512_loadu_si512(wp) : _mm512_maskz_loadu_epi8(m, wp);
            __m512i dot = _mm512_dpbusd_epi32(corr, _mm512_xor_si512(w, bias), xv);
            __m512 sc = _mm512_mul_ps(scale_pair(s + r * nb, lo, hi), sx);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[r]);
        }
        for (pos += 2; pos >= halves; pos -= halves) lo++;
    }
    CK_UNROLL
    for (int r = 0; r < R; r++) y[r] = ck_hsum512(acc[r]);
}

// Block 32 and whole 64-byte chunks (every 7B/13B projection): each chunk is exactly blocks lo and
// lo + 1. Per span of 512 bytes (16 blocks; the last may be shorter, its scales loaded under a
// mask) a row's 16 scales are multiplied by x's 16 once, and each chunk picks its two products
// with one permute (the same products in the same order as q8q8_rows512: bit-identical). The next
// rows' scales are prefetched with their codes: that is what makes this path faster than
// q8q8_rows512; the permute alone changes nothing (BENCHMARKS.md).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) CK_INLINE void q8q8_rows512_b32(
    const int8_t *restrict q, const float *restrict s, const int8_t *restrict xq, const float *restrict xs,
    float *restrict y, size_t cols, const int R, const int8_t *ahead) {
    const size_t nb = cols / 32;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    CK_UNROLL
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (size_t i = 0; i < cols; i += 512) {
        const size_t b0 = i / 32, chunks = ck_min(8, (cols - i) / 64);
        const __mmask16 m = (__mmask16)((1u << (2 * chunks)) - 1);  // the blocks of this span
        const __m512 sx = _mm512_maskz_loadu_ps(m, xs + b0);
        __m512 sc[4];  // (16,) row scale × x scale of blocks b0 … b0+15
        CK_UNROLL
        for (int r = 0; r < R; r++) sc[r] = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + r * nb + b0), sx);
        if (ahead) {  // the next rows' scales for these blocks (their codes are prefetched below)
            CK_UNROLL
            for (int r = 0; r < R; r++) _mm_prefetch((const char *)(s + (R + r) * nb + b0), _MM_HINT_T0);
        }
        // Lanes 0-7 take product 2c, lanes 8-15 product 2c + 1.
        __m512i pick = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        for (size_t c = 0; c < chunks; c++, pick = _mm512_add_epi32(pick, _mm512_set1_epi32(2))) {
            const size_t k = i + 64 * c;
            const __m512i xv = _mm512_loadu_si512(xq + k);
            const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv));
            if (ahead) {
                CK_UNROLL
                for (int r = 0; r < R; r++) _mm_prefetch((const char *)(ahead + r * cols + k), _MM_HINT_T0);
            }
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                __m512i dot = _mm512_dpbusd_epi32(corr, _mm512_xor_si512(_mm512_loadu_si512(q + r * cols + k), bias), xv);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick, sc[r]), acc[r]);
            }
        }
    }
    CK_UNROLL
    for (int r = 0; r < R; r++) y[r] = ck_hsum512(acc[r]);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni")))
void ck_q8q8_matvec_avx512vnni(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                               const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) {
    const size_t nb = ck_blocks(cols, block);
    size_t r = 0;
    if (block == 32 && cols % 64 == 0) {
        for (; r + 4 <= rows; r += 4)
            q8q8_rows512_b32(q + r * cols, scales + r * nb, xq, xs, y + r, cols, 4, r + 8 <= rows ? q + (r + 4) * cols : NULL);
        for (; r < rows; r++) q8q8_rows512_b32(q + r * cols, scales + r * nb, xq, xs, y + r, cols, 1, NULL);
        return;
    }
    for (; r + 4 <= rows; r += 4)
        q8q8_rows512(q + r * cols, scales + r * nb, xq, xs, y + r, cols, block, 4, r + 8 <= rows ? q + (r + 4) * cols : NULL);
    for (; r < rows; r++) q8q8_rows512(q + r * cols, scales + r * nb, xq, xs, y + r, cols, block, 1, NULL);
}
// ---- Several activation rows (batched decode): each weight row streamed from memory once -------
// R weight rows x T activation rows in one pass (R·T <= 16 accumulators). The roles of the
// operands swap: the activations arrive offset-binary (xu = xq + 128, the unsigned operand,
// prepared once per call) and the weights are the signed one, so the exact correction
// -128 * sum(w) of each 4-byte group is computed once per weight chunk and shared by the T
// activations. Every lane's int32 is the same exact block dot product as q8q8_rows512_b32's, and
// what follows is its operations in its order (block-scale products, permute, fma, horizontal
// sum), so each output is bit-identical to ck_q8q8_matvec_avx512vnni of that activation alone.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) CK_INLINE void q8q8_rows512_b32_multi(
    const int8_t *restrict q, const float *restrict s, const uint8_t *restrict xu, size_t kp, const float *restrict xs,
    float *restrict y, size_t cols, size_t ldy, const int R, const int T, const int8_t *ahead) {
    const size_t nb = cols / 32;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[4][8];
    CK_UNROLL
    for (int r = 0; r < R; r++) {
        CK_UNROLL
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < cols; i += 512) {
        const size_t b0 = i / 32, chunks = ck_min(8, (cols - i) / 64);
        const __mmask16 m = (__mmask16)((1u << (2 * chunks)) - 1);
        __m512 sc[4][8];  // (16,) row scale × activation scale of blocks b0 … b0+15
        CK_UNROLL
        for (int t = 0; t < T; t++) {
            const __m512 sx = _mm512_maskz_loadu_ps(m, xs + t * nb + b0);
            CK_UNROLL
            for (int r = 0; r < R; r++) sc[r][t] = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + r * nb + b0), sx);
        }
        if (ahead) {
            CK_UNROLL
            for (int r = 0; r < R; r++) _mm_prefetch((const char *)(s + (R + r) * nb + b0), _MM_HINT_T0);
        }
        __m512i pick = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        for (size_t c = 0; c < chunks; c++, pick = _mm512_add_epi32(pick, _mm512_set1_epi32(2))) {
            const size_t k = i + 64 * c;
            if (ahead) {
                CK_UNROLL
                for (int r = 0; r < R; r++) _mm_prefetch((const char *)(ahead + r * cols + k), _MM_HINT_T0);
            }
            __m512i w[4], corr[4];
            CK_UNROLL
            for (int r = 0; r < R; r++) {
                w[r] = _mm512_loadu_si512(q + r * cols + k);
                corr[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, w[r]));
            }
            CK_UNROLL
            for (int t = 0; t < T; t++) {
                const __m512i xv = _mm512_loadu_si512(xu + t * kp + k);
                CK_UNROLL
                for (int r = 0; r < R; r++) {
                    __m512i dot = _mm512_dpbusd_epi32(corr[r], xv, w[r]);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick, sc[r][t]), acc[r][t]);
                }
            }
        }
    }
    CK_UNROLL
    for (int r = 0; r < R; r++) {
        CK_UNROLL
        for (int t = 0; t < T; t++) y[t * ldy + r] = ck_hsum512(acc[r][t]);
    }
}

// Rows [r, r + R) against activations [t, t + T), the next rows prefetched when `ahead`.
#define CK_MULTI(R, T) q8q8_rows512_b32_multi(q + r * cols, scales + r * nb, xu + t * kp, kp, xs + t * nb, y + t * ldy + r, \
                                              cols, ldy, R, T, t == 0 && r + 2 * (R) <= rows ? q + (r + (R)) * cols : NULL)

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni")))
void ck_q8q8_matvec_rows_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                                    size_t n, size_t ldy) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block;
    if (!(block == 32 && cols % 64 == 0)) {  // the single-row kernel per activation (the same results)
        int8_t xq[kp];
        for (size_t t = 0; t < n; t++) {
            for (size_t i = 0; i < cols; i++) xq[i] = (int8_t)(xu[t * kp + i] ^ 0x80);
            ck_q8q8_matvec_avx512vnni(q, scales, xq, xs + t * nb, y + t * ldy, rows, cols, block);
        }
        return;
    }
    // Up to 8 activations in one pass (4 rows at a time for up to 4, 2 rows for more); beyond 8,
    // further passes over the same rows, which come from cache.
    for (size_t t = 0; t < n; t += 8) {
        const size_t m = ck_min(8, n - t);
        size_t r = 0;
        switch (m) {
        case 8: for (; r + 2 <= rows; r += 2) CK_MULTI(2, 8); for (; r < rows; r++) CK_MULTI(1, 8); break;
        case 7: for (; r + 2 <= rows; r += 2) CK_MULTI(2, 7); for (; r < rows; r++) CK_MULTI(1, 7); break;
        case 6: for (; r + 2 <= rows; r += 2) CK_MULTI(2, 6); for (; r < rows; r++) CK_MULTI(1, 6); break;
        case 5: for (; r + 2 <= rows; r += 2) CK_MULTI(2, 5); for (; r < rows; r++) CK_MULTI(1, 5); break;
        case 4: for (; r + 4 <= rows; r += 4) CK_MULTI(4, 4); for (; r < rows; r++) CK_MULTI(1, 4); break;
        case 3: for (; r + 4 <= rows; r += 4) CK_MULTI(4, 3); for (; r < rows; r++) CK_MULTI(1, 3); break;
        case 2: for (; r + 4 <= rows; r += 4) CK_MULTI(4, 2); for (; r < rows; r++) CK_MULTI(1, 2); break;
        default: for (; r + 4 <= rows; r += 4) CK_MULTI(4, 1); for (; r < rows; r++) CK_MULTI(1, 1); break;
        }
    }
}
#undef CK_MULTI
#else
void ck_q8q8_matvec_avx2(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq, const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) { ck_q8q8_matvec_ref(q, scales, xq, xs, y, rows, cols, block); }
void ck_q8q8_matvec_avx512vnni(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq, const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) { ck_q8q8_matvec_ref(q, scales, xq, xs, y, rows, cols, block); }
void ck_q8q8_matvec_rows_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu, const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) { ck_q8q8_matvec_rows_ref(q, scales, xu, xs, y, rows, cols, block, n, ldy); }
#endif
