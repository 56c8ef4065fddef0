/* model_ggml.c — whisper.cpp ggml model files (the legacy "ggml" magic format): reading and writing. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__F16C__)
#endif

/*
 * File layout, all integers little-endian int32 unless said otherwise (as
 * whisper.cpp's models/convert-pt-to-ggml.py writes it and
 * whisper_model_load reads it):
 *
 *   magic 0x67676d6c ("ggml")
 *   n_vocab n_audio_ctx n_audio_state n_audio_head n_audio_layer
 *   n_text_ctx n_text_state n_text_head n_text_layer n_mels ftype
 *   n_mel n_fft, then n_mel * n_fft float32      (mel filterbank)
 *   n_tokens, then per token uint32 length + raw bytes
 *   tensors until end of file, each:
 *     n_dims name_length ttype, dims[n_dims] (ggml order: innermost first,
 *     i.e. PyTorch's shape reversed), name bytes, data
 *
 * Only the tiktoken base vocabulary (ids below <|endoftext|>) is stored;
 * whisper.cpp derives the special-token ids from n_vocab alone, and so do
 * we, naming them as openai's tokenizer does so asr_model_finish_load finds
 * them. Whisper's attention key projection has no bias, so the files have no
 * "attn.key.bias"; our fused q/k/v bias carries zeros there.
 */

#define GGML_MAGIC 0x67676d6cu
#define GGML_QNT_VERSION_FACTOR 1000 /* ftype = quantisation version * 1000 + file type */
#define GGML_MAX_DIMS 4
#define GGML_MAX_NAME 128
#define GGML_MEL_N_FFT ASR_N_FREQ /* 201 filterbank columns */
#define GGML_N_TIMESTAMPS 1501    /* <|0.00|> .. <|30.00|> */

/* ggml tensor types that may appear in whisper.cpp model files. */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q8_0 = 8 };

/* One tensor of the file format, bound to where its elements live in the model. */
typedef struct ggml_slot {
    char name[64];      /* openai state_dict name                          */
    int n_dims;
    int ne[GGML_MAX_DIMS]; /* ggml order: ne[0] is the contiguous dimension */
    size_t numel;
    float *data;        /* in the model arena, or NULL when half is used   */
    uint16_t *half;     /* in the model's half arena (decoder matrices)    */
    int matrix;         /* stored as f16 in f16 files (converters' rule)   */
    int seen;           /* loader: already read from the file              */
} ggml_slot;

typedef struct ggml_slots {
    ggml_slot *v;
    int n, cap;
} ggml_slots;

/* Append a slot; shape given in PyTorch order (outermost first), 0-terminated. */
static int add_slot(ggml_slots *s, float *data, uint16_t *half, int matrix, const int *torch_shape,
                    const char *fmt, ...) ASR_PRINTF(6, 7);
static int add_slot(ggml_slots *s, float *data, uint16_t *half, int matrix, const int *torch_shape,
                    const char *fmt, ...)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        ggml_slot *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        s->v = v;
        s->cap = cap;
    }
    ggml_slot *t = &s->v[s->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    int rank = 0;
    while (torch_shape[rank]) rank++;
    t->n_dims = rank;
    t->numel = 1;
    for (int d = 0; d < rank; d++) {
        t->ne[d] = torch_shape[rank - 1 - d];
        t->numel *= (size_t)torch_shape[rank - 1 - d];
    }
    t->data = data;
    t->half = half;
    t->matrix = matrix;
    return 1;
}

#define SHAPE(...) ((const int[]){__VA_ARGS__, 0})

/* A row-major float32 (f32_at) or half (f16_at) tensor's values from
 * element off on, or NULL when it is held in the other (or another) format. */
static float *f32_at(const asr_tensor *t, size_t off)
{
    return t->dtype == ASR_DTYPE_F32 && t->layout == ASR_LAYOUT_ROWS && t->data ? (float *)t->data + off : NULL;
}

static uint16_t *f16_at(const asr_tensor *t, size_t off)
{
    return t->dtype == ASR_DTYPE_F16 && t->layout == ASR_LAYOUT_ROWS && t->data ? (uint16_t *)t->data + off : NULL;
}

/* add_slot's float32 and half arguments for a matrix from element off on */
#define MAT(t, off) f32_at(&(t), (off)), f16_at(&(t), (off))

/* Every tensor of a whisper.cpp file, in the order openai's state_dict has
 * them, pointing into the model's fused weights (w must already point into
 * an arena). Whisper needs n_audio_state == n_text_state, checked by callers. */
