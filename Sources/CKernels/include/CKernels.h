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

#ifdef __cplusplus
}
#endif
#endif
