// int8 weights stored in packed 16-row tiles, the layout every VNNI product reads (decode, batched
// decode and prefill alike), built once at load instead of per call.
//
// Tile k of a matrix (rows 16k .. 16k+15; rows past the matrix are zeros with scale 0):
//   codes  (nb, block/4, 16, 4) uint8, offset-binary (q + 128): one 64-byte vector per 4 columns,
//          row r in bytes 4r .. 4r+3; columns past `cols` hold q = 0
//   scales (nb, 16) fp32
// A range of whole tiles is contiguous: codes at 16·kp bytes per tile (kp = nb·block), scales at
// 16·nb floats per tile, so a thread's tiles are one offset into each array.
//
// Products: vpdpbusd multiplies unsigned by signed bytes; the weights are the unsigned operand
// (q + 128) and each token's int8 activations the signed one, broadcast 4 bytes at a time, so one
// instruction does 4 columns of 16 rows. The surplus 128·sum(x) of a block is one int32 per token
// and block (xc = -128·sum, made with the activations): each block's accumulator starts there and
// ends as the exact integer block dot product, converted once per block:
//   y[t, r] = sum_b scale[r, b] · xs[t, b] · sum_{i in b} q[r, i] · xq[t, i]
// Every token's outputs come from the same instructions in the same order whatever the number of
// tokens or tiles per call, so a batch's rows are bit-identical to one token alone.
#include "CKernels.h"
#include "simd_util.h"

size_t ck_q8t_padded_rows(size_t rows) { return (rows + 15) / 16 * 16; }

void ck_q8t_pack(const int8_t *restrict q, const float *restrict scales, size_t rows, size_t cols, size_t block,
                 uint8_t *restrict codes, float *restrict tscales) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block, groups = block / 4, tiles = ck_q8t_padded_rows(rows) / 16;
    for (size_t k = 0; k < tiles; k++) {
        uint8_t *tc = codes + k * 16 * kp;
        float *ts = tscales + k * 16 * nb;
        for (size_t r = 0; r < 16; r++) {
            const size_t row = 16 * k + r;
            for (size_t b = 0; b < nb; b++) {
                ts[b * 16 + r] = row < rows ? scales[row * nb + b] : 0.0f;
                for (size_t g = 0; g < groups; g++) {
                    const size_t c = b * block + g * 4;
                    uint8_t *out = tc + ((b * groups + g) * 16 + r) * 4;
                    if (row < rows && c + 4 <= cols) {
                        uint32_t four;
                        memcpy(&four, q + row * cols + c, 4);
                        four ^= 0x80808080u;
                        memcpy(out, &four, 4);
                    } else {
                        for (size_t j = 0; j < 4; j++)
                            out[j] = (uint8_t)((row < rows && c + j < cols ? q[row * cols + c + j] : 0) ^ 0x80);
                    }
                }
            }
        }
    }
}

void ck_q8t_unpack(const uint8_t *restrict codes, const float *restrict tscales, size_t rows, size_t cols, size_t block,
                   int8_t *restrict q, float *restrict scales) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block, groups = block / 4;
    for (size_t row = 0; row < rows; row++) {
        const size_t k = row / 16, r = row % 16;
        const uint8_t *tc = codes + k * 16 * kp;
        for (size_t b = 0; b < nb; b++) {
            scales[row * nb + b] = tscales[k * 16 * nb + b * 16 + r];
            for (size_t g = 0; g < groups; g++)
                for (size_t j = 0; j < 4; j++) {
                    const size_t c = b * block + g * 4 + j;
                    if (c < cols) q[row * cols + c] = (int8_t)(tc[((b * groups + g) * 16 + r) * 4 + j] ^ 0x80);
                }
        }
    }
}

// The code of row `row`, column c (both inside the matrix) as a signed value.
static inline int32_t tile_code(const uint8_t *codes, size_t kp, size_t block, size_t row, size_t c) {
    const size_t k = row / 16, r = row % 16, b = c / block, g = (c % block) / 4, groups = block / 4;
    return (int32_t)codes[k * 16 * kp + ((b * groups + g) * 16 + r) * 4 + c % 4] - 128;
}

