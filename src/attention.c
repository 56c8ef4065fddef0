/* attention.c — scaled dot-product attention, one task per (sequence, head, block of queries) on a state's pool.
 *
 * Blocks of many queries (the encoder, prompts) use OpenBLAS sgemm for the
 * scores and the weighted sum; when the caller asks for bfloat16 and the CPU
 * has AVX512_BF16, the weighted sum runs on the bf16 GEMM kernel of
 * cpu/linear_bf16.c over Vᵀ packed once per head, and the scores (which stay
 * float32: bf16 scores cost a clip of the accuracy gate) on the AVX-512
 * kernel of cpu/attention_bf16.c over K packed once per head. float32
 * keeps OpenBLAS, so its results stay what they were. One or two queries
 * (decoding) use plain loops over the keys (AVX2 in cpu/vec_avx2.c). */
#include "kernels.h"
#include "model.h"

#include "cpu/features.h"
#include "cpu/kernels_cpu.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static float *thread_scratch(const asr_compute *c, int thread)
{
    return c->scratch + (size_t)thread * c->scratch_floats;
}

/* ---- attention ----------------------------------------------------------------- */

typedef struct attention_job {
    const asr_attention_args *a;
    const asr_compute *c;
    int q_blocks;
    /* bfloat16 path: per (sequence, head) Vᵀ as a (dh, n_kv) P16K2 tensor,
     * the operand layout of asr_bf16_block_avx512 */
    uint16_t *packed;
    size_t vt_halves; /* per (sequence, head), whole 64-byte lines */
    int kv_cols;      /* n_kv rounded up to even: Vᵀ's inputs */
    /* and K in 16-key float32 panels for asr_attn_scores_bf16 (after Vᵀ) */
    float *keys;
    size_t key_floats; /* per (sequence, head) */
} attention_job;

static int even(int n) { return (n + 1) & ~1; }

/* keys query q (of the whole n_q) may see: all n_kv, or under a causal mask
 * the causal_past earlier ones and those up to itself */
static int visible_keys(const asr_attention_args *a, int q)
{
    return a->causal_past >= 0 && a->causal_past + q + 1 < a->n_kv ? a->causal_past + q + 1 : a->n_kv;
}
static int whole_panels(int n) { return (n + ASR_PANEL - 1) / ASR_PANEL * ASR_PANEL; }

/* src element (r, k) = src[r·row_stride + k·col_stride] into a P16K2 panel
 * set of whole 16-row panels and `cols` (even) inputs, zeros outside
 * (rows, src_cols). Written in order; the reads stay within 16 rows. */
static void pack_p16k2(const float *src, size_t row_stride, size_t col_stride, int rows, int src_cols, int cols,
                       uint16_t *dst)
{
    for (int r0 = 0; r0 < whole_panels(rows); r0 += ASR_PANEL)
        for (int k = 0; k < cols; k += 2)
            for (int lane = 0; lane < ASR_PANEL; lane++) {
                int r = r0 + lane;
                for (int h = 0; h < 2; h++) {
                    int kk = k + h;
                    float v = r < rows && kk < src_cols ? src[(size_t)r * row_stride + (size_t)kk * col_stride] : 0.0f;
                    *dst++ = asr_f32_to_bf16(v);
                }
            }
}

static void pack_task(void *ctx, int task, int thread)
{
    const attention_job *j = ctx;
    const asr_attention_args *a = j->a;
    (void)thread;
    int h = task % a->n_head, s = task / a->n_head;
    const float *v = a->v + (size_t)s * a->kv_seq + (size_t)h * a->dh;
#if defined(__x86_64__)
    uint16_t *vt = j->packed + (size_t)task * j->vt_halves;
    if (a->dh % ASR_PANEL == 0) asr_attn_pack_values_bf16(v, a->ldv, a->n_kv, a->dh, j->kv_cols, vt);
    else pack_p16k2(v, 1, (size_t)a->ldv, a->dh, a->n_kv, j->kv_cols, vt);
    const float *k = a->k + (size_t)s * a->kv_seq + (size_t)h * a->dh;
    asr_attn_pack_keys_bf16(k, a->ldk, a->n_kv, a->dh, j->keys + (size_t)task * j->key_floats);
#else
    pack_p16k2(v, 1, (size_t)a->ldv, a->dh, a->n_kv, j->kv_cols, j->packed + (size_t)task * j->vt_halves);
#endif
}

