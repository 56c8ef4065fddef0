/* model_ct2.c — loads CTranslate2 Whisper model directories (model.bin + config.json). */
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* CTranslate2 DataType enum values as written in model.bin. */
enum { CT2_F32 = 0, CT2_I8 = 1, CT2_I16 = 2, CT2_I32 = 3, CT2_F16 = 4, CT2_BF16 = 5 };

#define CT2_MAX_RANK 8
#define CT2_MAX_VARS 100000
/* CTranslate2 writes aliases that name variables directly; a chain longer
 * than this is a cycle or a crafted file. */
#define CT2_MAX_ALIAS_HOPS 8

typedef struct ct2_var {
    const char *name;  /* points into the mapping (NUL-terminated there)   */
    int rank;
    uint32_t dims[CT2_MAX_RANK];
    int dtype;
    size_t numel;
    const uint8_t *data; /* into the mapping                               */
    float *f32;          /* converted copy in the model arena, or NULL      */
} ct2_var;

typedef struct ct2_file {
    const uint8_t *base;
    size_t size;
    size_t pos;
    ct2_var *vars;
    int n_vars;
    struct { const char *alias, *target; } *aliases;
    int n_aliases;
    const char *bad_alias; /* first alias whose chain did not end in a variable */
    int mapped; /* base is a read-only file mapping: pages read can be dropped */
} ct2_file;

static int dtype_size(int dtype)
{
    switch (dtype) {
    case CT2_F32: case CT2_I32: return 4;
    case CT2_F16: case CT2_BF16: case CT2_I16: return 2;
    case CT2_I8: return 1;
    default: return 0;
    }
}

static int take(ct2_file *f, void *out, size_t n)
{
    if (n > f->size - f->pos) return 0;
    memcpy(out, f->base + f->pos, n);
    f->pos += n;
    return 1;
}

/* A length-prefixed (uint16, counting the NUL) string; returns NULL if malformed. */
static const char *take_string(ct2_file *f)
{
    uint16_t len;
    if (!take(f, &len, 2) || len == 0 || len > f->size - f->pos) return NULL;
    const char *s = (const char *)f->base + f->pos;
    if (s[len - 1] != '\0' || memchr(s, '\0', len) != s + len - 1) return NULL;
    f->pos += len;
    return s;
}

static asr_status parse_model_bin(ct2_file *f, asr_error *err)
{
    uint32_t version, n_vars;
    if (!take(f, &version, 4)) return asr_fail(err, ASR_ERR_MODEL, "model.bin: file is empty or truncated");
    if (version < 4 || version > 6)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: unsupported CTranslate2 binary version %u (need 4..6)", version);
    const char *spec = take_string(f);
    uint32_t revision;
    if (!spec || !take(f, &revision, 4))
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: truncated header");
    if (strcmp(spec, "WhisperSpec") != 0)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: model spec is '%s', not a Whisper model", spec);
    if (!take(f, &n_vars, 4) || n_vars == 0 || n_vars > CT2_MAX_VARS)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: bad variable count");
    f->vars = calloc(n_vars, sizeof *f->vars);
    if (!f->vars) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    for (uint32_t i = 0; i < n_vars; i++) {
        ct2_var *v = &f->vars[i];
        uint8_t rank, dtype;
        uint32_t n_bytes;
        v->name = take_string(f);
        if (!v->name || !take(f, &rank, 1) || rank > CT2_MAX_RANK)
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: truncated or corrupt entry %u", i);
        v->rank = rank;
        v->numel = 1;
        for (int d = 0; d < rank; d++) {
            if (!take(f, &v->dims[d], 4))
                return asr_fail(err, ASR_ERR_MODEL, "model.bin: truncated shape of '%s'", v->name);
            if (v->dims[d] != 0 && v->numel > SIZE_MAX / 8 / v->dims[d])
                return asr_fail(err, ASR_ERR_MODEL, "model.bin: shape of '%s' overflows", v->name);
            v->numel *= v->dims[d];
        }
        if (!take(f, &dtype, 1) || !take(f, &n_bytes, 4))
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: truncated entry '%s'", v->name);
        v->dtype = dtype;
        if (dtype_size(dtype) == 0)
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: '%s' has unknown dtype %u", v->name, dtype);
        if ((uint64_t)v->numel * (uint64_t)dtype_size(dtype) != n_bytes)
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: '%s' declares %u bytes for %zu elements of dtype %u",
                            v->name, n_bytes, v->numel, dtype);
        if (n_bytes > f->size - f->pos)
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: data of '%s' runs past the end of the file (truncated?)",
                            v->name);
        v->data = f->base + f->pos;
        f->pos += n_bytes;
        f->n_vars = (int)i + 1;
    }
    uint32_t n_aliases = 0;
    if (f->pos < f->size) {
        if (!take(f, &n_aliases, 4) || n_aliases > CT2_MAX_VARS)
            return asr_fail(err, ASR_ERR_MODEL, "model.bin: corrupt alias table");
        f->aliases = calloc(n_aliases ? n_aliases : 1, sizeof *f->aliases);
        if (!f->aliases) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        for (uint32_t i = 0; i < n_aliases; i++) {
            f->aliases[i].alias = take_string(f);
            f->aliases[i].target = take_string(f);
            if (!f->aliases[i].alias || !f->aliases[i].target)
                return asr_fail(err, ASR_ERR_MODEL, "model.bin: truncated alias table");
            f->n_aliases = (int)i + 1;
        }
    }
    if (f->pos != f->size)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: %zu unexpected trailing bytes", f->size - f->pos);
    return ASR_OK;
}

