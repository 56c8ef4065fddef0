/* linear.c — asr_linear: tasks on the state's pool, each kernel picked by weight format and instruction set.
 *
 * float32 weights go to OpenBLAS sgemm, one thread per call and one slice
 * of rows per task, so the parallelism is ours and belongs to the request's
 * state. The other formats are split into blocks of rows × output columns:
 * the encoder's 1500-row products into 96-row blocks (their activations
 * stay in L2 while the weight panels pass), the decoder's 1-16 rows into
 * column blocks of all rows (each weight is read from memory once). */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/features.h"
#include "cpu/kernels_cpu.h"
#include "kernels.h"
#include "model.h"

/* Below this many rows a product counts as the decoder's: column tasks. */
#define SMALL_ROWS 16
/* Output columns per task of the f16 register kernel (a multiple of 4). */
#define SMALL_COLS 64
/* Block of an int8/bf16 product: rows, and columns (multiples of 16);
 * bf16 on the FMA pipes takes five rows a tile, so a multiple of five. */
#define BLOCK_ROWS 96
#define BLOCK_ROWS_FMA 100
#define BLOCK_COLS 256
#define BLOCK_COLS_SMALL 64

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
    /* float32 scores, and for bfloat16 attention the block's probabilities
     * in bf16 (rows of an even count, 64-byte aligned) */
    size_t attn = (size_t)ASR_ATTN_BLOCK * (size_t)max_keys + (size_t)ASR_ATTN_BLOCK * ((size_t)max_keys + 1) / 2 + 16;
    size_t panel = (size_t)ASR_HALF_PANEL * (size_t)max_in;
    return attn > panel ? attn : panel;
}

asr_status asr_compute_init(asr_compute *c, int n_threads, unsigned isa, int max_keys, int max_in, int max_rows,
                            size_t act_values, asr_error *err)
{
    if (n_threads < 1) n_threads = 1;
    if (max_rows < 1) max_rows = 1;
    size_t per_thread = asr_compute_scratch_floats(max_keys, max_in);
    /* at least one row of the widest input: run_blocks slices rows */
    if (act_values == 0) act_values = (size_t)max_rows * (size_t)max_in;
    if (act_values < (size_t)max_in) act_values = (size_t)max_in;
    size_t act = 2 * act_values; /* bytes: bf16 values, or u8 with room to spare */
    asr_compute_init_blas();
    asr_compute n = {.pool = asr_pool_new(n_threads), .scratch_floats = per_thread, .isa = isa,
                     .act_bytes = act, .act_rows = max_rows};
    n.scratch = malloc((size_t)n_threads * per_thread * sizeof(float));
    n.act = aligned_alloc(64, (act + 63) / 64 * 64);
    n.act_scale = malloc((size_t)max_rows * sizeof(float));
    if (!n.pool || !n.scratch || !n.act || !n.act_scale) {
        asr_compute_release(&n);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "cannot start %d compute threads", n_threads);
    }
    *c = n;
    return ASR_OK;
}

asr_status asr_compute_reserve_attention(asr_compute *c, size_t bytes, asr_error *err)
{
    if (bytes <= c->attn_pack_bytes) return ASR_OK;
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory for attention buffers");
    if (!c->attn_pack_borrowed) free(c->attn_pack);
    c->attn_pack = p;
    c->attn_pack_bytes = bytes;
    c->attn_pack_borrowed = 0;
    return ASR_OK;
}

void asr_compute_borrow_attention(asr_compute *c, void *mem, size_t bytes)
{
    if (!c->attn_pack_borrowed) free(c->attn_pack);
    c->attn_pack = mem;
    c->attn_pack_bytes = bytes;
    c->attn_pack_borrowed = 1;
}