void ck_q8t_dequant(const uint8_t *restrict codes, const float *restrict tscales, size_t rows, size_t cols, size_t block,
                    float *restrict out) {
    // The same single multiply as ck_q8_dequant, so both layouts dequantize to the same bits.
    const size_t nb = ck_blocks(cols, block), kp = nb * block, groups = block / 4;
    for (size_t row = 0; row < rows; row++) {
        const size_t k = row / 16, r = row % 16;
        const uint8_t *tc = codes + k * 16 * kp;
        const float *ts = tscales + k * 16 * nb;
        for (size_t b = 0; b < nb; b++) {
            const float s = ts[b * 16 + r];
            for (size_t g = 0; g < groups; g++) {
                const uint8_t *src = tc + ((b * groups + g) * 16 + r) * 4;
                const size_t c = b * block + g * 4;
                for (size_t j = 0; j < 4 && c + j < cols; j++) out[row * cols + c + j] = (float)((int32_t)src[j] - 128) * s;
            }
        }
    }
}

void ck_q8t_matvec_f32(const uint8_t *restrict codes, const float *restrict tscales, const float *restrict x,
                       float *restrict y, size_t rows, size_t cols, size_t block) {
    // fp32 activations (the f32 path and the non-VNNI definition): per tile and block, 16 rows'
    // block sums in fp32, then scaled into the rows' totals; a fixed order for every caller.
    const size_t nb = ck_blocks(cols, block), kp = nb * block, groups = block / 4;
    const size_t tiles = ck_q8t_padded_rows(rows) / 16;
    for (size_t k = 0; k < tiles; k++) {
        const uint8_t *tc = codes + k * 16 * kp;
        const float *ts = tscales + k * 16 * nb;
        float total[16] = {0};
        for (size_t b = 0; b < nb; b++) {
            float part[16] = {0};
            for (size_t g = 0; g < groups; g++) {
                const size_t c = b * block + g * 4;
                float xv[4];
                for (size_t j = 0; j < 4; j++) xv[j] = c + j < cols ? x[c + j] : 0.0f;
                const uint8_t *v = tc + (b * groups + g) * 64;
                for (size_t r = 0; r < 16; r++)
                    for (size_t j = 0; j < 4; j++) part[r] += (float)((int32_t)v[r * 4 + j] - 128) * xv[j];
            }
            for (size_t r = 0; r < 16; r++) total[r] += part[r] * ts[b * 16 + r];
        }
        for (size_t r = 0; r < 16 && 16 * k + r < rows; r++) y[16 * k + r] = total[r];
    }
}

size_t ck_q8t_act(const float *restrict x, int8_t *restrict xq, float *restrict xs, int32_t *restrict xc,
                  size_t n, size_t cols, size_t block) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block;
    size_t bad = 0;
    for (size_t t = 0; t < n; t++) {
        int8_t *row = xq + t * kp;
        bad += ck_q8_quantize_act(x + t * cols, row, xs + t * nb, cols, block);
        for (size_t i = cols; i < kp; i++) row[i] = 0;
        for (size_t b = 0; b < nb; b++) {
            int32_t s = 0;
            for (size_t i = b * block; i < (b + 1) * block; i++) s += row[i];
            xc[t * nb + b] = -128 * s;
        }
    }
    return bad;
}

void ck_q8t_matmul_ref(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                       const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                       size_t cols, size_t block, size_t n, size_t ldy) {
    (void)xc;
    const size_t nb = ck_blocks(cols, block), kp = nb * block;
    for (size_t t = 0; t < n; t++)
        for (size_t row = 0; row < rows; row++) {
            double acc = 0;
            for (size_t b = 0; b < nb; b++) {
                int32_t dot = 0;
                for (size_t c = b * block; c < ck_min((b + 1) * block, cols); c++)
                    dot += tile_code(codes, kp, block, row, c) * xq[t * kp + c];
                acc += (double)tscales[(row / 16) * 16 * nb + b * 16 + row % 16] * (double)xs[t * nb + b] * (double)dot;
            }
            y[t * ldy + row] = (float)acc;
        }
}

