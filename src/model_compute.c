/* model_compute.c — compute types: what AUTO means here, converting a loaded model's linear weights to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/features.h"
#include "model.h"
#include "pool.h"

/* The one place the default policy lives: AUTO is the fastest type that
 * passes the accuracy gate (tests/integration/parity_goldens.py: >= 90% of
 * the parity clips identical to faster-whisper float32, pooled WER within
 * 0.3 points of float32). bfloat16 passes it (tiny.en greedy: 21/22
 * identical, WER equal to float32's) and runs the encoder's products with
 * vdpbf16ps at about twice float32's rate. int8 is faster still but does not
 * pass (16/22 identical, WER +0.7 points), so AUTO never picks it; it stays
 * available by name. Without AVX512_BF16, bfloat16 would run the scalar
 * kernels, so float32 it is. */
asr_compute_type asr_compute_type_auto(unsigned cpu_features)
{
    if ((cpu_features & ASR_ISA_BF16) == ASR_ISA_BF16) return ASR_COMPUTE_BFLOAT16;
    return ASR_COMPUTE_FLOAT32;
}

int asr_compute_type_is_int8(asr_compute_type type)
{
    return type == ASR_COMPUTE_INT8 || type == ASR_COMPUTE_INT8_FLOAT32 || type == ASR_COMPUTE_INT8_BFLOAT16;
}

asr_compute_type asr_model_compute_type(const asr_model *m)
{
    return m->compute_type;
}

int asr_model_linear_tensors(asr_model *m, asr_tensor **out, int cap)
{
    int n = 0;
#define ADD(t) do { if (n < cap) out[n] = &(t); n++; } while (0)
    for (int l = 0; m->w.enc && l < m->hp.n_audio_layer; l++) {
        asr_encoder_layer *L = &m->w.enc[l];
        ADD(L->attn_qkv_w);
        ADD(L->attn_out_w);
        ADD(L->mlp_fc1_w);
        ADD(L->mlp_fc2_w);
    }
    ADD(m->w.tok_emb);
    for (int l = 0; m->w.dec && l < m->hp.n_text_layer; l++) {
        asr_decoder_layer *L = &m->w.dec[l];
        ADD(L->self_qkv_w);
        ADD(L->self_out_w);
        ADD(L->cross_q_w);
        ADD(L->cross_kv_w);
        ADD(L->cross_out_w);
        ADD(L->mlp_fc1_w);
        ADD(L->mlp_fc2_w);
    }
#undef ADD
    return n;
}

/* The format tensor t takes under the model's compute type. float32 keeps
 * today's split: float32 where the encoder multiplies (its layers and the
 * cross K/V projection), half where the decoder streams weights per token. */
static asr_dtype target_dtype(const asr_model *m, const asr_tensor *t)
{
    int is_emb = t == &m->w.tok_emb, encoder_side = 0;
    for (int l = 0; l < m->hp.n_text_layer; l++) encoder_side |= t == &m->w.dec[l].cross_kv_w;
    for (int l = 0; l < m->hp.n_audio_layer; l++) {
        const asr_encoder_layer *L = &m->w.enc[l];
        encoder_side |= t == &L->attn_qkv_w || t == &L->attn_out_w || t == &L->mlp_fc1_w || t == &L->mlp_fc2_w;
    }
    switch (m->compute_type) {
    case ASR_COMPUTE_FLOAT16: return ASR_DTYPE_F16;
    case ASR_COMPUTE_BFLOAT16: return ASR_DTYPE_BF16;
    case ASR_COMPUTE_INT8:
    case ASR_COMPUTE_INT8_FLOAT32: return ASR_DTYPE_I8;
    case ASR_COMPUTE_INT8_BFLOAT16: return is_emb ? ASR_DTYPE_BF16 : ASR_DTYPE_I8;
    case ASR_COMPUTE_AUTO:
    case ASR_COMPUTE_FLOAT32: break;
    }
    return encoder_side ? ASR_DTYPE_F32 : ASR_DTYPE_F16;
}

/* A matrix of the float32 or the half arena that was converted to another
 * format is dead: its whole pages go back to the system as soon as it is
 * converted (the arenas stay one allocation each), so the copies and the
 * originals are never all resident together. Skipped if another tensor
 * shares its memory. `before` is every tensor as loaded, which no task
 * changes. */
