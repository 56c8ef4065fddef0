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
    /* Buffers whose lives do not overlap share memory (tiny: 14 MB less):
     * the convolutions' im2col and conv1 output are dead before the first
     * block writes q/k/v and the MLP; a block's normalised input is dead once
     * q/k/v are made, before attention writes its output. */
    st->enc_qkv = alloc_floats(cols > A * 3 * d ? cols : A * 3 * d, &ok);
    st->enc_mlp = alloc_floats(A * 4 * d > T * d ? A * 4 * d : T * d, &ok);
    st->enc_cols = st->enc_qkv;
    st->enc_conv = st->enc_mlp;
    st->enc_x = alloc_floats(A * d, &ok);
    st->enc_xn = alloc_floats(A * d, &ok);
    st->enc_attn = st->enc_xn;
    st->cross_kv = alloc_floats((size_t)hp->n_text_layer * A * 2 * td, &ok);
    st->rows_cap = (int)(C > ASR_MAX_BATCH ? C : ASR_MAX_BATCH);
    size_t R = (size_t)st->rows_cap;
    st->dec_x = alloc_floats(R * td, &ok);
    st->dec_xn = alloc_floats(R * td, &ok);
    st->dec_qkv = alloc_floats(R * 3 * td, &ok);
    st->dec_attn = alloc_floats(R * td, &ok);
    st->dec_mlp = alloc_floats(R * 4 * td, &ok);
    st->logits = alloc_floats((size_t)ASR_MAX_BATCH * (size_t)hp->n_vocab, &ok);
    st->mel = alloc_floats((size_t)hp->n_mels * ASR_N_FRAMES, &ok);
    if (ok) ok = asr_state_set_threads(st, m->n_threads, err) == ASR_OK;
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
    asr_compute_release(&st->compute);
    float *bufs[] = {st->enc_x, st->enc_xn, st->enc_qkv, st->enc_mlp, st->cross_kv, st->self_k, st->self_v, st->spare_k, st->spare_v,
                     st->dec_x, st->dec_xn, st->dec_qkv, st->dec_attn, st->dec_mlp,
                     st->logits, st->mel};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    asr_batch_free(st->batch);
    free(st);
}

