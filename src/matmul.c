/* matmul.c — linear layers and attention, split into tasks on a state's pool.
 *
 * Large products (the encoder's 1500-row matrices, prompts) go to OpenBLAS
 * sgemm running one thread per call, one slice per task, so the parallelism
 * is ours and belongs to the request's state. The decoder's one-to-sixteen-row products
 * are bound by reading the weights, so they use a kernel of our own that
 * reads half-precision weights once for all rows and widens them in
 * registers (F16C): half the bytes of float32, the same arithmetic. */
#include "kernels.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* Below this many rows a half-weight product uses the register kernel. */
#define SMALL_ROWS 16
/* Output columns per task of the register kernel (a multiple of 4). */
#define SMALL_COLS 64

/* OpenBLAS would otherwise start a thread per core for every sgemm and
 * share them between all callers (its thread count is process-wide): the
 * parallelism is ours, per state, so it is told once to use one. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_threaded(void) { openblas_set_num_threads(1); }

void asr_compute_init_blas(void)
{
    pthread_once(&blas_once, blas_single_threaded);
}

size_t asr_compute_scratch_floats(int max_keys, int max_in)
{
    size_t attn = (size_t)ASR_ATTN_BLOCK * (size_t)max_keys;
    size_t panel = (size_t)ASR_HALF_PANEL * (size_t)max_in;
    return attn > panel ? attn : panel;
}

static float *thread_scratch(const asr_compute *c, int thread)
{
    return c->scratch + (size_t)thread * c->scratch_floats;
}

/* Bias and GELU over rows [r0, r1) and columns [c0, c1) of y (stride ld),
 * after the product was written (or accumulated) there. */
static void epilogue(float *y, int ld, int r0, int r1, int c0, int c1, const float *b, int flags)
{
    for (int r = r0; r < r1; r++) {
        float *row = y + (size_t)r * ld;
        if (b)
            for (int j = c0; j < c1; j++) row[j] += b[j];
        if (flags & ASR_LINEAR_GELU) asr_gelu(row + c0, (size_t)(c1 - c0));
    }
}

/* ---- float32 weights: OpenBLAS slices of rows -------------------------------- */

typedef struct linear_job {
    const float *x;
    const void *w;
    const float *b;
    float *y;
    int n, in, out, flags, n_tasks;
    const asr_compute *c;
} linear_job;

static void linear_rows_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0 = (int)((long)j->n * task / j->n_tasks), r1 = (int)((long)j->n * (task + 1) / j->n_tasks);
    if (r1 <= r0) return;
    float beta = (j->flags & ASR_LINEAR_ACCUMULATE) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, j->out, j->in, 1.0f, j->x + (size_t)r0 * j->in,
                j->in, j->w, j->in, beta, j->y + (size_t)r0 * j->out, j->out);
    epilogue(j->y, j->out, r0, r1, 0, j->out, j->b, j->flags);
}

void asr_linear(const asr_compute *c, const float *x, int n, int in, const float *w, const float *b, float *y,
                int out, int flags)
{
    /* one slice per thread, but no slice under 32 rows */
    int n_tasks = n / 32 < asr_pool_threads(c->pool) ? n / 32 : asr_pool_threads(c->pool);
    if (n_tasks < 1) n_tasks = 1;
    linear_job j = {x, w, b, y, n, in, out, flags, n_tasks, c};
    asr_pool_run(c->pool, linear_rows_task, &j, n_tasks);
}

/* ---- half weights ------------------------------------------------------------ */

static inline __m256 load_half8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* [Σa0, Σa1, Σa2, Σa3] of four 8-lane accumulators. */
static inline __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

static inline float sum8(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline void store4(float *y, __m128 v, int accumulate)
{
    if (accumulate) v = _mm_add_ps(v, _mm_loadu_ps(y));
    _mm_storeu_ps(y, v);
}

/* Two rows of x against four weight rows: y[r][j..j+3] for r = 0, 1. */
static void tile_2x4(const float *x0, const float *x1, const uint16_t *w, int in, float *y0, float *y1,
                     int accumulate)
{
    const uint16_t *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 u = _mm256_loadu_ps(x0 + k), v = _mm256_loadu_ps(x1 + k);
        __m256 h = load_half8(w0 + k);
        a0 = _mm256_fmadd_ps(u, h, a0);
        b0 = _mm256_fmadd_ps(v, h, b0);
        h = load_half8(w1 + k);
        a1 = _mm256_fmadd_ps(u, h, a1);
        b1 = _mm256_fmadd_ps(v, h, b1);
        h = load_half8(w2 + k);
        a2 = _mm256_fmadd_ps(u, h, a2);
        b2 = _mm256_fmadd_ps(v, h, b2);
        h = load_half8(w3 + k);
        a3 = _mm256_fmadd_ps(u, h, a3);
        b3 = _mm256_fmadd_ps(v, h, b3);
    }
    store4(y0, sum4(a0, a1, a2, a3), accumulate);
    store4(y1, sum4(b0, b1, b2, b3), accumulate);
}

