// Load-time int8 quantization (absmax per block along the input dimension) and its inverse.
// The scalar versions are the specification; every variant is bit-identical to them: amax is
// an exact maximum, the scale and its inverse are the same two scalar divisions, and each q is
// one fp32 multiply rounded half to even.
#include "CKernels.h"
#include "simd_util.h"
#include <math.h>

// ---- specification ----------------------------------------------------------------------------
static size_t quantize_block_ref(const float *restrict w, int8_t *restrict q, float *restrict scale, size_t n) {
    uint32_t amax = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &w[i], sizeof u);
        u &= 0x7FFFFFFFu;
        if (u > amax) amax = u;
    }
    float inv;
    int kind = ck_q8_block_scale(amax, scale, &inv);
    if (kind != 0) {
        memset(q, 0, n);
        return kind == 2;
    }
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)rintf(w[i] * inv);
    return 0;
}

size_t ck_q8_quantize_ref(const float *restrict w, int8_t *restrict q, float *restrict scales,
                          size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block), bad = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i = b * block, n = ck_min(block, cols - i);
            bad += quantize_block_ref(w + r * cols + i, q + r * cols + i, scales + r * nb + b, n);
        }
    return bad;
}

void ck_q8_dequant_ref(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                       size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < cols; i++) out[r * cols + i] = (float)q[r * cols + i] * scales[r * nb + i / block];
}

#ifdef CK_X86
// ---- AVX2: 8 lanes, tails through maskload / an 8-byte bounce buffer ----------------------------
__attribute__((target("avx2")))
static size_t quantize_block_avx2(const float *restrict w, int8_t *restrict q, float *restrict scale, size_t n) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i)), abs_mask));
        m1 = _mm256_max_epu32(m1, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i + 8)), abs_mask));
    }
    for (; i < n; i += 8) {
        __m256i v = _mm256_castps_si256(_mm256_maskload_ps(w + i, ck_mask256(ck_min(8, n - i))));
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(v, abs_mask));
    }
    __m256i m = _mm256_max_epu32(m0, m1);
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    float inv;
    int kind = ck_q8_block_scale((uint32_t)_mm_cvtsi128_si32(h), scale, &inv);
    if (kind != 0) {
        memset(q, 0, n);
        return kind == 2;
    }
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i < n; i += 8) {
        size_t k = ck_min(8, n - i);
        __m256 f = k == 8 ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, ck_mask256(k));
        __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(f, vinv));  // MXCSR default: half to even
        __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        p = _mm_packs_epi16(p, p);
        if (k == 8) {
            _mm_storel_epi64((__m128i *)(q + i), p);
        } else {
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)tmp, p);
            memcpy(q + i, tmp, k);
        }
    }
    return 0;
}

__attribute__((target("avx2")))
size_t ck_q8_quantize_avx2(const float *restrict w, int8_t *restrict q, float *restrict scales,
                           size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block), bad = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i = b * block, n = ck_min(block, cols - i);
            bad += quantize_block_avx2(w + r * cols + i, q + r * cols + i, scales + r * nb + b, n);
        }
    return bad;
}

__attribute__((target("avx2")))
void ck_q8_dequant_avx2(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                        size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i0 = b * block, n = ck_min(block, cols - i0), i = 0;
            const int8_t *qb = q + r * cols + i0;
            float *ob = out + r * cols + i0;
            const __m256 s = _mm256_set1_ps(scales[r * nb + b]);
            for (; i + 8 <= n; i += 8) {
                __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qb + i)));
                _mm256_storeu_ps(ob + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
            }
            for (; i < n; i++) ob[i] = (float)qb[i] * scales[r * nb + b];
        }
}

// ---- AVX-512: 16 lanes, tails through masked loads and stores -----------------------------------
__attribute__((target("avx512f,avx512bw")))
static size_t quantize_block_avx512(const float *restrict w, int8_t *restrict q, float *restrict scale, size_t n) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(w + i), abs_mask));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(w + i + 16), abs_mask));
    }
    for (; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(k, w + i), abs_mask));
    }
    float inv;
    int kind = ck_q8_block_scale(_mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1)), scale, &inv);
    if (kind != 0) {
        memset(q, 0, n);
        return kind == 2;
    }
    const __m512 vinv = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(w + i), vinv));
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(v));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + i), vinv));
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, k, v);
    }
    return 0;
}

__attribute__((target("avx512f,avx512bw")))
size_t ck_q8_quantize_avx512(const float *restrict w, int8_t *restrict q, float *restrict scales,
                             size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block), bad = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i = b * block, n = ck_min(block, cols - i);
            bad += quantize_block_avx512(w + r * cols + i, q + r * cols + i, scales + r * nb + b, n);
        }
    return bad;
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
void ck_q8_dequant_avx512(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                          size_t rows, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            size_t i0 = b * block, n = ck_min(block, cols - i0);
            const int8_t *qb = q + r * cols + i0;
            float *ob = out + r * cols + i0;
            const __m512 s = _mm512_set1_ps(scales[r * nb + b]);
            for (size_t i = 0; i < n; i += 16) {
                __mmask16 k = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
                __m512i v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, qb + i));
                _mm512_mask_storeu_ps(ob + i, k, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
            }
        }
}
#else
size_t ck_q8_quantize_avx2(const float *restrict w, int8_t *restrict q, float *restrict scales, size_t rows, size_t cols, size_t block) { return ck_q8_quantize_ref(w, q, scales, rows, cols, block); }
size_t ck_q8_quantize_avx512(const float *restrict w, int8_t *restrict q, float *restrict scales, size_t rows, size_t cols, size_t block) { return ck_q8_quantize_ref(w, q, scales, rows, cols, block); }
void ck_q8_dequant_avx2(const int8_t *restrict q, const float *restrict scales, float *restrict out, size_t rows, size_t cols, size_t block) { ck_q8_dequant_ref(q, scales, out, rows, cols, block); }
void ck_q8_dequant_avx512(const int8_t *restrict q, const float *restrict scales, float *restrict out, size_t rows, size_t cols, size_t block) { ck_q8_dequant_ref(q, scales, out, rows, cols, block); }
#endif

// The activation quantizer is the weight quantizer applied to one row.
size_t ck_q8_quantize_act_ref(const float *restrict x, int8_t *restrict xq, float *restrict xs, size_t cols, size_t block) {
    return ck_q8_quantize_ref(x, xq, xs, 1, cols, block);
}
size_t ck_q8_quantize_act_avx2(const float *restrict x, int8_t *restrict xq, float *restrict xs, size_t cols, size_t block) {
    return ck_q8_quantize_avx2(x, xq, xs, 1, cols, block);
}
size_t ck_q8_quantize_act_avx512(const float *restrict x, int8_t *restrict xq, float *restrict xs, size_t cols, size_t block) {
    return ck_q8_quantize_avx512(x, xq, xs, 1, cols, block);
}