void asr_compute_release(asr_compute *c)
{
    if (!c->attn_pack_borrowed) free(c->attn_pack);
    asr_pool_free(c->pool);
    free(c->scratch);
    free(c->act);
    free(c->act_scale);
    memset(c, 0, sizeof *c);
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

static int has(const asr_compute *c, unsigned isa)
{
    return (c->isa & isa) == isa;
}

typedef struct linear_job {
    const float *x;
    const asr_tensor *w;
    const float *b;
    float *y;
    int n, in, out, flags, n_tasks;
    const asr_compute *c;
    int block_rows, col_blocks, block_cols; /* int8/bf16 task grid */
} linear_job;

static float *thread_scratch(const asr_compute *c, int thread)
{
    return c->scratch + (size_t)thread * c->scratch_floats;
}

/* ---- float32: OpenBLAS slices of rows ------------------------------------------ */

/* 1500 encoder rows make six slices: three per thread of two */
#define F32_SLICE_ROWS 256

static void f32_rows_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0 = task * F32_SLICE_ROWS, r1 = r0 + F32_SLICE_ROWS < j->n ? r0 + F32_SLICE_ROWS : j->n;
    if (r1 <= r0) return;
    float beta = (j->flags & ASR_LINEAR_ACCUMULATE) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, j->out, j->in, 1.0f, j->x + (size_t)r0 * j->in,
                j->in, j->w->data, j->in, beta, j->y + (size_t)r0 * j->out, j->out);
    epilogue(j->y, j->out, r0, r1, 0, j->out, j->b, j->flags);
}

/* ---- f16 ----------------------------------------------------------------------------- */

static void f16_small_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int c0 = task * SMALL_COLS, c1 = c0 + SMALL_COLS < j->out ? c0 + SMALL_COLS : j->out;
    int acc = j->flags & ASR_LINEAR_ACCUMULATE;
#if defined(__x86_64__)
    if (has(j->c, ASR_ISA_AVX2) && j->in % 8 == 0)
        asr_f16_cols_avx2(j->x, j->n, j->in, j->w->data, j->y, j->out, c0, c1, acc);
    else
#endif
        asr_f16_block_scalar(j->x, j->w, 0, j->n, c0, c1, j->y, j->out, acc);
    epilogue(j->y, j->out, 0, j->n, c0, c1, j->b, j->flags);
}

/* Many rows: widen a panel of weight rows into scratch, then one sgemm. */
static void f16_panel_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    const uint16_t *w = j->w->data;
    int c0 = task * ASR_HALF_PANEL, c1 = c0 + ASR_HALF_PANEL < j->out ? c0 + ASR_HALF_PANEL : j->out;
    float *panel = thread_scratch(j->c, thread);
    asr_f16_to_f32_n(w + (size_t)c0 * j->in, panel, (size_t)(c1 - c0) * (size_t)j->in);
    float beta = (j->flags & ASR_LINEAR_ACCUMULATE) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, c1 - c0, j->in, 1.0f, j->x, j->in, panel, j->in, beta,
                j->y + c0, j->out);
    epilogue(j->y, j->out, 0, j->n, c0, c1, j->b, j->flags);
}

/* ---- int8 and bf16: blocks over pre-converted activations ------------------------------ */

static void block_bounds(const linear_job *j, int task, int *r0, int *r1, int *c0, int *c1)
{
    int rb = task / j->col_blocks, cb = task % j->col_blocks;
    *r0 = rb * j->block_rows;
    *r1 = *r0 + j->block_rows < j->n ? *r0 + j->block_rows : j->n;
    *c0 = cb * j->block_cols;
    *c1 = *c0 + j->block_cols < j->out ? *c0 + j->block_cols : j->out;
}

static void i8_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0, r1, c0, c1;
    block_bounds(j, task, &r0, &r1, &c0, &c1);
    const uint8_t *xq = j->c->act;
    int acc = j->flags & ASR_LINEAR_ACCUMULATE;
#if defined(__x86_64__)
    if (has(j->c, ASR_ISA_VNNI))
        asr_i8_block_vnni(xq, j->c->act_scale, j->w, r0, r1, c0, c1, j->y, j->out, acc);
    else
#endif
        asr_i8_block_scalar(xq, j->c->act_scale, j->w, r0, r1, c0, c1, j->y, j->out, acc);
    epilogue(j->y, j->out, r0, r1, c0, c1, j->b, j->flags);
}

