/* vec_avx2.c — AVX2/FMA/F16C element-wise math (exp, erf, GELU, softmax, log-sum-exp), one-query attention, half conversion. */
#include "cpu/exp_poly.h"
#include "cpu/kernels_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline __m256 exp8(__m256 x);

/* erf for 8 floats, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
static inline __m256 erf8(__m256 x)
{
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 sign = _mm256_and_ps(x, sign_mask), ax = _mm256_andnot_ps(sign_mask, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_mul_ps(_mm256_xor_ps(ax, sign_mask), ax));
    __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(y, sign);
}

void asr_gelu_avx2(float *x, size_t n)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), rs2 = _mm256_set1_ps((float)M_SQRT1_2);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 g = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf8(_mm256_mul_ps(v, rs2))));
        _mm256_storeu_ps(x + i, g);
    }
    for (; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

/* exp for 8 floats: range reduction x = n·ln2 + r, |r| ≤ ln2/2, then a
 * degree-6 polynomial for e^r (max relative error ~2e-7, like expf). */
static inline __m256 exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(ASR_EXP_HI), lo = _mm256_set1_ps(ASR_EXP_LO);
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ASR_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ASR_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ASR_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(ASR_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ASR_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ASR_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ASR_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ASR_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ASR_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static float max_f32(const float *x, int n)
{
    float max = -INFINITY;
    int i = 0;
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        for (int k = 0; k < 8; k++) if (lanes[k] > max) max = lanes[k];
    }
    for (; i < n; i++) if (x[i] > max) max = x[i];
    return max;
}

/* The terms e^(x - max) in float (exp8, ~2e-7 relative), their sum in
 * double as the scalar form keeps it: over a 51,864-token vocabulary a float
 * sum would lose digits the fallback thresholds look at. */
float asr_logsumexp_avx2(const float *x, int n)
{
    float max = max_f32(x, n);
    if (max == -INFINITY) return -INFINITY;
    const __m256 vmax = _mm256_set1_ps(max), ninf = _mm256_set1_ps(-INFINITY);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vmax)), _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < n; i++) sum += exp((double)x[i] - max);
    return max + (float)log(sum);
}

void asr_softmax_avx2(float *x, int n)
{
    float max = max_f32(x, n);
    if (max == -INFINITY) {
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    int i = 0;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8) {
        /* exp8 clamps its input, so a masked -inf would give e^-87 ≈ 1e-38,
         * not the 0 the contract (and the scalar form) promise */
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vmax)), _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vsum);
    double sum = 0.0;
    for (int k = 0; k < 8; k++) sum += lanes[k];
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++) x[i] *= inv;
}

