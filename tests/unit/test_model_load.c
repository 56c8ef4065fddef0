/* test_model_load.c — the model loaders on synthetic and crafted files: bounds, aliases, truncation, corruption.
 *
 * Builds tiny CTranslate2 and ggml models in memory (synth_model.h) and
 * checks that the good ones load with the expected hyper-parameters, and
 * that hostile ones — alias cycles, zero or oversized dimensions, layer
 * counts inflated through aliases, every truncation, random byte flips —
 * fail with ASR_ERR_MODEL and a message naming the problem, in bounded
 * time (an alarm fails the test if a load hangs). Needs nothing outside.
 */
#include "check.h"
#include "model.h"
#include "tensor.h"
#include "synth_model.h"

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL test_model_load: a load did not finish within the alarm (hang)\n";
    if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
    _exit(1);
}

static asr_status load_ct2(const synth_buf *b, asr_model **out, asr_error *err)
{
    asr_model *m = calloc(1, sizeof *m);
    asr_error_clear(err);
    asr_status s = asr_model_load_ct2_bin(m, b->p, b->n, err);
    if (out && s == ASR_OK) *out = m;
    else asr_model_free(m);
    return s;
}

static asr_status load_ggml(const synth_buf *b, asr_model **out, asr_error *err)
{
    asr_model *m = calloc(1, sizeof *m);
    asr_error_clear(err);
    asr_status s = asr_model_load_ggml_buffer(m, b->p, b->n, "synthetic.bin", err);
    if (out && s == ASR_OK) *out = m;
    else asr_model_free(m);
    return s;
}

/* A CT2 model.bin for hp, with extra aliases (pairs, NULL-terminated). */
static void ct2_file(synth_buf *out, const synth_hp *hp, const char *const *aliases)
{
    synth_ct2 c = {0};
    synth_ct2_model(&c, hp);
    for (int i = 0; aliases && aliases[i]; i += 2) synth_ct2_alias(&c, aliases[i], aliases[i + 1]);
    synth_ct2_finish(&c, out);
}

static int fails_with(asr_status s, const asr_error *err, const char *expect)
{
    return s == ASR_ERR_MODEL && strstr(err->message, expect) != NULL;
}

static void good_models(void)
{
    synth_hp hp = synth_default_hp();
    synth_buf b = {0};
    asr_error err;
    asr_model *m = NULL;
    ct2_file(&b, &hp, NULL);
    asr_status s = load_ct2(&b, &m, &err);
    CHECK(s == ASR_OK, "synthetic CTranslate2 model.bin (%zu bytes) loads: %s", b.n, err.message);
    if (m) {
        CHECK(m->hp.n_audio_state == 8 && m->hp.n_text_head == 2 && m->hp.n_text_ctx == 8 &&
              m->hp.n_vocab == 51864 && m->hp.n_audio_layer == 1 && m->hp.n_text_layer == 1 && m->hp.n_mels == 80,
              "its hyper-parameters are read back");
        /* int8 embedding, scale 1: row r, column c holds (r*8+c) % 7 - 3 */
        float row0[8];
        asr_tensor_row(&m->w.tok_emb, 1, row0);
        CHECK(row0[4] == (float)(12 % 7 - 3), "int8 token embedding dequantised (%s)",
              asr_dtype_name(m->w.tok_emb.dtype));
        asr_model_free(m);
        m = NULL;
    }
    /* one alias hop, as CTranslate2 writes them, is followed */
    const char *const one_hop[] = {"decoder/layer_0/ffn/linear_1/bias_alias", "decoder/layer_0/ffn/linear_1/bias",
                                   NULL};
    free(b.p);
    b = (synth_buf){0};
    ct2_file(&b, &hp, one_hop);
    s = load_ct2(&b, NULL, &err);
    CHECK(s == ASR_OK, "a model with a one-hop alias loads: %s", err.message);
    free(b.p);

    b = (synth_buf){0};
    synth_ggml_model(&b, &hp);
    s = load_ggml(&b, &m, &err);
    CHECK(s == ASR_OK, "synthetic ggml model (%zu bytes) loads: %s", b.n, err.message);
    if (m) {
        CHECK(m->hp.n_audio_state == 8 && m->hp.n_text_ctx == 8 && m->hp.n_vocab == 51864,
              "its hyper-parameters are read back");
        s = asr_model_finish_load(m, &err);
        CHECK(s == ASR_OK, "and its special tokens are found: %s", err.message);
        asr_model_free(m);
    }
    free(b.p);
}