/* Four rows of x against two weight rows: each widened weight vector feeds
 * four FMAs, because widening (vcvtph2ps) rather than FMA limits beams. */
static void tile_4x2(const float *x, const uint16_t *w, int in, float *y, int ldy, int accumulate)
{
    const float *x0 = x, *x1 = x + in, *x2 = x + 2 * (size_t)in, *x3 = x + 3 * (size_t)in;
    const uint16_t *w0 = w, *w1 = w + in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 h = load_half8(w0 + k), g = load_half8(w1 + k);
        __m256 u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(u, h, a0);
        b0 = _mm256_fmadd_ps(u, g, b0);
        u = _mm256_loadu_ps(x1 + k);
        a1 = _mm256_fmadd_ps(u, h, a1);
        b1 = _mm256_fmadd_ps(u, g, b1);
        u = _mm256_loadu_ps(x2 + k);
        a2 = _mm256_fmadd_ps(u, h, a2);
        b2 = _mm256_fmadd_ps(u, g, b2);
        u = _mm256_loadu_ps(x3 + k);
        a3 = _mm256_fmadd_ps(u, h, a3);
        b3 = _mm256_fmadd_ps(u, g, b3);
    }
    /* sum4 gives row sums per weight row: [r0 r1 r2 r3] of column 0, then 1 */
    float c0[4], c1[4];
    _mm_storeu_ps(c0, sum4(a0, a1, a2, a3));
    _mm_storeu_ps(c1, sum4(b0, b1, b2, b3));
    for (int r = 0; r < 4; r++) {
        float *dst = y + (size_t)r * ldy;
        dst[0] = accumulate ? dst[0] + c0[r] : c0[r];
        dst[1] = accumulate ? dst[1] + c1[r] : c1[r];
    }
}

static void tile_1x4(const float *x0, const uint16_t *w, int in, float *y0, int accumulate)
{
    const uint16_t *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(u, load_half8(w0 + k), a0);
        a1 = _mm256_fmadd_ps(u, load_half8(w1 + k), a1);
        a2 = _mm256_fmadd_ps(u, load_half8(w2 + k), a2);
        a3 = _mm256_fmadd_ps(u, load_half8(w3 + k), a3);
    }
    store4(y0, sum4(a0, a1, a2, a3), accumulate);
}

static float dot_half(const float *x, const uint16_t *w, int in)
{
    __m256 a = _mm256_setzero_ps();
    for (int k = 0; k < in; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), load_half8(w + k), a);
    return sum8(a);
}

static void half_small_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    const uint16_t *w = j->w;
    (void)thread;
    int c0 = task * SMALL_COLS, c1 = c0 + SMALL_COLS < j->out ? c0 + SMALL_COLS : j->out;
    int acc = j->flags & ASR_LINEAR_ACCUMULATE, in = j->in, out = j->out;
    int c = c0;
    for (; c + 4 <= c1; c += 4) {
        const uint16_t *wc = w + (size_t)c * in;
        /* The weights stream from memory once: ask for the tile after next
         * now, so its lines arrive while this one is computed. */
        if (c + 12 <= c1) {
            const char *ahead = (const char *)(wc + 8 * (size_t)in);
            for (size_t off = 0; off < 4 * (size_t)in * 2; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
        }
        int r = 0;
        for (; r + 4 <= j->n; r += 4) {
            tile_4x2(j->x + (size_t)r * in, wc, in, j->y + (size_t)r * out + c, out, acc);
            tile_4x2(j->x + (size_t)r * in, wc + 2 * (size_t)in, in, j->y + (size_t)r * out + c + 2, out, acc);
        }
        for (; r + 2 <= j->n; r += 2)
            tile_2x4(j->x + (size_t)r * in, j->x + (size_t)(r + 1) * in, wc, in, j->y + (size_t)r * out + c,
                     j->y + (size_t)(r + 1) * out + c, acc);
        if (r < j->n) tile_1x4(j->x + (size_t)r * in, wc, in, j->y + (size_t)r * out + c, acc);
    }
    for (; c < c1; c++)
        for (int r = 0; r < j->n; r++) {
            float v = dot_half(j->x + (size_t)r * in, w + (size_t)c * in, in);
            float *dst = j->y + (size_t)r * out + c;
            *dst = acc ? *dst + v : v;
        }
    epilogue(j->y, out, 0, j->n, c0, c1, j->b, j->flags);
}

