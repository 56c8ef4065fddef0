/* test_ggml.c — whisper.cpp ggml files: tiny.en converted to f32/f16 and back, the file layout, hostile files.
 *
 * Uses the CTranslate2 tiny.en from $ASR_TEST_MODEL (default
 * ~/.cache/asr/models/tiny.en). Checks: every weight of the reloaded model
 * equals the original (f32 exactly; f16 equals the original rounded to half),
 * hyper-parameters, vocabulary and special tokens equal; the file walks as
 * whisper.cpp reads it (magic, 50256 base tokens, openai tensor names, f32
 * for biases/norms/positional embeddings/conv biases); re-exporting the
 * reloaded model gives the same bytes; q8_0/q4_0/q5_1 blocks decode; and
 * truncated or corrupted copies fail with ASR_ERR_MODEL.
 */
#include "check.h"
#include "model.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the model's tensors, listed independently of the loader ------------- */

typedef struct tensor_ref {
    char name[64];
    const float *data;       /* float32 tensors */
    const uint16_t *data16;  /* tensors the model holds as half */
    size_t n;
    int half; /* stored as f16 in f16 files */
} tensor_ref;

typedef struct tensor_list {
    tensor_ref v[1024];
    int n;
} tensor_list;

static void add(tensor_list *l, const float *p, size_t n, int half, const char *name, int layer)
{
    if (l->n >= (int)(sizeof l->v / sizeof *l->v)) return;
    tensor_ref *t = &l->v[l->n++];
    snprintf(t->name, sizeof t->name, "%s/%d", name, layer);
    t->data = p;
    t->data16 = NULL;
    t->n = n;
    t->half = half;
}

static void add16(tensor_list *l, const uint16_t *p, size_t n, const char *name, int layer)
{
    add(l, NULL, n, 1, name, layer);
    l->v[l->n - 1].data16 = p;
}

/* The weights as loaded (float32 encoder, half decoder): what these tests inspect. */
static const asr_model_params float32_params = {.compute_type = ASR_COMPUTE_FLOAT32};

static float value_at(const tensor_ref *t, size_t i)
{
    return t->data ? t->data[i] : asr_f16_to_f32(t->data16[i]);
}

static void list_tensors(const asr_model *m, tensor_list *l)
{
    const asr_hparams *hp = &m->hp;
    const size_t d = (size_t)hp->n_audio_state;
    const asr_weights *w = &m->w;
    l->n = 0;
    add(l, w->conv1_w, d * (size_t)hp->n_mels * 3, 1, "conv1_w", 0);
    add(l, w->conv1_b, d, 0, "conv1_b", 0);
    add(l, w->conv2_w, d * d * 3, 1, "conv2_w", 0);
    add(l, w->conv2_b, d, 0, "conv2_b", 0);
    add(l, w->enc_pos, (size_t)hp->n_audio_ctx * d, 0, "enc_pos", 0);
    add(l, w->enc_ln_g, d, 0, "enc_ln_g", 0);
    add(l, w->enc_ln_b, d, 0, "enc_ln_b", 0);
    add16(l, (uint16_t *)w->tok_emb.data, (size_t)hp->n_vocab * d, "tok_emb", 0);
    add(l, w->dec_pos, (size_t)hp->n_text_ctx * d, 0, "dec_pos", 0);
    add(l, w->dec_ln_g, d, 0, "dec_ln_g", 0);
    add(l, w->dec_ln_b, d, 0, "dec_ln_b", 0);
    for (int i = 0; i < hp->n_audio_layer; i++) {
        const asr_encoder_layer *L = &w->enc[i];
        add(l, L->attn_ln_g, d, 0, "enc.attn_ln_g", i);
        add(l, L->attn_ln_b, d, 0, "enc.attn_ln_b", i);
        add(l, (float *)L->attn_qkv_w.data, 3 * d * d, 1, "enc.attn_qkv_w", i);
        add(l, L->attn_qkv_b, 3 * d, 0, "enc.attn_qkv_b", i);
        add(l, (float *)L->attn_out_w.data, d * d, 1, "enc.attn_out_w", i);
        add(l, L->attn_out_b, d, 0, "enc.attn_out_b", i);
        add(l, L->mlp_ln_g, d, 0, "enc.mlp_ln_g", i);
        add(l, L->mlp_ln_b, d, 0, "enc.mlp_ln_b", i);
        add(l, (float *)L->mlp_fc1_w.data, 4 * d * d, 1, "enc.mlp_fc1_w", i);
        add(l, L->mlp_fc1_b, 4 * d, 0, "enc.mlp_fc1_b", i);
        add(l, (float *)L->mlp_fc2_w.data, 4 * d * d, 1, "enc.mlp_fc2_w", i);
        add(l, L->mlp_fc2_b, d, 0, "enc.mlp_fc2_b", i);
    }
    for (int i = 0; i < hp->n_text_layer; i++) {
        const asr_decoder_layer *L = &w->dec[i];
        add(l, L->self_ln_g, d, 0, "dec.self_ln_g", i);
        add(l, L->self_ln_b, d, 0, "dec.self_ln_b", i);
        add16(l, (uint16_t *)L->self_qkv_w.data, 3 * d * d, "dec.self_qkv_w", i);
        add(l, L->self_qkv_b, 3 * d, 0, "dec.self_qkv_b", i);
        add16(l, (uint16_t *)L->self_out_w.data, d * d, "dec.self_out_w", i);
        add(l, L->self_out_b, d, 0, "dec.self_out_b", i);
        add(l, L->cross_ln_g, d, 0, "dec.cross_ln_g", i);
        add(l, L->cross_ln_b, d, 0, "dec.cross_ln_b", i);
        add16(l, (uint16_t *)L->cross_q_w.data, d * d, "dec.cross_q_w", i);
        add(l, L->cross_q_b, d, 0, "dec.cross_q_b", i);
        add(l, (float *)L->cross_kv_w.data, 2 * d * d, 1, "dec.cross_kv_w", i);
        add(l, L->cross_kv_b, 2 * d, 0, "dec.cross_kv_b", i);
        add16(l, (uint16_t *)L->cross_out_w.data, d * d, "dec.cross_out_w", i);
        add(l, L->cross_out_b, d, 0, "dec.cross_out_b", i);
        add(l, L->mlp_ln_g, d, 0, "dec.mlp_ln_g", i);
        add(l, L->mlp_ln_b, d, 0, "dec.mlp_ln_b", i);
        add16(l, (uint16_t *)L->mlp_fc1_w.data, 4 * d * d, "dec.mlp_fc1_w", i);
        add(l, L->mlp_fc1_b, 4 * d, 0, "dec.mlp_fc1_b", i);
        add16(l, (uint16_t *)L->mlp_fc2_w.data, 4 * d * d, "dec.mlp_fc2_w", i);
        add(l, L->mlp_fc2_b, d, 0, "dec.mlp_fc2_b", i);
    }
}

