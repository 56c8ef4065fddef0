/* encoder.c — Whisper's audio encoder: conv stem, transformer blocks, cross K/V; one window or a batch. */
#include "engine.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* Where an encoder pass reads and writes: the state's one-window buffers or
 * the batch's, each n windows long. */
typedef struct encoder_io {
    const float *mel; /* [n] (n_mels, ASR_N_FRAMES) */
    int n;
    float *cols, *conv, *x, *xn, *qkv, *attn, *mlp;
    void *cross_kv; /* [n_text_layer][n] (A, 2td), float32 or bf16 (asr_cross_bf16) */
} encoder_io;

/* im2col of a 1-D convolution, kernel 3, padding 1: row t of cols (t_out,
 * c·3) holds the inputs output t sees. in is (t_in, c) time-major, except
 * when channel_major: (c, t_in). */
static void im2col3(const float *in, int channel_major, int t_in, int c, int stride, float *cols)
{
    int t_out = t_in / stride;
    for (int t = 0; t < t_out; t++) {
        float *row = cols + (size_t)t * c * 3;
        for (int k = 0; k < 3; k++) {
            int src = t * stride + k - 1;
            int valid = src >= 0 && src < t_in;
            if (channel_major) {
                for (int ch = 0; ch < c; ch++) row[ch * 3 + k] = valid ? in[(size_t)ch * t_in + src] : 0.0f;
            } else {
                const float *s = in + (size_t)src * c;
                for (int ch = 0; ch < c; ch++) row[ch * 3 + k] = valid ? s[ch] : 0.0f;
            }
        }
    }
}

/* out (n·t_out, d) = GELU(cols · w (d, c·3)ᵀ + b): the windows' convolutions as one GEMM. */
static void conv3_gelu(const asr_compute *cp, const float *cols, int rows, int c, const float *w, const float *b,
                       int d, float *out)
{
    asr_tensor wt = asr_tensor_rows(ASR_DTYPE_F32, (void *)w, d, c * 3); /* the stem stays float32 */
    asr_linear(cp, &wt, cols, rows, b, out, ASR_LINEAR_GELU);
}

/* The encoder over io->n windows: every linear layer is one product over
 * n·A rows (the weights are read once for all windows), attention per window. */
