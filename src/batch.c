/* batch.c — the buffers a state keeps for batched long-form transcription, allocated on first use. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

void asr_batch_free(asr_batch *b)
{
    if (!b) return;
    free(b->cross_kv);
    float *bufs[] = {b->mel,      b->enc_cols, b->enc_conv, b->enc_x,  b->enc_xn,   b->enc_qkv,
                     b->enc_attn, b->enc_mlp,  b->self_k, b->self_v,   b->dec_x,
                     b->dec_xn,   b->dec_qkv,  b->dec_attn, b->dec_mlp, b->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(b);
}

static float *alloc_floats(size_t n, int *ok)
{
    float *p = *ok ? malloc((n ? n : 1) * sizeof(float)) : NULL;
    if (!p) *ok = 0;
    return p;
}

asr_status asr_batch_reserve(asr_state *st, int windows, asr_error *err)
{
    if (windows < 1 || windows > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "batch of %d windows is outside 1..%d", windows, ASR_MAX_BATCH);
    if (st->batch && st->batch->cap >= windows) return ASR_OK;
    const asr_hparams *hp = &st->model->hp;
    size_t n = (size_t)windows, d = (size_t)hp->n_audio_state, A = (size_t)hp->n_audio_ctx, T = 2 * A;
    size_t td = (size_t)hp->n_text_state, C = (size_t)hp->n_text_ctx, L = (size_t)hp->n_text_layer;
    size_t cols = T * (size_t)hp->n_mels * 3 > A * d * 3 ? T * (size_t)hp->n_mels * 3 : A * d * 3;
    asr_batch *b = calloc(1, sizeof *b);
    int ok = b != NULL;
    if (ok) {
        b->cap = windows;
        /* the longest prompt: sot_prev, C/2 - 1 prompt tokens, sot, language, task, no_timestamps */
        b->rows_cap = windows * (int)(C / 2 + 4);
        size_t R = (size_t)b->rows_cap;
        b->mel = alloc_floats(n * (size_t)hp->n_mels * ASR_N_FRAMES, &ok);
        b->enc_cols = alloc_floats(n * cols, &ok);
        b->enc_conv = alloc_floats(n * T * d, &ok);
        b->enc_x = alloc_floats(n * A * d, &ok);
        b->enc_xn = alloc_floats(n * A * d, &ok);
        b->enc_qkv = alloc_floats(n * A * 3 * d, &ok);
        b->enc_attn = alloc_floats(n * A * d, &ok);
        b->enc_mlp = alloc_floats((size_t)ASR_MLP_ROWS * 4 * d, &ok);
        b->cross_kv = ok ? malloc(L * n * A * 2 * td * asr_cross_elem(st->model)) : NULL;
        if (!b->cross_kv) ok = 0;
        b->self_k = alloc_floats(L * n * C * td, &ok);
        b->self_v = alloc_floats(L * n * C * td, &ok);
        b->dec_x = alloc_floats(R * td, &ok);
        b->dec_xn = alloc_floats(R * td, &ok);
        b->dec_qkv = alloc_floats(R * 3 * td, &ok);
        b->dec_attn = alloc_floats(R * td, &ok);
        b->dec_mlp = alloc_floats(R * 4 * td, &ok);
        b->logits = alloc_floats(n * (size_t)hp->n_vocab, &ok);
    }
    if (!ok) {
        asr_batch_free(b);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory for a batch of %d windows", windows);
    }
    asr_batch_free(st->batch);
    st->batch = b;
    return ASR_OK;
}

void asr_batch_load_window(asr_state *st, int slot)
{
    const asr_hparams *hp = &st->model->hp;
    const asr_batch *b = st->batch;
    size_t per = (size_t)hp->n_audio_ctx * 2 * (size_t)hp->n_text_state * asr_cross_elem(st->model); /* bytes */
    for (int l = 0; l < hp->n_text_layer; l++)
        memcpy((char *)st->cross_kv + (size_t)l * per,
               (const char *)b->cross_kv + ((size_t)l * b->n_windows + (size_t)slot) * per, per);
}
