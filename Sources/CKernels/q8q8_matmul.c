// Prefill as an int8 GEMM: int8 weights x int8 activations, AVX-512 VNNI.
//   Y[t, r] = sum_b scale[r,b] * xs[t,b] * sum_{i in b} q[r,i] * xq[t,i]
// Activations arrive as offset-binary bytes xu = xq + 128 (the unsigned operand of vpdpbusd),
// rows padded to kp = nb * block with xq = 0. dpbusd then adds 128 * sum(q) per 4-byte group;
// the packed tile carries -128 * sum_{i in b} q[r,i] per row and block, and each block's int32
// accumulator starts there, so every block dot product is exact.
//
// Packed tile (16 weight rows, built per call from the row-major codes, so decode keeps its
// layout and no second copy of the weights exists):
//   codes   (nb, block/4, 16, 4) int8: one 64-byte vector per 4 columns, row r in lanes 4r..4r+3
//   negcorr (nb, 16) int32
//   scales  (nb, 16) fp32
// Micro-kernel: 2 tiles (32 rows) x 6 tokens. Per block and group of 4 columns: 2 vector loads,
// 6 broadcasts, 12 vpdpbusd; per block: 12 cvt + 12 mul + 12 fma to fold in the two scales.
#include "CKernels.h"
#include "simd_util.h"

size_t ck_q8q8_tile_bytes(size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block);
    return nb * block * 16 + nb * 16 * (sizeof(int32_t) + sizeof(float));
}

size_t ck_q8q8_act_rows(const float *restrict x, uint8_t *restrict xu, float *restrict xs,
                        size_t n, size_t cols, size_t block) {
    size_t nb = ck_blocks(cols, block), kp = nb * block, bad = 0;
    for (size_t t = 0; t < n; t++) {
        uint8_t *row = xu + t * kp;
        bad += ck_q8_quantize_act(x + t * cols, (int8_t *)row, xs + t * nb, cols, block);
        for (size_t i = cols; i < kp; i++) row[i] = 0;
        for (size_t i = 0; i < kp; i++) row[i] ^= 0x80;
    }
    return bad;
}

void ck_q8q8_matmul_ref(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                        const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                        size_t n, size_t ldy) {
    size_t nb = ck_blocks(cols, block), kp = nb * block;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *xt = xu + t * kp;
        for (size_t r = 0; r < rows; r++) {
            const int8_t *qr = q + r * cols;
            double acc = 0;
            for (size_t b = 0; b < nb; b++) {
                int32_t dot = 0;
                for (size_t i = b * block; i < ck_min((b + 1) * block, cols); i++)
                    dot += (int32_t)qr[i] * ((int32_t)xt[i] - 128);
                acc += (double)scales[r * nb + b] * (double)xs[t * nb + b] * (double)dot;
            }
            y[t * ldy + r] = (float)acc;
        }
    }
}

#ifdef CK_X86
#define CK_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni")))

// Rows r and r + 8 of a 16-row group, 32 codes each from column c, as the two 256-bit halves
// of one vector (a row past `valid` reads as zeros).
CK_VNNI static inline __m512i two_rows(const int8_t *restrict q, size_t cols, size_t valid, size_t r, size_t c) {
    const __m256i lo = r < valid ? _mm256_loadu_si256((const __m256i *)(q + r * cols + c)) : _mm256_setzero_si256();
    const __m256i hi = r + 8 < valid ? _mm256_loadu_si256((const __m256i *)(q + (r + 8) * cols + c)) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// The 8 column groups of 4 codes at columns [c, c + 32) of 16 rows, transposed so that out[g]
// holds row r's group g in lanes 4r..4r+3 (the tile's layout): an 8x8 dword transpose run on
// rows 0-7 and rows 8-15 at once, in the two 256-bit halves. Loads whole rows instead of
// gathering 4 bytes per lane (what made packing cost more than the products at a few tokens).
CK_VNNI static inline void transpose_chunk(const int8_t *restrict q, size_t cols, size_t valid, size_t c, __m512i out[8]) {
    __m512i a[8], t[8], u[8];
    for (int i = 0; i < 8; i++) a[i] = two_rows(q, cols, valid, (size_t)i, c);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_epi32(a[i], a[i + 1]);      // per 128-bit lane: a_i[0] a_i+1[0] a_i[1] a_i+1[1]
        t[i + 1] = _mm512_unpackhi_epi32(a[i], a[i + 1]);  // a_i[2] a_i+1[2] a_i[3] a_i+1[3]
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);          // dword 0 (lanes 0, 2) / 4 (lanes 1, 3) of 4 rows
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);      // dword 1 / 5
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);  // dword 2 / 6
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);  // dword 3 / 7
    }
    // 128-bit lanes: rows 0-3 from u[k] and rows 4-7 from u[k + 4] (low half), rows 8-11 and
    // 12-15 likewise (high half); dword k from the even lanes, dword k + 4 from the odd ones.
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_permutex2var_epi64(u[k], lo, u[k + 4]);
        out[k + 4] = _mm512_permutex2var_epi64(u[k], hi, u[k + 4]);
    }
}