asr_status asr_state_set_threads(asr_state *st, int n_threads, asr_error *err)
{
    if (n_threads < 1) n_threads = 1;
    if (st->compute.pool && asr_pool_threads(st->compute.pool) == n_threads) return ASR_OK;
    const asr_hparams *hp = &st->model->hp;
    int max_keys = hp->n_audio_ctx > hp->n_text_ctx ? hp->n_audio_ctx : hp->n_text_ctx;
    int max_in = 4 * (hp->n_audio_state > hp->n_text_state ? hp->n_audio_state : hp->n_text_state);
    /* activation rows: an encoder window, or every decoder row in flight */
    int max_rows = hp->n_audio_ctx > st->rows_cap ? hp->n_audio_ctx : st->rows_cap;
    asr_compute c;
    asr_status s = asr_compute_init(&c, n_threads, st->model->cpu_features, max_keys, max_in, max_rows, err);
    if (s != ASR_OK) return s;
    asr_compute_release(&st->compute);
    st->compute = c;
    return ASR_OK;
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

/* Where a decoder step reads and writes: the state's own buffers (one
 * window, `batch` sequences sharing its encoder output) or the batch's
 * (each sequence its own window). */
typedef struct decoder_io {
    float *self_k, *self_v; /* [n_text_layer][seq_cap] (C, td)                      */
    int seq_cap;
    const float *cross_kv;  /* [n_text_layer][n_cross] (A, 2td)                     */
    int n_cross;            /* 1: every sequence attends to the same window        */
    const int *slot;        /* sequence b's cache and window; NULL: b (and window 0) */
    float *x, *xn, *qkv, *attn, *mlp, *logits;
    int rows_cap;
    const asr_cross_capture *capture;
} decoder_io;

static float *io_cache(const asr_state *st, const decoder_io *io, float *base, int l, int b)
{
    const asr_hparams *hp = &st->model->hp;
    size_t slot = io->slot ? (size_t)io->slot[b] : (size_t)b;
    return base + (((size_t)l * io->seq_cap + slot) * (size_t)hp->n_text_ctx) * (size_t)hp->n_text_state;
}

static asr_status decode(asr_state *st, const decoder_io *io, const int *tokens, int batch, int n_new, int n_past,
                         int logit_row, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    const asr_compute *c = &st->compute;
    int td = hp->n_text_state, A = hp->n_audio_ctx, C = hp->n_text_ctx, R = batch * n_new;
    if (batch < 1 || batch > io->seq_cap || n_new < 1 || R > io->rows_cap || n_past < 0 ||
        n_past + n_new > hp->n_text_ctx || logit_row < 0 || logit_row >= n_new)
        return asr_fail(err, ASR_ERR_INTERNAL, "decoder called with batch %d, %d new tokens at %d", batch, n_new,
                        n_past);
    for (int r = 0; r < R; r++) {
        int t = tokens[r];
        if (t < 0 || t >= hp->n_vocab) return asr_fail(err, ASR_ERR_INTERNAL, "token id %d out of range", t);
        const float *p = w->dec_pos + (size_t)(n_past + r % n_new) * td;
        float *x = io->x + (size_t)r * td;
        asr_tensor_row(&w->tok_emb, t, x);
        for (int j = 0; j < td; j++) x[j] += p[j];
    }
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        /* self-attention: append this step's keys/values to each sequence's cache */
        asr_layer_norm(c, io->x, L->self_ln_g, L->self_ln_b, io->xn, R, td);
        asr_linear(c, &L->self_qkv_w, io->xn, R, L->self_qkv_b, io->qkv, 0);
        for (int b = 0; b < batch; b++) {
            float *kc = io_cache(st, io, io->self_k, l, b), *vc = io_cache(st, io, io->self_v, l, b);
            const float *qkv = io->qkv + (size_t)b * n_new * 3 * td;
            for (int i = 0; i < n_new; i++) {
                memcpy(kc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + td, (size_t)td * sizeof(float));
                memcpy(vc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + 2 * td, (size_t)td * sizeof(float));
            }
        }
        size_t layer = (size_t)l * io->seq_cap * C * td;
        asr_attention_args self = {
            .q = io->qkv, .ldq = 3 * td, .q_seq = (size_t)n_new * 3 * td,
            .k = io->self_k + layer, .v = io->self_v + layer, .ldk = td, .ldv = td, .kv_seq = (size_t)C * td,
            .out = io->attn, .ldo = td, .out_seq = (size_t)n_new * td,
            .n_seq = batch, .n_q = n_new, .n_kv = n_past + n_new, .n_head = hp->n_text_head,
            .dh = td / hp->n_text_head, .causal_past = n_past, .kv_index = io->slot,
        };
        asr_attention(c, &self);
        asr_linear(c, &L->self_out_w, io->attn, R, L->self_out_b, io->x, ASR_LINEAR_ACCUMULATE);
        /* cross-attention to the encoder output */
        asr_layer_norm(c, io->x, L->cross_ln_g, L->cross_ln_b, io->xn, R, td);
        asr_linear(c, &L->cross_q_w, io->xn, R, L->cross_q_b, io->qkv, 0);
        const float *kv = io->cross_kv + (size_t)l * io->n_cross * A * 2 * td;
        asr_attention_args cross = {
            .q = io->qkv, .ldq = td, .k = kv, .v = kv + td, .ldk = 2 * td, .ldv = 2 * td,
            .out = io->attn, .ldo = td,
            .n_seq = 1, .n_q = R, .n_kv = A, .n_head = hp->n_text_head, .dh = td / hp->n_text_head,
            .causal_past = -1,
        };
        if (io->n_cross > 1) { /* each sequence its own window */
            cross.n_seq = batch;
            cross.n_q = n_new;
            cross.q_seq = cross.out_seq = (size_t)n_new * td;
            cross.kv_seq = (size_t)A * 2 * td;
            cross.kv_index = io->slot;
        }
        asr_attention(c, &cross);
        for (int i = 0; io->capture && i < io->capture->n_heads; i++) {
            const asr_cross_capture *cap = io->capture;
            if (cap->heads[i][0] != l) continue;
            int dh = td / hp->n_text_head, h = cap->heads[i][1];
            asr_attention_scores(io->qkv + (size_t)h * dh, td, kv + (size_t)h * dh, 2 * td, R, cap->n_keys, dh,
                                 1.0f / sqrtf((float)dh), cap->out + (size_t)i * R * cap->n_keys);
        }
        asr_linear(c, &L->cross_out_w, io->attn, R, L->cross_out_b, io->x, ASR_LINEAR_ACCUMULATE);
        /* MLP */
        asr_layer_norm(c, io->x, L->mlp_ln_g, L->mlp_ln_b, io->xn, R, td);
        asr_linear(c, &L->mlp_fc1_w, io->xn, R, L->mlp_fc1_b, io->mlp, ASR_LINEAR_GELU);
        asr_linear(c, &L->mlp_fc2_w, io->mlp, R, L->mlp_fc2_b, io->x, ASR_LINEAR_ACCUMULATE);
    }
    /* Final norm and the tied output projection, only for the rows asked for. */
    for (int b = 0; b < batch; b++) {
        const float *x = io->x + ((size_t)b * n_new + (size_t)logit_row) * td;
        asr_layer_norm(c, x, w->dec_ln_g, w->dec_ln_b, io->xn + (size_t)b * td, 1, td);
    }
    asr_linear(c, &w->tok_emb, io->xn, batch, NULL, io->logits, 0);
    return ASR_OK;
}