static int build_slots(const asr_hparams *hp, const asr_weights *w, ggml_slots *s)
{
    const int d = hp->n_audio_state, n_mels = hp->n_mels;
    int ok = 1;
    ok &= add_slot(s, w->enc_pos, NULL, 0, SHAPE(hp->n_audio_ctx, d), "encoder.positional_embedding");
    ok &= add_slot(s, w->conv1_w, NULL, 1, SHAPE(d, n_mels, 3), "encoder.conv1.weight");
    /* the converters reshape the conv biases from (d) to (d, 1) and keep them f32 */
    ok &= add_slot(s, w->conv1_b, NULL, 0, SHAPE(d, 1), "encoder.conv1.bias");
    ok &= add_slot(s, w->conv2_w, NULL, 1, SHAPE(d, d, 3), "encoder.conv2.weight");
    ok &= add_slot(s, w->conv2_b, NULL, 0, SHAPE(d, 1), "encoder.conv2.bias");
    for (int i = 0; i < hp->n_audio_layer && ok; i++) {
        const asr_encoder_layer *L = &w->enc[i];
        const char *p = "encoder.blocks";
        ok &= add_slot(s, MAT(L->attn_qkv_w, 0), 1, SHAPE(d, d), "%s.%d.attn.query.weight", p, i);
        ok &= add_slot(s, L->attn_qkv_b, NULL, 0, SHAPE(d), "%s.%d.attn.query.bias", p, i);
        ok &= add_slot(s, MAT(L->attn_qkv_w, (size_t)d * d), 1, SHAPE(d, d), "%s.%d.attn.key.weight", p, i);
        ok &= add_slot(s, MAT(L->attn_qkv_w, 2 * (size_t)d * d), 1, SHAPE(d, d), "%s.%d.attn.value.weight", p, i);
        ok &= add_slot(s, L->attn_qkv_b + 2 * (size_t)d, NULL, 0, SHAPE(d), "%s.%d.attn.value.bias", p, i);
        ok &= add_slot(s, MAT(L->attn_out_w, 0), 1, SHAPE(d, d), "%s.%d.attn.out.weight", p, i);
        ok &= add_slot(s, L->attn_out_b, NULL, 0, SHAPE(d), "%s.%d.attn.out.bias", p, i);
        ok &= add_slot(s, L->attn_ln_g, NULL, 0, SHAPE(d), "%s.%d.attn_ln.weight", p, i);
        ok &= add_slot(s, L->attn_ln_b, NULL, 0, SHAPE(d), "%s.%d.attn_ln.bias", p, i);
        ok &= add_slot(s, MAT(L->mlp_fc1_w, 0), 1, SHAPE(4 * d, d), "%s.%d.mlp.0.weight", p, i);
        ok &= add_slot(s, L->mlp_fc1_b, NULL, 0, SHAPE(4 * d), "%s.%d.mlp.0.bias", p, i);
        ok &= add_slot(s, MAT(L->mlp_fc2_w, 0), 1, SHAPE(d, 4 * d), "%s.%d.mlp.2.weight", p, i);
        ok &= add_slot(s, L->mlp_fc2_b, NULL, 0, SHAPE(d), "%s.%d.mlp.2.bias", p, i);
        ok &= add_slot(s, L->mlp_ln_g, NULL, 0, SHAPE(d), "%s.%d.mlp_ln.weight", p, i);
        ok &= add_slot(s, L->mlp_ln_b, NULL, 0, SHAPE(d), "%s.%d.mlp_ln.bias", p, i);
    }
    ok &= add_slot(s, w->enc_ln_g, NULL, 0, SHAPE(d), "encoder.ln_post.weight");
    ok &= add_slot(s, w->enc_ln_b, NULL, 0, SHAPE(d), "encoder.ln_post.bias");
    ok &= add_slot(s, w->dec_pos, NULL, 0, SHAPE(hp->n_text_ctx, d), "decoder.positional_embedding");
    ok &= add_slot(s, MAT(w->tok_emb, 0), 1, SHAPE(hp->n_vocab, d), "decoder.token_embedding.weight");
    for (int i = 0; i < hp->n_text_layer && ok; i++) {
        const asr_decoder_layer *L = &w->dec[i];
        const char *p = "decoder.blocks";
        ok &= add_slot(s, MAT(L->self_qkv_w, 0), 1, SHAPE(d, d), "%s.%d.attn.query.weight", p, i);
        ok &= add_slot(s, L->self_qkv_b, NULL, 0, SHAPE(d), "%s.%d.attn.query.bias", p, i);
        ok &= add_slot(s, MAT(L->self_qkv_w, (size_t)d * d), 1, SHAPE(d, d), "%s.%d.attn.key.weight", p, i);
        ok &= add_slot(s, MAT(L->self_qkv_w, 2 * (size_t)d * d), 1, SHAPE(d, d), "%s.%d.attn.value.weight", p, i);
        ok &= add_slot(s, L->self_qkv_b + 2 * (size_t)d, NULL, 0, SHAPE(d), "%s.%d.attn.value.bias", p, i);
        ok &= add_slot(s, MAT(L->self_out_w, 0), 1, SHAPE(d, d), "%s.%d.attn.out.weight", p, i);
        ok &= add_slot(s, L->self_out_b, NULL, 0, SHAPE(d), "%s.%d.attn.out.bias", p, i);
        ok &= add_slot(s, L->self_ln_g, NULL, 0, SHAPE(d), "%s.%d.attn_ln.weight", p, i);
        ok &= add_slot(s, L->self_ln_b, NULL, 0, SHAPE(d), "%s.%d.attn_ln.bias", p, i);
        ok &= add_slot(s, MAT(L->cross_q_w, 0), 1, SHAPE(d, d), "%s.%d.cross_attn.query.weight", p, i);
        ok &= add_slot(s, L->cross_q_b, NULL, 0, SHAPE(d), "%s.%d.cross_attn.query.bias", p, i);
        ok &= add_slot(s, MAT(L->cross_kv_w, 0), 1, SHAPE(d, d), "%s.%d.cross_attn.key.weight", p, i);
        ok &= add_slot(s, MAT(L->cross_kv_w, (size_t)d * d), 1, SHAPE(d, d), "%s.%d.cross_attn.value.weight", p, i);
        ok &= add_slot(s, L->cross_kv_b + (size_t)d, NULL, 0, SHAPE(d), "%s.%d.cross_attn.value.bias", p, i);
        ok &= add_slot(s, MAT(L->cross_out_w, 0), 1, SHAPE(d, d), "%s.%d.cross_attn.out.weight", p, i);
        ok &= add_slot(s, L->cross_out_b, NULL, 0, SHAPE(d), "%s.%d.cross_attn.out.bias", p, i);
        ok &= add_slot(s, L->cross_ln_g, NULL, 0, SHAPE(d), "%s.%d.cross_attn_ln.weight", p, i);
        ok &= add_slot(s, L->cross_ln_b, NULL, 0, SHAPE(d), "%s.%d.cross_attn_ln.bias", p, i);
        ok &= add_slot(s, MAT(L->mlp_fc1_w, 0), 1, SHAPE(4 * d, d), "%s.%d.mlp.0.weight", p, i);
        ok &= add_slot(s, L->mlp_fc1_b, NULL, 0, SHAPE(4 * d), "%s.%d.mlp.0.bias", p, i);
        ok &= add_slot(s, MAT(L->mlp_fc2_w, 0), 1, SHAPE(d, 4 * d), "%s.%d.mlp.2.weight", p, i);
        ok &= add_slot(s, L->mlp_fc2_b, NULL, 0, SHAPE(d), "%s.%d.mlp.2.bias", p, i);
        ok &= add_slot(s, L->mlp_ln_g, NULL, 0, SHAPE(d), "%s.%d.mlp_ln.weight", p, i);
        ok &= add_slot(s, L->mlp_ln_b, NULL, 0, SHAPE(d), "%s.%d.mlp_ln.bias", p, i);
    }
    ok &= add_slot(s, w->dec_ln_g, NULL, 0, SHAPE(d), "decoder.ln.weight");
    ok &= add_slot(s, w->dec_ln_b, NULL, 0, SHAPE(d), "decoder.ln.bias");
    return ok;
}

