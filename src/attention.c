/* attention.c — scaled dot-product attention, one task per (sequence, head, block of queries) on a state's pool.
 *
 * Blocks of many queries (the encoder, prompts) use OpenBLAS sgemm for the
 * scores and the weighted sum; one or two queries (decoding) use plain
 * loops over the keys (AVX2 in cpu/vec_avx2.c where the CPU has it). */
#include "kernels.h"

#include "cpu/features.h"
#include "cpu/kernels_cpu.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
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
} attention_job;

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

    if (rows <= 2) { /* one or two queries (decoding): plain loops over the keys */
        for (int i = 0; i < rows; i++) {
            int nk = a->causal_past >= 0 && a->causal_past + q0 + i + 1 < n_kv ? a->causal_past + q0 + i + 1 : n_kv;
            const float *qi = q + (size_t)i * a->ldq;
            float *oi = out + (size_t)i * a->ldo;
#if defined(__x86_64__)
            if ((j->c->isa & ASR_ISA_AVX2) == ASR_ISA_AVX2) {
                asr_attend_one_avx2(qi, k, a->ldk, v, a->ldv, nk, a->dh, scale, scores, oi);
                continue;
            }
#endif
            for (int t = 0; t < nk; t++) {
                const float *kt = k + (size_t)t * a->ldk;
                float dot = 0.0f;
                for (int e = 0; e < a->dh; e++) dot += qi[e] * kt[e];
                scores[t] = dot * scale;
            }
            asr_softmax(scores, nk);
            memset(oi, 0, (size_t)a->dh * sizeof(float));
            for (int t = 0; t < nk; t++)
                for (int e = 0; e < a->dh; e++) oi[e] += scores[t] * v[(size_t)t * a->ldv + e];
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