static void bf16_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0, r1, c0, c1;
    block_bounds(j, task, &r0, &r1, &c0, &c1);
    const uint16_t *xb = j->c->act;
    int acc = j->flags & ASR_LINEAR_ACCUMULATE;
#if defined(__x86_64__)
    if (has(j->c, ASR_ISA_BF16))
        asr_bf16_block_avx512(xb, j->w, r0, r1, c0, c1, j->y, j->out, acc);
    else
#endif
        asr_bf16_block_scalar(xb, j->w, r0, r1, c0, c1, j->y, j->out, acc);
    epilogue(j->y, j->out, r0, r1, c0, c1, j->b, j->flags);
}

/* bf16 weights widened onto the FMA pipes: x is read as it is. */
static void bf16w_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0, r1, c0, c1;
    block_bounds(j, task, &r0, &r1, &c0, &c1);
#if defined(__x86_64__)
    asr_bf16w_block_avx512(j->x, j->w, r0, r1, c0, c1, j->y, j->out, j->flags & ASR_LINEAR_ACCUMULATE);
#endif
    epilogue(j->y, j->out, r0, r1, c0, c1, j->b, j->flags);
}

/* When bf16 weights are multiplied on the float32 FMA pipes (widened
 * exactly, the activations read as float32) rather than by vdpbf16ps (the
 * activations rounded to bf16 first):
 * - where vdpbf16ps is missing;
 * - for the decoder's steps (few rows, or ASR_LINEAR_ROW_INVARIANT): they
 *   are bound by memory, where both forms run alike (Zen 4, tiny's logits
 *   one row: 26 against 25 GFLOP/s, bench/kernels), and float32 activations
 *   are the more precise. Greedy long-form decoding is chaotic (one
 *   different token early in a window can skip a passage), so one file
 *   says little; over four 12.6-minute spliced files (bench/run.py's and
 *   three reorderings) base's mean WER was 10.88% with bf16-rounded decoder
 *   activations, 10.46% with float32 ones, 9.59% in float32 (tiny.en: 8.58,
 *   8.54, 8.61%). The same rule for every row count under ROW_INVARIANT, so
 *   a row's numbers do not depend on the step it shares;
 * - for the encoder's many rows only where vdpbf16ps runs at half the FMA
 *   rate (Intel's cores); elsewhere it is twice as fast there. */
int asr_linear_bf16_widens(const asr_compute *c, int n, int flags)
{
#if defined(__x86_64__)
    if (!has(c, ASR_ISA_AVX512)) return 0;
    if (!has(c, ASR_ISA_BF16)) return 1;
    if (n < SMALL_ROWS || (flags & ASR_LINEAR_ROW_INVARIANT)) return 1;
    return (c->isa & ASR_CPU_BF16_HALF_RATE) != 0;
#else
    (void)c, (void)n, (void)flags;
    return 0;
#endif
}

static void run_bf16_on_fma(const asr_compute *c, linear_job *j)
{
    j->block_rows = BLOCK_ROWS_FMA;
    j->block_cols = j->n < SMALL_ROWS || (j->flags & ASR_LINEAR_ROW_INVARIANT) ? BLOCK_COLS_SMALL : BLOCK_COLS;
    j->col_blocks = (j->out + j->block_cols - 1) / j->block_cols;
    int row_blocks = (j->n + j->block_rows - 1) / j->block_rows;
    asr_pool_run(c->pool, bf16w_task, j, row_blocks * j->col_blocks);
}

/* Converting the activations: one task per 64 rows. */
#define CONVERT_ROWS 64