static inline float sum8(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_f32(const float *a, const float *b, int n)
{
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s);
    float r = sum8(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* out += p · v over n values (n a multiple of 8 is the fast path). */
static void axpy(float *out, float p, const float *v, int n)
{
    __m256 vp = _mm256_set1_ps(p);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    for (; i < n; i++) out[i] += p * v[i];
}

/* Eight partial-sum vectors → one vector of their eight totals (lane i = sum of a[i]). */
static inline __m256 transpose_sum8(const __m256 a[8])
{
    __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    /* lanes: s0123 = [k0 k1 k2 k3 | k0 k1 k2 k3] halves, likewise s4567 */
    __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20), hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    return _mm256_add_ps(lo, hi);
}

/* Eight keys' or values' elements from row p at column i: float32, or IEEE
 * half widened exactly (F16C), so the decoder reads half the bytes. */
static inline __attribute__((always_inline)) __m256 load8(const void *p, size_t i, const int half)
{
    if (half) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

/* Whisper's head width at every size. The keys are taken eight at a time
 * with one accumulator each, and the output row stays in registers across
 * all keys: the general loop is bound by one dependent FMA chain per key and
 * by reloading and storing `out` for every key. k and v are float32 or, with
 * half, IEEE half (strides in elements). */
static inline __attribute__((always_inline)) void attend_dh64(const float *q, const void *k, int ldk, const void *v,
                                                              int ldv, int nk, float scale, float *scores,
                                                              float *out, const int half)
{
    const size_t esize = half ? sizeof(uint16_t) : sizeof(float);
    __m256 qv[8];
    for (int e = 0; e < 8; e++) qv[e] = _mm256_loadu_ps(q + 8 * e);
    const __m256 vscale = _mm256_set1_ps(scale);
    int t = 0;
    for (; t + 8 <= nk; t += 8) {
        __m256 acc[8];
        for (int j = 0; j < 8; j++) {
            const char *kt = (const char *)k + (size_t)(t + j) * ldk * esize;
            __m256 a0 = _mm256_mul_ps(qv[0], load8(kt, 0, half));
            __m256 a1 = _mm256_mul_ps(qv[1], load8(kt, 8, half));
            a0 = _mm256_fmadd_ps(qv[2], load8(kt, 16, half), a0);
            a1 = _mm256_fmadd_ps(qv[3], load8(kt, 24, half), a1);
            a0 = _mm256_fmadd_ps(qv[4], load8(kt, 32, half), a0);
            a1 = _mm256_fmadd_ps(qv[5], load8(kt, 40, half), a1);
            a0 = _mm256_fmadd_ps(qv[6], load8(kt, 48, half), a0);
            a1 = _mm256_fmadd_ps(qv[7], load8(kt, 56, half), a1);
            acc[j] = _mm256_add_ps(a0, a1);
        }
        _mm256_storeu_ps(scores + t, _mm256_mul_ps(transpose_sum8(acc), vscale));
    }
    for (; t < nk; t++) {
        if (!half) {
            scores[t] = dot_f32(q, (const float *)k + (size_t)t * ldk, 64) * scale;
            continue;
        }
        const uint16_t *kt = (const uint16_t *)k + (size_t)t * ldk;
        float dot = 0.0f;
        for (int e = 0; e < 64; e++) dot += q[e] * _cvtsh_ss(kt[e]);
        scores[t] = dot * scale;
    }
    asr_softmax_avx2(scores, nk);
    __m256 o[8];
    for (int e = 0; e < 8; e++) o[e] = _mm256_setzero_ps();
    for (t = 0; t < nk; t++) {
        const char *vt = (const char *)v + (size_t)t * ldv * esize;
        __m256 p = _mm256_broadcast_ss(scores + t);
        for (int e = 0; e < 8; e++) o[e] = _mm256_fmadd_ps(p, load8(vt, 8 * (size_t)e, half), o[e]);
    }
    for (int e = 0; e < 8; e++) _mm256_storeu_ps(out + 8 * e, o[e]);
}

void asr_attend_one_avx2(const float *q, const float *k, int ldk, const float *v, int ldv, int nk, int dh,
                         float scale, float *scores, float *out)
{
    if (dh == 64) {
        attend_dh64(q, k, ldk, v, ldv, nk, scale, scores, out, 0);
        return;
    }
    for (int t = 0; t < nk; t++) scores[t] = dot_f32(q, k + (size_t)t * ldk, dh) * scale;
    asr_softmax_avx2(scores, nk);
    memset(out, 0, (size_t)dh * sizeof(float));
    for (int t = 0; t < nk; t++) axpy(out, scores[t], v + (size_t)t * ldv, dh);
}

void asr_attend_one_k16_avx2(const float *q, const uint16_t *k, int ldk, const uint16_t *v, int ldv, int nk, int dh,
                             float scale, float *scores, float *out)
{
    if (dh == 64) {
        attend_dh64(q, k, ldk, v, ldv, nk, scale, scores, out, 1);
        return;
    }
    asr_attend_one_k16_scalar(q, k, ldk, v, ldv, nk, dh, scale, scores, out);
}

void asr_f16_to_f32_avx2(const uint16_t *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = _cvtsh_ss(in[i]);
}

void asr_f16_bytes_to_f32_avx2(const unsigned char *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        out[i] = _cvtsh_ss(h);
    }
}

void asr_f32_to_f16_avx2(const float *in, uint16_t *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#else
typedef int asr_vec_avx2_unused; /* not an x86 target: the scalar forms serve */
#endif