/* ---- special tokens, as whisper.cpp derives them from n_vocab ------------- */

/* whisper.cpp: a vocabulary of 51865 or more is multilingual; the base
 * (tiktoken) vocabulary then has one more token, and the language count
 * follows from n_vocab (99 originally, 100 for large-v3). */
typedef struct ggml_vocab_layout {
    int multilingual;
    int eot;      /* first special token = number of base tokens            */
    int n_langs;
    int beg;      /* <|0.00|>                                               */
} ggml_vocab_layout;

static int vocab_layout(int n_vocab, ggml_vocab_layout *v)
{
    v->multilingual = n_vocab >= 51865;
    v->eot = v->multilingual ? 50257 : 50256;
    v->n_langs = n_vocab - 51765 - v->multilingual;
    /* sot, languages, translate, transcribe, startoflm, startofprev, nospeech, notimestamps */
    v->beg = v->eot + 1 + v->n_langs + 6 + 1;
    return v->n_langs >= 1 && v->n_langs <= asr_lang_count() && v->beg + GGML_N_TIMESTAMPS <= n_vocab;
}

/* Name of special token `id` (>= eot) as openai's tiktoken tokenizer has it. */
static void special_token_name(const ggml_vocab_layout *v, int id, char *out, size_t cap)
{
    static const char *const after_langs[] = {"<|translate|>", "<|transcribe|>", "<|startoflm|>",
                                              "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"};
    const int sot = v->eot + 1, first_after = sot + 1 + v->n_langs;
    if (id == v->eot) {
        snprintf(out, cap, "<|endoftext|>");
    } else if (id == sot) {
        snprintf(out, cap, "<|startoftranscript|>");
    } else if (id < first_after) {
        snprintf(out, cap, "<|%s|>", asr_lang_code(id - sot - 1));
    } else if (id < v->beg) {
        snprintf(out, cap, "%s", after_langs[id - first_after]);
    } else if (id - v->beg < GGML_N_TIMESTAMPS) {
        int t = id - v->beg; /* units of 20 ms */
        snprintf(out, cap, "<|%d.%02d|>", t / 50, (t % 50) * 2);
    } else {
        snprintf(out, cap, "[_extra_token_%d]", id); /* whisper.cpp's name for ids it has no use for */
    }
}

/* ---- hyper-parameters --------------------------------------------------------- */

/* ftype only says what most tensors are; each tensor carries its own type,
 * which is what the loader checks, so any plausible value passes here. */
static int known_ftype(int ftype)
{
    return ftype >= 0 && ftype % GGML_QNT_VERSION_FACTOR < 64;
}

/* The shared bounds, then what this format adds: one width for encoder and
 * decoder, and a vocabulary size from which the special tokens follow. */
static asr_status check_hparams(const asr_hparams *hp, const char *path, asr_error *err)
{
    ggml_vocab_layout v;
    asr_status s = asr_hparams_check(hp, path, err);
    if (s != ASR_OK) return s;
    if (hp->n_text_state != hp->n_audio_state)
        return asr_fail(err, ASR_ERR_MODEL, "%s: widths n_audio_state %d and n_text_state %d differ", path,
                        hp->n_audio_state, hp->n_text_state);
    if (!vocab_layout(hp->n_vocab, &v))
        return asr_fail(err, ASR_ERR_MODEL, "%s: n_vocab %d is not a Whisper vocabulary size (51864..%d)", path,
                        hp->n_vocab, 51765 + 1 + asr_lang_count());
    return ASR_OK;
}

/* Total floats of the fused in-memory weights, the float32 and the half
 * arenas together (the half part is asr_decoder_halves()). */
static size_t arena_total(const asr_hparams *hp)
{
    const size_t d = (size_t)hp->n_audio_state;
    size_t enc_layer = 2 * d + 3 * d * d + 3 * d + d * d + d + 2 * d + 4 * d * d + 4 * d + 4 * d * d + d;
    size_t dec_layer = enc_layer + 2 * d + d * d + d + 2 * d * d + 2 * d + d * d + d;
    return d * (size_t)hp->n_mels * 3 + d + d * d * 3 + d + (size_t)hp->n_audio_ctx * d +
           (size_t)hp->n_audio_layer * enc_layer + 2 * d + (size_t)hp->n_vocab * d + (size_t)hp->n_text_ctx * d +
           (size_t)hp->n_text_layer * dec_layer + 2 * d;
}

