// Storage dtype -> fp32. The scalar versions are the specification.
#include "CKernels.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_X86 1
#endif

static inline float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa. Subnormals are renormalised; Inf kept;
// NaN keeps its payload and comes out quiet, as F16C's vcvtph2ps does.
static inline float f16_to_f32_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0) {
        if (man == 0) return bits_to_f32(sign);
        int e = -1;
        do { e++; man <<= 1; } while ((man & 0x400u) == 0);  // shift until the implicit bit
        man &= 0x3FFu;
        return bits_to_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13));
    }
    if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (man << 13) | (man ? 0x400000u : 0));
    return bits_to_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

void ck_f16_to_f32_ref(const uint16_t *restrict in, float *restrict out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32_one(in[i]);
}

void ck_bf16_to_f32_ref(const uint16_t *restrict in, float *restrict out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bits_to_f32((uint32_t)in[i] << 16);
}

#ifdef CK_X86
__attribute__((target("avx2,f16c")))
void ck_f16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    ck_f16_to_f32_ref(in + i, out + i, n - i);
}

__attribute__((target("avx2")))
void ck_bf16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(in + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(w));
    }
    ck_bf16_to_f32_ref(in + i, out + i, n - i);
}

__attribute__((target("avx512f")))
void ck_f16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(in + i));
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(h));
    }
    ck_f16_to_f32_ref(in + i, out + i, n - i);
}

__attribute__((target("avx512f")))
void ck_bf16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(in + i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(w));
    }
    ck_bf16_to_f32_ref(in + i, out + i, n - i);
}
#else
// Non-x86 builds: the "fast" names fall back to the specification.
void ck_f16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n) { ck_f16_to_f32_ref(in, out, n); }
void ck_bf16_to_f32_avx2(const uint16_t *restrict in, float *restrict out, size_t n) { ck_bf16_to_f32_ref(in, out, n); }
void ck_f16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n) { ck_f16_to_f32_ref(in, out, n); }
void ck_bf16_to_f32_avx512(const uint16_t *restrict in, float *restrict out, size_t n) { ck_bf16_to_f32_ref(in, out, n); }
#endif