/* Count of elements of tensor a that differ from b (after rounding a to
 * half when `half`); k biases of fused q/k/v are expected to be zero. */
static size_t count_mismatches(const tensor_ref *a, const tensor_ref *b, int half)
{
    size_t bad = 0;
    for (size_t i = 0; i < a->n; i++) {
        float want = half ? asr_f16_to_f32(asr_f32_to_f16(value_at(a, i))) : value_at(a, i);
        float got = value_at(b, i);
        if (memcmp(&want, &got, 4) != 0) bad++;
    }
    return bad;
}

static void compare_models(const asr_model *orig, const asr_model *back, int f16_file, const char *what)
{
    CHECK(memcmp(&orig->hp, &back->hp, sizeof orig->hp) == 0, "%s: hyper-parameters equal", what);
    CHECK(memcmp(&orig->tok, &back->tok, sizeof orig->tok) == 0,
          "%s: special tokens equal (eot %d/%d sot %d/%d ts %d/%d)", what, orig->tok.eot, back->tok.eot,
          orig->tok.sot, back->tok.sot, orig->tok.timestamp_begin, back->tok.timestamp_begin);
    CHECK(orig->multilingual == back->multilingual && strcmp(orig->type, back->type) == 0,
          "%s: type '%s' multilingual %d", what, back->type, back->multilingual);
    CHECK(strcmp(back->source_format, "ggml") == 0, "%s: source_format '%s'", what, back->source_format);
    static tensor_list a, b;
    list_tensors(orig, &a);
    list_tensors(back, &b);
    int bad_tensors = 0;
    size_t total = 0;
    for (int i = 0; i < a.n; i++) {
        size_t bad = count_mismatches(&a.v[i], &b.v[i], f16_file && a.v[i].half);
        total += a.v[i].n;
        if (bad) {
            bad_tensors++;
            printf("     %s: %zu of %zu elements differ\n", a.v[i].name, bad, a.v[i].n);
        }
    }
    CHECK(bad_tensors == 0, "%s: all %d tensors (%zu floats) equal%s", what, a.n, total,
          f16_file ? " (matrices to half precision)" : " exactly");
    CHECK(back->arena_floats + back->arena_halves == total,
          "%s: arenas hold exactly the weights (%zu floats + %zu halves)", what, back->arena_floats, back->arena_halves);
}

