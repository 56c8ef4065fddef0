/* kernels.c — element-wise math: layer norm, GELU, softmax, log-sum-exp (AVX2 forms in cpu/vec_avx2.c). */
#include "kernels.h"

#include "cpu/kernels_cpu.h"
#include "cpu/features.h"
#include "model.h"

#include <math.h>
#include <string.h>

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

/* The AVX2 forms live in cpu/vec_avx2.c; these are the portable ones. */
void asr_gelu(float *x, size_t n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) {
        asr_gelu_avx2(x, n);
        return;
    }
#endif
    asr_gelu_scalar(x, n);
}

void asr_softmax(float *x, int n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) {
        asr_softmax_avx2(x, n);
        return;
    }
#endif
    asr_softmax_scalar(x, n);
}

float asr_logsumexp(const float *x, int n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) return asr_logsumexp_avx2(x, n);
#endif
    return asr_logsumexp_scalar(x, n);
}

float asr_logsumexp_scalar(const float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) return -INFINITY;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - max);
    return max + (float)log(sum);
}

void asr_gelu_scalar(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void asr_softmax_scalar(float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) {
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

int asr_cpu_has_avx2(void)
{
#if defined(__x86_64__) && defined(__clang__)
    /* clang's runtime knows no "f16c"; every CPU with AVX2 and FMA has it
     * (F16C came first on both vendors' lines) */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

void asr_attend_one_scalar(const float *q, const float *k, int ldk, const float *v, int ldv, int nk, int dh,
                           float scale, float *scores, float *out)
{
    for (int t = 0; t < nk; t++) {
        const float *kt = k + (size_t)t * ldk;
        float dot = 0.0f;
        for (int e = 0; e < dh; e++) dot += q[e] * kt[e];
        scores[t] = dot * scale;
    }
    asr_softmax(scores, nk);
    memset(out, 0, (size_t)dh * sizeof(float));
    for (int t = 0; t < nk; t++)
        for (int e = 0; e < dh; e++) out[e] += scores[t] * v[(size_t)t * ldv + e];
}

void asr_attend_one_k16_scalar(const float *q, const uint16_t *k, int ldk, const uint16_t *v, int ldv, int nk, int dh,
                               float scale, float *scores, float *out)
{
    for (int t = 0; t < nk; t++) {
        const uint16_t *kt = k + (size_t)t * ldk;
        float dot = 0.0f;
        for (int e = 0; e < dh; e++) dot += q[e] * asr_f16_to_f32(kt[e]);
        scores[t] = dot * scale;
    }
    asr_softmax(scores, nk);
    memset(out, 0, (size_t)dh * sizeof(float));
    for (int t = 0; t < nk; t++)
        for (int e = 0; e < dh; e++) out[e] += scores[t] * asr_f16_to_f32(v[(size_t)t * ldv + e]);
}

/* Rounding to bfloat16: one task per block of values. */
#define ROUND_BLOCK ((size_t)1 << 16)

typedef struct round_job {
    const float *x;
    size_t n;
    uint16_t *out;
    unsigned isa;
} round_job;

static void round_task(void *ctx, int task, int thread)
{
    const round_job *j = ctx;
    (void)thread;
    size_t i0 = (size_t)task * ROUND_BLOCK, n = j->n - i0 < ROUND_BLOCK ? j->n - i0 : ROUND_BLOCK;
#if defined(__x86_64__)
    if ((j->isa & ASR_ISA_BF16) == ASR_ISA_BF16) {
        asr_round_bf16_avx512(j->x + i0, n, j->out + i0);
        return;
    }
#endif
    asr_round_bf16_scalar(j->x + i0, n, j->out + i0);
}

void asr_round_bf16(const asr_compute *c, const float *x, size_t n, uint16_t *out)
{
    round_job j = {x, n, out, c->isa};
    if (n) asr_pool_run(c->pool, round_task, &j, (int)((n + ROUND_BLOCK - 1) / ROUND_BLOCK));
}

static void half_task(void *ctx, int task, int thread)
{
    const round_job *j = ctx;
    (void)thread;
    size_t i0 = (size_t)task * ROUND_BLOCK, n = j->n - i0 < ROUND_BLOCK ? j->n - i0 : ROUND_BLOCK;
#if defined(__x86_64__)
    if ((j->isa & ASR_ISA_AVX2) == ASR_ISA_AVX2) {
        asr_f32_to_f16_avx2(j->x + i0, j->out + i0, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) j->out[i0 + i] = asr_f32_to_f16(j->x[i0 + i]);
}

void asr_round_f16(const asr_compute *c, const float *x, size_t n, uint16_t *out)
{
    round_job j = {x, n, out, c->isa};
    if (n) asr_pool_run(c->pool, half_task, &j, (int)((n + ROUND_BLOCK - 1) / ROUND_BLOCK));
}