/* Point every weight into m->arena or m->arena16 (zeroed, so the absent key
 * biases are 0); returns the values used, which must equal arena_total(). */
static size_t assign_weights(asr_model *m)
{
    const asr_hparams *hp = &m->hp;
    const size_t d = (size_t)hp->n_audio_state;
    float *p = m->arena;
    uint16_t *h = m->arena16;
#define TAKE(n) (p += (n), p - (n))
#define TAKE16(n) (h += (n), h - (n))
    asr_weights *w = &m->w;
    w->conv1_w = TAKE(d * (size_t)hp->n_mels * 3);
    w->conv1_b = TAKE(d);
    w->conv2_w = TAKE(d * d * 3);
    w->conv2_b = TAKE(d);
    w->enc_pos = TAKE((size_t)hp->n_audio_ctx * d);
    for (int i = 0; i < hp->n_audio_layer; i++) {
        asr_encoder_layer *L = &w->enc[i];
        L->attn_ln_g = TAKE(d);
        L->attn_ln_b = TAKE(d);
        L->attn_qkv_w = asr_tensor_rows(ASR_DTYPE_F32, TAKE(3 * d * d), (int)(3 * d), (int)(d));
        L->attn_qkv_b = TAKE(3 * d);
        L->attn_out_w = asr_tensor_rows(ASR_DTYPE_F32, TAKE(d * d), (int)(d), (int)(d));
        L->attn_out_b = TAKE(d);
        L->mlp_ln_g = TAKE(d);
        L->mlp_ln_b = TAKE(d);
        L->mlp_fc1_w = asr_tensor_rows(ASR_DTYPE_F32, TAKE(4 * d * d), (int)(4 * d), (int)(d));
        L->mlp_fc1_b = TAKE(4 * d);
        L->mlp_fc2_w = asr_tensor_rows(ASR_DTYPE_F32, TAKE(4 * d * d), (int)(d), (int)(4 * d));
        L->mlp_fc2_b = TAKE(d);
    }
    w->enc_ln_g = TAKE(d);
    w->enc_ln_b = TAKE(d);
    w->tok_emb = asr_tensor_rows(ASR_DTYPE_F16, TAKE16((size_t)hp->n_vocab * d), (int)(hp->n_vocab), (int)(d));
    w->dec_pos = TAKE((size_t)hp->n_text_ctx * d);
    for (int i = 0; i < hp->n_text_layer; i++) {
        asr_decoder_layer *L = &w->dec[i];
        L->self_ln_g = TAKE(d);
        L->self_ln_b = TAKE(d);
        L->self_qkv_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(3 * d * d), (int)(3 * d), (int)(d));
        L->self_qkv_b = TAKE(3 * d);
        L->self_out_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(d * d), (int)(d), (int)(d));
        L->self_out_b = TAKE(d);
        L->cross_ln_g = TAKE(d);
        L->cross_ln_b = TAKE(d);
        L->cross_q_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(d * d), (int)(d), (int)(d));
        L->cross_q_b = TAKE(d);
        L->cross_kv_w = asr_tensor_rows(ASR_DTYPE_F32, TAKE(2 * d * d), (int)(2 * d), (int)(d));
        L->cross_kv_b = TAKE(2 * d);
        L->cross_out_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(d * d), (int)(d), (int)(d));
        L->cross_out_b = TAKE(d);
        L->mlp_ln_g = TAKE(d);
        L->mlp_ln_b = TAKE(d);
        L->mlp_fc1_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(4 * d * d), (int)(4 * d), (int)(d));
        L->mlp_fc1_b = TAKE(4 * d);
        L->mlp_fc2_w = asr_tensor_rows(ASR_DTYPE_F16, TAKE16(4 * d * d), (int)(d), (int)(4 * d));
        L->mlp_fc2_b = TAKE(d);
    }
    w->dec_ln_g = TAKE(d);
    w->dec_ln_b = TAKE(d);
#undef TAKE
#undef TAKE16
    return (size_t)(p - m->arena) + (size_t)(h - m->arena16);
}

/* ---- reading -------------------------------------------------------------------- */

typedef struct ggml_reader {
    const uint8_t *base;
    size_t size, pos;
    const char *path;
} ggml_reader;

static int read_i32(ggml_reader *r, int32_t *out)
{
    if (r->size - r->pos < 4) return 0;
    memcpy(out, r->base + r->pos, 4);
    r->pos += 4;
    return 1;
}

/* Bytes of n elements of a ggml type (quantised types need n % 32 == 0), or 0 if unknown. */
static size_t type_bytes(int ttype, size_t n)
{
    switch (ttype) {
    case GGML_F32: return 4 * n;
    case GGML_F16: return 2 * n;
    case GGML_Q4_0: return n / 32 * 18; /* f16 scale, 16 bytes of nibbles   */
    case GGML_Q4_1: return n / 32 * 20; /* f16 scale, f16 min, 16 bytes      */
    case GGML_Q5_0: return n / 32 * 22; /* f16 scale, 4 bytes high bits, 16  */
    case GGML_Q5_1: return n / 32 * 24; /* f16 scale, f16 min, 4, 16         */
    case GGML_Q8_0: return n / 32 * 34; /* f16 scale, 32 int8               */
    default: return 0;
    }
}

static float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return asr_f16_to_f32(h);
}

/* Convert n elements of ggml type ttype at src to float32. Quantised
 * blocks hold 32 values: x = d * q (q signed) or x = d * q + m. */
