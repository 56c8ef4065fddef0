/* attention_bf16.c — the encoder attention of the bfloat16 path (AVX-512 BF16 CPUs): float32 scores Q·Kᵀ over 16-key panels (6×64 register tiles), softmax into bf16.
 *
 * OpenBLAS 0.3.21 runs its Haswell (256-bit) sgemm on the CPUs it does not
 * know, about a third of this core's float32 peak; this kernel reaches most
 * of it on the scores' shape (dh = 64 inputs: each packed 64-key group is
 * 16 KB and stays in L1 while every block of queries passes). */
#include "cpu/exp_poly.h"
#include "cpu/kernels_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

void asr_attn_pack_keys_bf16(const float *k, int ldk, int n_kv, int dh, float *dst)
{
    const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(ldk));
    for (int p0 = 0; p0 < n_kv; p0 += 16) {
        float *panel = dst + (size_t)p0 * dh;
        __mmask16 live = n_kv - p0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_kv - p0)) - 1);
        const float *base = k + (size_t)p0 * ldk;
        /* element e of the panel's 16 keys: one gather of a column of the 16 rows */
        for (int e = 0; e < dh; e++)
            _mm512_storeu_ps(panel + (size_t)e * 16,
                             _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, lanes, base + e, 4));
    }
}

void asr_attn_pack_values_bf16(const float *v, int ldv, int n_kv, int dh, int cols, uint16_t *dst)
{
    /* output r = dimension, input k = key: panel of 16 dimensions, then key
     * pairs (k, k+1) with each lane's two halves adjacent */
    const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int r0 = 0; r0 < dh; r0 += 16) {
        __mmask16 live = dh - r0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (dh - r0)) - 1);
        for (int k = 0; k < cols; k += 2) {
            __m512 a = k < n_kv ? _mm512_maskz_loadu_ps(live, v + (size_t)k * ldv + r0) : _mm512_setzero_ps();
            __m512 b = k + 1 < n_kv ? _mm512_maskz_loadu_ps(live, v + (size_t)(k + 1) * ldv + r0) : _mm512_setzero_ps();
            __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a); /* halves 0-15: a (key k), 16-31: b (key k+1) */
            _mm512_storeu_si512((void *)dst, _mm512_permutexvar_epi16(pairs, h));
            dst += 32;
        }
    }
}

/* MR query rows × NP panels of 16 keys; each score sums over e in order. */
static inline __attribute__((always_inline)) void tile(const float *q, int ldq, const float *kp, int dh, float scale,
                                                       float *y, int ldy, int key0, int n_kv, const int MR,
                                                       const int NP)
{
#define ACC_DECL(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = a##i##0, a##i##2 = a##i##0, a##i##3 = a##i##0;
    ACC_DECL(0) ACC_DECL(1) ACC_DECL(2) ACC_DECL(3) ACC_DECL(4) ACC_DECL(5)
    const size_t pstride = (size_t)dh * 16;
#define ROW(i)                                                                  \
    if (MR > i) {                                                               \
        __m512 x = _mm512_set1_ps(q[(size_t)i * ldq + e]);                      \
        a##i##0 = _mm512_fmadd_ps(x, w0, a##i##0);                              \
        if (NP > 1) a##i##1 = _mm512_fmadd_ps(x, w1, a##i##1);                  \
        if (NP > 2) a##i##2 = _mm512_fmadd_ps(x, w2, a##i##2);                  \
        if (NP > 3) a##i##3 = _mm512_fmadd_ps(x, w3, a##i##3);                  \
    }
    for (int e = 0; e < dh; e++) {
        const float *we = kp + (size_t)e * 16;
        __m512 w0 = _mm512_loadu_ps(we), w1 = w0, w2 = w0, w3 = w0;
        if (NP > 1) w1 = _mm512_loadu_ps(we + pstride);
        if (NP > 2) w2 = _mm512_loadu_ps(we + 2 * pstride);
        if (NP > 3) w3 = _mm512_loadu_ps(we + 3 * pstride);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
    }
#undef ROW
#undef ACC_DECL
    __m512 a[6][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                      {a30, a31, a32, a33}, {a40, a41, a42, a43}, {a50, a51, a52, a53}};
    __m512 s = _mm512_set1_ps(scale);
    for (int j = 0; j < NP; j++) {
        int k0 = key0 + 16 * j, left = n_kv - k0;
        if (left <= 0) break;
        __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (int i = 0; i < MR; i++) _mm512_mask_storeu_ps(y + (size_t)i * ldy + k0, mask, _mm512_mul_ps(a[i][j], s));
    }
}

