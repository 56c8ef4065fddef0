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

/* Bytes of a state's cross K/V: every decoder layer's over one window. */
static size_t cross_bytes(const asr_model *m)
{
    const asr_hparams *hp = &m->hp;
    return (size_t)hp->n_text_layer * (size_t)hp->n_audio_ctx * 2 * (size_t)hp->n_text_state * asr_cross_elem(m);
}

/* A state for model m: with the encoder's buffers, or without them (a
 * scheduled state encodes in its scheduler's), and n_threads threads. */
static asr_state *state_alloc(const asr_model *m, int encoder, int n_threads, asr_error *err)
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
    if (encoder) {
        /* Buffers whose lives do not overlap share memory (tiny: 23 MB
         * less): the convolutions' im2col is dead before the first block
         * writes q/k/v, and conv1's output (T = 2A rows) before conv2 writes
         * the residual stream over its first half; a block's normalised input
         * is dead once q/k/v are made, before attention writes its output;
         * q/k/v are dead once the attention output is, before the MLP's
         * hidden rows (ASR_MLP_ROWS at a time) go there. */
        size_t mlp = (size_t)ASR_MLP_ROWS * 4 * d;
        size_t qkv = cols > A * 3 * d ? cols : A * 3 * d;
        st->enc_qkv = alloc_floats(qkv > mlp ? qkv : mlp, &ok);
        st->enc_x = alloc_floats(2 * A * d, &ok); /* T·d: conv1's output */
        st->enc_xn = st->enc_x ? st->enc_x + A * d : NULL;
        st->enc_cols = st->enc_qkv;
        st->enc_conv = st->enc_x;
        st->enc_mlp = st->enc_qkv;
        st->enc_attn = st->enc_xn;
    }
    /* 64-byte aligned: the encoder's bf16 attention packs its operands there */
    st->cross_kv = aligned_alloc(64, (cross_bytes(m) + 63) & ~(size_t)63);
    if (st->cross_kv) memset(st->cross_kv, 0, cross_bytes(m));
    else ok = 0;
    st->rows_cap = (int)(C > ASR_MAX_BATCH ? C : ASR_MAX_BATCH);
    size_t R = (size_t)st->rows_cap;
    st->dec_x = alloc_floats(R * td, &ok);
    st->dec_xn = alloc_floats(R * td, &ok);
    st->dec_qkv = alloc_floats(R * 3 * td, &ok);
    st->dec_attn = alloc_floats(R * td, &ok);
    st->dec_mlp = alloc_floats(R * 4 * td, &ok);
    st->logits = alloc_floats((size_t)ASR_MAX_BATCH * (size_t)hp->n_vocab, &ok);
    st->mel = alloc_floats((size_t)hp->n_mels * ASR_N_FRAMES, &ok);
    if (ok) ok = asr_state_set_threads(st, n_threads, err) == ASR_OK;
    if (ok) ok = asr_state_reserve(st, 1, err) == ASR_OK;
    if (!ok) {
        asr_state_free(st);
        asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory allocating decoder state");
        return NULL;
    }
    return st;
}

asr_state *asr_state_new(const asr_model *m, asr_error *err)
{
    return state_alloc(m, 1, m ? m->n_threads : 1, err);
}

asr_state *asr_state_new_scheduled(asr_scheduler *sched, asr_error *err)
{
    if (!sched) {
        asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_state_new_scheduled: scheduler is NULL");
        return NULL;
    }
    asr_state *st = state_alloc(asr_sched_model(sched), 0, 1, err);
    if (st) asr_sched_attach(sched, st);
    return st;
}

