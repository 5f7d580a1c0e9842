// The half-precision KV cache of the int8 path: fp32 -> binary16 when keys/values are stored,
// and one attention head read straight from binary16 keys/values (half the bytes per position,
// which is what decode at long context streams besides the weights).
#include "CKernels.h"
#include "simd_util.h"
#include <math.h>

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// IEEE round-to-nearest-even; overflow -> ±Inf; results below the smallest normal become
// subnormals (rounded once); NaN -> quiet NaN keeping the top payload bits, as F16C's vcvtps2ph.
static inline uint16_t f32_to_f16_one(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (a > 0x7F800000u ? 0x200u | ((a >> 13) & 0x3FFu) : 0));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);          // ≥ 65520 rounds to Inf
    if (a < 0x38800000u) {                                              // below 2^-14: subnormal
        if (a < 0x33000000u) return sign;                               // < 2^-25: rounds to 0
        const uint32_t e = a >> 23, man = (a & 0x7FFFFFu) | 0x800000u;
        const uint32_t shift = 126 - e;                                 // 14..24 (2^-15 .. 2^-25 range)
        uint32_t r = man >> shift;
        const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (a - 0x38000000u) >> 13;                               // rebias 127 -> 15
    const uint32_t rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;              // carries into the exponent
    return (uint16_t)(sign | r);
}

static inline float f16_to_f32(uint16_t h) {
    float f;
    ck_f16_to_f32_ref(&h, &f, 1);
    return f;
}

void ck_f32_to_f16_ref(const float *restrict in, uint16_t *restrict out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f32_to_f16_one(in[i]);
}

// Same contract as ck_attend_f32 with binary16 keys/values (CK_ATTEND_BODY, simd_util.h); the
// ref converts each and sums the dot product in double.
static inline float dot_f16_ref(const float *restrict q, const uint16_t *restrict k, size_t d) {
    double acc = 0;
    for (size_t i = 0; i < d; i++) acc += (double)q[i] * (double)f16_to_f32(k[i]);
    return (float)acc;
}

static inline void axpy_f16_ref(float a, const uint16_t *restrict v, float *restrict y, size_t d) {
    for (size_t i = 0; i < d; i++) y[i] = fmaf(a, f16_to_f32(v[i]), y[i]);
}

void ck_attend_f16_ref(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                       size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_f16_ref, axpy_f16_ref, CK_NO_PREFETCH, keys, values, stride, n, keys, values, stride, 0)
}

void ck_attend2_f16_ref(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                        size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1, size_t stride1,
                        size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_f16_ref, axpy_f16_ref, CK_NO_PREFETCH, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}

#ifdef CK_X86
__attribute__((target("avx2,f16c")))
void ck_f32_to_f16_avx2(const float *restrict in, uint16_t *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    ck_f32_to_f16_ref(in + i, out + i, n - i);
}

__attribute__((target("avx512f")))
void ck_f32_to_f16_avx512(const float *restrict in, uint16_t *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    ck_f32_to_f16_ref(in + i, out + i, n - i);
}

__attribute__((target("avx2,fma,f16c"))) CK_INLINE float dot_f16_avx2(const float *restrict q, const uint16_t *restrict k, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8))), a1);
    }
    float tail = 0;
    for (; i < d; i++) tail = fmaf(q[i], f16_to_f32(k[i]), tail);
    return ck_hsum256(_mm256_add_ps(a0, a1)) + tail;
}

__attribute__((target("avx2,fma,f16c"))) CK_INLINE void axpy_f16_avx2(float a, const uint16_t *restrict v, float *restrict y, size_t d) {
    const __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), _mm256_loadu_ps(y + i)));
    for (; i < d; i++) y[i] = fmaf(a, f16_to_f32(v[i]), y[i]);
}

__attribute__((target("avx512f"))) CK_INLINE float dot_f16_avx512(const float *restrict q, const uint16_t *restrict k, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i))), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i + 16))), a1);
    }
    for (; i + 16 <= d; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i))), a0);
    float tail = 0;                                   // head dims are multiples of 16 in practice
    for (; i < d; i++) tail = fmaf(q[i], f16_to_f32(k[i]), tail);
    return ck_hsum512(_mm512_add_ps(a0, a1)) + tail;
}

__attribute__((target("avx512f"))) CK_INLINE void axpy_f16_avx512(float a, const uint16_t *restrict v, float *restrict y, size_t d) {
    const __m512 av = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i)));
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, x, _mm512_loadu_ps(y + i)));
    }
    for (; i < d; i++) y[i] = fmaf(a, f16_to_f32(v[i]), y[i]);
}

