// One dispatcher: picks the widest variant this CPU supports. The "_ref" twins stay callable
// so tests can compare every fast kernel with its specification.
#include "CKernels.h"

ck_isa ck_isa_best(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return CK_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma"))
        return CK_ISA_AVX2;
#endif
    return CK_ISA_SCALAR;
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_AVX512: return "avx512";
    case CK_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

void ck_f16_to_f32(const uint16_t *restrict in, float *restrict out, size_t n) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_f16_to_f32_avx512(in, out, n); return;
    case CK_ISA_AVX2: ck_f16_to_f32_avx2(in, out, n); return;
    default: ck_f16_to_f32_ref(in, out, n); return;
    }
}

void ck_bf16_to_f32(const uint16_t *restrict in, float *restrict out, size_t n) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_bf16_to_f32_avx512(in, out, n); return;
    case CK_ISA_AVX2: ck_bf16_to_f32_avx2(in, out, n); return;
    default: ck_bf16_to_f32_ref(in, out, n); return;
    }
}

int ck_cpu_has_avx512vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return ck_isa_best() == CK_ISA_AVX512 && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

size_t ck_q8_quantize(const float *restrict w, int8_t *restrict q, float *restrict scales,
                      size_t rows, size_t cols, size_t block) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: return ck_q8_quantize_avx512(w, q, scales, rows, cols, block);
    case CK_ISA_AVX2: return ck_q8_quantize_avx2(w, q, scales, rows, cols, block);
    default: return ck_q8_quantize_ref(w, q, scales, rows, cols, block);
    }
}

size_t ck_q8_quantize_act(const float *restrict x, int8_t *restrict xq, float *restrict xs,
                          size_t cols, size_t block) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: return ck_q8_quantize_act_avx512(x, xq, xs, cols, block);
    case CK_ISA_AVX2: return ck_q8_quantize_act_avx2(x, xq, xs, cols, block);
    default: return ck_q8_quantize_act_ref(x, xq, xs, cols, block);
    }
}

void ck_q8_dequant(const int8_t *restrict q, const float *restrict scales, float *restrict out,
                   size_t rows, size_t cols, size_t block) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_q8_dequant_avx512(q, scales, out, rows, cols, block); return;
    case CK_ISA_AVX2: ck_q8_dequant_avx2(q, scales, out, rows, cols, block); return;
    default: ck_q8_dequant_ref(q, scales, out, rows, cols, block); return;
    }
}

void ck_q8_matvec(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                  float *restrict y, size_t rows, size_t cols, size_t block) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_q8_matvec_avx512(q, scales, x, y, rows, cols, block); return;
    case CK_ISA_AVX2: ck_q8_matvec_avx2(q, scales, x, y, rows, cols, block); return;
    default: ck_q8_matvec_ref(q, scales, x, y, rows, cols, block); return;
    }
}

void ck_q8_matmul(const int8_t *restrict q, const float *restrict scales, const float *restrict x,
                  float *restrict y, size_t rows, size_t cols, size_t block, size_t n, size_t ldy) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_q8_matmul_avx512(q, scales, x, y, rows, cols, block, n, ldy); return;
    case CK_ISA_AVX2: ck_q8_matmul_avx2(q, scales, x, y, rows, cols, block, n, ldy); return;
    default: ck_q8_matmul_ref(q, scales, x, y, rows, cols, block, n, ldy); return;
    }
}

// AVX-512 without VNNI (Skylake-X) takes the AVX2 path: it needs no VNNI.
void ck_q8q8_matvec(const int8_t *restrict q, const float *restrict scales, const int8_t *restrict xq,
                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block) {
    if (ck_cpu_has_avx512vnni()) { ck_q8q8_matvec_avx512vnni(q, scales, xq, xs, y, rows, cols, block); return; }
    if (ck_isa_best() != CK_ISA_SCALAR) { ck_q8q8_matvec_avx2(q, scales, xq, xs, y, rows, cols, block); return; }
    ck_q8q8_matvec_ref(q, scales, xq, xs, y, rows, cols, block);
}

// Each activation row as ck_q8q8_matvec computes it alone (the same variant), bit for bit.
void ck_q8q8_matvec_rows(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                         const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                         size_t n, size_t ldy) {
    if (ck_cpu_has_avx512vnni()) { ck_q8q8_matvec_rows_avx512vnni(q, scales, xu, xs, y, rows, cols, block, n, ldy); return; }
    size_t nb = (cols + block - 1) / block, kp = nb * block;
    int8_t xq[kp];
    for (size_t t = 0; t < n; t++) {
        for (size_t i = 0; i < cols; i++) xq[i] = (int8_t)(xu[t * kp + i] ^ 0x80);
        ck_q8q8_matvec(q, scales, xq, xs + t * nb, y + t * ldy, rows, cols, block);
    }
}

