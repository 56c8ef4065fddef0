/* linear_bf16.c — bfloat16 GEMM with AVX-512 BF16 (vdpbf16ps): bf16 activations × weight panels, f32 sums. */
#include "cpu/kernels_cpu.h"
#include "cpu/panel_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

void asr_round_bf16_avx512(const float *x, size_t n, uint16_t *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)h);
    }
    for (; i < n; i++) out[i] = asr_f32_to_bf16(x[i]);
}

static inline int32_t load4(const uint16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* MR rows × NP panels of 16 outputs; x rows ldx halves apart, panels
 * pstride halves. Each lane sums pairs (k, k+1) in order of k. */
static inline __attribute__((always_inline)) void tile(const uint16_t *x, int ldx, const uint16_t *wp,
                                                       size_t pstride, int k2, float *y, int ldy, int c, int c_end,
                                                       int acc, const int MR, const int NP)
{
    /* named accumulators, not an array: GCC then keeps all 24 in registers */
#define ACC_DECL(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = a##i##0, a##i##2 = a##i##0, a##i##3 = a##i##0;
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4) ACC_DECL(5)
#define ROW(i)                                                                                  \
    if (MR > i) {                                                                               \
        __m512bh xb = (__m512bh)_mm512_set1_epi32(load4(x + (size_t)i * ldx + 2 * (size_t)g));  \
        a##i##0 = _mm512_dpbf16_ps(a##i##0, xb, w0);                                            \
        if (NP > 1) a##i##1 = _mm512_dpbf16_ps(a##i##1, xb, w1);                                \
        if (NP > 2) a##i##2 = _mm512_dpbf16_ps(a##i##2, xb, w2);                                \
        if (NP > 3) a##i##3 = _mm512_dpbf16_ps(a##i##3, xb, w3);                                \
    }
    for (int g = 0; g < k2; g++) {
        const uint16_t *wg = wp + (size_t)g * 32;
        __m512bh w0 = (__m512bh)_mm512_load_si512((const void *)wg), w1 = w0, w2 = w0, w3 = w0;
        if (NP > 1) w1 = (__m512bh)_mm512_load_si512((const void *)(wg + pstride));
        if (NP > 2) w2 = (__m512bh)_mm512_load_si512((const void *)(wg + 2 * pstride));
        if (NP > 3) w3 = (__m512bh)_mm512_load_si512((const void *)(wg + 3 * pstride));
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
    }
#undef ROW
#undef ACC_DECL
    __m512 a[6][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                      {a30, a31, a32, a33}, {a40, a41, a42, a43}, {a50, a51, a52, a53}};
    for (int j = 0; j < NP; j++) {
        int c0 = c + 16 * j, left = c_end - c0;
        if (left <= 0) break;
        __mmask16 mask = asr_panel_mask(left);
        for (int i = 0; i < MR; i++) asr_panel_store(y + (size_t)i * ldy + c0, mask, a[i][j], acc);
    }
}

#define TILE_FN(MR, NP)                                                                                            \
    static void tile_##MR##x##NP(const uint16_t *x, int ldx, const uint16_t *wp, size_t ps, int k2, float *y,       \
                                 int ldy, int c, int c_end, int acc)                                                \
    {                                                                                                               \
        tile(x, ldx, wp, ps, k2, y, ldy, c, c_end, acc, MR, NP);                                                    \
    }
TILE_FN(1, 4) TILE_FN(2, 4) TILE_FN(3, 4) TILE_FN(4, 4) TILE_FN(5, 4) TILE_FN(6, 4)
TILE_FN(1, 1) TILE_FN(2, 1) TILE_FN(3, 1) TILE_FN(4, 1) TILE_FN(5, 1) TILE_FN(6, 1)

typedef void (*tile_fn)(const uint16_t *, int, const uint16_t *, size_t, int, float *, int, int, int, int);
static const tile_fn tiles4[7] = {NULL, tile_1x4, tile_2x4, tile_3x4, tile_4x4, tile_5x4, tile_6x4};
static const tile_fn tiles1[7] = {NULL, tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1, tile_6x1};

typedef struct bf16_block {
    const uint16_t *x, *w;
    int in, ldy, c_end, acc;
    size_t pstride;
    float *y;
} bf16_block;

static void run_tile(const void *ctx, int r, int mr, int c, int panels)
{
    const bf16_block *b = ctx;
    (panels == 4 ? tiles4 : tiles1)[mr](b->x + (size_t)r * b->in, b->in, b->w + (size_t)(c / ASR_PANEL) * b->pstride,
                                        b->pstride, b->in / 2, b->y + (size_t)r * b->ldy, b->ldy, c, b->c_end, b->acc);
}

void asr_bf16_block_avx512(const uint16_t *xb, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y,
                           int ldy, int acc)
{
    bf16_block b = {xb, w->data, w->cols, ldy, c1, acc, (size_t)w->cols * ASR_PANEL, y};
    asr_panel_walk(r0, r1, c0, c1, 6, run_tile, &b);
}
#else
typedef int asr_linear_bf16_unused; /* not an x86 target */
#endif