static void encode(const asr_model *m, const asr_compute *c, const encoder_io *io)
{
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    int d = hp->n_audio_state, A = hp->n_audio_ctx, T = 2 * A, nm = hp->n_mels, n = io->n, R = n * A;

    for (int i = 0; i < n; i++)
        im2col3(io->mel + (size_t)i * nm * ASR_N_FRAMES, 1, T, nm, 1, io->cols + (size_t)i * T * nm * 3);
    conv3_gelu(c, io->cols, n * T, nm, w->conv1_w, w->conv1_b, d, io->conv);
    for (int i = 0; i < n; i++)
        im2col3(io->conv + (size_t)i * T * d, 0, T, d, 2, io->cols + (size_t)i * A * d * 3);
    conv3_gelu(c, io->cols, R, d, w->conv2_w, w->conv2_b, d, io->x);
    for (int i = 0; i < n; i++) {
        float *x = io->x + (size_t)i * A * d;
        for (size_t j = 0; j < (size_t)A * d; j++) x[j] += w->enc_pos[j];
    }

    asr_attention_args attn = {
        .q = io->qkv, .k = io->qkv + d, .v = io->qkv + 2 * d, .ldq = 3 * d, .ldk = 3 * d, .ldv = 3 * d,
        .q_seq = (size_t)A * 3 * d, .kv_seq = (size_t)A * 3 * d, .out = io->attn, .ldo = d, .out_seq = (size_t)A * d,
        .n_seq = n, .n_q = A, .n_kv = A, .n_head = hp->n_audio_head, .dh = d / hp->n_audio_head, .causal_past = -1,
        .bf16 = m->compute_type == ASR_COMPUTE_BFLOAT16,
    };
    for (int l = 0; l < hp->n_audio_layer; l++) {
        const asr_encoder_layer *L = &w->enc[l];
        asr_layer_norm(c, io->x, L->attn_ln_g, L->attn_ln_b, io->xn, R, d);
        asr_linear(c, &L->attn_qkv_w, io->xn, R, L->attn_qkv_b, io->qkv, 0);
        asr_attention(c, &attn);
        asr_linear(c, &L->attn_out_w, io->attn, R, L->attn_out_b, io->x, ASR_LINEAR_ACCUMULATE);

        asr_layer_norm(c, io->x, L->mlp_ln_g, L->mlp_ln_b, io->xn, R, d);
        for (int r0 = 0; r0 < R; r0 += ASR_MLP_ROWS) { /* io->mlp holds ASR_MLP_ROWS hidden rows */
            int rows = R - r0 < ASR_MLP_ROWS ? R - r0 : ASR_MLP_ROWS;
            asr_linear(c, &L->mlp_fc1_w, io->xn + (size_t)r0 * d, rows, L->mlp_fc1_b, io->mlp, ASR_LINEAR_GELU);
            asr_linear(c, &L->mlp_fc2_w, io->mlp, rows, L->mlp_fc2_b, io->x + (size_t)r0 * d, ASR_LINEAR_ACCUMULATE);
        }
    }
    asr_layer_norm(c, io->x, w->enc_ln_g, w->enc_ln_b, io->x, R, d);

    /* Cross-attention keys and values depend only on the audio: once per
     * window. Under bfloat16 they are made in float32 where q/k/v were (R·3d ≥
     * R·2td) and rounded to half. */
    int td = hp->n_text_state;
    size_t per = (size_t)R * 2 * td;
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        if (asr_cross_bf16(m)) {
            asr_linear(c, &L->cross_kv_w, io->x, R, L->cross_kv_b, io->qkv, 0);
            asr_round_f16(c, io->qkv, per, (uint16_t *)io->cross_kv + (size_t)l * per);
        } else {
            asr_linear(c, &L->cross_kv_w, io->x, R, L->cross_kv_b, (float *)io->cross_kv + (size_t)l * per, 0);
        }
    }
}

typedef struct encode_job {
    asr_state *st;
    const float *mel;
    int n; /* 0: one window into st->cross_kv; else st->batch's first n */
} encode_job;

/* The buffers of an encoder pass: the batch's, or for one window `work`'s
 * (the state itself, or its scheduler's workspace) writing into st's cross K/V. */
static encoder_io job_io(const encode_job *j, const asr_state *work)
{
    if (j->n) {
        asr_batch *b = j->st->batch;
        return (encoder_io){b->mel, j->n, b->enc_cols, b->enc_conv, b->enc_x, b->enc_xn, b->enc_qkv, b->enc_attn,
                            b->enc_mlp, b->cross_kv};
    }
    return (encoder_io){j->mel, 1, work->enc_cols, work->enc_conv, work->enc_x, work->enc_xn, work->enc_qkv,
                        work->enc_attn, work->enc_mlp, j->st->cross_kv};
}

static asr_status encode_on(void *ctx, asr_state *ws, asr_error *err)
{
    (void)err;
    const encode_job *j = ctx;
    encoder_io io = job_io(j, ws);
    encode(j->st->model, &ws->compute, &io);
    return ASR_OK;
}

static asr_status run_encode(asr_state *st, const float *mel, int n, asr_error *err)
{
    encode_job j = {st, mel, n};
    if (st->sched) return asr_sched_run(st, encode_on, &j, err);
    encoder_io io = job_io(&j, st);
    encode(st->model, &st->compute, &io);
    return ASR_OK;
}

asr_status asr_encode(asr_state *st, const float *mel, asr_error *err)
{
    return run_encode(st, mel, 0, err);
}

asr_status asr_encode_batch(asr_state *st, int n, asr_error *err)
{
    asr_batch *b = st->batch;
    if (!b || n < 1 || n > b->cap)
        return asr_fail(err, ASR_ERR_INTERNAL, "batched encoder called for %d windows", n);
    asr_status s = run_encode(st, NULL, n, err);
    if (s == ASR_OK) b->n_windows = n;
    return s;
}