void ck_q8t_matmul(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                   const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                   size_t cols, size_t block, size_t n, size_t ldy) {
    if (ck_cpu_has_avx512vnni()) ck_q8t_matmul_avx512vnni(codes, tscales, xq, xs, xc, y, rows, cols, block, n, ldy);
    else ck_q8t_matmul_ref(codes, tscales, xq, xs, xc, y, rows, cols, block, n, ldy);
}

float ck_dot_f32(const float *restrict x, const float *restrict y, size_t n) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: return ck_dot_f32_avx512(x, y, n);
    case CK_ISA_AVX2: return ck_dot_f32_avx2(x, y, n);
    default: return ck_dot_f32_ref(x, y, n);
    }
}

void ck_axpy_f32(float a, const float *restrict x, float *restrict y, size_t n) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_axpy_f32_avx512(a, x, y, n); return;
    case CK_ISA_AVX2: ck_axpy_f32_avx2(a, x, y, n); return;
    default: ck_axpy_f32_ref(a, x, y, n); return;
    }
}

void ck_attend_f32(const float *restrict q, const float *restrict keys, const float *restrict values,
                   size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_attend_f32_avx512(q, keys, values, stride, n, d, scale, scores, out); return;
    case CK_ISA_AVX2: ck_attend_f32_avx2(q, keys, values, stride, n, d, scale, scores, out); return;
    default: ck_attend_f32_ref(q, keys, values, stride, n, d, scale, scores, out); return;
    }
}

void ck_attend2_f32(const float *restrict q, const float *restrict keys0, const float *restrict values0,
                    size_t stride0, size_t n0, const float *restrict keys1, const float *restrict values1,
                    size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_attend2_f32_avx512(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    case CK_ISA_AVX2: ck_attend2_f32_avx2(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    default: ck_attend2_f32_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    }
}

void ck_f32_to_f16(const float *restrict in, uint16_t *restrict out, size_t n) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_f32_to_f16_avx512(in, out, n); return;
    case CK_ISA_AVX2: ck_f32_to_f16_avx2(in, out, n); return;
    default: ck_f32_to_f16_ref(in, out, n); return;
    }
}

void ck_attend_f16(const float *restrict q, const uint16_t *restrict keys, const uint16_t *restrict values,
                   size_t stride, size_t n, size_t d, float scale, float *restrict scores, float *restrict out) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_attend_f16_avx512(q, keys, values, stride, n, d, scale, scores, out); return;
    case CK_ISA_AVX2: ck_attend_f16_avx2(q, keys, values, stride, n, d, scale, scores, out); return;
    default: ck_attend_f16_ref(q, keys, values, stride, n, d, scale, scores, out); return;
    }
}

void ck_attend2_f16(const float *restrict q, const uint16_t *restrict keys0, const uint16_t *restrict values0,
                    size_t stride0, size_t n0, const uint16_t *restrict keys1, const uint16_t *restrict values1,
                    size_t stride1, size_t n1, size_t d, float scale, float *restrict scores, float *restrict out) {
    switch (ck_isa_best()) {
    case CK_ISA_AVX512: ck_attend2_f16_avx512(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    case CK_ISA_AVX2: ck_attend2_f16_avx2(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    default: ck_attend2_f16_ref(q, keys0, values0, stride0, n0, keys1, values1, stride1, n1, d, scale, scores, out); return;
    }
}

void ck_attend_pair_f16(const float *restrict qa, const float *restrict qb, const uint16_t *restrict keys,
                        const uint16_t *restrict values, size_t stride, size_t n, size_t d, float scale,
                        float *restrict scores_a, float *restrict scores_b, float *restrict out_a, float *restrict out_b) {
    if (ck_isa_best() == CK_ISA_AVX512) {
        ck_attend_pair_f16_avx512(qa, qb, keys, values, stride, n, d, scale, scores_a, scores_b, out_a, out_b);
        return;
    }
    ck_attend_f16(qa, keys, values, stride, n, d, scale, scores_a, out_a);
    ck_attend_f16(qb, keys, values, stride, n + 1, d, scale, scores_b, out_b);
}

void ck_q8q8_matmul(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                    const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                    size_t n, size_t ldy, uint8_t *restrict scratch) {
    if (ck_cpu_has_avx512vnni()) ck_q8q8_matmul_avx512vnni(q, scales, xu, xs, y, rows, cols, block, n, ldy, scratch);
    else ck_q8q8_matmul_ref(q, scales, xu, xs, y, rows, cols, block, n, ldy);
}