static void compare_vocab(const asr_model *orig, const asr_model *back)
{
    int n = asr_tokenizer_size(back->tokenizer), bad = 0;
    CHECK(n == orig->hp.n_vocab, "vocabulary of the ggml model has n_vocab = %d tokens", n);
    for (int id = 0; id < orig->tok.eot; id++) {
        size_t la, lb;
        const char *pa = asr_tokenizer_bytes(orig->tokenizer, id, &la);
        const char *pb = asr_tokenizer_bytes(back->tokenizer, id, &lb);
        if (!pb || la != lb || memcmp(pa, pb, la) != 0) bad++;
    }
    CHECK(bad == 0, "base tokens 0..%d have the same bytes (%d differ)", orig->tok.eot - 1, bad);
    static const char *const names[] = {"<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|su|>",
                                        "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                                        "<|nospeech|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>",
                                        "<|1.00|>", "<|29.98|>", "<|30.00|>"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int a = asr_tokenizer_find(orig->tokenizer, names[i]), b = asr_tokenizer_find(back->tokenizer, names[i]);
        CHECK(a >= 0 && a == b, "special token %s: id %d in both", names[i], b);
    }
    const char *text = " And so my fellow Americans, ask not what your country can do for you — naïve café 東京!";
    int ia[128], ib[128];
    int na = asr_tokenizer_encode(orig->tokenizer, text, ia, 128), nb = asr_tokenizer_encode(back->tokenizer, text, ib, 128);
    CHECK(na > 0 && na == nb && memcmp(ia, ib, (size_t)na * sizeof(int)) == 0, "encoding a sentence gives the same %d ids", nb);
    /* The suppress list derived from the ggml vocabulary must be the set
     * config.json ships (the derived list may repeat an id). */
    int same = 1;
    for (int pass = 0; pass < 2; pass++) {
        const asr_model *x = pass ? back : orig, *y = pass ? orig : back;
        for (int i = 0; same && i < x->n_suppress_tokens; i++) {
            int found = 0;
            for (int j = 0; j < y->n_suppress_tokens; j++) found |= y->suppress_tokens[j] == x->suppress_tokens[i];
            same = found;
        }
    }
    CHECK(same, "suppress set derived from the ggml vocabulary equals config.json's (%d vs %d ids)",
          back->n_suppress_tokens, orig->n_suppress_tokens);
}

/* ---- reading the file as whisper.cpp does ------------------------------------ */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int32_t rd_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Offsets of the parts of a file, found by walking it. */
typedef struct file_map {
    size_t vocab;         /* offset of the token count                      */
    size_t first_tensor;  /* offset of the first tensor header              */
    size_t tensor_at[1024]; /* header offsets                               */
    size_t data_at[1024];   /* data offsets                                 */
    char names[1024][64];
    int ttype[1024], n_dims[1024], ne[1024][4];
    int n_tensors;
    int n_tokens;
    int ok;
} file_map;

static void walk(const unsigned char *p, size_t len, file_map *fm)
{
    memset(fm, 0, sizeof *fm);
    size_t pos = 12 * 4;
    int n_mel = rd_i32(p + pos), n_fft = rd_i32(p + pos + 4);
    pos += 8 + (size_t)n_mel * n_fft * 4;
    fm->vocab = pos;
    fm->n_tokens = rd_i32(p + pos);
    pos += 4;
    for (int i = 0; i < fm->n_tokens; i++) pos += 4 + (uint32_t)rd_i32(p + pos);
    fm->first_tensor = pos;
    while (pos + 12 <= len && fm->n_tensors < 1024) {
        int k = fm->n_tensors++;
        fm->tensor_at[k] = pos;
        int nd = rd_i32(p + pos), nl = rd_i32(p + pos + 4), tt = rd_i32(p + pos + 8);
        pos += 12;
        size_t numel = 1;
        fm->n_dims[k] = nd;
        for (int d = 0; d < nd && d < 4; d++) {
            fm->ne[k][d] = rd_i32(p + pos);
            numel *= (size_t)fm->ne[k][d];
            pos += 4;
        }
        snprintf(fm->names[k], sizeof fm->names[k], "%.*s", nl, (const char *)p + pos);
        pos += (size_t)nl;
        fm->ttype[k] = tt;
        fm->data_at[k] = pos;
        pos += numel * (tt == 1 ? 2 : 4);
    }
    fm->ok = pos == len;
}

static int find_tensor(const file_map *fm, const char *name)
{
    for (int i = 0; i < fm->n_tensors; i++)
        if (strcmp(fm->names[i], name) == 0) return i;
    return -1;
}