__attribute__((target("avx2,fma,f16c")))
void ck_attend_f16_avx2(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                        size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_f16_avx2, axpy_f16_avx2, CK_PREFETCH_ROW, keys, values, stride, n, keys, values, stride, 0)
}

__attribute__((target("avx2,fma,f16c")))
void ck_attend2_f16_avx2(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                         size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1, size_t stride1,
                         size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_f16_avx2, axpy_f16_avx2, CK_PREFETCH_ROW, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}

// The weighted sum of values for a head of D = 16·V dims (64, 128: every model here) with the
// output row held in V registers instead of memory: the same fmadd per element and value in the
// same order as axpy_f16_avx512 (so the same bits), without a store and reload per position.
__attribute__((target("avx512f"))) CK_INLINE void weigh_f16_avx512(const float *restrict scores, float inv, const uint16_t *restrict v0,
                                                                  size_t s0, size_t n0, const uint16_t *restrict v1, size_t s1, size_t n1,
                                                                  float *restrict out, const int V) {
    __m512 acc[8];
    CK_UNROLL
    for (int i = 0; i < V; i++) acc[i] = _mm512_setzero_ps();
#define CK_WEIGH(VP, S, N, OFF)                                                                             \
    for (size_t j = 0; j < (N); j++) {                                                                      \
        CK_PREFETCH_ROW((VP) + (j + CK_ATTEND_AHEAD) * (S), 16 * (size_t)V);                                \
        const __m512 av = _mm512_set1_ps(scores[(OFF) + j] * inv);                                          \
        const uint16_t *row = (VP) + j * (S);                                                               \
        CK_UNROLL                                                                                           \
        for (int i = 0; i < V; i++)                                                                         \
            acc[i] = _mm512_fmadd_ps(av, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * i))), acc[i]); \
    }
    CK_WEIGH(v0, s0, n0, 0)
    CK_WEIGH(v1, s1, n1, n0)
#undef CK_WEIGH
    CK_UNROLL
    for (int i = 0; i < V; i++) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

// CK_ATTEND_BODY for d = 64 or 128, the values weighed by weigh_f16_avx512.
#define CK_ATTEND_F16_REGS(K0, V0, S0, N0, K1, V1, S1, N1)                                                  \
    {                                                                                                       \
        CK_ATTEND_WEIGHTS(dot_f16_avx512, CK_PREFETCH_ROW, K0, S0, N0, K1, S1, N1)                          \
        if (d == 128) weigh_f16_avx512(scores, inv, (V0), (S0), n0_, (V1), (S1), (N1), out, 8);             \
        else weigh_f16_avx512(scores, inv, (V0), (S0), n0_, (V1), (S1), (N1), out, 4);                      \
    }

__attribute__((target("avx512f")))
void ck_attend_f16_avx512(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                          size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    if (d == 128 || d == 64) {
        CK_ATTEND_F16_REGS(keys, values, stride, n, keys, values, stride, 0)
        return;
    }
    CK_ATTEND_BODY(dot_f16_avx512, axpy_f16_avx512, CK_PREFETCH_ROW, keys, values, stride, n, keys, values, stride, 0)
}

__attribute__((target("avx512f")))
void ck_attend2_f16_avx512(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                           size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1, size_t stride1,
                           size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    if (d == 128 || d == 64) {
        CK_ATTEND_F16_REGS(keys0, values0, stride0, n0, keys1, values1, stride1, n1)
        return;
    }
    CK_ATTEND_BODY(dot_f16_avx512, axpy_f16_avx512, CK_PREFETCH_ROW, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}
#undef CK_ATTEND_F16_REGS

// dot_f16_avx512 of two queries against one key row, the row converted once: each query's
// fmadds, sums and tail in dot_f16_avx512's order (d a multiple of 32 here), so the same bits.
__attribute__((target("avx512f"))) CK_INLINE void dot2_f16_avx512(const float *restrict qa, const float *restrict qb,
                                                                 const uint16_t *restrict k, size_t d, float *sa, float *sb) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    for (size_t i = 0; i + 32 <= d; i += 32) {
        const __m512 k0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i)));
        const __m512 k1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i + 16)));
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qa + i), k0, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qa + i + 16), k1, a1);
        b0 = _mm512_fmadd_ps(_mm512_loadu_ps(qb + i), k0, b0);
        b1 = _mm512_fmadd_ps(_mm512_loadu_ps(qb + i + 16), k1, b1);
    }
    const float tail = 0;
    *sa = ck_hsum512(_mm512_add_ps(a0, a1)) + tail;
    *sb = ck_hsum512(_mm512_add_ps(b0, b1)) + tail;
}