// Bytes ahead of the current group that the few-token products prefetch in each tile's stream
// (0: none). Off: the hardware prefetchers follow four sequential tile streams per thread by
// themselves; 7B decode on an AMD EPYC (Zen 4) ran 5.9 / 5.5 / 4.6 / 6.5 tok/s without, 4.5 / 4.5 /
// 4.5 / 6.1 with 2048 bytes, each pair back to back (`yanyi bench --prefetch-bytes`).
static size_t ck_q8t_prefetch_bytes = 0;

// Bytes ahead that the many-token products prefetch into L2 on the first pass over their tiles,
// the one that streams them from memory (0: none), shared by the tiles read side by side (a pair:
// half each); later passes find the tiles in cache. Without it that pass overlaps little of its
// arithmetic with the stream. 8 layers of 7B shapes from DRAM (huge pages), 2 threads of an AMD
// EPYC (Zen 4), medians of 9 in turn: tile pairs x 6 tokens, 4 / 6 / 8 / 12 tokens, 43.8 / 67.6 /
// 76.0 / 98.3 ms without, 36.3 / 58.6 / 68.5 / 85.5 ms at 4096 bytes a tile (2048 and 6144 the
// same, T0 as T1); one tile x 8, 6 / 8 / 12 / 16 tokens, 4096 bytes 55.0 / 55.4 / 79.3 / 88.3 ms,
// 8192 53.8 / 54.1 / 72.7 / 85.2, 16384 54.5 / 52.5 / 73.6 / 84.6.
static size_t ck_q8t_batch_prefetch_bytes = 8192;
void ck_q8t_set_batch_prefetch_bytes(size_t bytes) { ck_q8t_batch_prefetch_bytes = bytes; }
size_t ck_q8t_get_batch_prefetch_bytes(void) { return ck_q8t_batch_prefetch_bytes; }
void ck_q8t_set_prefetch_bytes(size_t bytes) { ck_q8t_prefetch_bytes = bytes; }

// Tiles the few-token products read side by side (1-4): each is a stream of its own.
static size_t ck_q8t_decode_tiles = 4;
void ck_q8t_set_decode_tiles(size_t tiles) { ck_q8t_decode_tiles = tiles < 1 ? 1 : tiles > 4 ? 4 : tiles; }
size_t ck_q8t_get_decode_tiles(void) { return ck_q8t_decode_tiles; }
size_t ck_q8t_get_prefetch_bytes(void) { return ck_q8t_prefetch_bytes; }

#ifdef CK_X86
#define CK_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni")))