static void dequantize(int ttype, const uint8_t *src, size_t n, float *out)
{
    if (ttype == GGML_F32) {
        memcpy(out, src, 4 * n);
        return;
    }
    if (ttype == GGML_F16) {
        /* half -> float is exact: the F16C form gives asr_f16_to_f32's floats */
        asr_f16_bytes_to_f32_n(src, out, n);
        return;
    }
    const size_t block = type_bytes(ttype, 32);
    for (size_t b = 0; b < n / 32; b++, src += block, out += 32) {
        const float d = load_f16(src);
        switch (ttype) {
        case GGML_Q8_0:
            for (int j = 0; j < 32; j++) out[j] = d * (float)(int8_t)src[2 + j];
            break;
        case GGML_Q4_0: case GGML_Q4_1: {
            const int has_min = ttype == GGML_Q4_1;
            const float m = has_min ? load_f16(src + 2) : 0.0f;
            const uint8_t *qs = src + (has_min ? 4 : 2);
            const int offset = has_min ? 0 : 8;
            for (int j = 0; j < 16; j++) { /* low nibbles are values 0..15, high ones 16..31 */
                out[j] = d * (float)((qs[j] & 0x0f) - offset) + m;
                out[j + 16] = d * (float)((qs[j] >> 4) - offset) + m;
            }
            break;
        }
        case GGML_Q5_0: case GGML_Q5_1: {
            const int has_min = ttype == GGML_Q5_1;
            const float m = has_min ? load_f16(src + 2) : 0.0f;
            const uint8_t *qh_p = src + (has_min ? 4 : 2), *qs = qh_p + 4;
            uint32_t qh;
            memcpy(&qh, qh_p, 4); /* bit j is the fifth bit of value j */
            const int offset = has_min ? 0 : 16;
            for (int j = 0; j < 16; j++) {
                int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
                int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
                out[j] = d * (float)(lo - offset) + m;
                out[j + 16] = d * (float)(hi - offset) + m;
            }
            break;
        }
        }
    }
}

/* Copy a tensor name for messages, with non-printable bytes shown as '?'. */
static void printable_name(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) out[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[k] = '\0';
}

static asr_status read_header(ggml_reader *r, asr_hparams *hp, asr_error *err)
{
    int32_t magic, v[11];
    if (!read_i32(r, &magic))
        return asr_fail(err, ASR_ERR_MODEL, "%s: file is too short to be a model", r->path);
    if ((uint32_t)magic != GGML_MAGIC)
        return asr_fail(err, ASR_ERR_MODEL, "%s: not a whisper.cpp ggml model (bad magic 0x%08x)", r->path,
                        (uint32_t)magic);
    for (int i = 0; i < 11; i++)
        if (!read_i32(r, &v[i])) return asr_fail(err, ASR_ERR_MODEL, "%s: truncated hyper-parameters", r->path);
    *hp = (asr_hparams){.n_vocab = v[0], .n_audio_ctx = v[1], .n_audio_state = v[2], .n_audio_head = v[3],
                        .n_audio_layer = v[4], .n_text_ctx = v[5], .n_text_state = v[6], .n_text_head = v[7],
                        .n_text_layer = v[8], .n_mels = v[9]};
    asr_status s = check_hparams(hp, r->path, err);
    if (s != ASR_OK) return s;
    if (!known_ftype(v[10]))
        return asr_fail(err, ASR_ERR_MODEL, "%s: unknown ggml file type %d", r->path, v[10]);
    int32_t n_mel, n_fft;
    if (!read_i32(r, &n_mel) || !read_i32(r, &n_fft))
        return asr_fail(err, ASR_ERR_MODEL, "%s: truncated mel filterbank header", r->path);
    if (n_mel != hp->n_mels || n_fft != GGML_MEL_N_FFT)
        return asr_fail(err, ASR_ERR_MODEL, "%s: mel filterbank is %dx%d, expected %dx%d", r->path, n_mel, n_fft,
                        hp->n_mels, GGML_MEL_N_FFT);
    /* The filterbank is skipped: mel.c computes the same librosa filters. */
    size_t filter_bytes = (size_t)n_mel * (size_t)n_fft * 4;
    if (filter_bytes > r->size - r->pos)
        return asr_fail(err, ASR_ERR_MODEL, "%s: truncated mel filterbank", r->path);
    r->pos += filter_bytes;
    return ASR_OK;
}

/* Base tokens from the file, special tokens synthesised after them. */
static asr_status read_vocab(ggml_reader *r, asr_model *m, asr_error *err)
{
    const int n_vocab = m->hp.n_vocab;
    ggml_vocab_layout lay;
    vocab_layout(n_vocab, &lay);
    int32_t n_file;
    if (!read_i32(r, &n_file)) return asr_fail(err, ASR_ERR_MODEL, "%s: truncated vocabulary header", r->path);
    if (n_file < lay.eot || n_file > n_vocab)
        return asr_fail(err, ASR_ERR_MODEL, "%s: vocabulary has %d tokens, expected %d base tokens (n_vocab %d)",
                        r->path, n_file, lay.eot, n_vocab);
    const char **tokens = malloc((size_t)n_vocab * sizeof *tokens);
    size_t *lens = malloc((size_t)n_vocab * sizeof *lens);
    const size_t name_cap = 32;
    char *names = malloc((size_t)(n_vocab - lay.eot) * name_cap);
    asr_status s = ASR_OK;
    if (!tokens || !lens || !names) s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading the vocabulary");
    for (int i = 0; i < n_file && s == ASR_OK; i++) {
        int32_t len;
        if (!read_i32(r, &len) || (uint32_t)len > r->size - r->pos) {
            s = asr_fail(err, ASR_ERR_MODEL, "%s: vocabulary token %d runs past the end of the file (truncated?)",
                         r->path, i);
            break;
        }
        /* Tokens at and above eot (written by some old converters) are the
         * special tokens, which are named below as whisper.cpp fixes them. */
        if (i < lay.eot) {
            tokens[i] = (const char *)r->base + r->pos;
            lens[i] = (size_t)(uint32_t)len;
        }
        r->pos += (size_t)(uint32_t)len;
    }
    for (int id = lay.eot; id < n_vocab && s == ASR_OK; id++) {
        char *name = names + (size_t)(id - lay.eot) * name_cap;
        special_token_name(&lay, id, name, name_cap);
        tokens[id] = name;
        lens[id] = strlen(name);
    }
    if (s == ASR_OK) s = asr_tokenizer_from_bytes(tokens, lens, n_vocab, &m->tokenizer, err);
    free(tokens);
    free(lens);
    free(names);
    return s;
}

