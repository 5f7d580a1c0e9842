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
