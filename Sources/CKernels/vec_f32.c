// Small fp32 vector helpers for the attention loop: q·k scores and the weighted sum of values.
#include "CKernels.h"
#include "simd_util.h"
#include <math.h>

// The exact dot product rounded once (double accumulation).
float ck_dot_f32_ref(const float *restrict x, const float *restrict y, size_t n) {
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += (double)x[i] * (double)y[i];
    return (float)acc;
}

// y += a*x with one rounding per element (fused), so the SIMD twins match bit for bit.
void ck_axpy_f32_ref(float a, const float *restrict x, float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

void ck_attend_f32_ref(const float *restrict q, const float *restrict keys, const float *restrict values,
                       size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(ck_dot_f32_ref, ck_axpy_f32_ref, CK_NO_PREFETCH, keys, values, stride, n, keys, values, stride, 0)
}

void ck_attend2_f32_ref(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                        size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1, size_t stride1,
                        size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(ck_dot_f32_ref, ck_axpy_f32_ref, CK_NO_PREFETCH, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}

#ifdef CK_X86
__attribute__((target("avx2,fma"))) CK_INLINE float dot_avx2(const float *restrict x, const float *restrict y, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i < n; i += 8) {
        const __m256i m = ck_mask256(ck_min(8, n - i));
        a0 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), a0);
    }
    return ck_hsum256(_mm256_add_ps(a0, a1));
}

__attribute__((target("avx2,fma"))) CK_INLINE void axpy_avx2(float a, const float *restrict x, float *restrict y, size_t n) {
    const __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        const __m256i m = ck_mask256(n - i);
        __m256 v = _mm256_fmadd_ps(av, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

__attribute__((target("avx512f"))) CK_INLINE float dot_avx512(const float *restrict x, const float *restrict y, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    return ck_hsum512(_mm512_add_ps(a0, a1));
}

__attribute__((target("avx512f"))) CK_INLINE void axpy_avx512(float a, const float *restrict x, float *restrict y, size_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512 v = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}
__attribute__((target("avx2,fma")))
float ck_dot_f32_avx2(const float *restrict x, const float *restrict y, size_t n) { return dot_avx2(x, y, n); }
__attribute__((target("avx2,fma")))
void ck_axpy_f32_avx2(float a, const float *restrict x, float *restrict y, size_t n) { axpy_avx2(a, x, y, n); }
__attribute__((target("avx512f")))
float ck_dot_f32_avx512(const float *restrict x, const float *restrict y, size_t n) { return dot_avx512(x, y, n); }
__attribute__((target("avx512f")))
void ck_axpy_f32_avx512(float a, const float *restrict x, float *restrict y, size_t n) { axpy_avx512(a, x, y, n); }

__attribute__((target("avx2,fma")))
void ck_attend_f32_avx2(const float *restrict q, const float *restrict keys, const float *restrict values,
                        size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_avx2, axpy_avx2, CK_PREFETCH_ROW, keys, values, stride, n, keys, values, stride, 0)
}

__attribute__((target("avx2,fma")))
void ck_attend2_f32_avx2(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                         size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1, size_t stride1,
                         size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_avx2, axpy_avx2, CK_PREFETCH_ROW, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}
__attribute__((target("avx512f")))
void ck_attend_f32_avx512(const float *restrict q, const float *restrict keys, const float *restrict values,
                          size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_avx512, axpy_avx512, CK_PREFETCH_ROW, keys, values, stride, n, keys, values, stride, 0)
}

__attribute__((target("avx512f")))
void ck_attend2_f32_avx512(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                           size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1, size_t stride1,
                           size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    CK_ATTEND_BODY(dot_avx512, axpy_avx512, CK_PREFETCH_ROW, keys0, values0, stride0, n0, keys1, values1, stride1, n1)
}
#else
float ck_dot_f32_avx2(const float *restrict x, const float *restrict y, size_t n) { return ck_dot_f32_ref(x, y, n); }
float ck_dot_f32_avx512(const float *restrict x, const float *restrict y, size_t n) { return ck_dot_f32_ref(x, y, n); }
void ck_axpy_f32_avx2(float a, const float *restrict x, float *restrict y, size_t n) { ck_axpy_f32_ref(a, x, y, n); }
void ck_axpy_f32_avx512(float a, const float *restrict x, float *restrict y, size_t n) { ck_axpy_f32_ref(a, x, y, n); }
void ck_attend_f32_avx2(const float *restrict q, const float *restrict keys, const float *restrict values, size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend_f32_ref(q, keys, values, stride, n, d, scale, scores, out); }
void ck_attend2_f32_avx2(const float *restrict q, const float *restrict keys0, const float *restrict values0, size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1, size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend2_f32_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); }
void ck_attend_f32_avx512(const float *restrict q, const float *restrict keys, const float *restrict values, size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend_f32_ref(q, keys, values, stride, n, d, scale, scores, out); }
void ck_attend2_f32_avx512(const float *restrict q, const float *restrict keys0, const float *restrict values0, size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1, size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) { ck_attend2_f32_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); }
#endif

// ---- read bandwidth probe ------------------------------------------------------------------------
// sum of x, read once front to back; the ref sums in double. The AVX-512 variant asks for the
// data 4 KiB ahead as the int8 matvec does, so the probe's limit covers what that trick reaches.
float ck_read_sum_f32_ref(const float *restrict x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return (float)s;
}

#ifdef CK_X86
__attribute__((target("avx512f")))
float ck_read_sum_f32_avx512(const float *restrict x, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm_prefetch((const char *)(x + i + 1024), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i + 1040), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i + 1056), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i + 1072), _MM_HINT_T0);
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    float s = ck_hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}
#else
float ck_read_sum_f32_avx512(const float *restrict x, size_t n) { return ck_read_sum_f32_ref(x, n); }
#endif

float ck_read_sum_f32(const float *restrict x, size_t n) {
    return ck_isa_best() == CK_ISA_AVX512 ? ck_read_sum_f32_avx512(x, n) : ck_read_sum_f32_ref(x, n);
}
