/* decoder.c — Whisper's text decoder with a self-attention KV cache, and the per-request state. */
#include "engine.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *alloc_floats(size_t n, int *ok)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

asr_state *asr_state_new(const asr_model *m, asr_error *err)
{
    asr_error_clear(err);
    if (!m) {
        asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_state_new: model is NULL");
        return NULL;
    }
    asr_state *st = calloc(1, sizeof *st);
    if (!st) {
        asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    const asr_hparams *hp = &m->hp;
    size_t d = (size_t)hp->n_audio_state, A = (size_t)hp->n_audio_ctx, T = 2 * A;
    size_t td = (size_t)hp->n_text_state, C = (size_t)hp->n_text_ctx;
    size_t cols = T * (size_t)hp->n_mels * 3 > A * d * 3 ? T * (size_t)hp->n_mels * 3 : A * d * 3;
    int ok = 1;
    st->model = m;
    st->enc_cols = alloc_floats(cols, &ok);
    st->enc_conv = alloc_floats(T * d, &ok);
    st->enc_x = alloc_floats(A * d, &ok);
    st->enc_xn = alloc_floats(A * d, &ok);
    st->enc_qkv = alloc_floats(A * 3 * d, &ok);
    st->enc_attn = alloc_floats(A * d, &ok);
    st->enc_scores = alloc_floats(A * A, &ok);
    st->enc_mlp = alloc_floats(A * 4 * d, &ok);
    st->cross_kv = alloc_floats((size_t)hp->n_text_layer * A * 2 * td, &ok);
    st->rows_cap = (int)(C > ASR_MAX_BATCH ? C : ASR_MAX_BATCH);
    size_t R = (size_t)st->rows_cap;
    st->dec_x = alloc_floats(R * td, &ok);
    st->dec_xn = alloc_floats(R * td, &ok);
    st->dec_qkv = alloc_floats(R * 3 * td, &ok);
    st->dec_attn = alloc_floats(R * td, &ok);
    st->dec_mlp = alloc_floats(R * 4 * td, &ok);
    st->dec_scores = alloc_floats(R * (C > A ? C : A), &ok);
    st->logits = alloc_floats((size_t)ASR_MAX_BATCH * (size_t)hp->n_vocab, &ok);
    st->mel = alloc_floats((size_t)hp->n_mels * ASR_N_FRAMES, &ok);
    if (ok) ok = asr_state_reserve(st, 1, err) == ASR_OK;
    if (!ok) {
        asr_state_free(st);
        asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory allocating decoder state");
        return NULL;
    }
    return st;
}

void asr_state_free(asr_state *st)
{
    if (!st) return;
    float *bufs[] = {st->enc_cols, st->enc_conv, st->enc_x, st->enc_xn, st->enc_qkv, st->enc_attn,
                     st->enc_scores, st->enc_mlp, st->cross_kv, st->self_k, st->self_v, st->spare_k, st->spare_v,
                     st->dec_x, st->dec_xn, st->dec_qkv, st->dec_attn, st->dec_mlp, st->dec_scores,
                     st->logits, st->mel};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(st);
}

asr_status asr_state_reserve(asr_state *st, int batch, asr_error *err)
{
    if (batch < 1 || batch > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "batch of %d sequences is outside 1..%d", batch, ASR_MAX_BATCH);
    if (batch <= st->batch_cap) return ASR_OK;
    const asr_hparams *hp = &st->model->hp;
    size_t n = (size_t)hp->n_text_layer * (size_t)batch * (size_t)hp->n_text_ctx * (size_t)hp->n_text_state;
    float *k = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    float *sk = batch > 1 ? calloc(n, sizeof(float)) : NULL, *sv = batch > 1 ? calloc(n, sizeof(float)) : NULL;
    if (!k || !v || (batch > 1 && (!sk || !sv))) {
        free(k);
        free(v);
        free(sk);
        free(sv);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory for %d decoder sequences", batch);
    }
    free(st->self_k);
    free(st->self_v);
    free(st->spare_k);
    free(st->spare_v);
    st->self_k = k;
    st->self_v = v;
    st->spare_k = sk;
    st->spare_v = sv;
    st->batch_cap = batch;
    return ASR_OK;
}

/* Cache of layer l, sequence b: (n_text_ctx, td). */
static float *cache_at(const asr_state *st, float *base, int l, int b)
{
    const asr_hparams *hp = &st->model->hp;
    return base + (((size_t)l * st->batch_cap + (size_t)b) * (size_t)hp->n_text_ctx) * (size_t)hp->n_text_state;
}

void asr_state_reorder(asr_state *st, const int *src, int batch, int n_past)
{
    const asr_hparams *hp = &st->model->hp;
    size_t n = (size_t)n_past * (size_t)hp->n_text_state * sizeof(float);
    if (!st->spare_k) return; /* one sequence: nothing to reorder */
    /* Write the new order into the spare caches, then swap: sources may be
     * destinations of other sequences, so copying in place could clobber them. */
    for (int l = 0; l < hp->n_text_layer; l++)
        for (int i = 0; i < batch; i++) {
            memcpy(cache_at(st, st->spare_k, l, i), cache_at(st, st->self_k, l, src[i]), n);
            memcpy(cache_at(st, st->spare_v, l, i), cache_at(st, st->self_v, l, src[i]), n);
        }
    float *k = st->self_k, *v = st->self_v;
    st->self_k = st->spare_k;
    st->self_v = st->spare_v;
    st->spare_k = k;
    st->spare_v = v;
}

/* Causal self-attention of n_new queries of one sequence against its cache
 * rows [0, n_past + n_new). q (n_new, 3td) rows hold q|k|v; out (n_new, td). */
static void cached_self_attention(const float *qkv, const float *kc, const float *vc, int n_new, int n_past,
                                  int td, int n_head, float *scores, float *out)
{
    int dh = td / n_head;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < n_head; h++) {
        for (int i = 0; i < n_new; i++) {
            const float *q = qkv + (size_t)i * 3 * td + h * dh;
            int n_keys = n_past + i + 1;
            for (int j = 0; j < n_keys; j++) {
                const float *k = kc + (size_t)j * td + h * dh;
                float s = 0.0f;
                for (int e = 0; e < dh; e++) s += q[e] * k[e];
                scores[j] = s * scale;
            }
            asr_softmax(scores, n_keys);
            float *o = out + (size_t)i * td + h * dh;
            for (int e = 0; e < dh; e++) o[e] = 0.0f;
            for (int j = 0; j < n_keys; j++) {
                const float *v = vc + (size_t)j * td + h * dh;
                float p = scores[j];
                for (int e = 0; e < dh; e++) o[e] += p * v[e];
            }
        }
    }
}