static void convert_task(void *ctx, int task, int thread)
{
    const linear_job *j = ctx;
    (void)thread;
    int r0 = task * CONVERT_ROWS, r1 = r0 + CONVERT_ROWS < j->n ? r0 + CONVERT_ROWS : j->n;
    const float *x = j->x + (size_t)r0 * j->in;
    if (j->w->dtype == ASR_DTYPE_I8) {
        uint8_t *q = (uint8_t *)j->c->act + (size_t)r0 * j->in;
#if defined(__x86_64__)
        if (has(j->c, ASR_ISA_VNNI)) asr_quantise_rows_vnni(x, r1 - r0, j->in, q, j->c->act_scale + r0);
        else
#endif
            asr_quantise_rows_scalar(x, r1 - r0, j->in, q, j->c->act_scale + r0);
    } else {
        uint16_t *h = (uint16_t *)j->c->act + (size_t)r0 * j->in;
        size_t count = (size_t)(r1 - r0) * (size_t)j->in;
#if defined(__x86_64__)
        if (has(j->c, ASR_ISA_BF16)) asr_round_bf16_avx512(x, count, h);
        else
#endif
            asr_round_bf16_scalar(x, count, h);
    }
}

static void run_blocks(const asr_compute *c, linear_job *j)
{
    /* as many rows at a time as the state's activation buffer holds */
    size_t per_row = (j->w->dtype == ASR_DTYPE_I8 ? 1 : 2) * (size_t)j->in;
    if (per_row > c->act_bytes) return; /* the state was sized for every layer: cannot happen */
    int fit = (int)(c->act_bytes / per_row);
    if (fit > c->act_rows) fit = c->act_rows;
    if (fit > BLOCK_ROWS) fit = fit / BLOCK_ROWS * BLOCK_ROWS;
    const float *x = j->x;
    float *y = j->y;
    int n = j->n;
    for (int r = 0; r < n; r += fit) {
        linear_job s = *j;
        s.n = n - r < fit ? n - r : fit;
        s.x = x + (size_t)r * j->in;
        s.y = y + (size_t)r * j->out;
        int tasks = (s.n + CONVERT_ROWS - 1) / CONVERT_ROWS;
        if (tasks == 1) convert_task(&s, 0, 0);
        else asr_pool_run(c->pool, convert_task, &s, tasks);
        s.block_rows = BLOCK_ROWS;
        s.block_cols = n < SMALL_ROWS || (j->flags & ASR_LINEAR_ROW_INVARIANT) ? BLOCK_COLS_SMALL : BLOCK_COLS;
        s.col_blocks = (s.out + s.block_cols - 1) / s.block_cols;
        int row_blocks = (s.n + BLOCK_ROWS - 1) / BLOCK_ROWS;
        asr_pool_run(c->pool, s.w->dtype == ASR_DTYPE_I8 ? i8_task : bf16_task, &s, row_blocks * s.col_blocks);
    }
}

void asr_linear(const asr_compute *c, const asr_tensor *w, const float *x, int n, const float *b, float *y,
                int flags)
{
    linear_job j = {.x = x, .w = w, .b = b, .y = y, .n = n, .in = w->cols, .out = w->rows, .flags = flags, .c = c};
    if (n < 1) return;
    switch (w->dtype) {
    case ASR_DTYPE_F32: {
        /* Slices of a fixed height, not one per thread: OpenBLAS's result
         * for a row can depend on the height of the call it is in (its
         * Haswell kernels, which it also picks on CPUs it does not know,
         * do), so the slicing must not depend on the thread count. (No
         * decoder weight is float32 under any compute type, so
         * ASR_LINEAR_ROW_INVARIANT needs nothing here.) */
        j.n_tasks = (n + F32_SLICE_ROWS - 1) / F32_SLICE_ROWS;
        asr_pool_run(c->pool, f32_rows_task, &j, j.n_tasks);
        return;
    }
    case ASR_DTYPE_F16:
        if (n < SMALL_ROWS || (flags & ASR_LINEAR_ROW_INVARIANT))
            asr_pool_run(c->pool, f16_small_task, &j, (j.out + SMALL_COLS - 1) / SMALL_COLS);
        else
            asr_pool_run(c->pool, f16_panel_task, &j, (j.out + ASR_HALF_PANEL - 1) / ASR_HALF_PANEL);
        return;
    case ASR_DTYPE_BF16:
        if (asr_linear_bf16_widens(c, n, flags)) run_bf16_on_fma(c, &j);
        else run_blocks(c, &j);
        return;
    case ASR_DTYPE_I8:
        run_blocks(c, &j);
        return;
    }
}