// Two queries of one head at consecutive positions of a prompt (d = 16·V): qa sees positions
// 0 ..< n, qb 0 ..< n + 1. Each key and value row is loaded and converted once for both; each
// query's arithmetic is ck_attend_f16_avx512's for it alone, in the same order.
__attribute__((target("avx512f"))) CK_INLINE void attend_pair_f16_avx512(const float *restrict qa, const float *restrict qb,
        const uint16_t *restrict keys, const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
        float *restrict sa, float *restrict sb, float *restrict oa, float *restrict ob, const int V) {
    float mxa = -INFINITY, mxb = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        CK_PREFETCH_ROW(keys + (j + CK_ATTEND_AHEAD) * stride, d);
        float da, db;
        dot2_f16_avx512(qa, qb, keys + j * stride, d, &da, &db);
        const float a = da * scale, b = db * scale;
        sa[j] = a;
        sb[j] = b;
        if (a > mxa) mxa = a;
        if (b > mxb) mxb = b;
    }
    const float own = dot_f16_avx512(qb, keys + n * stride, d) * scale;   // qb's own position
    sb[n] = own;
    if (own > mxb) mxb = own;
    const float inva = ck_softmax_weights(sa, n, mxa), invb = ck_softmax_weights(sb, n + 1, mxb);
    __m512 acca[8], accb[8];
    CK_UNROLL
    for (int i = 0; i < V; i++) acca[i] = accb[i] = _mm512_setzero_ps();
    for (size_t j = 0; j < n; j++) {
        CK_PREFETCH_ROW(values + (j + CK_ATTEND_AHEAD) * stride, 16 * (size_t)V);
        const uint16_t *row = values + j * stride;
        const __m512 ava = _mm512_set1_ps(sa[j] * inva), avb = _mm512_set1_ps(sb[j] * invb);
        CK_UNROLL
        for (int i = 0; i < V; i++) {
            const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * i)));
            acca[i] = _mm512_fmadd_ps(ava, x, acca[i]);
            accb[i] = _mm512_fmadd_ps(avb, x, accb[i]);
        }
    }
    const __m512 avb = _mm512_set1_ps(sb[n] * invb);
    CK_UNROLL
    for (int i = 0; i < V; i++)
        accb[i] = _mm512_fmadd_ps(avb, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(values + n * stride + 16 * i))), accb[i]);
    CK_UNROLL
    for (int i = 0; i < V; i++) {
        _mm512_storeu_ps(oa + 16 * i, acca[i]);
        _mm512_storeu_ps(ob + 16 * i, accb[i]);
    }
}

__attribute__((target("avx512f")))
void ck_attend_pair_f16_avx512(const float *restrict qa, const float *restrict qb, const uint16_t *restrict keys,
                               const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
                               float *restrict scores_a, float *restrict scores_b, float *restrict out_a, float *restrict out_b) {
    if (d == 128) attend_pair_f16_avx512(qa, qb, keys, values, stride, n, d, scale, scores_a, scores_b, out_a, out_b, 8);
    else if (d == 64) attend_pair_f16_avx512(qa, qb, keys, values, stride, n, d, scale, scores_a, scores_b, out_a, out_b, 4);
    else {
        ck_attend_f16_avx512(qa, keys, values, stride, n, d, scale, scores_a, out_a);
        ck_attend_f16_avx512(qb, keys, values, stride, n + 1, d, scale, scores_b, out_b);
    }
}
#else
void ck_attend_pair_f16_avx512(const float *restrict qa, const float *restrict qb, const uint16_t *restrict keys,
                               const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
                               float *restrict scores_a, float *restrict scores_b, float *restrict out_a, float *restrict out_b) {
    ck_attend_f16_ref(qa, keys, values, stride, n, d, scale, scores_a, out_a);
    ck_attend_f16_ref(qb, keys, values, stride, n + 1, d, scale, scores_b, out_b);
}
void ck_f32_to_f16_avx2(const float *restrict in, uint16_t *restrict out, size_t n) { ck_f32_to_f16_ref(in, out, n); }
void ck_f32_to_f16_avx512(const float *restrict in, uint16_t *restrict out, size_t n) { ck_f32_to_f16_ref(in, out, n); }
void ck_attend_f16_avx2(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend_f16_ref(q, keys, values, stride, n, d, scale, scores, out); }
void ck_attend2_f16_avx2(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0, size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1, size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend2_f16_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); }
void ck_attend_f16_avx512(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend_f16_ref(q, keys, values, stride, n, d, scale, scores, out); }
void ck_attend2_f16_avx512(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0, size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1, size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend2_f16_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); }
#endif