/* The variable `name` names, directly or through at most
 * CT2_MAX_ALIAS_HOPS aliases; NULL if none (f->bad_alias then says whether
 * an alias chain was too long or circular). */
static ct2_var *find_var(ct2_file *f, const char *name)
{
    const char *first = name;
    for (int hops = 0; hops <= CT2_MAX_ALIAS_HOPS; hops++) {
        for (int i = 0; i < f->n_vars; i++)
            if (strcmp(f->vars[i].name, name) == 0) return &f->vars[i];
        const char *target = NULL;
        for (int i = 0; i < f->n_aliases && !target; i++)
            if (strcmp(f->aliases[i].alias, name) == 0) target = f->aliases[i].target;
        if (!target) return NULL;
        name = target;
    }
    if (!f->bad_alias) f->bad_alias = first;
    return NULL;
}

/* The message for a tensor find_var did not find. */
static asr_status missing_var(ct2_file *f, const char *name, asr_error *err)
{
    if (f->bad_alias)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: alias '%s' does not lead to a variable within %d hops "
                        "(circular alias table?)", f->bad_alias, CT2_MAX_ALIAS_HOPS);
    return asr_fail(err, ASR_ERR_MODEL, "model.bin: missing tensor '%s'", name);
}

/* Scalar integer attribute such as "encoder/num_heads". */
static int scalar_int(ct2_file *f, const char *name, int *out)
{
    ct2_var *v = find_var(f, name);
    if (!v || v->numel != 1) return 0;
    switch (v->dtype) {
    case CT2_I8: *out = (int8_t)v->data[0]; return 1;
    case CT2_I16: { int16_t x; memcpy(&x, v->data, 2); *out = x; return 1; }
    case CT2_I32: { int32_t x; memcpy(&x, v->data, 4); *out = x; return 1; }
    default: return 0;
    }
}

static void convert_to_f32(const ct2_var *v, float *out)
{
    const uint8_t *p = v->data;
    if (v->dtype == CT2_F32) {
        memcpy(out, p, v->numel * 4);
        return;
    }
    if (v->dtype == CT2_F16) { /* the file does not align tensors: widen via an aligned buffer */
        uint16_t buf[4096];
        for (size_t i = 0; i < v->numel; i += 4096) {
            size_t k = v->numel - i < 4096 ? v->numel - i : 4096;
            memcpy(buf, p + 2 * i, 2 * k);
            asr_f16_to_f32_n(buf, out + i, k);
        }
        return;
    }
    for (size_t i = 0; i < v->numel; i++) {
        switch (v->dtype) {
        case CT2_F32: memcpy(&out[i], p + 4 * i, 4); break;
        case CT2_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = asr_f16_to_f32(h); break; }
        case CT2_BF16: { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = asr_bf16_to_f32(h); break; }
        case CT2_I8: out[i] = (float)(int8_t)p[i]; break;
        case CT2_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); out[i] = x; break; }
        case CT2_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); out[i] = (float)x; break; }
        }
    }
}