static ggml_slot *find_slot(ggml_slots *s, const uint8_t *name, size_t len)
{
    for (int i = 0; i < s->n; i++)
        if (strlen(s->v[i].name) == len && memcmp(s->v[i].name, name, len) == 0) return &s->v[i];
    return NULL;
}

/* Same shape once dimensions of size 1 are dropped: the converters squeeze
 * tensors and reshape the conv biases, neither of which moves data. */
static int same_squeezed_shape(const int32_t *ne, int n_dims, const ggml_slot *t)
{
    int a = 0, b = 0;
    for (;;) {
        while (a < n_dims && ne[a] == 1) a++;
        while (b < t->n_dims && t->ne[b] == 1) b++;
        if (a == n_dims || b == t->n_dims) return a == n_dims && b == t->n_dims;
        if (ne[a++] != t->ne[b++]) return 0;
    }
}

static asr_status read_tensors(ggml_reader *r, ggml_slots *slots, asr_error *err)
{
    int n_read = 0;
    while (r->pos < r->size) {
        int32_t n_dims, name_len, ttype, ne[GGML_MAX_DIMS];
        size_t at = r->pos;
        if (!read_i32(r, &n_dims) || !read_i32(r, &name_len) || !read_i32(r, &ttype))
            return asr_fail(err, ASR_ERR_MODEL, "%s: truncated tensor header at offset %zu", r->path, at);
        if (n_dims < 1 || n_dims > GGML_MAX_DIMS)
            return asr_fail(err, ASR_ERR_MODEL, "%s: tensor at offset %zu has %d dimensions", r->path, at, n_dims);
        if (name_len < 1 || name_len > GGML_MAX_NAME)
            return asr_fail(err, ASR_ERR_MODEL, "%s: tensor at offset %zu has a name of %d bytes", r->path, at,
                            name_len);
        for (int d = 0; d < n_dims; d++)
            if (!read_i32(r, &ne[d]))
                return asr_fail(err, ASR_ERR_MODEL, "%s: truncated tensor header at offset %zu", r->path, at);
        if ((size_t)name_len > r->size - r->pos)
            return asr_fail(err, ASR_ERR_MODEL, "%s: truncated tensor name at offset %zu", r->path, at);
        const uint8_t *name = r->base + r->pos;
        r->pos += (size_t)name_len;
        char shown[GGML_MAX_NAME + 1];
        printable_name(name, (size_t)name_len, shown, sizeof shown);
        ggml_slot *t = find_slot(slots, name, (size_t)name_len);
        if (!t) return asr_fail(err, ASR_ERR_MODEL, "%s: unknown tensor '%s'", r->path, shown);
        if (t->seen) return asr_fail(err, ASR_ERR_MODEL, "%s: tensor '%s' appears twice", r->path, shown);
        if (!same_squeezed_shape(ne, n_dims, t)) {
            char got[64] = "", want[64] = "";
            for (int d = 0; d < n_dims; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", d ? "," : "", ne[d]);
            for (int d = 0; d < t->n_dims; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "", t->ne[d]);
            return asr_fail(err, ASR_ERR_MODEL, "%s: tensor '%s' has ggml shape [%s], expected [%s]", r->path,
                            shown, got, want);
        }
        size_t n_bytes = type_bytes(ttype, t->numel);
        if (n_bytes == 0)
            return asr_fail(err, ASR_ERR_MODEL, "%s: tensor '%s' has unsupported ggml tensor type %d", r->path,
                            shown, ttype);
        if (ttype != GGML_F32 && ttype != GGML_F16 && ne[0] % 32 != 0)
            return asr_fail(err, ASR_ERR_MODEL, "%s: quantised tensor '%s' has rows of %d, not a multiple of 32",
                            r->path, shown, ne[0]);
        if (n_bytes > r->size - r->pos)
            return asr_fail(err, ASR_ERR_MODEL, "%s: data of tensor '%s' runs past the end of the file (truncated?)",
                            r->path, shown);
        if (!t->half) {
            dequantize(ttype, r->base + r->pos, t->numel, t->data);
        } else if (ttype == GGML_F16) {
            memcpy(t->half, r->base + r->pos, t->numel * 2);
        } else {
            float *tmp = malloc(t->numel * sizeof(float));
            if (!tmp) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading '%s'", shown);
            dequantize(ttype, r->base + r->pos, t->numel, tmp);
            asr_f32_to_f16_n(tmp, t->half, t->numel);
            free(tmp);
        }
        r->pos += n_bytes;
        t->seen = 1;
        n_read++;
    }
    if (n_read != slots->n)
        for (int i = 0; i < slots->n; i++)
            if (!slots->v[i].seen)
                return asr_fail(err, ASR_ERR_MODEL, "%s: tensor '%s' is missing (%d of %d present; truncated?)",
                                r->path, slots->v[i].name, n_read, slots->n);
    return ASR_OK;
}

asr_status asr_model_load_ggml_buffer(asr_model *m, const void *data, size_t size, const char *name,
                                      asr_error *err)
{
    ggml_reader r = {.base = data, .size = size, .path = name};
    ggml_slots slots = {0};
    asr_status s = read_header(&r, &m->hp, err);
    if (s == ASR_OK) s = read_vocab(&r, m, err);
    /* Every weight takes at least half a byte in the file (q4_0: 18 bytes per
     * 32), so a header declaring more than the file can hold is refused
     * before the arena is allocated for it. */
    if (s == ASR_OK && arena_total(&m->hp) / 2 > r.size - r.pos)
        s = asr_fail(err, ASR_ERR_MODEL, "%s: the header declares %zu weights, more than the file's %zu bytes can hold "
                     "(truncated?)", name, arena_total(&m->hp), r.size);
    if (s == ASR_OK) {
        m->w.enc = calloc((size_t)m->hp.n_audio_layer, sizeof *m->w.enc);
        m->w.dec = calloc((size_t)m->hp.n_text_layer, sizeof *m->w.dec);
        m->arena_halves = asr_decoder_halves(&m->hp);
        m->arena_floats = arena_total(&m->hp) - m->arena_halves;
        m->arena = asr_alloc_weights(m->arena_floats * sizeof(float), 1);
        m->arena16 = asr_alloc_weights(m->arena_halves * sizeof(uint16_t), 1);
        if (!m->w.enc || !m->w.dec || !m->arena || !m->arena16)
            s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading model");
    }
    if (s == ASR_OK) {
        if (assign_weights(m) != m->arena_floats + m->arena_halves)
            s = asr_fail(err, ASR_ERR_INTERNAL, "ggml loader: weight layout does not match the arena size");
        else if (!build_slots(&m->hp, &m->w, &slots)) s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    }
    if (s == ASR_OK) s = read_tensors(&r, &slots, err);
    if (s == ASR_OK) snprintf(m->source_format, sizeof m->source_format, "ggml");
    free(slots.v);
    return s;
}

asr_status asr_model_load_ggml(asr_model *m, const char *path, asr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return asr_fail(err, ASR_ERR_MODEL, "%s: %s", path, strerror(errno));
    struct stat st;
    void *map = MAP_FAILED;
    asr_status s = ASR_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = asr_fail(err, ASR_ERR_MODEL, "%s: not a regular file", path);
    } else if (st.st_size < 4) {
        s = asr_fail(err, ASR_ERR_MODEL, "%s: file is too short to be a model (%lld bytes)", path,
                     (long long)st.st_size);
    } else {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) s = asr_fail(err, ASR_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    }
    close(fd);
    if (s == ASR_OK) s = asr_model_load_ggml_buffer(m, map, (size_t)st.st_size, path, err);
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    return s;
}