// Packs rows [0, valid) of q (valid <= 16; missing rows are zero with scale 0) into `tile`.
CK_VNNI static void pack_tile(const int8_t *restrict q, const float *restrict scales, size_t valid,
                              size_t cols, size_t block, uint8_t *restrict tile) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block, groups = block / 4;
    int8_t *codes = (int8_t *)tile;
    int32_t *negcorr = (int32_t *)(tile + kp * 16);
    float *sw = (float *)(negcorr + nb * 16);
    const __mmask16 rows = (__mmask16)((1u << valid) - 1);
    // Lane r gathers from row r: the 4 codes at byte offset r * cols, the scale at float offset r * nb.
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i offs = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)cols));
    const __m512i soffs = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)nb));
    const __m512i ones = _mm512_set1_epi8(1);
    for (size_t b = 0; b < nb; b++) {
        __m512i sum = _mm512_setzero_si512();
        for (size_t g = 0; g < groups; g += 8) {   // 32 columns (8 groups) at a time
            const size_t c = b * block + g * 4;
            __m512i v[8];
            if (c + 32 <= cols) {
                transpose_chunk(q, cols, valid, c, v);
            } else {
                for (size_t h = 0; h < 8; h++) {
                    const size_t ch = c + h * 4;
                    if (ch + 4 <= cols) {
                        v[h] = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, offs, q + ch, 1);
                    } else {  // the short last block: bytes past the row end are zero
                        int32_t lanes[16] = {0};
                        for (size_t r = 0; r < valid; r++)
                            for (size_t k = ch; k < ck_min(ch + 4, cols); k++) ((int8_t *)&lanes[r])[k - ch] = q[r * cols + k];
                        v[h] = _mm512_loadu_si512(lanes);
                    }
                }
            }
            for (size_t h = 0; h < 8; h++) {
                _mm512_store_si512(codes + (b * groups + g + h) * 64, v[h]);
                sum = _mm512_dpbusd_epi32(sum, ones, v[h]);  // 1 * q summed per 4-byte lane: sum of the row's codes
            }
        }
        _mm512_store_si512(negcorr + b * 16, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128)));
        _mm512_store_ps(sw + b * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows, soffs, scales + b, 4));
    }
}