static void check_layout(const char *path, const asr_model *m, int f16)
{
    size_t len;
    unsigned char *p = read_file(path, &len);
    CHECK(p != NULL && len > 1000, "%s written (%zu bytes)", path, len);
    if (!p) return;
    static file_map fm;
    walk(p, len, &fm);
    const asr_hparams *hp = &m->hp;
    int32_t want[12] = {0x67676d6c, hp->n_vocab, hp->n_audio_ctx, hp->n_audio_state, hp->n_audio_head,
                        hp->n_audio_layer, hp->n_text_ctx, hp->n_text_state, hp->n_text_head,
                        hp->n_text_layer, hp->n_mels, f16};
    int hdr_ok = 1;
    for (int i = 0; i < 12; i++) hdr_ok &= rd_i32(p + 4 * i) == want[i];
    CHECK(hdr_ok, "magic and the 11 hparams in whisper.cpp's order (ftype %d)", f16);
    CHECK(rd_i32(p + 48) == hp->n_mels && rd_i32(p + 52) == 201, "mel filterbank %dx%d", rd_i32(p + 48), rd_i32(p + 52));
    float filters[80 * 201];
    asr_mel_filters(80, filters, NULL);
    CHECK(memcmp(filters, p + 56, sizeof filters) == 0, "mel filterbank equals mel.c's");
    CHECK(fm.n_tokens == 50256, "vocabulary stores the 50256 gpt2 tiktoken ranks, not the specials (%d)", fm.n_tokens);
    size_t l0;
    const char *t0 = asr_tokenizer_bytes(m->tokenizer, 0, &l0);
    CHECK(rd_i32(p + fm.vocab + 4) == (int32_t)l0 && memcmp(p + fm.vocab + 8, t0, l0) == 0, "token 0 is '%.*s'",
          (int)l0, t0);
    int want_tensors = 7 + 15 * hp->n_audio_layer + 4 + 24 * hp->n_text_layer;
    CHECK(fm.ok && fm.n_tensors == want_tensors, "file walks to its end through %d tensors (want %d)", fm.n_tensors,
          want_tensors);
    int i_cb = find_tensor(&fm, "encoder.conv1.bias");
    CHECK(i_cb >= 0 && fm.n_dims[i_cb] == 2 && fm.ne[i_cb][0] == 1 && fm.ne[i_cb][1] == hp->n_audio_state &&
          fm.ttype[i_cb] == 0, "encoder.conv1.bias is f32 with ggml dims [1, %d]", hp->n_audio_state);
    int i_cw = find_tensor(&fm, "encoder.conv1.weight");
    CHECK(i_cw >= 0 && fm.n_dims[i_cw] == 3 && fm.ne[i_cw][0] == 3 && fm.ne[i_cw][1] == hp->n_mels &&
          fm.ne[i_cw][2] == hp->n_audio_state && fm.ttype[i_cw] == f16,
          "encoder.conv1.weight has ggml dims [3, %d, %d], type %d", hp->n_mels, hp->n_audio_state, f16);
    int i_te = find_tensor(&fm, "decoder.token_embedding.weight");
    CHECK(i_te >= 0 && fm.ne[i_te][0] == hp->n_text_state && fm.ne[i_te][1] == hp->n_vocab && fm.ttype[i_te] == f16,
          "decoder.token_embedding.weight [%d, %d], type %d", hp->n_text_state, hp->n_vocab, f16);
    CHECK(find_tensor(&fm, "encoder.blocks.0.attn.key.bias") < 0 && find_tensor(&fm, "encoder.blocks.0.attn.key.weight") >= 0 &&
          find_tensor(&fm, "decoder.blocks.3.cross_attn.value.bias") >= 0,
          "attention keys have no bias tensor, values do");
    /* the converters' rule: in f16 files only >= 2-D tensors other than conv
     * biases and positional embeddings are f16 */
    int rule_ok = 1;
    for (int i = 0; i < fm.n_tensors; i++) {
        int keep = fm.n_dims[i] < 2 || strstr(fm.names[i], "conv1.bias") || strstr(fm.names[i], "conv2.bias") ||
                   strstr(fm.names[i], "positional_embedding");
        int want_type = f16 && !keep;
        if (fm.ttype[i] != want_type) {
            rule_ok = 0;
            printf("     %s has type %d\n", fm.names[i], fm.ttype[i]);
        }
    }
    CHECK(rule_ok, "tensor types follow the converters' f16/f32 rule");
    /* the query weight in the file is rows 0..d-1 of our fused q/k/v */
    int i_q = find_tensor(&fm, "decoder.blocks.2.attn.value.weight");
    size_t dd = (size_t)hp->n_text_state * hp->n_text_state;
    if (!f16 && i_q >= 0)
    {
        size_t same = 0;
        for (size_t k = 0; k < dd; k++) {
            float in_file, ours = asr_f16_to_f32(((const uint16_t *)m->w.dec[2].self_qkv_w.data)[2 * dd + k]);
            memcpy(&in_file, p + fm.data_at[i_q] + 4 * k, 4);
            same += memcmp(&in_file, &ours, 4) == 0;
        }
        CHECK(same == dd, "decoder.blocks.2.attn.value.weight is the v rows of the fused q/k/v (%zu of %zu equal)",
              same, dd);
    }
    free(p);
}

/* ---- hostile files ----------------------------------------------------------- */

