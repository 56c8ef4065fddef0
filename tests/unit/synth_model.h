/* synth_model.h — writes tiny synthetic Whisper model files (CTranslate2 model.bin, whisper.cpp ggml) in memory.
 *
 * For loader tests and the fuzzers' seed corpus: real Whisper models are tens
 * of megabytes, these are well under a megabyte (width 8, one layer each,
 * the smallest vocabulary and text context the loaders accept) yet have
 * every tensor a loader binds, so they load, and any one field can be made
 * hostile. Header-only; every function is static.
 */
#ifndef ASR_SYNTH_MODEL_H
#define ASR_SYNTH_MODEL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct synth_buf {
    unsigned char *p;
    size_t n, cap;
} synth_buf;

static void synth_put(synth_buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void synth_u8(synth_buf *b, uint8_t v) { synth_put(b, &v, 1); }
static void synth_u16(synth_buf *b, uint16_t v) { synth_put(b, &v, 2); }
static void synth_u32(synth_buf *b, uint32_t v) { synth_put(b, &v, 4); }

/* Shape of the synthetic model. */
typedef struct synth_hp {
    int d, heads, enc_layers, dec_layers, n_mels, n_audio_ctx, n_text_ctx, n_vocab;
} synth_hp;

static synth_hp synth_default_hp(void)
{
    return (synth_hp){.d = 8, .heads = 2, .enc_layers = 1, .dec_layers = 1, .n_mels = 80, .n_audio_ctx = 1500,
                      .n_text_ctx = 8, .n_vocab = 51864};
}

/* ---- CTranslate2 model.bin ------------------------------------------------- */

enum { SYNTH_CT2_F32 = 0, SYNTH_CT2_I8 = 1, SYNTH_CT2_I32 = 3, SYNTH_CT2_F16 = 4 };

typedef struct synth_ct2 {
    synth_buf vars;    /* the variable entries, written after the count */
    uint32_t n_vars;
    synth_buf aliases; /* the alias entries */
    uint32_t n_aliases;
    const char *omit;  /* a variable synth_ct2_model leaves out (NULL: none) */
} synth_ct2;

static void synth_ct2_string(synth_buf *b, const char *s)
{
    synth_u16(b, (uint16_t)(strlen(s) + 1));
    synth_put(b, s, strlen(s) + 1);
}

/* A variable of dtype with dims (rank of them); values are a small
 * deterministic pattern (int8 weights get a float16 "<name>_scale" of 1). */
static void synth_ct2_var(synth_ct2 *c, int dtype, const char *name, int rank, const int *dims)
{
    size_t numel = 1;
    synth_ct2_string(&c->vars, name);
    synth_u8(&c->vars, (uint8_t)rank);
    for (int i = 0; i < rank; i++) {
        synth_u32(&c->vars, (uint32_t)dims[i]);
        numel *= (size_t)dims[i];
    }
    synth_u8(&c->vars, (uint8_t)dtype);
    size_t esize = dtype == SYNTH_CT2_I8 ? 1 : dtype == SYNTH_CT2_F16 ? 2 : 4;
    synth_u32(&c->vars, (uint32_t)(numel * esize));
    for (size_t i = 0; i < numel; i++) {
        int v = (int)(i % 7) - 3;
        if (dtype == SYNTH_CT2_F32) { float f = 0.01f * (float)v; synth_put(&c->vars, &f, 4); }
        else if (dtype == SYNTH_CT2_I32) { int32_t x = v; synth_put(&c->vars, &x, 4); }
        else if (dtype == SYNTH_CT2_I8) synth_u8(&c->vars, (uint8_t)(int8_t)v);
        else synth_u16(&c->vars, (uint16_t)(v == 0 ? 0 : (v < 0 ? 0x8000 : 0) | 0x2000 | (uint16_t)(v < 0 ? -v : v)));
    }
    c->n_vars++;
    if (dtype == SYNTH_CT2_I8 && rank == 2) {
        char scale[256];
        snprintf(scale, sizeof scale, "%s_scale", name);
        synth_ct2_string(&c->vars, scale);
        synth_u8(&c->vars, 1);
        synth_u32(&c->vars, (uint32_t)dims[0]);
        synth_u8(&c->vars, SYNTH_CT2_F16);
        synth_u32(&c->vars, (uint32_t)dims[0] * 2);
        for (int i = 0; i < dims[0]; i++) synth_u16(&c->vars, 0x3c00); /* 1.0 */
        c->n_vars++;
    }
}

static void synth_ct2_alias(synth_ct2 *c, const char *alias, const char *target)
{
    synth_ct2_string(&c->aliases, alias);
    synth_ct2_string(&c->aliases, target);
    c->n_aliases++;
}

static void synth_ct2_scalar(synth_ct2 *c, const char *name, int value)
{
    synth_ct2_string(&c->vars, name);
    synth_u8(&c->vars, 0);
    synth_u8(&c->vars, SYNTH_CT2_I32);
    synth_u32(&c->vars, 4);
    int32_t v = value;
    synth_put(&c->vars, &v, 4);
    c->n_vars++;
}

/* A variable named by a printf format. */
static void synth_ct2_v(synth_ct2 *c, int dtype, int rank, int d0, int d1, int d2, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void synth_ct2_v(synth_ct2 *c, int dtype, int rank, int d0, int d1, int d2, const char *fmt, ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (c->omit && strcmp(name, c->omit) == 0) return;
    const int dims[3] = {d0, d1, d2};
    synth_ct2_var(c, dtype, name, rank, dims);
}

/* Every variable the CTranslate2 loader binds, for hp, into c (not yet
 * serialised: callers may add variables and aliases, then synth_ct2_finish).
 * Matrices are float16 except the token embedding, int8 with scales. */
static void synth_ct2_model(synth_ct2 *c, const synth_hp *hp)
{
    const int d = hp->d, F = SYNTH_CT2_F32, H = SYNTH_CT2_F16;
    synth_ct2_v(c, H, 3, d, hp->n_mels, 3, "encoder/conv1/weight");
    synth_ct2_v(c, F, 1, d, 0, 0, "encoder/conv1/bias");
    synth_ct2_v(c, H, 3, d, d, 3, "encoder/conv2/weight");
    synth_ct2_v(c, F, 1, d, 0, 0, "encoder/conv2/bias");
    synth_ct2_v(c, H, 2, hp->n_audio_ctx, d, 0, "encoder/position_encodings/encodings");
    synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_norm/gamma");
    synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_norm/beta");
    synth_ct2_scalar(c, "encoder/num_heads", hp->heads);
    synth_ct2_scalar(c, "decoder/num_heads", hp->heads);
    for (int i = 0; i < hp->enc_layers; i++) {
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/self_attention/layer_norm/gamma", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/self_attention/layer_norm/beta", i);
        synth_ct2_v(c, H, 2, 3 * d, d, 0, "encoder/layer_%d/self_attention/linear_0/weight", i);
        synth_ct2_v(c, F, 1, 3 * d, 0, 0, "encoder/layer_%d/self_attention/linear_0/bias", i);
        synth_ct2_v(c, H, 2, d, d, 0, "encoder/layer_%d/self_attention/linear_1/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/self_attention/linear_1/bias", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/ffn/layer_norm/gamma", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/ffn/layer_norm/beta", i);
        synth_ct2_v(c, H, 2, 4 * d, d, 0, "encoder/layer_%d/ffn/linear_0/weight", i);
        synth_ct2_v(c, F, 1, 4 * d, 0, 0, "encoder/layer_%d/ffn/linear_0/bias", i);
        synth_ct2_v(c, H, 2, d, 4 * d, 0, "encoder/layer_%d/ffn/linear_1/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "encoder/layer_%d/ffn/linear_1/bias", i);
    }
    synth_ct2_v(c, SYNTH_CT2_I8, 2, hp->n_vocab, d, 0, "decoder/embeddings/weight");
    synth_ct2_v(c, F, 2, hp->n_text_ctx, d, 0, "decoder/position_encodings/encodings");
    synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_norm/gamma");
    synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_norm/beta");
    for (int i = 0; i < hp->dec_layers; i++) {
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/self_attention/layer_norm/gamma", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/self_attention/layer_norm/beta", i);
        synth_ct2_v(c, H, 2, 3 * d, d, 0, "decoder/layer_%d/self_attention/linear_0/weight", i);
        synth_ct2_v(c, F, 1, 3 * d, 0, 0, "decoder/layer_%d/self_attention/linear_0/bias", i);
        synth_ct2_v(c, H, 2, d, d, 0, "decoder/layer_%d/self_attention/linear_1/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/self_attention/linear_1/bias", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/attention/layer_norm/gamma", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/attention/layer_norm/beta", i);
        synth_ct2_v(c, H, 2, d, d, 0, "decoder/layer_%d/attention/linear_0/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/attention/linear_0/bias", i);
        synth_ct2_v(c, H, 2, 2 * d, d, 0, "decoder/layer_%d/attention/linear_1/weight", i);
        synth_ct2_v(c, F, 1, 2 * d, 0, 0, "decoder/layer_%d/attention/linear_1/bias", i);
        synth_ct2_v(c, H, 2, d, d, 0, "decoder/layer_%d/attention/linear_2/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/attention/linear_2/bias", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/ffn/layer_norm/gamma", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/ffn/layer_norm/beta", i);
        synth_ct2_v(c, H, 2, 4 * d, d, 0, "decoder/layer_%d/ffn/linear_0/weight", i);
        synth_ct2_v(c, F, 1, 4 * d, 0, 0, "decoder/layer_%d/ffn/linear_0/bias", i);
        synth_ct2_v(c, H, 2, d, 4 * d, 0, "decoder/layer_%d/ffn/linear_1/weight", i);
        synth_ct2_v(c, F, 1, d, 0, 0, "decoder/layer_%d/ffn/linear_1/bias", i);
    }
}

/* The file: header, variables, alias table (always written). Frees c's buffers. */
static void synth_ct2_finish(synth_ct2 *c, synth_buf *out)
{
    synth_u32(out, 6);
    synth_ct2_string(out, "WhisperSpec");
    synth_u32(out, 3);
    synth_u32(out, c->n_vars);
    synth_put(out, c->vars.p, c->vars.n);
    synth_u32(out, c->n_aliases);
    if (c->aliases.n) synth_put(out, c->aliases.p, c->aliases.n);
    free(c->vars.p);
    free(c->aliases.p);
    memset(c, 0, sizeof *c);
}

/* ---- whisper.cpp ggml ------------------------------------------------------ */

static void synth_ggml_tensor(synth_buf *b, int f16, const char *name, int rank, int d0, int d1, int d2)
{
    /* dims given PyTorch order (outermost first); the file has them reversed */
    const int torch[3] = {d0, d1, d2};
    size_t numel = 1;
    synth_u32(b, (uint32_t)rank);
    synth_u32(b, (uint32_t)strlen(name));
    synth_u32(b, f16 ? 1 : 0);
    for (int i = rank - 1; i >= 0; i--) {
        synth_u32(b, (uint32_t)torch[i]);
        numel *= (size_t)torch[i];
    }
    synth_put(b, name, strlen(name));
    for (size_t i = 0; i < numel; i++) {
        float v = 0.01f * (float)((int)(i % 5) - 2);
        if (f16) synth_u16(b, v == 0 ? 0 : (uint16_t)((v < 0 ? 0x8000 : 0) | 0x2000));
        else synth_put(b, &v, 4);
    }
}

/* A complete ggml file for hp (an English-only vocabulary: 50256 base
 * tokens, the 256 bytes then "t<id>"), matrices f16. */
static void synth_ggml_model(synth_buf *b, const synth_hp *hp)
{
    const int d = hp->d;
    synth_u32(b, 0x67676d6cu);
    const int32_t header[11] = {hp->n_vocab, hp->n_audio_ctx, d, hp->heads, hp->enc_layers, hp->n_text_ctx,
                                d, hp->heads, hp->dec_layers, hp->n_mels, 1};
    for (int i = 0; i < 11; i++) synth_u32(b, (uint32_t)header[i]);
    synth_u32(b, (uint32_t)hp->n_mels);
    synth_u32(b, 201);
    for (int i = 0; i < hp->n_mels * 201; i++) synth_u32(b, 0);
    const int n_base = 50256;
    synth_u32(b, (uint32_t)n_base);
    for (int i = 0; i < n_base; i++) {
        char tok[16];
        int len = i < 256 ? 1 : snprintf(tok, sizeof tok, "t%d", i);
        if (i < 256) tok[0] = (char)i;
        synth_u32(b, (uint32_t)len);
        synth_put(b, tok, (size_t)len);
    }
    char n[96];
#define T(f16, rank, d0, d1, d2, ...) (snprintf(n, sizeof n, __VA_ARGS__), synth_ggml_tensor(b, f16, n, rank, d0, d1, d2))
    T(0, 2, hp->n_audio_ctx, d, 0, "encoder.positional_embedding");
    T(1, 3, d, hp->n_mels, 3, "encoder.conv1.weight");
    T(0, 2, d, 1, 0, "encoder.conv1.bias");
    T(1, 3, d, d, 3, "encoder.conv2.weight");
    T(0, 2, d, 1, 0, "encoder.conv2.bias");
    for (int i = 0; i < hp->enc_layers; i++) {
        T(1, 2, d, d, 0, "encoder.blocks.%d.attn.query.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.attn.query.bias", i);
        T(1, 2, d, d, 0, "encoder.blocks.%d.attn.key.weight", i);
        T(1, 2, d, d, 0, "encoder.blocks.%d.attn.value.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.attn.value.bias", i);
        T(1, 2, d, d, 0, "encoder.blocks.%d.attn.out.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.attn.out.bias", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.attn_ln.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.attn_ln.bias", i);
        T(1, 2, 4 * d, d, 0, "encoder.blocks.%d.mlp.0.weight", i);
        T(0, 1, 4 * d, 0, 0, "encoder.blocks.%d.mlp.0.bias", i);
        T(1, 2, d, 4 * d, 0, "encoder.blocks.%d.mlp.2.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.mlp.2.bias", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.mlp_ln.weight", i);
        T(0, 1, d, 0, 0, "encoder.blocks.%d.mlp_ln.bias", i);
    }
    T(0, 1, d, 0, 0, "encoder.ln_post.weight");
    T(0, 1, d, 0, 0, "encoder.ln_post.bias");
    T(0, 2, hp->n_text_ctx, d, 0, "decoder.positional_embedding");
    T(1, 2, hp->n_vocab, d, 0, "decoder.token_embedding.weight");
    for (int i = 0; i < hp->dec_layers; i++) {
        static const char *const att[] = {"attn", "cross_attn"};
        for (int a = 0; a < 2; a++) {
            T(1, 2, d, d, 0, "decoder.blocks.%d.%s.query.weight", i, att[a]);
            T(0, 1, d, 0, 0, "decoder.blocks.%d.%s.query.bias", i, att[a]);
            T(1, 2, d, d, 0, "decoder.blocks.%d.%s.key.weight", i, att[a]);
            T(1, 2, d, d, 0, "decoder.blocks.%d.%s.value.weight", i, att[a]);
            T(0, 1, d, 0, 0, "decoder.blocks.%d.%s.value.bias", i, att[a]);
            T(1, 2, d, d, 0, "decoder.blocks.%d.%s.out.weight", i, att[a]);
            T(0, 1, d, 0, 0, "decoder.blocks.%d.%s.out.bias", i, att[a]);
            T(0, 1, d, 0, 0, "decoder.blocks.%d.%s_ln.weight", i, att[a]);
            T(0, 1, d, 0, 0, "decoder.blocks.%d.%s_ln.bias", i, att[a]);
        }
        T(1, 2, 4 * d, d, 0, "decoder.blocks.%d.mlp.0.weight", i);
        T(0, 1, 4 * d, 0, 0, "decoder.blocks.%d.mlp.0.bias", i);
        T(1, 2, d, 4 * d, 0, "decoder.blocks.%d.mlp.2.weight", i);
        T(0, 1, d, 0, 0, "decoder.blocks.%d.mlp.2.bias", i);
        T(0, 1, d, 0, 0, "decoder.blocks.%d.mlp_ln.weight", i);
        T(0, 1, d, 0, 0, "decoder.blocks.%d.mlp_ln.bias", i);
    }
    T(0, 1, d, 0, 0, "decoder.ln.weight");
    T(0, 1, d, 0, 0, "decoder.ln.bias");
#undef T
}

#endif /* ASR_SYNTH_MODEL_H */
