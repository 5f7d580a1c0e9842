// Private helpers shared by the kernel files (not part of the public header). Horizontal sums
// are spelled out lane by lane so every kernel that uses them adds in the same fixed order:
// that is what makes ck_q8_matmul's rows bit-identical to ck_q8_matvec.
#ifndef YANYI_CKERNELS_SIMD_UTIL_H
#define YANYI_CKERNELS_SIMD_UTIL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_X86 1
#endif

#define CK_INLINE static inline __attribute__((always_inline))
// Register tiles are small arrays indexed by constant-trip loops: unroll them fully so the
// accumulators live in registers, not on the stack.
#if defined(__clang__)
#define CK_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define CK_UNROLL _Pragma("GCC unroll 8")
#else
#define CK_UNROLL
#endif

static inline size_t ck_min(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t ck_blocks(size_t cols, size_t block) { return (cols + block - 1) / block; }

// The quantization rule for one block, given amax as the bits of max|w| (an unsigned maximum
// over the bit patterns with the sign cleared: exact, order-free, and NaN/Inf come out on top).
// Returns 0 for an ordinary block (scale, inv set), 1 for a zero block (amax == 0 or 127/amax
// overflows: scale 0), 2 for a block holding NaN or +-Inf (scale NaN). q is 0 in cases 1 and 2.
static inline int ck_q8_block_scale(uint32_t amax_bits, float *scale, float *inv) {
    if (amax_bits >= 0x7F800000u) { *scale = __builtin_nanf(""); *inv = 0; return 2; }
    float amax;
    memcpy(&amax, &amax_bits, sizeof amax);
    float iv = 127.0f / amax;
    if (!(iv <= 3.40282347e38f)) { *scale = 0; *inv = 0; return 1; }
    *scale = amax / 127.0f;
    *inv = iv;
    return 0;
}

#ifdef CK_X86
// (v0+v4) (v1+v5) (v2+v6) (v3+v7), then (a0+a2) (a1+a3), then the two.
__attribute__((target("avx2"))) CK_INLINE float ck_hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
    __m128 c = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(c);
}

// Fold the upper 256 bits onto the lower, then as ck_hsum256.
__attribute__((target("avx512f"))) CK_INLINE float ck_hsum512(__m512 v) {
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s = _mm256_add_ps(lo, hi);
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
    __m128 c = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(c);
}

// Lanes [0, n) set, n <= 8: the mask _mm256_maskload_ps wants.
__attribute__((target("avx2"))) CK_INLINE __m256i ck_mask256(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif
// The softmax part of one query's attention: scores[j] = exp(scores[j] - mx) in order, and
// 1 / their sum (what the weighted sum of values multiplies each by).
static inline float ck_softmax_weights(float *restrict scores, size_t n, float mx) {
    float sum = 0;
    for (size_t j = 0; j < n; j++) {
        const float e = expf(scores[j] - mx);
        scores[j] = e;
        sum += e;
    }
    return 1.0f / sum;
}

// One attention head, written once for every key/value storage type (fp32 in vec_f32.c, binary16 in
// kv_f16.c): DOT(q, k_j, d) and AXPY(a, v_j, out, d) read one position of the given type. The
// whole attention of one (token, head) against n = N0 + N1 cached positions held in two segments:
// positions j < N0 at K0/V0 + j·S0, the rest at K1/V1 + (j - N0)·S1,
//   scores[j] = scale · q·k_j,  p = softmax(scores) (fp32, max-subtracted, expf: ck_softmax_weights),
//   out = Σ_j p_j · v_j,  each k_j, v_j (d,).
// scores (n,) is the caller's scratch. Both segments' scores land in the one array, so the max, the
// sum and the weighting see the same numbers in the same order as one segment holding all n: where
// the sequence is split changes no bit (a beam reading the shared prompt, then its own positions).
// One call per head instead of 2n calls of dot/axpy; one segment is N1 = 0.
// CK_ATTEND_WEIGHTS: its first part, scores[j] = p_j · sum and `inv` = 1 / sum, for a kernel that
// forms the weighted sum of values its own way (kv_f16.c); CK_ATTEND_BODY: the whole.
#define CK_ATTEND_WEIGHTS(DOT, PF, K0, S0, N0, K1, S1, N1)                          \
    const size_t n0_ = (N0), n_ = (N0) + (N1);                                      \
    float mx = -INFINITY;                                                           \
    for (size_t j = 0; j < n0_; j++) {                                              \
        PF((K0) + (j + CK_ATTEND_AHEAD) * (S0), d);                                 \
        const float s = DOT(q, (K0) + j * (S0), d) * scale;                         \
        scores[j] = s;                                                              \
        if (s > mx) mx = s;                                                         \
    }                                                                               \
    for (size_t j = n0_; j < n_; j++) {                                             \
        PF((K1) + (j - n0_ + CK_ATTEND_AHEAD) * (S1), d);                           \
        const float s = DOT(q, (K1) + (j - n0_) * (S1), d) * scale;                 \
        scores[j] = s;                                                              \
        if (s > mx) mx = s;                                                         \
    }                                                                               \
    const float inv = ck_softmax_weights(scores, n_, mx);

#define CK_ATTEND_BODY(DOT, AXPY, PF, K0, V0, S0, N0, K1, V1, S1, N1)               \
    CK_ATTEND_WEIGHTS(DOT, PF, K0, S0, N0, K1, S1, N1)                              \
    for (size_t t = 0; t < d; t++) out[t] = 0;                                      \
    for (size_t j = 0; j < n0_; j++) {                                              \
        PF((V0) + (j + CK_ATTEND_AHEAD) * (S0), d);                                 \
        AXPY(scores[j] * inv, (V0) + j * (S0), out, d);                             \
    }                                                                               \
    for (size_t j = n0_; j < n_; j++) {                                             \
        PF((V1) + (j - n0_ + CK_ATTEND_AHEAD) * (S1), d);                           \
        AXPY(scores[j] * inv, (V1) + (j - n0_) * (S1), out, d);                     \
    }

// Positions of keys/values the SIMD attention asks for ahead of the one it reads: one head's
// rows are a short stream (~100-300 KiB at a few hundred positions) that the hardware
// prefetcher only catches up with near its end. The refs pass CK_NO_PREFETCH.
#define CK_ATTEND_AHEAD 8
#define CK_NO_PREFETCH(p, d) ((void)0)
#ifdef CK_X86
// Every 64-byte line of one row of d elements starting at p (a hint: never faults, even past
// the end of the cache).
#define CK_PREFETCH_ROW(p, d)                                                       \
    for (size_t o_ = 0; o_ < (d) * sizeof(*(p)); o_ += 64) _mm_prefetch((const char *)(p) + o_, _MM_HINT_T0)
#endif

#endif