static void alias_cycles(const char *dir)
{
    synth_hp hp = synth_default_hp();
    asr_error err;
    /* count_layers asks for layer 1, which is an alias in a cycle */
    const char *const cycle[] = {"encoder/layer_1/ffn/linear_0/bias", "x",
                                 "x", "encoder/layer_1/ffn/linear_0/bias", NULL};
    const char *const self[] = {"decoder/layer_1/ffn/linear_0/bias", "decoder/layer_1/ffn/linear_0/bias", NULL};
    const char *const long_chain[] = {"decoder/layer_1/ffn/linear_0/bias", "a1", "a1", "a2", "a2", "a3", "a3", "a4",
                                      "a4", "a5", "a5", "a6", "a6", "a7", "a7", "a8", "a8", "a9", "a9",
                                      "decoder/layer_0/ffn/linear_0/bias", NULL};
    const char *const *cases[] = {cycle, self, long_chain};
    const char *names[] = {"two-alias cycle", "alias to itself", "chain of 10 aliases"};
    for (int i = 0; i < 3; i++) {
        synth_buf b = {0};
        ct2_file(&b, &hp, cases[i]);
        alarm(20);
        asr_status s = load_ct2(&b, NULL, &err);
        alarm(0);
        CHECK(fails_with(s, &err, "alias"), "%s: ASR_ERR_MODEL naming the alias (%d) \"%s\"", names[i], s,
              err.message);
        if (i == 0) { /* and through the public entry point, from a directory */
            char path[4096];
            snprintf(path, sizeof path, "%s/model.bin", dir);
            FILE *f = fopen(path, "wb");
            int written = f && fwrite(b.p, 1, b.n, f) == b.n;
            if (f) fclose(f);
            CHECK(written, "write %s", path);
            asr_model *m = NULL;
            alarm(20);
            s = asr_model_load(dir, NULL, &m, &err);
            alarm(0);
            CHECK(fails_with(s, &err, "alias") && !m, "asr_model_load on a cyclic alias table: \"%s\"", err.message);
            unlink(path);
        }
        free(b.p);
    }
}

