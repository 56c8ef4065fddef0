/* linear_i8_vnni.c — int8 GEMM with AVX-512 VNNI (vpdpbusd): u8 activations × s8 weight panels, int32 sums. */
#include "cpu/kernels_cpu.h"
#include "cpu/panel_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

void asr_quantise_rows_vnni(const float *x, int n, int in, uint8_t *xq, float *xs)
{
    const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * in;
        uint8_t *q = xq + (size_t)r * in;
        __m512 m = _mm512_setzero_ps();
        int k = 0;
        for (; k + 16 <= in; k += 16) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(xr + k), abs_mask));
        float amax = _mm512_reduce_max_ps(m);
        for (; k < in; k++) amax = fabsf(xr[k]) > amax ? fabsf(xr[k]) : amax;
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        xs[r] = amax / 127.0f;
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), off = _mm512_set1_epi32(128);
        for (k = 0; k + 16 <= in; k += 16) {
            /* cvtps2dq rounds to nearest even, as nearbyintf does in the scalar form */
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xr + k), vinv));
            v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), off);
            _mm_storeu_si128((__m128i *)(q + k), _mm512_cvtepi32_epi8(v));
        }
        for (; k < in; k++) {
            float v = nearbyintf(xr[k] * inv);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[k] = (uint8_t)((int)v + 128);
        }
    }
}

static inline int32_t load4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* MR rows × NP panels of 16 outputs. x rows are ldx bytes apart, panels
 * pstride bytes; written from column c (a multiple of 16) up to c_end. */
static inline __attribute__((always_inline)) void tile(const uint8_t *x, int ldx, const float *xs, const int8_t *wp,
                                                       size_t pstride, int k4, const int32_t *comp,
                                                       const float *ws, float *y, int ldy, int c, int c_end,
                                                       int acc, const int MR, const int NP)
{
    /* named accumulators, not an array: GCC then keeps all 24 in registers
     * without copies around the destructive vpdpbusd */
#define ACC_DECL(i) __m512i a##i##0 = _mm512_setzero_si512(), a##i##1 = a##i##0, a##i##2 = a##i##0, a##i##3 = a##i##0;
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4) ACC_DECL(5)
#define ROW(i)                                                                                  \
    if (MR > i) {                                                                               \
        __m512i xb = _mm512_set1_epi32(load4(x + (size_t)i * ldx + 4 * (size_t)g));             \
        a##i##0 = _mm512_dpbusd_epi32(a##i##0, xb, w0);                                         \
        if (NP > 1) a##i##1 = _mm512_dpbusd_epi32(a##i##1, xb, w1);                             \
        if (NP > 2) a##i##2 = _mm512_dpbusd_epi32(a##i##2, xb, w2);                             \
        if (NP > 3) a##i##3 = _mm512_dpbusd_epi32(a##i##3, xb, w3);                             \
    }
    for (int g = 0; g < k4; g++) {
        const int8_t *wg = wp + (size_t)g * 64;
        __m512i w0 = _mm512_load_si512((const void *)wg), w1 = w0, w2 = w0, w3 = w0;
        if (NP > 1) w1 = _mm512_load_si512((const void *)(wg + pstride));
        if (NP > 2) w2 = _mm512_load_si512((const void *)(wg + 2 * pstride));
        if (NP > 3) w3 = _mm512_load_si512((const void *)(wg + 3 * pstride));
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
    }
#undef ROW
#undef ACC_DECL
    __m512i a[6][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                       {a30, a31, a32, a33}, {a40, a41, a42, a43}, {a50, a51, a52, a53}};
    for (int j = 0; j < NP; j++) {
        int c0 = c + 16 * j, left = c_end - c0;
        if (left <= 0) break;
        __mmask16 mask = asr_panel_mask(left);
        __m512i vc = _mm512_loadu_si512((const void *)(comp + c0));
        __m512 vs = _mm512_loadu_ps(ws + c0);
        for (int i = 0; i < MR; i++) {
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a[i][j], vc)),
                                     _mm512_mul_ps(_mm512_set1_ps(xs[i]), vs));
            asr_panel_store(y + (size_t)i * ldy + c0, mask, v, acc);
        }
    }
}

#define TILE_FN(MR, NP)                                                                                          \
    static void tile_##MR##x##NP(const uint8_t *x, int ldx, const float *xs, const int8_t *wp, size_t ps, int k4, \
                                 const int32_t *comp, const float *ws, float *y, int ldy, int c, int c_end,       \
                                 int acc)                                                                         \
    {                                                                                                             \
        tile(x, ldx, xs, wp, ps, k4, comp, ws, y, ldy, c, c_end, acc, MR, NP);                                    \
    }
TILE_FN(1, 4) TILE_FN(2, 4) TILE_FN(3, 4) TILE_FN(4, 4) TILE_FN(5, 4) TILE_FN(6, 4)
TILE_FN(1, 1) TILE_FN(2, 1) TILE_FN(3, 1) TILE_FN(4, 1) TILE_FN(5, 1) TILE_FN(6, 1)

typedef void (*tile_fn)(const uint8_t *, int, const float *, const int8_t *, size_t, int, const int32_t *,
                        const float *, float *, int, int, int, int);
static const tile_fn tiles4[7] = {NULL, tile_1x4, tile_2x4, tile_3x4, tile_4x4, tile_5x4, tile_6x4};
static const tile_fn tiles1[7] = {NULL, tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1, tile_6x1};

typedef struct i8_block {
    const uint8_t *x;
    const float *xs;
    const asr_tensor *w;
    int ldy, c_end, acc;
    size_t pstride;
    float *y;
} i8_block;

static void run_tile(const void *ctx, int r, int mr, int c, int panels)
{
    const i8_block *b = ctx;
    const int in = b->w->cols;
    const int8_t *wp = (const int8_t *)b->w->data + (size_t)(c / ASR_PANEL) * b->pstride;
    (panels == 4 ? tiles4 : tiles1)[mr](b->x + (size_t)r * in, in, b->xs + r, wp, b->pstride, in / 4, b->w->comp,
                                        b->w->scale, b->y + (size_t)r * b->ldy, b->ldy, c, b->c_end, b->acc);
}

void asr_i8_block_vnni(const uint8_t *xq, const float *xs, const asr_tensor *w, int r0, int r1, int c0, int c1,
                       float *y, int ldy, int acc)
{
    i8_block b = {xq, xs, w, ldy, c1, acc, (size_t)w->cols * ASR_PANEL, y};
    asr_panel_walk(r0, r1, c0, c1, 6, run_tile, &b);
}
#else
typedef int asr_linear_i8_vnni_unused; /* not an x86 target */
#endif