/* ---- writing -------------------------------------------------------------------- */

typedef struct ggml_writer {
    FILE *f;
    int failed;
} ggml_writer;

static void put(ggml_writer *w, const void *p, size_t n)
{
    if (!w->failed && n && fwrite(p, 1, n, w->f) != n) w->failed = 1;
}

static void put_i32(ggml_writer *w, int32_t v) { put(w, &v, 4); }

static void put_f16(ggml_writer *w, const float *x, size_t n)
{
    uint16_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < k; j++) buf[j] = asr_f32_to_f16(x[i + j]);
        put(w, buf, 2 * k);
        i += k;
    }
}

static void put_f32_from_half(ggml_writer *w, const uint16_t *x, size_t n)
{
    float buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 4096 ? n - i : 4096;
        asr_f16_to_f32_n(x + i, buf, k);
        put(w, buf, k * sizeof(float));
        i += k;
    }
}

/* q8_0, ggml's block layout: each 32 consecutive values of a row become a
 * half scale d = max|x| / 127 and 32 int8 q = round(x / d), x ≈ d·q. The
 * values come from float32 (data) or half (half) storage; n is a multiple of
 * 32 (the caller checks the row length). */
static void put_q8_0(ggml_writer *w, const float *data, const uint16_t *half, size_t n)
{
    unsigned char block[34];
    float x[32];
    for (size_t i = 0; i < n; i += 32) {
        if (data) memcpy(x, data + i, sizeof x);
        else asr_f16_to_f32_n(half + i, x, 32);
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = asr_f32_to_f16(d);
        memcpy(block, &dh, 2);
        for (int j = 0; j < 32; j++) block[2 + j] = (unsigned char)(int8_t)lrintf(x[j] * inv);
        put(w, block, sizeof block);
    }
}

/* whisper.cpp fixes the special-token ids from n_vocab; a model whose
 * vocabulary puts them elsewhere would decode garbage there. */
static asr_status check_writable(const asr_model *m, ggml_vocab_layout *lay, asr_error *err)
{
    asr_status s = check_hparams(&m->hp, "ggml export", err);
    if (s != ASR_OK) return s;
    vocab_layout(m->hp.n_vocab, lay);
    const asr_special_tokens *t = &m->tok;
    if (t->eot != lay->eot || t->sot != lay->eot + 1 || t->first_lang != lay->eot + 2 ||
        t->translate != lay->eot + 2 + lay->n_langs || t->no_timestamps != lay->beg - 1 ||
        t->timestamp_begin != lay->beg)
        return asr_fail(err, ASR_ERR_UNSUPPORTED,
                        "ggml export: special tokens are not where whisper.cpp expects them for n_vocab %d "
                        "(eot %d, expected %d)", m->hp.n_vocab, t->eot, lay->eot);
    if (asr_tokenizer_size(m->tokenizer) < lay->eot)
        return asr_fail(err, ASR_ERR_UNSUPPORTED, "ggml export: vocabulary has only %d tokens",
                        asr_tokenizer_size(m->tokenizer));
    return ASR_OK;
}