/* Many rows: widen a panel of weight rows into scratch, then one sgemm. */
static void half_panel_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    const uint16_t *w = j->w;
    int c0 = task * ASR_HALF_PANEL, c1 = c0 + ASR_HALF_PANEL < j->out ? c0 + ASR_HALF_PANEL : j->out;
    float *panel = thread_scratch(j->c, thread);
    for (int c = c0; c < c1; c++) {
        const uint16_t *src = w + (size_t)c * j->in;
        float *dst = panel + (size_t)(c - c0) * j->in;
        for (int k = 0; k < j->in; k += 8) _mm256_storeu_ps(dst + k, load_half8(src + k));
    }
    float beta = (j->flags & ASR_LINEAR_ACCUMULATE) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, c1 - c0, j->in, 1.0f, j->x, j->in, panel, j->in, beta,
                j->y + c0, j->out);
    epilogue(j->y, j->out, 0, j->n, c0, c1, j->b, j->flags);
}

void asr_linear_half(const asr_compute *c, const float *x, int n, int in, const uint16_t *w, const float *b,
                     float *y, int out, int flags)
{
    linear_job j = {x, w, b, y, n, in, out, flags, 0, c};
    if (n < SMALL_ROWS)
        asr_pool_run(c->pool, half_small_task, &j, (out + SMALL_COLS - 1) / SMALL_COLS);
    else
        asr_pool_run(c->pool, half_panel_task, &j, (out + ASR_HALF_PANEL - 1) / ASR_HALF_PANEL);
}

/* ---- attention ----------------------------------------------------------------- */

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

typedef struct attention_job {
    const asr_attention_args *a;
    const asr_compute *c;
    int q_blocks;
} attention_job;

static void attention_task(void *ctx, int task, int thread)
{
    const attention_job *j = ctx;
    const asr_attention_args *a = j->a;
    int qb = task % j->q_blocks, h = (task / j->q_blocks) % a->n_head, s = task / j->q_blocks / a->n_head;
    int q0 = qb * ASR_ATTN_BLOCK, rows = a->n_q - q0 < ASR_ATTN_BLOCK ? a->n_q - q0 : ASR_ATTN_BLOCK;
    const float *q = a->q + (size_t)s * a->q_seq + (size_t)q0 * a->ldq + (size_t)h * a->dh;
    const float *k = a->k + (size_t)s * a->kv_seq + (size_t)h * a->dh;
    const float *v = a->v + (size_t)s * a->kv_seq + (size_t)h * a->dh;
    float *out = a->out + (size_t)s * a->out_seq + (size_t)q0 * a->ldo + (size_t)h * a->dh;
    float *scores = thread_scratch(j->c, thread);
    float scale = 1.0f / sqrtf((float)a->dh);
    int n_kv = a->n_kv;

    if (rows <= 2) { /* one or two queries (decoding): plain loops over the keys */
        for (int i = 0; i < rows; i++) {
            int nk = a->causal_past >= 0 && a->causal_past + q0 + i + 1 < n_kv ? a->causal_past + q0 + i + 1 : n_kv;
            const float *qi = q + (size_t)i * a->ldq;
            for (int t = 0; t < nk; t++) scores[t] = dot_f32(qi, k + (size_t)t * a->ldk, a->dh) * scale;
            asr_softmax(scores, nk);
            float *oi = out + (size_t)i * a->ldo;
            memset(oi, 0, (size_t)a->dh * sizeof(float));
            for (int t = 0; t < nk; t++) axpy(oi, scores[t], v + (size_t)t * a->ldv, a->dh);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_kv, a->dh, scale, q, a->ldq, k, a->ldk, 0.0f, scores,
                n_kv);
    for (int i = 0; i < rows; i++) {
        float *row = scores + (size_t)i * n_kv;
        int nk = a->causal_past >= 0 && a->causal_past + q0 + i + 1 < n_kv ? a->causal_past + q0 + i + 1 : n_kv;
        asr_softmax(row, nk);
        for (int t = nk; t < n_kv; t++) row[t] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->dh, n_kv, 1.0f, scores, n_kv, v, a->ldv, 0.0f, out,
                a->ldo);
}

void asr_attention(const asr_compute *c, const asr_attention_args *a)
{
    attention_job j = {a, c, (a->n_q + ASR_ATTN_BLOCK - 1) / ASR_ATTN_BLOCK};
    asr_pool_run(c->pool, attention_task, &j, a->n_seq * a->n_head * j.q_blocks);
}

void asr_attention_scores(const float *q, int ldq, const float *k, int ldk, int n_q, int n_kv, int dh, float scale,
                          float *scores)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_q, n_kv, dh, scale, q, ldq, k, ldk, 0.0f, scores, n_kv);
}