static int load_fails_with_model_error(const char *path, const char *expect_in_message, const char *what)
{
    asr_model *m = (asr_model *)1;
    asr_error err;
    asr_status s = asr_model_load(path, &float32_params, &m, &err);
    int ok = s == ASR_ERR_MODEL && m == NULL && err.message[0] &&
             (!expect_in_message || strstr(err.message, expect_in_message));
    CHECK(ok, "%s: ASR_ERR_MODEL (%d) \"%s\"", what, s, err.message);
    if (s == ASR_OK) asr_model_free(m);
    return ok;
}

static void truncations(const char *good, const char *dir)
{
    size_t len;
    unsigned char *p = read_file(good, &len);
    if (!p) return;
    static file_map fm;
    walk(p, len, &fm);
    char cut[4096];
    snprintf(cut, sizeof cut, "%s/cut.bin", dir);
    size_t offsets[80];
    int n = 0;
    const size_t fixed[] = {0, 1, 3, 4, 7, 47, 48, 55, 56, 57, 56 + 80 * 201 * 4 - 1, fm.vocab, fm.vocab + 3,
                            fm.vocab + 4, fm.vocab + 9, fm.first_tensor - 1, fm.first_tensor, fm.first_tensor + 5,
                            fm.first_tensor + 12, fm.data_at[0] - 1, fm.data_at[0], fm.data_at[0] + 1,
                            fm.tensor_at[1], fm.tensor_at[fm.n_tensors - 1] + 11,
                            fm.data_at[fm.n_tensors - 1] - 3, len - 4, len - 1};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) offsets[n++] = fixed[i];
    for (int k = 1; k < 30; k++) offsets[n++] = len / 30 * (size_t)k + (size_t)k * 7;
    int all_ok = 1;
    for (int i = 0; i < n; i++) {
        if (offsets[i] >= len) continue;
        if (!write_file(cut, p, offsets[i])) {
            CHECK(0, "write %s", cut);
            break;
        }
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", offsets[i], len);
        all_ok &= load_fails_with_model_error(cut, NULL, what);
    }
    CHECK(all_ok, "every truncated copy (%d cuts) fails with ASR_ERR_MODEL", n);

    /* corrupted fields */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    struct { size_t at; int32_t value; const char *expect, *what; } edits[] = {
        {0, 0x46554747, "bad magic", "magic of a GGUF file"},
        {4, 5, "n_vocab", "n_vocab = 5"},
        {4, 60000, "n_vocab", "n_vocab = 60000"},
        {8, 1499, "n_audio_ctx", "n_audio_ctx = 1499"},
        {8, 1073743324, "n_audio_ctx", "n_audio_ctx = 2^30 + 1500 (doubling it overflows; found by fuzz_model_ggml)"},
        {12, -384, "width", "negative n_audio_state"},
        {16, 0, "head", "n_audio_head = 0"},
        {16, 7, "head", "n_audio_head = 7 (does not divide 384)"},
        {20, 100000, "layer", "n_audio_layer = 100000"},
        {20, 5, "missing", "n_audio_layer = 5 (one more than the file has)"},
        {24, 0x7fffffff, "n_text_ctx", "huge n_text_ctx"},
        {24, 449, "n_text_ctx", "n_text_ctx 449 (one past every Whisper's 448)"},
        {24, 0, "n_text_ctx", "n_text_ctx 0"},
        {24, 447, "shape", "n_text_ctx 447 (plausible, but not this file's)"},
        {20, 65, "layer", "n_audio_layer 65"},
        {36, 0, "layer", "n_text_layer 0"},
        {20, 64, "missing", "n_audio_layer 64 (the most allowed; more than this file has)"},
        {12, 0, "width", "n_audio_state 0"},
        {12, 388, "width", "n_audio_state 388 (not a multiple of 8)"},
        {32, 65, "head", "n_text_head 65"},
        {40, 81, "n_mels", "n_mels 81"},
        {12, 8192, "width", "n_audio_state 8192 (n_text_state stays 384)"},
        {28, 512, "width", "n_text_state differs from n_audio_state"},
        {40, 128, "mel filterbank", "n_mels = 128 with an 80-band filterbank"},
        {44, -1, "file type", "ftype = -1"},
        {48, 0x7fffffff, "mel filterbank", "filterbank rows huge"},
        {52, 0x40000000, "mel filterbank", "filterbank columns huge"},
        {fm.vocab, 0x7fffffff, "vocabulary", "token count huge"},
        {fm.vocab, 100, "vocabulary", "token count 100"},
        {fm.vocab + 4, -2, "vocabulary token 0", "token 0 length -2"},
        {fm.vocab + 4, 0x40000000, "vocabulary token 0", "token 0 length 2^30"},
        {fm.first_tensor, 9, "dimensions", "tensor with 9 dimensions"},
        {fm.first_tensor, 0, "dimensions", "tensor with 0 dimensions"},
        {fm.first_tensor + 4, -1, "name of", "name length -1"},
        {fm.first_tensor + 4, 0x7fffffff, "name of", "name length huge"},
        {fm.first_tensor + 4, 27, "unknown tensor", "name length off by one"},
        {fm.first_tensor + 8, 99, "unsupported ggml tensor type 99", "tensor type 99"},
        {fm.first_tensor + 8, 14, "unsupported ggml tensor type 14", "tensor type q6_K"},
        {fm.first_tensor + 12, 385, "shape", "first dimension off by one"},
        {fm.first_tensor + 12, -384, "shape", "negative dimension"},
        {fm.tensor_at[1] + 8, 8, "", "q8_0 tensor type on f32 data (misaligns what follows)"},
    };
    int corrupt_ok = 1;
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        unsigned char *q = malloc(len);
        memcpy(q, p, len);
        memcpy(q + edits[i].at, &edits[i].value, 4);
        if (write_file(bad, q, len))
            corrupt_ok &= load_fails_with_model_error(bad, edits[i].expect[0] ? edits[i].expect : NULL, edits[i].what);
        free(q);
    }
    CHECK(corrupt_ok, "every corrupted header field is rejected with a message naming it");

    /* a tensor name changed by one byte, a duplicated tensor, trailing bytes */
    unsigned char *q = malloc(len + 4096);
    memcpy(q, p, len);
    size_t name_at = fm.data_at[0] - strlen(fm.names[0]);
    q[name_at] = 'X';
    if (write_file(bad, q, len)) load_fails_with_model_error(bad, "unknown tensor", "renamed tensor");
    memcpy(q, p, len);
    size_t last = fm.tensor_at[fm.n_tensors - 1];
    memcpy(q + len, p + last, len - last); /* append the last tensor again */
    if (write_file(bad, q, len + (len - last))) load_fails_with_model_error(bad, "appears twice", "duplicated tensor");
    memcpy(q + len, "\0\0\0\0\0", 5);
    if (write_file(bad, q, len + 5)) load_fails_with_model_error(bad, "truncated tensor header", "5 trailing bytes");
    /* the whole vocabulary missing: file ends right after the filterbank */
    if (write_file(bad, q, fm.vocab)) load_fails_with_model_error(bad, "vocabulary", "file without vocabulary");
    free(q);
    free(p);
}