// T tiles (1 or 2) x M tokens (1..6) over all blocks; y rows for tile k at y + 16k, masked to
// the valid rows of each tile.
CK_VNNI CK_INLINE void micro(const uint8_t *restrict t0, const uint8_t *restrict t1, const uint8_t *restrict xu,
                             const float *restrict xs, float *restrict y, size_t ldy, size_t nb, size_t block,
                             __mmask16 m0, __mmask16 m1, const int T, const int M, const int G) {
    // G: groups of 4 columns per block when known at compile time (8 for block 32), else 0.
    const size_t kp = nb * block, groups = G ? (size_t)G : block / 4;
    const uint8_t *tiles[2] = {t0, t1};
    __m512 af[2][6];
    CK_UNROLL
    for (int k = 0; k < T; k++) {
        CK_UNROLL
        for (int m = 0; m < M; m++) af[k][m] = _mm512_setzero_ps();
    }
    for (size_t b = 0; b < nb; b++) {
        __m512i ai[2][6];
        CK_UNROLL
        for (int k = 0; k < T; k++) {
            const __m512i nc = _mm512_load_si512(tiles[k] + kp * 16 + b * 64);
            CK_UNROLL
            for (int m = 0; m < M; m++) ai[k][m] = nc;
        }
        const uint8_t *xb = xu + b * block;
#define CK_GROUP(g)                                                                                     \
        {                                                                                               \
            __m512i w[2];                                                                               \
            CK_UNROLL                                                                                   \
            for (int k = 0; k < T; k++) w[k] = _mm512_load_si512(tiles[k] + (b * groups + (g)) * 64);  \
            CK_UNROLL                                                                                   \
            for (int m = 0; m < M; m++) {                                                               \
                int32_t four;                                                                           \
                memcpy(&four, xb + m * kp + (g) * 4, 4);                                                \
                const __m512i xv = _mm512_set1_epi32(four);                                             \
                CK_UNROLL                                                                               \
                for (int k = 0; k < T; k++) ai[k][m] = _mm512_dpbusd_epi32(ai[k][m], xv, w[k]);         \
            }                                                                                           \
        }
        if (G) {
            CK_UNROLL
            for (int g = 0; g < G; g++) CK_GROUP(g)
        } else {
            for (size_t g = 0; g < groups; g++) CK_GROUP(g)
        }
#undef CK_GROUP
        CK_UNROLL
        for (int k = 0; k < T; k++) {
            const __m512 sw = _mm512_load_ps((const float *)(tiles[k] + kp * 16 + nb * 64) + b * 16);
            CK_UNROLL
            for (int m = 0; m < M; m++) {
                const __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(ai[k][m]), _mm512_set1_ps(xs[m * nb + b]));
                af[k][m] = _mm512_fmadd_ps(d, sw, af[k][m]);
            }
        }
    }
    CK_UNROLL
    for (int m = 0; m < M; m++) {
        _mm512_mask_storeu_ps(y + m * ldy, m0, af[0][m]);
        if (T == 2) _mm512_mask_storeu_ps(y + m * ldy + 16, m1, af[1][m]);
    }
}

#define CK_MICRO(T, M)                                                                                      \
    if (block == 32) micro(ta, tb, xu + t * kp, xs + t * nb, yt, ldy, nb, block, m0, m1, T, M, 8);          \
    else micro(ta, tb, xu + t * kp, xs + t * nb, yt, ldy, nb, block, m0, m1, T, M, 0);
#define CK_MICRO_CASES(T)                                                                                   \
    switch (mt) {                                                                                           \
    case 6: CK_MICRO(T, 6) break;                                                                           \
    case 5: CK_MICRO(T, 5) break;                                                                           \
    case 4: CK_MICRO(T, 4) break;                                                                           \
    case 3: CK_MICRO(T, 3) break;                                                                           \
    case 2: CK_MICRO(T, 2) break;                                                                           \
    default: CK_MICRO(T, 1) break;                                                                          \
    }

CK_VNNI
void ck_q8q8_matmul_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                               const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                               size_t n, size_t ldy, uint8_t *restrict scratch) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block, tb_bytes = ck_q8q8_tile_bytes(cols, block);
    for (size_t r0 = 0; r0 < rows; r0 += 32) {
        const size_t va = ck_min(16, rows - r0), vb = rows - r0 > 16 ? ck_min(16, rows - r0 - 16) : 0;
        uint8_t *ta = scratch, *tb = scratch + tb_bytes;
        pack_tile(q + r0 * cols, scales + r0 * nb, va, cols, block, ta);
        if (vb) pack_tile(q + (r0 + 16) * cols, scales + (r0 + 16) * nb, vb, cols, block, tb);
        const __mmask16 m0 = (__mmask16)((1u << va) - 1), m1 = (__mmask16)((1u << vb) - 1);
        for (size_t t = 0; t < n; t += 6) {
            const size_t mt = ck_min(6, n - t);
            float *yt = y + t * ldy + r0;
            if (vb) { CK_MICRO_CASES(2) } else { CK_MICRO_CASES(1) }
        }
    }
}
#else
void ck_q8q8_matmul_avx512vnni(const int8_t *restrict q, const float *restrict scales, const uint8_t *restrict xu,
                               const float *restrict xs, float *restrict y, size_t rows, size_t cols, size_t block,
                               size_t n, size_t ldy, uint8_t *restrict scratch) {
    (void)scratch;
    ck_q8q8_matmul_ref(q, scales, xu, xs, y, rows, cols, block, n, ldy);
}
#endif
