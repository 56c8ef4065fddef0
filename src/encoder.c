/* encoder.c — Whisper's audio encoder: conv stem, transformer blocks, cross K/V. */
#include "engine.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* 1-D convolution, kernel 3, padding 1, as GEMM over im2col columns.
 * in is (T_in, C) time-major, except when channel_major: (C, T_in).
 * out (T_out, d) = cols (T_out, C·3) · w (d, C·3)^T + b, then GELU. */
static void conv3_gelu(const float *in, int channel_major, int t_in, int c, int stride,
                       const float *w, const float *b, int d, float *cols, float *out)
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
    asr_linear(cols, w, b, out, t_out, c * 3, d);
    asr_gelu(out, (size_t)t_out * d);
}

/* Multi-head self-attention over A positions, no mask: qkv (A, 3d) → out (A, d). */
static void self_attention(const float *qkv, int n, int d, int n_head, float *scores, float *out)
{
    int dh = d / n_head;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < n_head; h++) {
        const float *q = qkv + h * dh, *k = qkv + d + h * dh, *v = qkv + 2 * d + h * dh;
        asr_gemm_nt(n, n, dh, scale, q, 3 * d, k, 3 * d, scores, n);
        for (int i = 0; i < n; i++) asr_softmax(scores + (size_t)i * n, n);
        asr_gemm_nn(n, dh, n, scores, n, v, 3 * d, out + h * dh, d);
    }
}

asr_status asr_encode(asr_state *st, const float *mel, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    int d = hp->n_audio_state, A = hp->n_audio_ctx, T = 2 * A;
    (void)err;

    conv3_gelu(mel, 1, T, hp->n_mels, 1, w->conv1_w, w->conv1_b, d, st->enc_cols, st->enc_conv);
    conv3_gelu(st->enc_conv, 0, T, d, 2, w->conv2_w, w->conv2_b, d, st->enc_cols, st->enc_x);
    asr_add(st->enc_x, w->enc_pos, (size_t)A * d);

    for (int l = 0; l < hp->n_audio_layer; l++) {
        const asr_encoder_layer *L = &w->enc[l];
        asr_layer_norm(st->enc_x, L->attn_ln_g, L->attn_ln_b, st->enc_xn, A, d);
        asr_linear(st->enc_xn, L->attn_qkv_w, L->attn_qkv_b, st->enc_qkv, A, d, 3 * d);
        self_attention(st->enc_qkv, A, d, hp->n_audio_head, st->enc_scores, st->enc_attn);
        asr_linear(st->enc_attn, L->attn_out_w, L->attn_out_b, st->enc_xn, A, d, d);
        asr_add(st->enc_x, st->enc_xn, (size_t)A * d);

        asr_layer_norm(st->enc_x, L->mlp_ln_g, L->mlp_ln_b, st->enc_xn, A, d);
        asr_linear(st->enc_xn, L->mlp_fc1_w, L->mlp_fc1_b, st->enc_mlp, A, d, 4 * d);
        asr_gelu(st->enc_mlp, (size_t)A * 4 * d);
        asr_linear(st->enc_mlp, L->mlp_fc2_w, L->mlp_fc2_b, st->enc_xn, A, 4 * d, d);
        asr_add(st->enc_x, st->enc_xn, (size_t)A * d);
    }
    asr_layer_norm(st->enc_x, w->enc_ln_g, w->enc_ln_b, st->enc_x, A, d);

    /* Cross-attention keys and values depend only on the audio: once per window. */
    int td = hp->n_text_state;
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        asr_linear(st->enc_x, L->cross_kv_w, L->cross_kv_b, st->cross_kv + (size_t)l * A * 2 * td, A, d, 2 * td);
    }
    return ASR_OK;
}
