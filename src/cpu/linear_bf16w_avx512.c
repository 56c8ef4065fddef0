/* linear_bf16w_avx512.c — bfloat16 weights × float32 activations on the float32 FMA units (AVX-512F).
 *
 * For cores whose vdpbf16ps runs at half the rate of their two 512-bit
 * FMA pipes (Intel's Sapphire and Emerald Rapids: 136 against 252 GFLOP/s
 * measured by bench/kernels), widening bf16 to float32 is exact and cheap:
 * one 64-byte load of a P16K2 panel holds the pairs (k, k+1) of sixteen
 * outputs, and a shift and a mask turn it into the k and the k+1 weights
 * as float32. The activations stay float32 (not rounded to bf16), so the
 * product is the float32 product of the bf16-rounded weights. */
#include "cpu/kernels_cpu.h"
#include "cpu/panel_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* MR rows × NP panels of 16 outputs, x rows ldx floats apart, panels
 * pstride halves apart. Each lane sums k in order (k even, then k odd). */
static inline __attribute__((always_inline)) void tile(const float *x, int ldx, const uint16_t *wp, size_t pstride,
                                                       int k2, float *y, int ldy, int c, int c_end, int acc,
                                                       const int MR, const int NP)
{
#define ACC_DECL(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = a##i##0, a##i##2 = a##i##0, a##i##3 = a##i##0;
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4)
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
#define WIDEN(p)                                                                                        \
    __m512 e##p = _mm512_setzero_ps(), o##p = e##p;                                                     \
    if (NP > p) {                                                                                       \
        __m512i v = _mm512_load_si512((const void *)(wg + (size_t)(p) * pstride));                      \
        e##p = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));                                           \
        o##p = _mm512_castsi512_ps(_mm512_and_si512(v, high));                                          \
    }
#define ROW(i)                                                                                          \
    if (MR > i) {                                                                                       \
        const float *xr = x + (size_t)(i) * ldx + 2 * (size_t)g;                                        \
        __m512 x0 = _mm512_set1_ps(xr[0]), x1 = _mm512_set1_ps(xr[1]);                                  \
        a##i##0 = _mm512_fmadd_ps(o0, x1, _mm512_fmadd_ps(e0, x0, a##i##0));                             \
        if (NP > 1) a##i##1 = _mm512_fmadd_ps(o1, x1, _mm512_fmadd_ps(e1, x0, a##i##1));                 \
        if (NP > 2) a##i##2 = _mm512_fmadd_ps(o2, x1, _mm512_fmadd_ps(e2, x0, a##i##2));                 \
        if (NP > 3) a##i##3 = _mm512_fmadd_ps(o3, x1, _mm512_fmadd_ps(e3, x0, a##i##3));                 \
    }
    for (int g = 0; g < k2; g++) {
        const uint16_t *wg = wp + (size_t)g * 32;
        WIDEN(0) WIDEN(1) WIDEN(2) WIDEN(3)
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4)
    }
#undef ROW
#undef WIDEN
#undef ACC_DECL
    __m512 a[5][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                      {a30, a31, a32, a33}, {a40, a41, a42, a43}};
    for (int j = 0; j < NP; j++) {
        int c0 = c + 16 * j, left = c_end - c0;
        if (left <= 0) break;
        __mmask16 mask = asr_panel_mask(left);
        for (int i = 0; i < MR; i++) asr_panel_store(y + (size_t)i * ldy + c0, mask, a[i][j], acc);
    }
}

#define TILE_FN(MR, NP)                                                                                            \
    static void tile_##MR##x##NP(const float *x, int ldx, const uint16_t *wp, size_t ps, int k2, float *y, int ldy, \
                                 int c, int c_end, int acc)                                                         \
    {                                                                                                               \
        tile(x, ldx, wp, ps, k2, y, ldy, c, c_end, acc, MR, NP);                                                    \
    }
TILE_FN(1, 4) TILE_FN(2, 4) TILE_FN(3, 4) TILE_FN(4, 4) TILE_FN(5, 4)
TILE_FN(1, 1) TILE_FN(2, 1) TILE_FN(3, 1) TILE_FN(4, 1) TILE_FN(5, 1)

typedef void (*tile_fn)(const float *, int, const uint16_t *, size_t, int, float *, int, int, int, int);
static const tile_fn tiles4[6] = {NULL, tile_1x4, tile_2x4, tile_3x4, tile_4x4, tile_5x4};
static const tile_fn tiles1[6] = {NULL, tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1};

typedef struct bf16w_block {
    const float *x;
    const uint16_t *w;
    int in, ldy, c_end, acc;
    size_t pstride;
    float *y;
} bf16w_block;

static void run_tile(const void *ctx, int r, int mr, int c, int panels)
{
    const bf16w_block *b = ctx;
    (panels == 4 ? tiles4 : tiles1)[mr](b->x + (size_t)r * b->in, b->in, b->w + (size_t)(c / ASR_PANEL) * b->pstride,
                                        b->pstride, b->in / 2, b->y + (size_t)r * b->ldy, b->ldy, c, b->c_end, b->acc);
}

/* Five rows, not six as the vdpbf16ps kernel: 20 accumulators, the eight
 * widened weight vectors of four panels and two broadcasts fill the 32
 * registers. */
void asr_bf16w_block_avx512(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                            int acc)
{
    bf16w_block b = {x, w->data, w->cols, ldy, c1, acc, (size_t)w->cols * ASR_PANEL, y};
    asr_panel_walk(r0, r1, c0, c1, 5, run_tile, &b);
}
#else
typedef int asr_linear_bf16w_unused; /* not an x86 target */
#endif