/* ---- quantised tensors --------------------------------------------------------- */

/* Replace decoder.ln.weight (384 floats: 12 blocks of 32) of a f32 file by
 * hand-made blocks of ggml type ttype and check what the loader makes of them. */
static void quantized(const char *good, const char *dir)
{
    size_t len;
    unsigned char *p = read_file(good, &len);
    if (!p) return;
    static file_map fm;
    walk(p, len, &fm);
    int k = find_tensor(&fm, "decoder.ln.weight");
    if (k < 0 || fm.ne[k][0] != 384) {
        CHECK(0, "decoder.ln.weight found with 384 elements");
        free(p);
        return;
    }
    size_t before = fm.data_at[k], after = before + 384 * 4;
    char path[4096];
    snprintf(path, sizeof path, "%s/quant.bin", dir);
    const uint16_t h_half = 0x3800;   /* 0.5  */
    const uint16_t h_quarter = 0x3400; /* 0.25 */
    for (int variant = 0; variant < 3; variant++) {
        int ttype = variant == 0 ? 8 : variant == 1 ? 2 : 7; /* q8_0, q4_0, q5_1 */
        size_t block = variant == 0 ? 34 : variant == 1 ? 18 : 24;
        unsigned char blocks[12 * 34];
        float want[384];
        for (int b = 0; b < 12; b++) {
            unsigned char *o = blocks + (size_t)b * block;
            memcpy(o, &h_half, 2); /* scale d = 0.5 */
            for (int j = 0; j < 32; j++) {
                int v = (b * 32 + j) % 16; /* value index pattern */
                if (variant == 0) {        /* q8_0: int8 q, x = d*q */
                    int8_t qv = (int8_t)(v * 9 - 70);
                    o[2 + j] = (uint8_t)qv;
                    want[b * 32 + j] = 0.5f * qv;
                }
            }
            if (variant == 1) { /* q4_0: nibble j low = value j, high = value j+16; x = d*(q-8) */
                for (int j = 0; j < 16; j++) {
                    int lo = (j + b) % 16, hi = (15 - j + b) % 16;
                    o[2 + j] = (uint8_t)(lo | hi << 4);
                    want[b * 32 + j] = 0.5f * (float)(lo - 8);
                    want[b * 32 + j + 16] = 0.5f * (float)(hi - 8);
                }
            }
            if (variant == 2) { /* q5_1: d, m, 32 high bits, nibbles; x = d*q + m */
                memcpy(o + 2, &h_quarter, 2);
                uint32_t qh = 0xA5C3F00Fu ^ (uint32_t)b * 0x01010101u;
                memcpy(o + 4, &qh, 4);
                for (int j = 0; j < 16; j++) {
                    int lo = (j * 3 + b) % 16, hi = (j * 5 + 1) % 16;
                    o[8 + j] = (uint8_t)(lo | hi << 4);
                    int q0 = lo | (int)((qh >> j) & 1) << 4, q1 = hi | (int)((qh >> (j + 16)) & 1) << 4;
                    want[b * 32 + j] = 0.5f * (float)q0 + 0.25f;
                    want[b * 32 + j + 16] = 0.5f * (float)q1 + 0.25f;
                }
            }
        }
        size_t qbytes = 12 * block;
        unsigned char *q = malloc(len);
        memcpy(q, p, before);
        memcpy(q + fm.tensor_at[k] + 8, &ttype, 4);
        memcpy(q + before, blocks, qbytes);
        memcpy(q + before + qbytes, p + after, len - after);
        write_file(path, q, len - (after - before) + qbytes);
        free(q);
        asr_model *m = NULL;
        asr_error err;
        asr_status s = asr_model_load(path, &float32_params, &m, &err);
        CHECK(s == ASR_OK, "ggml type %d tensor loads (%s)", ttype, err.message);
        if (s == ASR_OK) {
            int bad = 0;
            for (int i = 0; i < 384; i++) bad += m->w.dec_ln_g[i] != want[i];
            CHECK(bad == 0, "ggml type %d blocks decode to the expected values (%d differ)", ttype, bad);
            asr_model_free(m);
        }
    }
    free(p);
}