/* Cross-attention of R queries q (R, td) against the window's keys/values
 * kv (A, 2td); out (R, td). */
static void cross_attention(const float *q, const float *kv, int rows, int A, int td, int n_head, float *scores,
                            float *out)
{
    int dh = td / n_head;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < n_head; h++) {
        asr_gemm_nt(rows, A, dh, scale, q + h * dh, td, kv + h * dh, 2 * td, scores, A);
        for (int i = 0; i < rows; i++) asr_softmax(scores + (size_t)i * A, A);
        asr_gemm_nn(rows, dh, A, scores, A, kv + td + h * dh, 2 * td, out + h * dh, td);
    }
}

asr_status asr_decode(asr_state *st, const int *tokens, int batch, int n_new, int n_past, int logit_row,
                      asr_error *err)
{
    const asr_model *m = st->model;
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    int td = hp->n_text_state, A = hp->n_audio_ctx, R = batch * n_new;
    if (batch < 1 || batch > st->batch_cap || n_new < 1 || R > st->rows_cap || n_past < 0 ||
        n_past + n_new > hp->n_text_ctx || logit_row < 0 || logit_row >= n_new)
        return asr_fail(err, ASR_ERR_INTERNAL, "decoder called with batch %d, %d new tokens at %d", batch, n_new,
                        n_past);
    for (int r = 0; r < R; r++) {
        int t = tokens[r];
        if (t < 0 || t >= hp->n_vocab) return asr_fail(err, ASR_ERR_INTERNAL, "token id %d out of range", t);
        const float *e = w->tok_emb + (size_t)t * td;
        const float *p = w->dec_pos + (size_t)(n_past + r % n_new) * td;
        float *x = st->dec_x + (size_t)r * td;
        for (int j = 0; j < td; j++) x[j] = e[j] + p[j];
    }
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        /* self-attention with the cache */
        asr_layer_norm(st->dec_x, L->self_ln_g, L->self_ln_b, st->dec_xn, R, td);
        asr_linear(st->dec_xn, L->self_qkv_w, L->self_qkv_b, st->dec_qkv, R, td, 3 * td);
        for (int b = 0; b < batch; b++) {
            float *kc = cache_at(st, st->self_k, l, b), *vc = cache_at(st, st->self_v, l, b);
            const float *qkv = st->dec_qkv + (size_t)b * n_new * 3 * td;
            for (int i = 0; i < n_new; i++) {
                memcpy(kc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + td, (size_t)td * sizeof(float));
                memcpy(vc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + 2 * td, (size_t)td * sizeof(float));
            }
            cached_self_attention(qkv, kc, vc, n_new, n_past, td, hp->n_text_head, st->dec_scores,
                                  st->dec_attn + (size_t)b * n_new * td);
        }
        asr_linear(st->dec_attn, L->self_out_w, L->self_out_b, st->dec_xn, R, td, td);
        asr_add(st->dec_x, st->dec_xn, (size_t)R * td);
        /* cross-attention to the encoder output */
        asr_layer_norm(st->dec_x, L->cross_ln_g, L->cross_ln_b, st->dec_xn, R, td);
        asr_linear(st->dec_xn, L->cross_q_w, L->cross_q_b, st->dec_qkv, R, td, td);
        cross_attention(st->dec_qkv, st->cross_kv + (size_t)l * A * 2 * td, R, A, td, hp->n_text_head,
                        st->dec_scores, st->dec_attn);
        asr_linear(st->dec_attn, L->cross_out_w, L->cross_out_b, st->dec_xn, R, td, td);
        asr_add(st->dec_x, st->dec_xn, (size_t)R * td);
        /* MLP */
        asr_layer_norm(st->dec_x, L->mlp_ln_g, L->mlp_ln_b, st->dec_xn, R, td);
        asr_linear(st->dec_xn, L->mlp_fc1_w, L->mlp_fc1_b, st->dec_mlp, R, td, 4 * td);
        asr_gelu(st->dec_mlp, (size_t)R * 4 * td);
        asr_linear(st->dec_mlp, L->mlp_fc2_w, L->mlp_fc2_b, st->dec_xn, R, 4 * td, td);
        asr_add(st->dec_x, st->dec_xn, (size_t)R * td);
    }
    /* Final norm and the tied output projection, only for the rows asked for. */
    for (int b = 0; b < batch; b++) {
        const float *x = st->dec_x + ((size_t)b * n_new + (size_t)logit_row) * td;
        asr_layer_norm(x, w->dec_ln_g, w->dec_ln_b, st->dec_xn + (size_t)b * td, 1, td);
    }
    asr_linear(st->dec_xn, w->tok_emb, NULL, st->logits, batch, td, hp->n_vocab);
    return ASR_OK;
}