// TT tiles x M tokens over all blocks (TT·M <= 12, M <= 8: the int and float sums in registers).
// G: groups of 4 columns per block when known at compile time (8 for block 32), else 0. y + 16k
// holds tile k's rows, masked to its valid rows.
CK_VNNI CK_INLINE void q8t_micro(const uint8_t *restrict c0, const float *restrict s0, size_t tile_codes, size_t tile_scales,
                                 const int8_t *restrict xq, const float *restrict xs, const int32_t *restrict xc,
                                 float *restrict y, size_t ldy, size_t nb, size_t block, size_t valid,
                                 const int TT, const int M, const int G, const int PF) {
    const size_t kp = nb * block, groups = G ? (size_t)G : block / 4, pf = PF == 2 ? ck_q8t_batch_prefetch_bytes / (size_t)TT : ck_q8t_prefetch_bytes;
    __m512 af[4][8];
    CK_UNROLL
    for (int k = 0; k < TT; k++) {
        CK_UNROLL
        for (int m = 0; m < M; m++) af[k][m] = _mm512_setzero_ps();
    }
    for (size_t b = 0; b < nb; b++) {
        __m512i ai[4][8];
        CK_UNROLL
        for (int m = 0; m < M; m++) {
            const __m512i start = _mm512_set1_epi32(xc[m * nb + b]);
            CK_UNROLL
            for (int k = 0; k < TT; k++) ai[k][m] = start;
        }
        const int8_t *xb = xq + b * block;
        const uint8_t *cb = c0 + b * groups * 64;
#define CK_GROUP(g)                                                                                          \
        {                                                                                                    \
            __m512i w[4];                                                                                    \
            CK_UNROLL                                                                                        \
            for (int k = 0; k < TT; k++) {                                                                   \
                w[k] = _mm512_loadu_si512(cb + k * tile_codes + (g) * 64);                                   \
                if (PF == 1 && pf) _mm_prefetch((const char *)(cb + k * tile_codes + (g) * 64 + pf), _MM_HINT_T0); \
                if (PF == 2 && pf) _mm_prefetch((const char *)(cb + k * tile_codes + (g) * 64 + pf), _MM_HINT_T1); \
            }                                                                                                \
            CK_UNROLL                                                                                        \
            for (int m = 0; m < M; m++) {                                                                    \
                int32_t four;                                                                                \
                memcpy(&four, xb + m * kp + (g) * 4, 4);                                                     \
                const __m512i xv = _mm512_set1_epi32(four);                                                  \
                CK_UNROLL                                                                                    \
                for (int k = 0; k < TT; k++) ai[k][m] = _mm512_dpbusd_epi32(ai[k][m], w[k], xv);             \
            }                                                                                                \
        }
        if (G) {
            CK_UNROLL
            for (int g = 0; g < G; g++) CK_GROUP(g)
        } else {
            for (size_t g = 0; g < groups; g++) CK_GROUP(g)
        }
#undef CK_GROUP
        CK_UNROLL
        for (int k = 0; k < TT; k++) {
            const __m512 sw = _mm512_loadu_ps(s0 + k * tile_scales + b * 16);
            CK_UNROLL
            for (int m = 0; m < M; m++) {
                const __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(ai[k][m]), _mm512_set1_ps(xs[m * nb + b]));
                af[k][m] = _mm512_fmadd_ps(d, sw, af[k][m]);
            }
        }
    }
    CK_UNROLL
    for (int k = 0; k < TT; k++) {
        const size_t v = valid > 16 * (size_t)k ? ck_min(16, valid - 16 * (size_t)k) : 0;
        const __mmask16 mask = (__mmask16)((1u << v) - 1);
        CK_UNROLL
        for (int m = 0; m < M; m++) _mm512_mask_storeu_ps(y + m * ldy + 16 * k, mask, af[k][m]);
    }
}

#define CK_T(TT, M, PF)                                                                                      \
    if (block == 32) q8t_micro(ck, sk, tile_codes, tile_scales, xq + t * kp, xs + t * nb, xc + t * nb, yk, ldy, nb, block, valid, TT, M, 8, PF); \
    else q8t_micro(ck, sk, tile_codes, tile_scales, xq + t * kp, xs + t * nb, xc + t * nb, yk, ldy, nb, block, valid, TT, M, 0, PF);

// One tile x MT tokens (1-8), prefetching as q8t_micro's PF.
#define CK_ONE_TILE(MT, PF)                                                                                  \
    switch (MT) {                                                                                            \
    case 8: CK_T(1, 8, PF) break;                                                                            \
    case 7: CK_T(1, 7, PF) break;                                                                            \
    case 6: CK_T(1, 6, PF) break;                                                                            \
    case 5: CK_T(1, 5, PF) break;                                                                            \
    case 4: CK_T(1, 4, PF) break;                                                                            \
    case 3: CK_T(1, 3, PF) break;                                                                            \
    case 2: CK_T(1, 2, PF) break;                                                                            \
    default: CK_T(1, 1, PF) break;                                                                           \
    }

// Two tiles x MT tokens (1-6), likewise.
#define CK_TWO_TILES(MT, PF)                                                                                 \
    switch (MT) {                                                                                            \
    case 6: CK_T(2, 6, PF) break;                                                                            \
    case 5: CK_T(2, 5, PF) break;                                                                            \
    case 4: CK_T(2, 4, PF) break;                                                                            \
    case 3: CK_T(2, 3, PF) break;                                                                            \
    case 2: CK_T(2, 2, PF) break;                                                                            \
    default: CK_T(2, 1, PF) break;                                                                           \
    }