/* ---- multilingual vocabularies -------------------------------------------------- */

static void put32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }

/* A multilingual (n_vocab 51865) or large-v3-style (51866) file made from
 * the tiny.en one: one more base token (the multilingual tiktoken has 50257
 * ranks) and zero rows appended to the token embedding. The loader must put
 * the special tokens where openai's tokenizer (and whisper.cpp) has them. */
static void synthetic_multilingual(const char *good, const char *dir, int n_vocab)
{
    typedef struct { int eot, sot, en, translate, transcribe, sot_lm, sot_prev, no_speech, no_ts, beg, n_langs; } ids;
    const ids want = n_vocab == 51865 ? (ids){50257, 50258, 50259, 50358, 50359, 50360, 50361, 50362, 50363, 50364, 99}
                                      : (ids){50257, 50258, 50259, 50359, 50360, 50361, 50362, 50363, 50364, 50365, 100};
    size_t len;
    unsigned char *p = read_file(good, &len);
    if (!p) return;
    static file_map fm;
    walk(p, len, &fm);
    int k = find_tensor(&fm, "decoder.token_embedding.weight");
    size_t d = (size_t)fm.ne[k][0], rows = (size_t)fm.ne[k][1], extra = (size_t)(n_vocab - fm.ne[k][1]);
    unsigned char *q = calloc(1, len + 4 + extra * d * 4);
    size_t o = 0;
    memcpy(q, p, fm.vocab);
    put32(q + 4, n_vocab);
    o = fm.vocab;
    put32(q + o, fm.n_tokens + 1);
    o += 4;
    memcpy(q + o, p + fm.vocab + 4, fm.first_tensor - fm.vocab - 4);
    o += fm.first_tensor - fm.vocab - 4;
    put32(q + o, 0); /* token 50256: empty, as in whisper.cpp's multilingual files */
    o += 4;
    size_t emb_header = o + (fm.tensor_at[k] - fm.first_tensor);
    memcpy(q + o, p + fm.first_tensor, fm.data_at[k] + rows * d * 4 - fm.first_tensor);
    put32(q + emb_header + 16, n_vocab); /* ne[1] of the embedding */
    o += fm.data_at[k] + rows * d * 4 - fm.first_tensor;
    o += extra * d * 4; /* zero rows */
    memcpy(q + o, p + fm.data_at[k] + rows * d * 4, len - (fm.data_at[k] + rows * d * 4));
    o += len - (fm.data_at[k] + rows * d * 4);
    char path[4200], again[4200];
    snprintf(path, sizeof path, "%s/multi-%d.bin", dir, n_vocab);
    snprintf(again, sizeof again, "%s/multi-%d-again.bin", dir, n_vocab);
    write_file(path, q, o);
    asr_model *m = NULL;
    asr_error err;
    asr_status s = asr_model_load(path, &float32_params, &m, &err);
    CHECK(s == ASR_OK, "n_vocab %d file loads (%s)", n_vocab, err.message);
    if (s == ASR_OK) {
        const asr_special_tokens *t = &m->tok;
        CHECK(m->multilingual && t->eot == want.eot && t->sot == want.sot && t->first_lang == want.en &&
                  t->translate == want.translate && t->transcribe == want.transcribe && t->sot_lm == want.sot_lm &&
                  t->sot_prev == want.sot_prev && t->no_speech == want.no_speech &&
                  t->no_timestamps == want.no_ts && t->timestamp_begin == want.beg && t->n_langs == want.n_langs,
              "n_vocab %d: eot %d sot %d <|en|> %d translate %d transcribe %d lm %d prev %d nospeech %d "
              "notimestamps %d <|0.00|> %d, %d languages", n_vocab, t->eot, t->sot, t->first_lang, t->translate,
              t->transcribe, t->sot_lm, t->sot_prev, t->no_speech, t->no_timestamps, t->timestamp_begin, t->n_langs);
        int de = asr_tokenizer_find(m->tokenizer, "<|de|>"), last = asr_tokenizer_find(m->tokenizer, "<|30.00|>");
        CHECK(de == want.en + 2 && last == n_vocab - 1, "n_vocab %d: <|de|> = %d, <|30.00|> = %d", n_vocab, de, last);
        if (n_vocab == 51866) {
            int yue = asr_tokenizer_find(m->tokenizer, "<|yue|>");
            CHECK(yue == 50358, "large-v3 vocabulary: <|yue|> = %d", yue);
        }
        s = asr_model_write_ggml(m, again, 0, &err);
        size_t la = 0;
        unsigned char *a = read_file(again, &la);
        CHECK(s == ASR_OK && a && la == o && memcmp(a, q, o) == 0,
              "n_vocab %d: exported again byte for byte (50257 base tokens)", n_vocab);
        free(a);
        asr_model_free(m);
    }
    free(q);
    free(p);
}