static int releasable_source(const asr_model *m, const asr_tensor *before, int n, int self)
{
    const asr_tensor *old = &before[self];
    if (old->owned || (old->dtype != ASR_DTYPE_F32 && old->dtype != ASR_DTYPE_F16)) return 0;
    const char *lo = old->data, *hi = lo + asr_tensor_bytes(old);
    const char *a32 = (const char *)m->arena, *a16 = (const char *)m->arena16;
    int in32 = m->arena && lo >= a32 && hi <= a32 + m->arena_floats * sizeof(float);
    int in16 = m->arena16 && lo >= a16 && hi <= a16 + m->arena_halves * sizeof(uint16_t);
    if (!in32 && !in16) return 0;
    for (int i = 0; i < n; i++) {
        const char *p = before[i].data;
        if (i != self && p + asr_tensor_bytes(&before[i]) > lo && p < hi) return 0;
    }
    return 1;
}

static void release_source(const asr_tensor *before, int self)
{
    asr_release_pages(before[self].data, asr_tensor_bytes(&before[self]));
}

typedef struct convert_job {
    const asr_model *m;
    asr_tensor **list;
    const asr_tensor *before;
    int n;
    const asr_dtype *target;
    asr_status *status;
    asr_error *errors;
} convert_job;

static void convert_task(void *ctx, int task, int thread)
{
    const convert_job *j = ctx;
    (void)thread;
    /* a source nothing else reads leaves as it is read (the embedding: 40 MB
     * of tiny.en's, whose copy would otherwise sit beside it at the load's peak) */
    int release = releasable_source(j->m, j->before, j->n, task);
    j->status[task] = release ? asr_tensor_convert_consuming(j->list[task], j->target[task], &j->errors[task])
                              : asr_tensor_convert(j->list[task], j->target[task], &j->errors[task]);
    if (release && j->status[task] == ASR_OK && j->list[task]->data != j->before[task].data)
        release_source(j->before, task);
}

asr_status asr_model_convert_weights(asr_model *m, asr_error *err)
{
    asr_tensor *list[4096];
    int n = asr_model_linear_tensors(m, list, 4096);
    if (n > 4096) return asr_fail(err, ASR_ERR_MODEL, "model has too many layers (%d linear weights)", n);
    asr_tensor *before = malloc((size_t)n * sizeof *before);
    asr_dtype *target = malloc((size_t)n * sizeof *target);
    asr_status *status = malloc((size_t)n * sizeof *status);
    asr_error *errors = malloc((size_t)n * sizeof *errors);
    /* tensors are independent: converted on the model's threads (large-v3
     * quantises 1.5e9 values) */
    asr_pool *pool = asr_pool_new(m->n_threads);
    if (!before || !target || !status || !errors || !pool) {
        free(before);
        free(target);
        free(status);
        free(errors);
        asr_pool_free(pool);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory converting the weights");
    }
    for (int i = 0; i < n; i++) {
        before[i] = *list[i];
        target[i] = target_dtype(m, list[i]);
    }
    convert_job job = {m, list, before, n, target, status, errors};
    asr_pool_run(pool, convert_task, &job, n);
    asr_pool_free(pool);
    asr_status s = ASR_OK;
    for (int i = 0; i < n && s == ASR_OK; i++)
        if (status[i] != ASR_OK) {
            s = status[i];
            if (err) *err = errors[i];
        }
    int halves_used = 0;
    size_t replaced = 0, copies = 0; /* bytes of float32 matrices converted away; of converted copies */
    for (int i = 0; i < n; i++) {
        halves_used |= !list[i]->owned && list[i]->dtype == ASR_DTYPE_F16;
        if (list[i]->owned) copies += asr_tensor_bytes(list[i]);
        if (s == ASR_OK && list[i]->data != before[i].data && !before[i].owned && before[i].dtype == ASR_DTYPE_F32)
            replaced += asr_tensor_bytes(&before[i]);
    }
    free(before);
    free(target);
    free(status);
    free(errors);
    if (s != ASR_OK) return s;

    /* The half arena holds only the decoder's matrices and the embedding:
     * once every one of them was converted, it is dead weight. */
    if (!halves_used) {
        free(m->arena16);
        m->arena16 = NULL;
        m->arena_halves = 0;
    }
    m->weight_bytes = m->arena_floats * sizeof(float) - replaced + m->arena_halves * sizeof(uint16_t) + copies;
    return ASR_OK;
}