asr_status asr_decode(asr_state *st, const int *tokens, int batch, int n_new, int n_past, int logit_row,
                      asr_error *err)
{
    decoder_io io = {
        .self_k = st->self_k, .self_v = st->self_v, .seq_cap = st->batch_cap, .cross_kv = st->cross_kv, .n_cross = 1,
        .x = st->dec_x, .xn = st->dec_xn, .qkv = st->dec_qkv, .attn = st->dec_attn, .mlp = st->dec_mlp,
        .logits = st->logits, .rows_cap = st->rows_cap, .capture = st->capture,
    };
    return decode(st, &io, tokens, batch, n_new, n_past, logit_row, err);
}

asr_status asr_decode_batch(asr_state *st, const int *tokens, const int *slot, int n, int n_new, int n_past,
                            int logit_row, asr_error *err)
{
    asr_batch *b = st->batch;
    if (!b || n > b->n_windows) return asr_fail(err, ASR_ERR_INTERNAL, "batched decoder called for %d windows", n);
    for (int i = 0; i < n; i++)
        if (slot[i] < 0 || slot[i] >= b->n_windows)
            return asr_fail(err, ASR_ERR_INTERNAL, "batched decoder slot %d out of range", slot[i]);
    decoder_io io = {
        .self_k = b->self_k, .self_v = b->self_v, .seq_cap = b->cap, .cross_kv = b->cross_kv,
        .n_cross = b->n_windows, .slot = slot,
        .x = b->dec_x, .xn = b->dec_xn, .qkv = b->dec_qkv, .attn = b->dec_attn, .mlp = b->dec_mlp,
        .logits = b->logits, .rows_cap = b->rows_cap,
    };
    return decode(st, &io, tokens, n, n_new, n_past, logit_row, err);
}

void asr_decode_logits_rows(asr_state *st, int first, int n)
{
    const asr_model *m = st->model;
    int td = m->hp.n_text_state;
    asr_layer_norm(&st->compute, st->dec_x + (size_t)first * td, m->w.dec_ln_g, m->w.dec_ln_b, st->dec_xn, n, td);
    asr_linear(&st->compute, &m->w.tok_emb, st->dec_xn, n, NULL, st->logits, 0);
}