#if defined(__x86_64__)
/* out = P V for one block of queries: the probabilities (float32 scores,
 * softmax, masks) rounded to bf16 rows, times the packed Vᵀ; or, where
 * vdpbf16ps runs at half the FMA rate, the float32 probabilities times Vᵀ
 * widened on the FMA pipes. */
static void weighted_sum_bf16(const attention_job *j, int s, int h, int q0, int rows, float *scores,
                              float *out, float *scratch_after_scores)
{
    const asr_attention_args *a = j->a;
    asr_tensor vt = {.dtype = ASR_DTYPE_BF16, .layout = ASR_LAYOUT_P16K2, .rows = a->dh, .cols = j->kv_cols,
                     .data = j->packed + (size_t)(s * a->n_head + h) * j->vt_halves};
    if (asr_linear_bf16_widens(j->c, rows, 0) && j->kv_cols == a->n_kv) {
        /* where vdpbf16ps runs at half the FMA rate, the float32
         * probabilities times Vᵀ widened, on the FMA pipes (the same
         * choice as the linear layers make) */
        for (int i = 0; i < rows; i++) {
            float *row = scores + (size_t)i * a->n_kv;
            int nk = visible_keys(a, q0 + i);
            asr_softmax(row, nk);
            for (int t = nk; t < a->n_kv; t++) row[t] = 0.0f;
        }
        asr_bf16w_block_avx512(scores, &vt, 0, rows, 0, a->dh, out, a->ldo, 0);
        return;
    }
    uint16_t *pb = (uint16_t *)(((uintptr_t)scratch_after_scores + 63) & ~(uintptr_t)63);
    float inv[ASR_ATTN_BLOCK];
    for (int i = 0; i < rows; i++) {
        int nk = visible_keys(a, q0 + i);
        inv[i] = asr_attn_softmax_bf16(scores + (size_t)i * a->n_kv, nk, j->kv_cols, pb + (size_t)i * j->kv_cols);
    }
    asr_bf16_block_avx512(pb, &vt, 0, rows, 0, a->dh, out, a->ldo, 0);
    for (int i = 0; i < rows; i++)
        for (int e = 0; e < a->dh; e++) out[(size_t)i * a->ldo + e] *= inv[i];
}
#endif

/* One query against nk keys, a loop over the keys: float32 k and v, or
 * (k16 non-NULL) IEEE half k16 and v16. */
static void attend_one(const asr_compute *c, const float *q, const float *k, const uint16_t *k16, int ldk,
                       const float *v, const uint16_t *v16, int ldv, int nk, int dh, float scale, float *scores,
                       float *out)
{
#if defined(__x86_64__)
    if ((c->isa & ASR_ISA_AVX2) == ASR_ISA_AVX2) {
        if (k16) asr_attend_one_k16_avx2(q, k16, ldk, v16, ldv, nk, dh, scale, scores, out);
        else asr_attend_one_avx2(q, k, ldk, v, ldv, nk, dh, scale, scores, out);
        return;
    }
#else
    (void)c;
#endif
    if (k16) asr_attend_one_k16_scalar(q, k16, ldk, v16, ldv, nk, dh, scale, scores, out);
    else asr_attend_one_scalar(q, k, ldk, v, ldv, nk, dh, scale, scores, out);
}

static void attention_task(void *ctx, int task, int thread)
{
    const attention_job *j = ctx;
    const asr_attention_args *a = j->a;
    int qb = task % j->q_blocks, h = (task / j->q_blocks) % a->n_head, s = task / j->q_blocks / a->n_head;
    int q0 = qb * ASR_ATTN_BLOCK, rows = a->n_q - q0 < ASR_ATTN_BLOCK ? a->n_q - q0 : ASR_ATTN_BLOCK;
    const float *q = a->q + (size_t)s * a->q_seq + (size_t)q0 * a->ldq + (size_t)h * a->dh;
    size_t kv_s = a->kv_index ? (size_t)a->kv_index[s] : (size_t)s;
    const float *k = a->k + kv_s * a->kv_seq + (size_t)h * a->dh;
    const float *v = a->v + kv_s * a->kv_seq + (size_t)h * a->dh;
    float *out = a->out + (size_t)s * a->out_seq + (size_t)q0 * a->ldo + (size_t)h * a->dh;
    float *scores = thread_scratch(j->c, thread);
    float scale = 1.0f / sqrtf((float)a->dh);
    int n_kv = a->n_kv;

    if (a->k16 || rows <= 2) { /* half K/V (cross-attention under bfloat16), or decoding's one or two queries */
        const uint16_t *k16 = a->k16 ? a->k16 + kv_s * a->kv_seq + (size_t)h * a->dh : NULL;
        const uint16_t *v16 = a->k16 ? a->v16 + kv_s * a->kv_seq + (size_t)h * a->dh : NULL;
        for (int i = 0; i < rows; i++)
            attend_one(j->c, q + (size_t)i * a->ldq, k, k16, a->ldk, v, v16, a->ldv, visible_keys(a, q0 + i), a->dh,
                       scale, scores, out + (size_t)i * a->ldo);
        return;
    }
#if defined(__x86_64__)
    if (j->packed)
        asr_attn_scores_bf16(q, a->ldq, rows, j->keys + (size_t)(s * a->n_head + h) * j->key_floats, n_kv, a->dh,
                              scale, scores);
    else
#endif
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_kv, a->dh, scale, q, a->ldq, k, a->ldk, 0.0f,
                    scores, n_kv);