typedef struct binder {
    ct2_file *f;
    asr_model *m;
    size_t used;   /* floats of the arena handed out */
    size_t used16; /* halves of arena16 handed out   */
    asr_error *err;
    asr_status status;
} binder;

/* Once a variable's values were copied into the arenas, its pages of the
 * file mapping are dropped from the process (the page cache keeps them; a
 * second read, through an alias, faults them back in): the file is not
 * held in memory beside the arenas while the model loads. */
static void done_with(const binder *b, const ct2_var *v)
{
    if (b->f->mapped) asr_release_pages(v->data, v->numel * (size_t)dtype_size(v->dtype));
}

/* The tensor `name`, checked against the expected shape (dims terminated by 0). */
static ct2_var *lookup(binder *b, const char *name, const int *shape)
{
    if (b->status != ASR_OK) return NULL;
    ct2_var *v = find_var(b->f, name);
    if (!v) {
        b->status = missing_var(b->f, name, b->err);
        return NULL;
    }
    int rank = 0;
    while (shape[rank]) rank++;
    int ok = v->rank == rank;
    for (int d = 0; ok && d < rank; d++) ok = (int)v->dims[d] == shape[d];
    if (!ok) {
        char got[96] = "", want[96] = "";
        for (int d = 0; d < v->rank; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u", d ? "x" : "", v->dims[d]);
        for (int d = 0; d < rank; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "x" : "", shape[d]);
        b->status = asr_fail(b->err, ASR_ERR_MODEL, "model.bin: tensor '%s' has shape [%s], expected [%s]",
                             name, got, want);
        return NULL;
    }
    return v;
}

/* Values of v as float32 into out; int8 weights are dequantised with
 * "<name>_scale" (one scale per row). Returns 0 after setting b->status. */
static int values_f32(binder *b, const ct2_var *v, const char *name, float *out)
{
    convert_to_f32(v, out);
    if (v->dtype != CT2_I8 || v->rank != 2) return 1;
    char scale_name[256];
    size_t len = strlen(name);
    if (len <= 6 || strcmp(name + len - 6, "weight") != 0 || len >= sizeof scale_name - 8) return 1;
    snprintf(scale_name, sizeof scale_name, "%s_scale", name);
    ct2_var *s = find_var(b->f, scale_name);
    size_t rows = v->dims[0], cols = v->dims[1];
    if (!s || s->numel != rows || (s->dtype != CT2_F32 && s->dtype != CT2_F16)) {
        b->status = asr_fail(b->err, ASR_ERR_MODEL, "model.bin: int8 tensor '%s' lacks a valid scale", name);
        return 0;
    }
    for (size_t r = 0; r < rows; r++) {
        float scale;
        if (s->dtype == CT2_F32) memcpy(&scale, s->data + 4 * r, 4);
        else { uint16_t h; memcpy(&h, s->data + 2 * r, 2); scale = asr_f16_to_f32(h); }
        if (!(scale != 0.0f)) scale = 1.0f;
        for (size_t c = 0; c < cols; c++) out[r * cols + c] /= scale;
    }
    return 1;
}

/* Fetch tensor `name` with the expected shape as float32 in the arena. */
static float *bind(binder *b, const char *name, const int *shape)
{
    ct2_var *v = lookup(b, name, shape);
    if (!v) return NULL;
    if (v->f32) return v->f32;
    if (v->numel > b->m->arena_floats - b->used) {
        /* the file's values were counted once: aliases make one feed both arenas */
        b->status = asr_fail(b->err, ASR_ERR_MODEL, "model.bin: '%s' shares its data with a tensor of the other "
                             "precision (aliases?); the loader cannot place it", name);
        return NULL;
    }
    v->f32 = b->m->arena + b->used;
    b->used += v->numel;
    int ok = values_f32(b, v, name, v->f32);
    done_with(b, v);
    return ok ? v->f32 : NULL;
}

/* Fetch tensor `name` as IEEE half in arena16: a copy when the file holds
 * float16 (the common case), else through float32. */
static uint16_t *bind_half(binder *b, const char *name, const int *shape)
{
    ct2_var *v = lookup(b, name, shape);
    if (!v) return NULL;
    if (v->numel > b->m->arena_halves - b->used16) {
        b->status = asr_fail(b->err, ASR_ERR_MODEL, "model.bin: '%s' shares its data with a tensor of the other "
                             "precision (aliases?); the loader cannot place it", name);
        return NULL;
    }
    uint16_t *out = b->m->arena16 + b->used16;
    if (v->dtype == CT2_F16) {
        memcpy(out, v->data, v->numel * 2);
    } else {
        float *tmp = malloc(v->numel * sizeof(float));
        if (!tmp) {
            b->status = asr_fail(b->err, ASR_ERR_NO_MEMORY, "out of memory loading '%s'", name);
            return NULL;
        }
        int ok = values_f32(b, v, name, tmp);
        if (ok) asr_f32_to_f16_n(tmp, out, v->numel);
        free(tmp);
        if (!ok) return NULL;
    }
    done_with(b, v);
    b->used16 += v->numel;
    return out;
}

/* A linear layer's weight as a tensor: int8 as stored when the file is
 * int8 and the compute type is too (no round trip through float), else
 * float32 (half = 0) or IEEE half (half = 1) in the arenas. */
static asr_tensor bind_linear(binder *b, const char *name, const int *shape, int half)
{
    asr_tensor t = {0};
    ct2_var *v = lookup(b, name, shape);
    if (!v) return t;
    if (v->dtype == CT2_I8 && v->rank == 2 && asr_compute_type_is_int8(b->m->compute_type)) {
        char scale_name[256];
        snprintf(scale_name, sizeof scale_name, "%s_scale", name);
        ct2_var *s = find_var(b->f, scale_name);
        int rows = (int)v->dims[0], cols = (int)v->dims[1];
        if (!s || s->numel != (size_t)rows || (s->dtype != CT2_F32 && s->dtype != CT2_F16)) {
            b->status = asr_fail(b->err, ASR_ERR_MODEL, "model.bin: int8 tensor '%s' lacks a valid scale", name);
            return t;
        }
        float *scale = malloc((size_t)rows * sizeof(float));
        if (!scale) {
            b->status = asr_fail(b->err, ASR_ERR_NO_MEMORY, "out of memory loading '%s'", name);
            return t;
        }
        for (int r = 0; r < rows; r++) { /* the file's scale divides: w = q / scale */
            float f;
            if (s->dtype == CT2_F32) memcpy(&f, s->data + 4 * (size_t)r, 4);
            else { uint16_t h; memcpy(&h, s->data + 2 * (size_t)r, 2); f = asr_f16_to_f32(h); }
            scale[r] = f != 0.0f ? 1.0f / f : 1.0f;
        }
        b->status = asr_tensor_from_i8(&t, (const int8_t *)v->data, scale, rows, cols, b->err);
        free(scale);
        done_with(b, v);
        return t;
    }
    void *data = half ? (void *)bind_half(b, name, shape) : (void *)bind(b, name, shape);
    if (data) t = asr_tensor_rows(half ? ASR_DTYPE_F16 : ASR_DTYPE_F32, data, shape[0], shape[1]);
    return t;
}

#define SHAPE(...) ((const int[]){__VA_ARGS__, 0})

/* Layers present, counting at most one past the bound asr_hparams_check enforces. */
static int count_layers(ct2_file *f, const char *prefix)
{
    char name[128];
    int n = 0;
    for (; n <= ASR_MAX_LAYERS; n++) {
        snprintf(name, sizeof name, "%s/layer_%d/ffn/linear_0/bias", prefix, n);
        if (!find_var(f, name)) return n;
    }
    return n;
}

static void bind_all(binder *b)
{
    asr_model *m = b->m;
    asr_hparams *hp = &m->hp;
    asr_weights *w = &m->w;
    int d = hp->n_audio_state, td = hp->n_text_state;
    char n[160];
#define P(fmt, ...) (snprintf(n, sizeof n, fmt, __VA_ARGS__), n)
    w->conv1_w = bind(b, "encoder/conv1/weight", SHAPE(d, hp->n_mels, 3));
    w->conv1_b = bind(b, "encoder/conv1/bias", SHAPE(d));
    w->conv2_w = bind(b, "encoder/conv2/weight", SHAPE(d, d, 3));
    w->conv2_b = bind(b, "encoder/conv2/bias", SHAPE(d));
    w->enc_pos = bind(b, "encoder/position_encodings/encodings", SHAPE(hp->n_audio_ctx, d));
    w->enc_ln_g = bind(b, "encoder/layer_norm/gamma", SHAPE(d));
    w->enc_ln_b = bind(b, "encoder/layer_norm/beta", SHAPE(d));
    for (int i = 0; i < hp->n_audio_layer && b->status == ASR_OK; i++) {
        asr_encoder_layer *L = &w->enc[i];
        L->attn_ln_g = bind(b, P("encoder/layer_%d/self_attention/layer_norm/gamma", i), SHAPE(d));
        L->attn_ln_b = bind(b, P("encoder/layer_%d/self_attention/layer_norm/beta", i), SHAPE(d));
        L->attn_qkv_w = bind_linear(b, P("encoder/layer_%d/self_attention/linear_0/weight", i), SHAPE(3 * d, d), 0);
        L->attn_qkv_b = bind(b, P("encoder/layer_%d/self_attention/linear_0/bias", i), SHAPE(3 * d));
        L->attn_out_w = bind_linear(b, P("encoder/layer_%d/self_attention/linear_1/weight", i), SHAPE(d, d), 0);
        L->attn_out_b = bind(b, P("encoder/layer_%d/self_attention/linear_1/bias", i), SHAPE(d));
        L->mlp_ln_g = bind(b, P("encoder/layer_%d/ffn/layer_norm/gamma", i), SHAPE(d));
        L->mlp_ln_b = bind(b, P("encoder/layer_%d/ffn/layer_norm/beta", i), SHAPE(d));
        L->mlp_fc1_w = bind_linear(b, P("encoder/layer_%d/ffn/linear_0/weight", i), SHAPE(4 * d, d), 0);
        L->mlp_fc1_b = bind(b, P("encoder/layer_%d/ffn/linear_0/bias", i), SHAPE(4 * d));
        L->mlp_fc2_w = bind_linear(b, P("encoder/layer_%d/ffn/linear_1/weight", i), SHAPE(d, 4 * d), 0);
        L->mlp_fc2_b = bind(b, P("encoder/layer_%d/ffn/linear_1/bias", i), SHAPE(d));
    }
    w->tok_emb = bind_linear(b, "decoder/embeddings/weight", SHAPE(hp->n_vocab, td), 1);
    w->dec_pos = bind(b, "decoder/position_encodings/encodings", SHAPE(hp->n_text_ctx, td));
    w->dec_ln_g = bind(b, "decoder/layer_norm/gamma", SHAPE(td));
    w->dec_ln_b = bind(b, "decoder/layer_norm/beta", SHAPE(td));
    for (int i = 0; i < hp->n_text_layer && b->status == ASR_OK; i++) {
        asr_decoder_layer *L = &w->dec[i];
        L->self_ln_g = bind(b, P("decoder/layer_%d/self_attention/layer_norm/gamma", i), SHAPE(td));
        L->self_ln_b = bind(b, P("decoder/layer_%d/self_attention/layer_norm/beta", i), SHAPE(td));
        L->self_qkv_w = bind_linear(b, P("decoder/layer_%d/self_attention/linear_0/weight", i), SHAPE(3 * td, td), 1);
        L->self_qkv_b = bind(b, P("decoder/layer_%d/self_attention/linear_0/bias", i), SHAPE(3 * td));
        L->self_out_w = bind_linear(b, P("decoder/layer_%d/self_attention/linear_1/weight", i), SHAPE(td, td), 1);
        L->self_out_b = bind(b, P("decoder/layer_%d/self_attention/linear_1/bias", i), SHAPE(td));
        L->cross_ln_g = bind(b, P("decoder/layer_%d/attention/layer_norm/gamma", i), SHAPE(td));
        L->cross_ln_b = bind(b, P("decoder/layer_%d/attention/layer_norm/beta", i), SHAPE(td));
        L->cross_q_w = bind_linear(b, P("decoder/layer_%d/attention/linear_0/weight", i), SHAPE(td, td), 1);
        L->cross_q_b = bind(b, P("decoder/layer_%d/attention/linear_0/bias", i), SHAPE(td));
        L->cross_kv_w = bind_linear(b, P("decoder/layer_%d/attention/linear_1/weight", i), SHAPE(2 * td, d), 0);
        L->cross_kv_b = bind(b, P("decoder/layer_%d/attention/linear_1/bias", i), SHAPE(2 * td));
        L->cross_out_w = bind_linear(b, P("decoder/layer_%d/attention/linear_2/weight", i), SHAPE(td, td), 1);
        L->cross_out_b = bind(b, P("decoder/layer_%d/attention/linear_2/bias", i), SHAPE(td));
        L->mlp_ln_g = bind(b, P("decoder/layer_%d/ffn/layer_norm/gamma", i), SHAPE(td));
        L->mlp_ln_b = bind(b, P("decoder/layer_%d/ffn/layer_norm/beta", i), SHAPE(td));
        L->mlp_fc1_w = bind_linear(b, P("decoder/layer_%d/ffn/linear_0/weight", i), SHAPE(4 * td, td), 1);
        L->mlp_fc1_b = bind(b, P("decoder/layer_%d/ffn/linear_0/bias", i), SHAPE(4 * td));
        L->mlp_fc2_w = bind_linear(b, P("decoder/layer_%d/ffn/linear_1/weight", i), SHAPE(td, 4 * td), 1);
        L->mlp_fc2_b = bind(b, P("decoder/layer_%d/ffn/linear_1/bias", i), SHAPE(td));
    }
#undef P
}

/* Reads hyper-parameters from tensor shapes and scalar attributes. */
static asr_status read_hparams(ct2_file *f, asr_hparams *hp, asr_error *err)
{
    ct2_var *conv1 = find_var(f, "encoder/conv1/weight");
    ct2_var *epos = find_var(f, "encoder/position_encodings/encodings");
    ct2_var *emb = find_var(f, "decoder/embeddings/weight");
    ct2_var *dpos = find_var(f, "decoder/position_encodings/encodings");
    if (f->bad_alias) return missing_var(f, "", err);
    if (!conv1 || conv1->rank != 3 || !epos || epos->rank != 2 || !emb || emb->rank != 2 || !dpos || dpos->rank != 2)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: missing or malformed encoder/decoder embedding tensors");
    /* dims above INT_MAX turn negative here and fail asr_hparams_check */
    hp->n_audio_state = (int)conv1->dims[0];
    hp->n_mels = (int)conv1->dims[1];
    hp->n_audio_ctx = (int)epos->dims[0];
    hp->n_vocab = (int)emb->dims[0];
    hp->n_text_state = (int)emb->dims[1];
    hp->n_text_ctx = (int)dpos->dims[0];
    hp->n_audio_layer = count_layers(f, "encoder");
    hp->n_text_layer = count_layers(f, "decoder");
    if (f->bad_alias) return missing_var(f, "", err);
    if (!scalar_int(f, "encoder/num_heads", &hp->n_audio_head) || !scalar_int(f, "decoder/num_heads", &hp->n_text_head))
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: missing num_heads attributes");
    asr_status s = asr_hparams_check(hp, "model.bin", err);
    if (s != ASR_OK) return s;
    if (epos->dims[1] != (uint32_t)hp->n_audio_state || dpos->dims[1] != (uint32_t)hp->n_text_state)
        return asr_fail(err, ASR_ERR_MODEL, "model.bin: position encodings are %u and %u wide, the model %d and %d",
                        epos->dims[1], dpos->dims[1], hp->n_audio_state, hp->n_text_state);
    return ASR_OK;
}

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* config.json carries the suppress lists; absent → derived ones are used. */
static asr_status read_config(asr_model *m, const char *dir, asr_error *err)
{
    char *path = join_path(dir, "config.json");
    if (!path) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    if (access(path, F_OK) != 0) {
        free(path);
        return ASR_OK;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    free(path);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return asr_fail(err, ASR_ERR_MODEL, "config.json: %s (line %d)", jerr.text, jerr.line);
    }
    json_t *ids = json_object_get(root, "suppress_ids");
    if (json_is_array(ids)) {
        size_t n = json_array_size(ids);
        m->suppress_tokens = malloc((n ? n : 1) * sizeof(int));
        if (!m->suppress_tokens) {
            json_decref(root);
            return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            json_int_t t = json_integer_value(json_array_get(ids, i));
            if (t >= 0 && t < m->hp.n_vocab) m->suppress_tokens[m->n_suppress_tokens++] = (int)t;
        }
    }
    json_t *heads = json_object_get(root, "alignment_heads");
    if (json_is_array(heads) && json_array_size(heads) > 0) {
        size_t n = json_array_size(heads);
        m->align_heads = malloc(n * sizeof *m->align_heads);
        if (!m->align_heads) {
            json_decref(root);
            return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            json_t *pair = json_array_get(heads, i);
            json_int_t layer = json_integer_value(json_array_get(pair, 0));
            json_int_t head = json_integer_value(json_array_get(pair, 1));
            if (!json_is_array(pair) || json_array_size(pair) != 2 || layer < 0 || layer >= m->hp.n_text_layer ||
                head < 0 || head >= m->hp.n_text_head) {
                json_decref(root);
                return asr_fail(err, ASR_ERR_MODEL, "config.json: alignment_heads[%zu] is not a [layer, head] pair "
                                "of this model", i);
            }
            m->align_heads[m->n_align_heads][0] = (int)layer;
            m->align_heads[m->n_align_heads][1] = (int)head;
            m->n_align_heads++;
        }
    }
    json_decref(root);
    return ASR_OK;
}

static asr_status load_bin(asr_model *m, const void *data, size_t size, int mapped, asr_error *err)
{
    ct2_file f = {.base = data, .size = size, .mapped = mapped};
    asr_status s = parse_model_bin(&f, err);
    if (s == ASR_OK) s = read_hparams(&f, &m->hp, err);
    size_t total = 0; /* elements in the file: each takes at least a byte, so no overflow */
    for (int i = 0; s == ASR_OK && i < f.n_vars; i++) total += f.vars[i].numel;
    /* Every weight comes from an element of the file, so hyper-parameters
     * that need more (layers counted through aliases, say) are refused
     * before the arenas are sized by them. */
    if (s == ASR_OK && asr_decoder_halves(&m->hp) > total)
        s = asr_fail(err, ASR_ERR_MODEL, "model.bin: the decoder needs %zu weights, more than the file's %zu values",
                     asr_decoder_halves(&m->hp), total);
    if (s == ASR_OK) {
        m->w.enc = calloc((size_t)m->hp.n_audio_layer, sizeof *m->w.enc);
        m->w.dec = calloc((size_t)m->hp.n_text_layer, sizeof *m->w.dec);
        m->arena_halves = asr_decoder_halves(&m->hp);
        m->arena_floats = total - m->arena_halves;
        m->arena = asr_alloc_weights((m->arena_floats ? m->arena_floats : 1) * sizeof(float), 0);
        m->arena16 = asr_alloc_weights(m->arena_halves * sizeof(uint16_t), 0);
        if (!m->w.enc || !m->w.dec || !m->arena || !m->arena16)
            s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading model");
    }
    if (s == ASR_OK) {
        binder b = {.f = &f, .m = m, .err = err, .status = ASR_OK};
        bind_all(&b);
        s = b.status;
    }
    free(f.vars);
    free(f.aliases);
    return s;
}

asr_status asr_model_load_ct2_bin(asr_model *m, const void *data, size_t size, asr_error *err)
{
    return load_bin(m, data, size, 0, err);
}

asr_status asr_model_load_ct2(asr_model *m, const char *dir, asr_error *err)
{
    char *path = join_path(dir, "model.bin");
    if (!path) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        asr_status s = asr_fail(err, ASR_ERR_MODEL, "%s: %s", path, strerror(errno));
        free(path);
        return s;
    }
    struct stat st;
    asr_status s = ASR_OK;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = asr_fail(err, ASR_ERR_MODEL, "%s: not a regular file", path);
    } else if (st.st_size < 16) {
        s = asr_fail(err, ASR_ERR_MODEL, "%s: file is empty or truncated (%lld bytes)", path, (long long)st.st_size);
    } else {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) s = asr_fail(err, ASR_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    }
    close(fd);
    if (s == ASR_OK) s = load_bin(m, map, (size_t)st.st_size, 1, err);
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    if (s == ASR_OK) s = asr_tokenizer_load_dir(dir, &m->tokenizer, err);
    if (s == ASR_OK) s = read_config(m, dir, err);
    if (s == ASR_OK) snprintf(m->source_format, sizeof m->source_format, "ctranslate2");
    free(path);
    return s;
}