CK_VNNI
void ck_q8t_matmul_avx512vnni(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                              const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                              size_t cols, size_t block, size_t n, size_t ldy) {
    const size_t nb = ck_blocks(cols, block), kp = nb * block, tile_codes = 16 * kp, tile_scales = 16 * nb;
    const size_t tiles = ck_q8t_padded_rows(rows) / 16;
    if (n <= 3) {
        // Few tokens (decode): memory-bound; four tiles' streams at once, each prefetched ahead.
        const size_t step = ck_q8t_decode_tiles;
        for (size_t k = 0; k < tiles; k += step) {
            const size_t tt = ck_min(step, tiles - k), valid = rows - 16 * k;
            const uint8_t *ck = codes + k * tile_codes;
            const float *sk = tscales + k * tile_scales;
            float *yk = y + 16 * k;
            const size_t t = 0;
            switch (tt * 4 + n) {
            case 4 * 4 + 1: CK_T(4, 1, 1) break;
            case 4 * 4 + 2: CK_T(4, 2, 1) break;
            case 4 * 4 + 3: CK_T(4, 3, 1) break;
            case 3 * 4 + 1: CK_T(3, 1, 1) break;
            case 3 * 4 + 2: CK_T(3, 2, 1) break;
            case 3 * 4 + 3: CK_T(3, 3, 1) break;
            case 2 * 4 + 1: CK_T(2, 1, 1) break;
            case 2 * 4 + 2: CK_T(2, 2, 1) break;
            case 2 * 4 + 3: CK_T(2, 3, 1) break;
            case 1 * 4 + 1: CK_T(1, 1, 1) break;
            case 1 * 4 + 2: CK_T(1, 2, 1) break;
            default: CK_T(1, 3, 1) break;
            }
        }
        return;
    }
    if (n >= 6 && n <= 128) {
        // Batches and chat-sized prompts: one tile x up to eight tokens a pass, in balanced passes
        // (9 tokens: 5 + 4, not 8 + 1), the first prefetched into L2. 8 layers of 7B shapes from
        // DRAM, 2 threads of an AMD EPYC (Zen 4), medians of 9 in turn, against the tile pair x 6
        // below: 8 tokens 70.3 -> 58.9 ms, 12: 86.2 -> 75.2, 16: 106.4 -> 90.0, 48: 250.6 -> 237.4,
        // 128: 616 -> 603 (medians of 3); the pair wins at 4-5 tokens (43 against 48 at 5) and from
        // ~256 (1200 against 1210), where every pass but the first reads cached weights.
        for (size_t k = 0; k < tiles; k++) {
            const size_t valid = rows - 16 * k;
            const uint8_t *ck = codes + k * tile_codes;
            const float *sk = tscales + k * tile_scales;
            for (size_t t = 0, mt; t < n; t += mt) {
                const size_t left = n - t, passes = (left + 7) / 8;
                mt = (left + passes - 1) / passes;
                float *yk = y + t * ldy + 16 * k;
                if (t == 0) CK_ONE_TILE(mt, 2)
                else CK_ONE_TILE(mt, 0)
            }
        }
        return;
    }
    // Few tokens above decode, and prompts: two tiles x up to six tokens; the pair stays in cache
    // while the tokens pass over it.
    for (size_t k = 0; k < tiles; k += 2) {
        const size_t tt = ck_min(2, tiles - k), valid = rows - 16 * k;
        const uint8_t *ck = codes + k * tile_codes;
        const float *sk = tscales + k * tile_scales;
        for (size_t t = 0; t < n; t += 6) {
            const size_t mt = ck_min(6, n - t);
            float *yk = y + t * ldy + 16 * k;
            if (tt == 2 && t == 0) CK_TWO_TILES(mt, 2)   // the pass that reads the pair from memory
            else if (tt == 2) CK_TWO_TILES(mt, 0)
            else CK_ONE_TILE(mt, 0)
        }
    }
}
#undef CK_ONE_TILE
#undef CK_TWO_TILES
#undef CK_T
#else
void ck_q8t_matmul_avx512vnni(const uint8_t *restrict codes, const float *restrict tscales, const int8_t *restrict xq,
                              const float *restrict xs, const int32_t *restrict xc, float *restrict y, size_t rows,
                              size_t cols, size_t block, size_t n, size_t ldy) {
    ck_q8t_matmul_ref(codes, tscales, xq, xs, xc, y, rows, cols, block, n, ldy);
}
#endif