#if defined(__x86_64__)
    if (j->packed) { /* the softmax goes straight into the bf16 operand */
        weighted_sum_bf16(j, s, h, q0, rows, scores, out, scores + (size_t)rows * n_kv);
        return;
    }
#endif
    for (int i = 0; i < rows; i++) {
        float *row = scores + (size_t)i * n_kv;
        int nk = visible_keys(a, q0 + i);
        asr_softmax(row, nk);
        for (int t = nk; t < n_kv; t++) row[t] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->dh, n_kv, 1.0f, scores, n_kv, v, a->ldv, 0.0f, out,
                a->ldo);
}

/* Per head: Vᵀ in whole 64-byte lines (the kernel's panel loads are
 * aligned), then K in 16-key panels. */
static size_t vt_halves(int n_kv, int dh)
{
    return ((size_t)whole_panels(dh) * (size_t)even(n_kv) + 31) & ~(size_t)31;
}

size_t asr_attention_pack_bytes(int heads, int n_kv, int dh)
{
    return (size_t)heads * (vt_halves(n_kv, dh) * sizeof(uint16_t) + (size_t)whole_panels(n_kv) * dh * sizeof(float));
}

void asr_attention(const asr_compute *c, const asr_attention_args *a)
{
    attention_job j = {a, c, (a->n_q + ASR_ATTN_BLOCK - 1) / ASR_ATTN_BLOCK, NULL, 0, even(a->n_kv), NULL, 0};
    int heads = a->n_seq * a->n_head;
    void *own = NULL;
    if (a->bf16 && !a->k16 && (c->isa & ASR_ISA_BF16) == ASR_ISA_BF16 && a->n_q > 2) {
        j.vt_halves = vt_halves(a->n_kv, a->dh);
        j.key_floats = (size_t)whole_panels(a->n_kv) * (size_t)a->dh;
        size_t bytes = asr_attention_pack_bytes(heads, a->n_kv, a->dh);
        if (bytes <= c->attn_pack_bytes) j.packed = c->attn_pack;
        else j.packed = own = aligned_alloc(64, (bytes + 63) & ~(size_t)63); /* NULL: the float32 path serves */
        j.keys = j.packed ? (float *)(j.packed + (size_t)heads * j.vt_halves) : NULL;
        if (j.packed) asr_pool_run(c->pool, pack_task, &j, heads);
    }
    asr_pool_run(c->pool, attention_task, &j, heads * j.q_blocks);
    free(own);
}

void asr_attention_scores_k16(const float *q, int ldq, const uint16_t *k, int ldk, int n_q, int n_kv, int dh,
                              float scale, float *scores, float *keys)
{
    if (keys) {
        for (int t = 0; t < n_kv; t++)
            for (int e = 0; e < dh; e++) keys[(size_t)t * dh + e] = asr_f16_to_f32(k[(size_t)t * ldk + e]);
        asr_attention_scores(q, ldq, keys, dh, n_q, n_kv, dh, scale, scores);
        return;
    }
    for (int i = 0; i < n_q; i++)
        for (int t = 0; t < n_kv; t++) {
            const float *qi = q + (size_t)i * ldq;
            const uint16_t *kt = k + (size_t)t * ldk;
            float dot = 0.0f;
            for (int e = 0; e < dh; e++) dot += qi[e] * asr_f16_to_f32(kt[e]);
            scores[(size_t)i * n_kv + t] = dot * scale;
        }
}

void asr_attention_scores(const float *q, int ldq, const float *k, int ldk, int n_q, int n_kv, int dh, float scale,
                          float *scores)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_q, n_kv, dh, scale, q, ldq, k, ldk, 0.0f, scores, n_kv);
}