/* The type a slot is written as: q8_0 quantises what whisper.cpp's quantize
 * tool does (two-dimensional matrices whose rows are whole blocks, not the
 * positional embeddings, which are no matrix slots here); the conv kernels
 * stay half, vectors float32. */
static int slot_type(const ggml_slot *t, int format)
{
    if (!t->matrix || format == ASR_GGML_F32) return GGML_F32;
    if (format == ASR_GGML_Q8_0 && t->n_dims == 2 && t->ne[0] % 32 == 0) return GGML_Q8_0;
    return GGML_F16;
}

/* The whole file: header, mel filterbank, base vocabulary, tensors. */
static void write_body(ggml_writer *w, const asr_model *m, const ggml_vocab_layout *lay, const ggml_slots *slots,
                       const float *filters, int format)
{
    const asr_hparams *hp = &m->hp;
    put_i32(w, (int32_t)GGML_MAGIC);
    /* ggml's file types: 0 all f32, 1 mostly f16, 7 mostly q8_0 (with the
     * quantisation version, 2, times 1000, as whisper.cpp's quantize writes) */
    const int32_t ftype = format == ASR_GGML_Q8_0 ? 2 * GGML_QNT_VERSION_FACTOR + 7 : format == ASR_GGML_F16;
    const int32_t header[11] = {hp->n_vocab,      hp->n_audio_ctx, hp->n_audio_state, hp->n_audio_head,
                                hp->n_audio_layer, hp->n_text_ctx, hp->n_text_state,  hp->n_text_head,
                                hp->n_text_layer,  hp->n_mels,     ftype};
    for (int i = 0; i < 11; i++) put_i32(w, header[i]);
    put_i32(w, hp->n_mels);
    put_i32(w, GGML_MEL_N_FFT);
    put(w, filters, (size_t)hp->n_mels * GGML_MEL_N_FFT * sizeof(float));
    put_i32(w, lay->eot); /* the base vocabulary only, like the converters */
    for (int id = 0; id < lay->eot; id++) {
        size_t len;
        const char *bytes = asr_tokenizer_bytes(m->tokenizer, id, &len);
        put_i32(w, (int32_t)len);
        put(w, bytes, len);
    }
    for (int i = 0; i < slots->n; i++) {
        const ggml_slot *t = &slots->v[i];
        const int type = slot_type(t, format), f16 = type == GGML_F16;
        put_i32(w, t->n_dims);
        put_i32(w, (int32_t)strlen(t->name));
        put_i32(w, type);
        for (int d = 0; d < t->n_dims; d++) put_i32(w, t->ne[d]);
        put(w, t->name, strlen(t->name));
        if (type == GGML_Q8_0) put_q8_0(w, t->data, t->half, t->numel);
        else if (t->half && f16) put(w, t->half, t->numel * 2);
        else if (t->half) put_f32_from_half(w, t->half, t->numel);
        else if (f16) put_f16(w, t->data, t->numel);
        else put(w, t->data, t->numel * sizeof(float));
    }
}

asr_status asr_model_write_ggml(const asr_model *model, const char *out_path, int format, asr_error *err)
{
    asr_error_clear(err);
    if (!model || !out_path || !*out_path)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_model_write_ggml: model and out_path are required");
    if (format != ASR_GGML_F32 && format != ASR_GGML_F16 && format != ASR_GGML_Q8_0)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_model_write_ggml: unknown format %d", format);
    ggml_vocab_layout lay;
    asr_status s = check_writable(model, &lay, err);
    if (s != ASR_OK) return s;
    asr_tensor *tensors[4096];
    int n_tensors = asr_model_linear_tensors((asr_model *)model, tensors, 4096);
    for (int i = 0; i < n_tensors && i < 4096; i++)
        if (!f32_at(tensors[i], 0) && !f16_at(tensors[i], 0))
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "the model was loaded as %s; writing a ggml file needs it "
                            "loaded as float32 or float16", asr_compute_type_name(model->compute_type));
    ggml_slots slots = {0};
    float *filters = malloc((size_t)model->hp.n_mels * GGML_MEL_N_FFT * sizeof(float));
    size_t tmp_len = strlen(out_path) + 8;
    char *tmp_path = malloc(tmp_len);
    if (!filters || !tmp_path || !build_slots(&model->hp, &model->w, &slots))
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    if (s == ASR_OK) s = asr_mel_filters(model->hp.n_mels, filters, err);
    if (s == ASR_OK) {
        /* Written beside the target and renamed, so a failed export never
         * leaves a truncated model under the requested name. */
        snprintf(tmp_path, tmp_len, "%s.part", out_path);
        ggml_writer w = {.f = fopen(tmp_path, "wb")};
        if (!w.f) {
            s = asr_fail(err, ASR_ERR_IO, "%s: %s", tmp_path, strerror(errno));
        } else {
            write_body(&w, model, &lay, &slots, filters, format);
            int saved_errno = errno;
            if (fclose(w.f) != 0 && !w.failed) {
                w.failed = 1;
                saved_errno = errno;
            }
            if (w.failed) {
                s = asr_fail(err, ASR_ERR_IO, "%s: write failed: %s", tmp_path, strerror(saved_errno));
                unlink(tmp_path);
            } else if (rename(tmp_path, out_path) != 0) {
                s = asr_fail(err, ASR_ERR_IO, "%s: %s", out_path, strerror(errno));
                unlink(tmp_path);
            }
        }
    }
    free(slots.v);
    free(filters);
    free(tmp_path);
    return s;
}
