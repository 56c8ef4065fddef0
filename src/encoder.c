/* encoder.c — Whisper's audio encoder: conv stem, transformer blocks, cross K/V. */
#include "engine.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* 1-D convolution, kernel 3, padding 1, as GEMM over im2col columns.
 * in is (T_in, C) time-major, except when channel_major: (C, T_in).
 * out (T_out, d) = GELU(cols (T_out, C·3) · w (d, C·3)ᵀ + b). */
static void conv3_gelu(const asr_compute *cp, const float *in, int channel_major, int t_in, int c, int stride,
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
    asr_tensor wt = asr_tensor_rows(ASR_DTYPE_F32, (void *)w, d, c * 3); /* the stem stays float32 */
    asr_linear(cp, &wt, cols, t_out, b, out, ASR_LINEAR_GELU);
}

asr_status asr_encode(asr_state *st, const float *mel, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_hparams *hp = &m->hp;
    const asr_weights *w = &m->w;
    const asr_compute *c = &st->compute;
    int d = hp->n_audio_state, A = hp->n_audio_ctx, T = 2 * A;
    (void)err;

    conv3_gelu(c, mel, 1, T, hp->n_mels, 1, w->conv1_w, w->conv1_b, d, st->enc_cols, st->enc_conv);
    conv3_gelu(c, st->enc_conv, 0, T, d, 2, w->conv2_w, w->conv2_b, d, st->enc_cols, st->enc_x);
    for (size_t i = 0; i < (size_t)A * d; i++) st->enc_x[i] += w->enc_pos[i];

    asr_attention_args attn = {
        .q = st->enc_qkv, .k = st->enc_qkv + d, .v = st->enc_qkv + 2 * d, .ldq = 3 * d, .ldk = 3 * d, .ldv = 3 * d,
        .out = st->enc_attn, .ldo = d,
        .n_seq = 1, .n_q = A, .n_kv = A, .n_head = hp->n_audio_head, .dh = d / hp->n_audio_head, .causal_past = -1,
        .bf16 = st->model->compute_type == ASR_COMPUTE_BFLOAT16,
    };
    for (int l = 0; l < hp->n_audio_layer; l++) {
        const asr_encoder_layer *L = &w->enc[l];
        asr_layer_norm(c, st->enc_x, L->attn_ln_g, L->attn_ln_b, st->enc_xn, A, d);
        asr_linear(c, &L->attn_qkv_w, st->enc_xn, A, L->attn_qkv_b, st->enc_qkv, 0);
        asr_attention(c, &attn);
        asr_linear(c, &L->attn_out_w, st->enc_attn, A, L->attn_out_b, st->enc_x, ASR_LINEAR_ACCUMULATE);

        asr_layer_norm(c, st->enc_x, L->mlp_ln_g, L->mlp_ln_b, st->enc_xn, A, d);
        asr_linear(c, &L->mlp_fc1_w, st->enc_xn, A, L->mlp_fc1_b, st->enc_mlp, ASR_LINEAR_GELU);
        asr_linear(c, &L->mlp_fc2_w, st->enc_mlp, A, L->mlp_fc2_b, st->enc_x, ASR_LINEAR_ACCUMULATE);
    }
    asr_layer_norm(c, st->enc_x, w->enc_ln_g, w->enc_ln_b, st->enc_x, A, d);

    /* Cross-attention keys and values depend only on the audio: once per window. */
    int td = hp->n_text_state;
    for (int l = 0; l < hp->n_text_layer; l++) {
        const asr_decoder_layer *L = &w->dec[l];
        asr_linear(c, &L->cross_kv_w, st->enc_x, A, L->cross_kv_b, st->cross_kv + (size_t)l * A * 2 * td, 0);
    }
    return ASR_OK;
}