void asr_state_free(asr_state *st)
{
    if (!st) return;
    if (st->sched) asr_sched_detach(st);
    asr_compute_release(&st->compute);
    free(st->cross_kv);
    float *bufs[] = {st->enc_x, st->enc_qkv, st->self_k, st->self_v, st->spare_k, st->spare_v,
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
    /* converted activations: a d-wide product over max_rows rows, or the
     * encoder MLP's second product (ASR_MLP_ROWS rows of 4d) — not max_rows
     * rows of 4d (tiny: 2.4 MB less) */
    size_t width = (size_t)max_in / 4, act = (size_t)max_rows * width;
    if (act < (size_t)ASR_MLP_ROWS * (size_t)max_in) act = (size_t)ASR_MLP_ROWS * (size_t)max_in;
    asr_status s = asr_compute_init(&c, n_threads, st->model->cpu_features, max_keys, max_in, max_rows, act, err);
    if (s != ASR_OK) return s;
    /* A state that encodes under bfloat16 keeps the attention's packed
     * operands: in its cross K/V, which are dead while the encoder's blocks
     * run (its last step writes them anew; tiny: 3.5 MB less), or beside. */
    if (st->enc_x && st->model->compute_type == ASR_COMPUTE_BFLOAT16) {
        int dh = hp->n_audio_state / hp->n_audio_head;
        size_t pack = asr_attention_pack_bytes(hp->n_audio_head, hp->n_audio_ctx, dh);
        if (pack <= cross_bytes(st->model)) asr_compute_borrow_attention(&c, st->cross_kv, pack);
        else s = asr_compute_reserve_attention(&c, pack, err);
        if (s != ASR_OK) {
            asr_compute_release(&c);
            return s;
        }
    }
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

/* Where a group of sequences keeps its caches: the state's own (one
 * window, `batch` sequences sharing its encoder output) or the batch's (each
 * sequence its own window). */
typedef struct decoder_io {
    float *self_k, *self_v; /* [n_text_layer][seq_cap] (C, td)                      */
    int seq_cap;
    const void *cross_kv;   /* [n_text_layer][n_cross] (A, 2td), asr_cross_elem each */
    int n_cross;            /* 1: every sequence attends to the same window        */
    const int *slot;        /* sequence b's cache and window; NULL: b (and window 0) */
    const asr_cross_capture *capture;
} decoder_io;

/* The activations of a step, shared by all its groups: rows_cap rows. */
typedef struct decoder_rows {
    float *x, *xn, *qkv, *attn, *mlp, *logits;
    int rows_cap;
} decoder_rows;

/* One group of a step: `batch` sequences with the same io, fed n_new tokens
 * each at positions n_past..; its rows start at row0 of decoder_rows and its
 * logits at logit0. */
typedef struct decoder_group {
    const decoder_io *io;
    const int *tokens;
    int batch, n_new, n_past, logit_row;
    int row0, logit0;
} decoder_group;

static float *io_cache(const asr_model *m, const decoder_io *io, float *base, int l, int b)
{
    const asr_hparams *hp = &m->hp;
    size_t slot = io->slot ? (size_t)io->slot[b] : (size_t)b;
    return base + (((size_t)l * io->seq_cap + slot) * (size_t)hp->n_text_ctx) * (size_t)hp->n_text_state;
}

static asr_status check_group(const asr_model *m, const decoder_group *g, asr_error *err)
{
    const asr_hparams *hp = &m->hp;
    if (g->batch < 1 || g->batch > g->io->seq_cap || g->n_new < 1 || g->n_past < 0 ||
        g->n_past + g->n_new > hp->n_text_ctx || g->logit_row < 0 || g->logit_row >= g->n_new)
        return asr_fail(err, ASR_ERR_INTERNAL, "decoder called with batch %d, %d new tokens at %d", g->batch, g->n_new,
                        g->n_past);
    for (int r = 0; r < g->batch * g->n_new; r++)
        if (g->tokens[r] < 0 || g->tokens[r] >= hp->n_vocab)
            return asr_fail(err, ASR_ERR_INTERNAL, "token id %d out of range", g->tokens[r]);
    return ASR_OK;
}

/* The decoder over n groups (checked) whose rows fill [0, R) of buf: every
 * linear layer is one product over all rows, attention per group as if it
 * ran alone. flags go to every product (ASR_LINEAR_ROW_INVARIANT when groups
 * of different requests share the step). */
static void decode_groups(const asr_model *m, const asr_compute *c, const decoder_rows *buf,
                          const decoder_group *groups, int n, int R, int n_logits, int flags)
{
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    int td = hp->n_text_state, A = hp->n_audio_ctx, C = hp->n_text_ctx;
    for (int g = 0; g < n; g++) {
        const decoder_group *G = &groups[g];
        for (int r = 0; r < G->batch * G->n_new; r++) {
            const float *p = w->dec_pos + (size_t)(G->n_past + r % G->n_new) * td;
            float *x = buf->x + (size_t)(G->row0 + r) * td;
            asr_tensor_row(&w->tok_emb, G->tokens[r], x);
            for (int j = 0; j < td; j++) x[j] += p[j];
        }
    }
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        /* self-attention: append this step's keys/values to each sequence's cache */
        asr_layer_norm(c, buf->x, L->self_ln_g, L->self_ln_b, buf->xn, R, td);
        asr_linear(c, &L->self_qkv_w, buf->xn, R, L->self_qkv_b, buf->qkv, flags);
        for (int g = 0; g < n; g++) {
            const decoder_group *G = &groups[g];
            const decoder_io *io = G->io;
            int n_new = G->n_new, n_past = G->n_past;
            const float *qkv0 = buf->qkv + (size_t)G->row0 * 3 * td;
            for (int b = 0; b < G->batch; b++) {
                float *kc = io_cache(m, io, io->self_k, l, b), *vc = io_cache(m, io, io->self_v, l, b);
                const float *qkv = qkv0 + (size_t)b * n_new * 3 * td;
                for (int i = 0; i < n_new; i++) {
                    memcpy(kc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + td, (size_t)td * sizeof(float));
                    memcpy(vc + (size_t)(n_past + i) * td, qkv + (size_t)i * 3 * td + 2 * td,
                           (size_t)td * sizeof(float));
                }
            }
            size_t layer = (size_t)l * io->seq_cap * C * td;
            asr_attention_args self = {
                .q = qkv0, .ldq = 3 * td, .q_seq = (size_t)n_new * 3 * td,
                .k = io->self_k + layer, .v = io->self_v + layer, .ldk = td, .ldv = td, .kv_seq = (size_t)C * td,
                .out = buf->attn + (size_t)G->row0 * td, .ldo = td, .out_seq = (size_t)n_new * td,
                .n_seq = G->batch, .n_q = n_new, .n_kv = n_past + n_new, .n_head = hp->n_text_head,
                .dh = td / hp->n_text_head, .causal_past = n_past, .kv_index = io->slot,
            };
            asr_attention(c, &self);
        }
        asr_linear(c, &L->self_out_w, buf->attn, R, L->self_out_b, buf->x, ASR_LINEAR_ACCUMULATE | flags);
        /* cross-attention to the encoder output */
        asr_layer_norm(c, buf->x, L->cross_ln_g, L->cross_ln_b, buf->xn, R, td);
        asr_linear(c, &L->cross_q_w, buf->xn, R, L->cross_q_b, buf->qkv, flags);
        for (int g = 0; g < n; g++) {
            const decoder_group *G = &groups[g];
            const decoder_io *io = G->io;
            int rows = G->batch * G->n_new;
            const float *q = buf->qkv + (size_t)G->row0 * td;
            size_t kv_off = (size_t)l * io->n_cross * A * 2 * td;
            int kv16 = asr_cross_bf16(m);
            const float *kv = kv16 ? NULL : (const float *)io->cross_kv + kv_off;
            const uint16_t *kvh = kv16 ? (const uint16_t *)io->cross_kv + kv_off : NULL;
            asr_attention_args cross = {
                .q = q, .ldq = td, .k = kv, .v = kv ? kv + td : NULL, .ldk = 2 * td, .ldv = 2 * td,
                .k16 = kvh, .v16 = kvh ? kvh + td : NULL,
                .out = buf->attn + (size_t)G->row0 * td, .ldo = td,
                .n_seq = 1, .n_q = rows, .n_kv = A, .n_head = hp->n_text_head, .dh = td / hp->n_text_head,
                .causal_past = -1,
            };
            if (io->n_cross > 1) { /* each sequence its own window */
                cross.n_seq = G->batch;
                cross.n_q = G->n_new;
                cross.q_seq = cross.out_seq = (size_t)G->n_new * td;
                cross.kv_seq = (size_t)A * 2 * td;
                cross.kv_index = io->slot;
            }
            asr_attention(c, &cross);
            for (int i = 0; io->capture && i < io->capture->n_heads; i++) {
                const asr_cross_capture *cap = io->capture;
                if (cap->heads[i][0] != l) continue;
                int dh = td / hp->n_text_head, h = cap->heads[i][1];
                float *scores = cap->out + (size_t)i * rows * cap->n_keys;
                /* the attention above is done with the scratch: the widened keys go there */
                float *keys = (size_t)cap->n_keys * dh <= c->scratch_floats ? c->scratch : NULL;
                if (kvh)
                    asr_attention_scores_k16(q + (size_t)h * dh, td, kvh + (size_t)h * dh, 2 * td, rows, cap->n_keys,
                                             dh, 1.0f / sqrtf((float)dh), scores, keys);
                else
                    asr_attention_scores(q + (size_t)h * dh, td, kv + (size_t)h * dh, 2 * td, rows, cap->n_keys, dh,
                                         1.0f / sqrtf((float)dh), scores);
            }
        }
        asr_linear(c, &L->cross_out_w, buf->attn, R, L->cross_out_b, buf->x, ASR_LINEAR_ACCUMULATE | flags);
        /* MLP */
        asr_layer_norm(c, buf->x, L->mlp_ln_g, L->mlp_ln_b, buf->xn, R, td);
        asr_linear(c, &L->mlp_fc1_w, buf->xn, R, L->mlp_fc1_b, buf->mlp, ASR_LINEAR_GELU | flags);
        asr_linear(c, &L->mlp_fc2_w, buf->mlp, R, L->mlp_fc2_b, buf->x, ASR_LINEAR_ACCUMULATE | flags);
    }
    /* Final norm and the tied output projection, only for the rows asked for. */
    for (int g = 0; g < n; g++) {
        const decoder_group *G = &groups[g];
        for (int b = 0; b < G->batch; b++) {
            const float *x = buf->x + ((size_t)G->row0 + (size_t)b * G->n_new + (size_t)G->logit_row) * td;
            asr_layer_norm(c, x, w->dec_ln_g, w->dec_ln_b, buf->xn + (size_t)(G->logit0 + b) * td, 1, td);
        }
    }
    asr_linear(c, &w->tok_emb, buf->xn, n_logits, NULL, buf->logits, flags);
}

static asr_status decode_one(const asr_model *m, const asr_compute *c, const decoder_rows *buf,
                             const decoder_io *io, const int *tokens, int batch, int n_new, int n_past,
                             int logit_row, asr_error *err)
{
    decoder_group g = {io, tokens, batch, n_new, n_past, logit_row, 0, 0};
    asr_status s = check_group(m, &g, err);
    if (s != ASR_OK) return s;
    if (batch * n_new > buf->rows_cap)
        return asr_fail(err, ASR_ERR_INTERNAL, "decoder called with %d rows", batch * n_new);
    /* single-token steps always take the row-invariant kernels, so a state
     * gets the same numbers alone as in a step shared with others */
    decode_groups(m, c, buf, &g, 1, batch * n_new, batch, n_new == 1 ? ASR_LINEAR_ROW_INVARIANT : 0);
    return ASR_OK;
}

static decoder_io state_io(const asr_state *st)
{
    return (decoder_io){.self_k = st->self_k, .self_v = st->self_v, .seq_cap = st->batch_cap,
                        .cross_kv = st->cross_kv, .n_cross = 1, .capture = st->capture};
}

static decoder_rows state_rows(const asr_state *st)
{
    return (decoder_rows){st->dec_x, st->dec_xn, st->dec_qkv, st->dec_attn, st->dec_mlp, st->logits, st->rows_cap};
}

typedef struct decode_job {
    const int *tokens;
    int batch, n_new, n_past, logit_row;
    asr_state *st;
} decode_job;

/* On the scheduler: the state's own buffers, the scheduler's threads. */
static asr_status decode_on(void *ctx, asr_state *ws, asr_error *err)
{
    const decode_job *j = ctx;
    decoder_io io = state_io(j->st);
    decoder_rows rows = state_rows(j->st);
    return decode_one(j->st->model, &ws->compute, &rows, &io, j->tokens, j->batch, j->n_new, j->n_past, j->logit_row,
                      err);
}

asr_status asr_decode(asr_state *st, const int *tokens, int batch, int n_new, int n_past, int logit_row,
                      asr_error *err)
{
    if (st->sched) {
        /* one new token per sequence joins the other requests' step; the
         * prompt and word alignment (which captures scores) run alone */
        if (n_new == 1 && !st->capture) return asr_sched_step(st, tokens, batch, n_past, err);
        decode_job j = {tokens, batch, n_new, n_past, logit_row, st};
        return asr_sched_run(st, decode_on, &j, err);
    }
    decoder_io io = state_io(st);
    decoder_rows rows = state_rows(st);
    return decode_one(st->model, &st->compute, &rows, &io, tokens, batch, n_new, n_past, logit_row, err);
}

void asr_decode_steps(asr_state *ws, float *logits, asr_step *steps, int n)
{
    const asr_model *m = ws->model;
    decoder_io io[ASR_SCHED_MAX_STATES];
    decoder_group g[ASR_SCHED_MAX_STATES];
    int n_groups = 0, R = 0;
    for (int i = 0; i < n && i < ASR_SCHED_MAX_STATES; i++) {
        asr_state *st = steps[i].st;
        io[n_groups] = state_io(st);
        g[n_groups] = (decoder_group){&io[n_groups], steps[i].tokens, steps[i].batch, 1, steps[i].n_past, 0, R, R};
        steps[i].status = check_group(m, &g[n_groups], steps[i].err);
        if (steps[i].status == ASR_OK && R + steps[i].batch > ws->rows_cap)
            steps[i].status = asr_fail(steps[i].err, ASR_ERR_INTERNAL, "decoder step of %d rows", R + steps[i].batch);
        if (steps[i].status != ASR_OK) continue;
        R += steps[i].batch;
        n_groups++;
    }
    if (!n_groups) return;
    decoder_rows rows = state_rows(ws);
    rows.logits = logits;
    decode_groups(m, &ws->compute, &rows, g, n_groups, R, R, ASR_LINEAR_ROW_INVARIANT);
    for (int i = 0, k = 0; i < n; i++) {
        if (steps[i].status != ASR_OK) continue;
        memcpy(steps[i].st->logits, logits + (size_t)g[k].logit0 * (size_t)m->hp.n_vocab,
               (size_t)steps[i].batch * (size_t)m->hp.n_vocab * sizeof(float));
        k++;
    }
}

typedef struct batch_job {
    const int *tokens, *slot;
    int n, n_new, n_past, logit_row;
    asr_state *st;
} batch_job;

static asr_status decode_batch_on(asr_state *st, const asr_compute *c, const int *tokens, const int *slot, int n,
                                  int n_new, int n_past, int logit_row, asr_error *err)
{
    asr_batch *b = st->batch;
    if (!b || n > b->n_windows) return asr_fail(err, ASR_ERR_INTERNAL, "batched decoder called for %d windows", n);
    for (int i = 0; i < n; i++)
        if (slot[i] < 0 || slot[i] >= b->n_windows)
            return asr_fail(err, ASR_ERR_INTERNAL, "batched decoder slot %d out of range", slot[i]);
    decoder_io io = {
        .self_k = b->self_k, .self_v = b->self_v, .seq_cap = b->cap, .cross_kv = b->cross_kv,
        .n_cross = b->n_windows, .slot = slot,
    };
    decoder_rows rows = {b->dec_x, b->dec_xn, b->dec_qkv, b->dec_attn, b->dec_mlp, b->logits, b->rows_cap};
    return decode_one(st->model, c, &rows, &io, tokens, n, n_new, n_past, logit_row, err);
}

static asr_status decode_batch_job(void *ctx, asr_state *ws, asr_error *err)
{
    const batch_job *j = ctx;
    return decode_batch_on(j->st, &ws->compute, j->tokens, j->slot, j->n, j->n_new, j->n_past, j->logit_row, err);
}

asr_status asr_decode_batch(asr_state *st, const int *tokens, const int *slot, int n, int n_new, int n_past,
                            int logit_row, asr_error *err)
{
    if (st->sched) {
        batch_job j = {tokens, slot, n, n_new, n_past, logit_row, st};
        return asr_sched_run(st, decode_batch_job, &j, err);
    }
    return decode_batch_on(st, &st->compute, tokens, slot, n, n_new, n_past, logit_row, err);
}

typedef struct rows_job {
    asr_state *st;
    int first, n;
} rows_job;

static void logits_rows_on(asr_state *st, const asr_compute *c, int first, int n)
{
    const asr_model *m = st->model;
    int td = m->hp.n_text_state;
    asr_layer_norm(c, st->dec_x + (size_t)first * td, m->w.dec_ln_g, m->w.dec_ln_b, st->dec_xn, n, td);
    asr_linear(c, &m->w.tok_emb, st->dec_xn, n, NULL, st->logits, 0);
}

static asr_status logits_rows_job(void *ctx, asr_state *ws, asr_error *err)
{
    const rows_job *j = ctx;
    (void)err;
    logits_rows_on(j->st, &ws->compute, j->first, j->n);
    return ASR_OK;
}

void asr_decode_logits_rows(asr_state *st, int first, int n)
{
    if (st->sched) {
        asr_error ignored;
        rows_job j = {st, first, n};
        asr_sched_run(st, logits_rows_job, &j, &ignored); /* cannot fail once submitted */
        return;
    }
    logits_rows_on(st, &st->compute, first, n);
}