#define TILE_FN(MR, NP)                                                                                        \
    static void score_tile_##MR##x##NP(const float *q, int ldq, const float *kp, int dh, float scale, float *y,       \
                                 int ldy, int key0, int n_kv)                                                   \
    {                                                                                                           \
        tile(q, ldq, kp, dh, scale, y, ldy, key0, n_kv, MR, NP);                                                \
    }
TILE_FN(1, 4) TILE_FN(2, 4) TILE_FN(3, 4) TILE_FN(4, 4) TILE_FN(5, 4) TILE_FN(6, 4)
TILE_FN(1, 1) TILE_FN(2, 1) TILE_FN(3, 1) TILE_FN(4, 1) TILE_FN(5, 1) TILE_FN(6, 1)

typedef void (*tile_fn)(const float *, int, const float *, int, float, float *, int, int, int);
static const tile_fn tiles4[7] = {NULL, score_tile_1x4, score_tile_2x4, score_tile_3x4, score_tile_4x4, score_tile_5x4, score_tile_6x4};
static const tile_fn tiles1[7] = {NULL, score_tile_1x1, score_tile_2x1, score_tile_3x1, score_tile_4x1, score_tile_5x1, score_tile_6x1};

void asr_attn_scores_bf16(const float *q, int ldq, int rows, const float *kp, int n_kv, int dh, float scale,
                           float *scores)
{
    const int panels = (n_kv + 15) / 16;
    const size_t pstride = (size_t)dh * 16;
    for (int p = 0; p < panels; p += 4) {
        int np = panels - p < 4 ? panels - p : 4;
        const float *kg = kp + (size_t)p * pstride;
        for (int r = 0; r < rows; r += 6) {
            int mr = rows - r < 6 ? rows - r : 6;
            const float *qr = q + (size_t)r * ldq;
            float *yr = scores + (size_t)r * n_kv;
            if (np == 4) {
                tiles4[mr](qr, ldq, kg, dh, scale, yr, n_kv, 16 * p, n_kv);
            } else {
                for (int j = 0; j < np; j++)
                    tiles1[mr](qr, ldq, kg + (size_t)j * pstride, dh, scale, yr, n_kv, 16 * (p + j), n_kv);
            }
        }
    }
}
/* exp for 16 floats: exp8 of vec_avx2.c at twice the width (x = n·ln2 + r,
 * degree-6 polynomial for e^r, max relative error ~2e-7). */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(ASR_EXP_HI)), _mm512_set1_ps(ASR_EXP_LO));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(ASR_EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ASR_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ASR_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(ASR_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ASR_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ASR_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ASR_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ASR_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ASR_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

float asr_attn_softmax_bf16(const float *x, int nk, int cols, uint16_t *out)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= nk; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (nk - i)) - 1);
    if (i < nk) vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, x + i));
    float max = _mm512_reduce_max_ps(vmax);
    if (max == -INFINITY) { /* every key masked: no weight anywhere, as asr_softmax */
        for (int t = 0; t < cols; t++) out[t] = 0;
        return 0.0f;
    }
    const __m512 m = _mm512_set1_ps(max), ninf = _mm512_set1_ps(-INFINITY);
    __m512 sum = _mm512_setzero_ps();
    for (i = 0; i < nk; i += 16) {
        __mmask16 live = nk - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nk - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(live, x + i);
        /* exp16 clamps: a -inf score (masked) must give 0, not e^-87 */
        live &= _mm512_cmp_ps_mask(v, ninf, _CMP_NEQ_OQ);
        __m512 e = _mm512_maskz_mov_ps(live, exp16(_mm512_sub_ps(v, m)));
        sum = _mm512_add_ps(sum, e);
        __m256bh h = _mm512_cvtneps_pbh(e);
        if (cols - i >= 16) _mm256_storeu_si256((__m256i *)(out + i), (__m256i)h);
        else _mm256_mask_storeu_epi16(out + i, (__mmask16)((1u << (cols - i)) - 1), (__m256i)h);
    }
    for (int t = i; t < cols; t++) out[t] = 0;
    return 1.0f / _mm512_reduce_add_ps(sum);
}
#else
typedef int asr_attention_bf16_unused; /* not an x86 target */
#endif