static void bounds(void)
{
    struct { synth_hp hp; const char *expect, *what; } cases[] = {
        {{8, 2, 1, 1, 80, 1500, 449, 51864}, "n_text_ctx", "n_text_ctx 449 (one past Whisper's 448)"},
        {{8, 2, 1, 1, 80, 1500, 0, 51864}, "n_text_ctx", "n_text_ctx 0"},
        {{8, 2, 1, 1, 80, 1500, 8, 65537}, "n_vocab", "n_vocab 65537"},
        {{8, 2, 1, 1, 80, 1500, 8, 51000}, "n_vocab", "n_vocab 51000 (too few for the timestamps)"},
        {{8, 2, 1, 1, 0, 1500, 8, 51864}, "n_mels", "n_mels 0 (a zero dimension)"},
        {{8, 2, 1, 1, 81, 1500, 8, 51864}, "n_mels", "n_mels 81"},
        {{8, 2, 1, 1, 80, 0, 8, 51864}, "n_audio_ctx", "n_audio_ctx 0"},
        {{8, 2, 1, 1, 80, 1501, 8, 51864}, "n_audio_ctx", "n_audio_ctx 1501"},
        {{12, 2, 1, 1, 80, 1500, 8, 51864}, "width", "width 12 (not a multiple of 8)"},
        {{8, 3, 1, 1, 80, 1500, 8, 51864}, "head", "3 heads over width 8"},
        {{8, 0, 1, 1, 80, 1500, 8, 51864}, "head", "0 heads"},
        {{8, -2, 1, 1, 80, 1500, 8, 51864}, "head", "-2 heads"},
        {{8, 2, 65, 1, 80, 1500, 8, 51864}, "layer", "65 encoder layers"},
        {{8, 2, 1, 0, 80, 1500, 8, 51864}, "layer", "no decoder layer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        synth_buf b = {0};
        asr_error err;
        ct2_file(&b, &cases[i].hp, NULL);
        asr_status s = load_ct2(&b, NULL, &err);
        CHECK(fails_with(s, &err, cases[i].expect), "ct2 %s: ASR_ERR_MODEL naming '%s' (%d) \"%s\"", cases[i].what,
              cases[i].expect, s, err.message);
        free(b.p);
        /* the ggml loader applies the same bounds (zero/negative sizes are
         * not representable in its synthetic writer, and its vocabulary
         * rule is stricter, so only the rest are tried) */
        const synth_hp *h = &cases[i].hp;
        if (h->n_mels <= 0 || h->heads <= 0 || h->n_audio_ctx <= 0 || h->dec_layers <= 0 || h->n_text_ctx <= 0 ||
            h->n_vocab != 51864 || h->d % h->heads != 0)
            continue;
        b = (synth_buf){0};
        synth_ggml_model(&b, h);
        s = load_ggml(&b, NULL, &err);
        CHECK(fails_with(s, &err, cases[i].expect), "ggml %s: ASR_ERR_MODEL naming '%s' (%d) \"%s\"", cases[i].what,
              cases[i].expect, s, err.message);
        free(b.p);
    }
    /* a tensor with a zero dimension where the model needs a real one */
    synth_hp hp = synth_default_hp();
    synth_ct2 c = {0};
    synth_ct2_model(&c, &hp);
    synth_buf b = {0};
    synth_ct2_finish(&c, &b);
    /* encoder/conv1/weight is the first variable: version, spec string,
     * revision, count, then its name, rank and dims */
    size_t dims_at = 4 + 2 + sizeof "WhisperSpec" + 4 + 4 + 2 + sizeof "encoder/conv1/weight" + 1;
    uint32_t zero = 0, was;
    memcpy(&was, b.p + dims_at + 8, 4);
    memcpy(b.p + dims_at + 8, &zero, 4); /* [8, 80, 3] -> [8, 80, 0] with the data still there */
    asr_error err;
    asr_status s = load_ct2(&b, NULL, &err);
    CHECK(was == 3 && s == ASR_ERR_MODEL, "conv1 weight with a zero dimension: ASR_ERR_MODEL \"%s\"", err.message);
    free(b.p);
}

/* Every field at the extremes of int: rejected, with no arithmetic on it
 * overflowing (the sanitizer build checks that). */
static void extreme_fields(void)
{
    static const int extremes[] = {INT_MIN, -1, 0, 1073743324, INT_MAX};
    synth_hp d = synth_default_hp();
    const asr_hparams good = {.n_mels = 80, .n_audio_ctx = 1500, .n_audio_state = d.d, .n_audio_head = d.heads,
                              .n_audio_layer = 1, .n_vocab = 51864, .n_text_ctx = 8, .n_text_state = d.d,
                              .n_text_head = d.heads, .n_text_layer = 1};
    asr_error err;
    CHECK(asr_hparams_check(&good, "good", &err) == ASR_OK, "the synthetic model's hyper-parameters pass");
    int all_rejected = 1;
    for (int field = 0; field < 10; field++)
        for (size_t e = 0; e < sizeof extremes / sizeof *extremes; e++) {
            asr_hparams hp = good;
            int *fields[] = {&hp.n_mels, &hp.n_audio_ctx, &hp.n_audio_state, &hp.n_audio_head, &hp.n_audio_layer,
                             &hp.n_vocab, &hp.n_text_ctx, &hp.n_text_state, &hp.n_text_head, &hp.n_text_layer};
            *fields[field] = extremes[e];
            if (asr_hparams_check(&hp, "extreme", &err) != ASR_ERR_MODEL) {
                all_rejected = 0;
                printf("     field %d = %d accepted\n", field, extremes[e]);
            }
        }
    CHECK(all_rejected, "each of the 10 fields at INT_MIN, -1, 0, 2^30 + 1500 or INT_MAX is rejected");
}

/* Layers counted through aliases make the decoder need more weights than
 * the file has: refused before the arenas are sized by them. */
static void inflated_layers(void)
{
    synth_hp hp = synth_default_hp();
    hp.d = 64;
    synth_ct2 c = {0};
    synth_ct2_model(&c, &hp);
    static const char *const parts[] = {
        "self_attention/layer_norm/gamma", "self_attention/layer_norm/beta", "self_attention/linear_0/weight",
        "self_attention/linear_0/bias", "self_attention/linear_1/weight", "self_attention/linear_1/bias",
        "attention/layer_norm/gamma", "attention/layer_norm/beta", "attention/linear_0/weight",
        "attention/linear_0/bias", "attention/linear_1/weight", "attention/linear_1/bias",
        "attention/linear_2/weight", "attention/linear_2/bias", "ffn/layer_norm/gamma", "ffn/layer_norm/beta",
        "ffn/linear_0/weight", "ffn/linear_0/bias", "ffn/linear_1/weight", "ffn/linear_1/bias"};
    for (int l = 1; l < 40; l++)
        for (size_t p = 0; p < sizeof parts / sizeof *parts; p++) {
            char alias[128], target[128];
            snprintf(alias, sizeof alias, "decoder/layer_%d/%s", l, parts[p]);
            snprintf(target, sizeof target, "decoder/layer_0/%s", parts[p]);
            synth_ct2_alias(&c, alias, target);
        }
    synth_buf b = {0};
    synth_ct2_finish(&c, &b);
    asr_error err;
    asr_status s = load_ct2(&b, NULL, &err);
    CHECK(fails_with(s, &err, "more than the file"),
          "40 decoder layers aliased to one: refused before allocating (%d) \"%s\"", s, err.message);
    free(b.p);
}

/* A decoder matrix (held as half) aliased to an encoder one (float32): the
 * one tensor of the file feeds both arenas, each its own copy. */
static void shared_precisions(void)
{
    synth_hp hp = synth_default_hp();
    synth_ct2 c = {.omit = "decoder/layer_0/self_attention/linear_1/weight"};
    synth_ct2_model(&c, &hp);
    synth_ct2_alias(&c, "decoder/layer_0/self_attention/linear_1/weight",
                    "encoder/layer_0/self_attention/linear_1/weight");
    synth_buf b = {0};
    synth_ct2_finish(&c, &b);
    asr_error err;
    asr_model *m = NULL;
    asr_status s = load_ct2(&b, &m, &err);
    CHECK(s == ASR_OK, "a half tensor aliased to a float one loads: \"%s\"", err.message);
    if (m) {
        int same = 1, nonzero = 0;
        float *dec_row = malloc((size_t)hp.d * sizeof(float)), *enc_row = malloc((size_t)hp.d * sizeof(float));
        for (int r = 0; dec_row && enc_row && r < hp.d; r++) {
            asr_tensor_row(&m->w.dec[0].self_out_w, r, dec_row);
            asr_tensor_row(&m->w.enc[0].attn_out_w, r, enc_row);
            for (int i = 0; i < hp.d; i++) {
                same &= dec_row[i] == asr_f16_to_f32(asr_f32_to_f16(enc_row[i]));
                nonzero |= enc_row[i] != 0.0f;
            }
        }
        free(dec_row);
        free(enc_row);
        CHECK(same && nonzero, "and both copies hold the file's values");
        asr_model_free(m);
    }
    free(b.p);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Every cut of a good file fails cleanly; random byte flips never crash and
 * either load or fail with ASR_ERR_MODEL. */
static void truncation_and_flips(int ggml)
{
    const char *fmt = ggml ? "ggml" : "ct2";
    synth_hp hp = synth_default_hp();
    synth_buf good = {0};
    if (ggml) synth_ggml_model(&good, &hp);
    else ct2_file(&good, &hp, NULL);
    synth_buf b = {.p = malloc(good.n), .cap = good.n};
    int cuts_ok = 1, n_cuts = 0;
    for (size_t cut = 0; cut < good.n; cut += cut < 512 ? 1 : 997 + cut / 50) {
        memcpy(b.p, good.p, cut);
        b.n = cut;
        asr_error err;
        alarm(20);
        asr_status s = ggml ? load_ggml(&b, NULL, &err) : load_ct2(&b, NULL, &err);
        alarm(0);
        if (s != ASR_ERR_MODEL || !err.message[0]) {
            cuts_ok = 0;
            printf("     %s cut at %zu: status %d \"%s\"\n", fmt, cut, s, err.message);
        }
        n_cuts++;
    }
    CHECK(cuts_ok, "%s: all %d truncated copies fail with ASR_ERR_MODEL and a message", fmt, n_cuts);
    int flips_ok = 1, loaded = 0;
    const int rounds = 300;
    for (int r = 0; r < rounds; r++) {
        memcpy(b.p, good.p, good.n);
        b.n = good.n;
        int n_flips = 1 + (int)(next_rand() % 4);
        for (int k = 0; k < n_flips; k++) {
            /* mostly the headers and metadata, where the parsing is */
            size_t at = next_rand() % 4 ? next_rand() % (good.n < 70000 ? good.n : 70000) : next_rand() % good.n;
            b.p[at] ^= (unsigned char)(1u << (next_rand() % 8));
        }
        asr_error err;
        alarm(20);
        asr_status s = ggml ? load_ggml(&b, NULL, &err) : load_ct2(&b, NULL, &err);
        alarm(0);
        if (s == ASR_OK) loaded++;
        else if (s != ASR_ERR_MODEL || !err.message[0]) {
            flips_ok = 0;
            printf("     %s flip round %d: status %d \"%s\"\n", fmt, r, s, err.message);
        }
    }
    CHECK(flips_ok, "%s: %d randomly corrupted copies load (%d) or fail with ASR_ERR_MODEL", fmt, rounds, loaded);
    free(b.p);
    free(good.p);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    char dir[] = "/tmp/asr-test-load-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return CHECK_DONE();
    }
    good_models();
    alias_cycles(dir);
    bounds();
    extreme_fields();
    inflated_layers();
    shared_precisions();
    truncation_and_flips(0);
    truncation_and_flips(1);
    rmdir(dir);
    return CHECK_DONE();
}
