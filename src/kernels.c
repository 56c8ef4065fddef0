/* kernels.c — element-wise math: layer norm, GELU, softmax (AVX2 exp/erf). */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

static void layer_norm_rows(const float *x, const float *g, const float *b, float *y, int n, int d)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < d; j++) mean += xi[j];
        mean /= d;
        for (int j = 0; j < d; j++) {
            double t = xi[j] - mean;
            var += t * t;
        }
        var /= d;
        float inv = (float)(1.0 / sqrt(var + 1e-5));
        float mu = (float)mean;
        for (int j = 0; j < d; j++) yi[j] = (xi[j] - mu) * inv * g[j] + b[j];
    }
}

#define LN_ROWS 64 /* rows per layer-norm task */

typedef struct layer_norm_job {
    const float *x, *g, *b;
    float *y;
    int n, d;
} layer_norm_job;

static void layer_norm_task(void *ctx, int task, int thread)
{
    const layer_norm_job *j = ctx;
    (void)thread;
    int r0 = task * LN_ROWS, rows = j->n - r0 < LN_ROWS ? j->n - r0 : LN_ROWS;
    layer_norm_rows(j->x + (size_t)r0 * j->d, j->g, j->b, j->y + (size_t)r0 * j->d, rows, j->d);
}

void asr_layer_norm(const asr_compute *c, const float *x, const float *g, const float *b, float *y, int n, int d)
{
    if (n <= LN_ROWS) {
        layer_norm_rows(x, g, b, y, n, d);
        return;
    }
    layer_norm_job j = {x, g, b, y, n, d};
    asr_pool_run(c->pool, layer_norm_task, &j, (n + LN_ROWS - 1) / LN_ROWS);
}

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

void asr_gelu(float *x, size_t n)
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
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void asr_softmax(float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) {
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
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