/* ---- main ------------------------------------------------------------------------ */

int main(void)
{
    char model_dir[4096];
    const char *env = getenv("ASR_TEST_MODEL");
    if (env && *env) snprintf(model_dir, sizeof model_dir, "%s", env);
    else snprintf(model_dir, sizeof model_dir, "%s/.cache/asr/models/tiny.en", getenv("HOME") ? getenv("HOME") : ".");
    char dir[] = "/tmp/asr-test-ggml-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    asr_model *orig = NULL;
    asr_error err;
    asr_status s = asr_model_load(model_dir, &float32_params, &orig, &err);
    CHECK(s == ASR_OK, "load %s (%s)", model_dir, err.message);
    if (s != ASR_OK) return CHECK_DONE();

    char f32[4200], f16[4200], again[4200];
    snprintf(f32, sizeof f32, "%s/tiny.en-f32.bin", dir);
    snprintf(f16, sizeof f16, "%s/tiny.en-f16.bin", dir);
    snprintf(again, sizeof again, "%s/again-f32.bin", dir);

    s = asr_model_write_ggml(orig, f32, 0, &err);
    CHECK(s == ASR_OK, "write f32 ggml (%s)", err.message);
    s = asr_model_write_ggml(orig, f16, 1, &err);
    CHECK(s == ASR_OK, "write f16 ggml (%s)", err.message);
    check_layout(f32, orig, 0);
    check_layout(f16, orig, 1);

    asr_model *back = NULL;
    s = asr_model_load(f32, &float32_params, &back, &err);
    CHECK(s == ASR_OK, "reload f32 ggml (%s)", err.message);
    if (s == ASR_OK) {
        compare_models(orig, back, 0, "f32");
        compare_vocab(orig, back);
        /* the reloaded model exported again is the same file, byte for byte */
        s = asr_model_write_ggml(back, again, 0, &err);
        size_t la = 0, lb = 0;
        unsigned char *a = read_file(f32, &la), *b = read_file(again, &lb);
        CHECK(s == ASR_OK && a && b && la == lb && memcmp(a, b, la) == 0,
              "re-exporting the ggml-loaded model reproduces the file byte for byte (%zu bytes)", lb);
        free(a);
        free(b);
        asr_model_free(back);
    }
    s = asr_model_load(f16, &float32_params, &back, &err);
    CHECK(s == ASR_OK, "reload f16 ggml (%s)", err.message);
    if (s == ASR_OK) {
        compare_models(orig, back, 1, "f16");
        asr_model_free(back);
    }

    /* export errors */
    s = asr_model_write_ggml(orig, "/nonexistent-dir/x.bin", 1, &err);
    CHECK(s == ASR_ERR_IO && access("/nonexistent-dir/x.bin.part", F_OK) != 0, "unwritable path: ASR_ERR_IO (%s)",
          err.message);
    s = asr_model_write_ggml(orig, "", 1, &err);
    CHECK(s == ASR_ERR_INVALID_ARGUMENT, "empty path: ASR_ERR_INVALID_ARGUMENT");

    truncations(f32, dir);
    quantized(f32, dir);
    synthetic_multilingual(f32, dir, 51865);
    synthetic_multilingual(f32, dir, 51866);

    /* not a model at all */
    char junk[4200];
    snprintf(junk, sizeof junk, "%s/empty.bin", dir);
    write_file(junk, "", 0);
    load_fails_with_model_error(junk, "too short", "empty file");
    write_file(junk, "lmgg", 4);
    load_fails_with_model_error(junk, "hyper-parameters", "magic only");

    asr_model_free(orig);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
