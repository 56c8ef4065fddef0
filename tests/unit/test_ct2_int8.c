/* test_ct2_int8.c — a CTranslate2 model stored in int8 (weight + weight_scale) loads into ASR_COMPUTE_INT8 with the
 * file's quantised values kept as they are, into float32 dequantised, and transcribes real speech.
 *
 * The int8 model is made here from the tiny.en test model (ASR_TEST_MODEL):
 * every linear weight (and the token embedding) becomes int8 with
 * CTranslate2's scale = 127 / max|row|, q = round(w · scale); the other
 * files are linked beside it. */
#include "check.h"
#include "engine.h"
#include "model.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CT2_F32 = 0, CT2_I8 = 1, CT2_F16 = 4 };

typedef struct reader {
    const unsigned char *p;
    size_t pos, size;
} reader;

static int take(reader *r, void *out, size_t n)
{
    if (n > r->size - r->pos) return 0;
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 1;
}

static void put(FILE *f, const void *p, size_t n)
{
    fwrite(p, 1, n, f);
}

static void put_string(FILE *f, const char *s)
{
    uint16_t len = (uint16_t)(strlen(s) + 1);
    put(f, &len, 2);
    put(f, s, len);
}

/* Quantisable: a rank-2 linear weight or the token embedding, in f16/f32. */
static int quantisable(const char *name, int rank, int dtype)
{
    size_t len = strlen(name);
    if (rank != 2 || (dtype != CT2_F16 && dtype != CT2_F32) || len < 7 || strcmp(name + len - 7, "/weight") != 0)
        return 0;
    return strstr(name, "/linear_") != NULL || strcmp(name, "decoder/embeddings/weight") == 0;
}

/* Rewrite src (a model.bin) to dst with the quantisable weights in int8.
 * Returns how many were quantised, or -1. */
static int write_int8_model(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (!in) return -1;
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, in) != (size_t)size) {
        fclose(in);
        free(buf);
        return -1;
    }
    fclose(in);
    reader r = {buf, 0, (size_t)size};
    uint32_t version, revision, n_vars;
    uint16_t len;
    char spec[64];
    if (!take(&r, &version, 4) || !take(&r, &len, 2) || len > sizeof spec || !take(&r, spec, len) ||
        !take(&r, &revision, 4) || !take(&r, &n_vars, 4)) {
        free(buf);
        return -1;
    }
    /* first pass: count the weights that get a scale variable */
    size_t vars_at = r.pos;
    int n_quant = 0;
    for (int pass = 0; pass < 2; pass++) {
        FILE *out = pass ? fopen(dst, "wb") : NULL;
        if (pass && !out) break;
        r.pos = vars_at;
        if (pass) {
            uint32_t total = n_vars + (uint32_t)n_quant;
            put(out, &version, 4);
            put_string(out, spec);
            put(out, &revision, 4);
            put(out, &total, 4);
        }
        for (uint32_t i = 0; i < n_vars; i++) {
            char name[256];
            uint8_t rank, dtype;
            uint32_t dims[8], n_bytes;
            if (!take(&r, &len, 2) || len > sizeof name || !take(&r, name, len) || !take(&r, &rank, 1) || rank > 8 ||
                !take(&r, dims, 4u * rank) || !take(&r, &dtype, 1) || !take(&r, &n_bytes, 4) ||
                n_bytes > r.size - r.pos) {
                if (out) fclose(out);
                free(buf);
                return -1;
            }
            const unsigned char *data = r.p + r.pos;
            r.pos += n_bytes;
            int q = quantisable(name, rank, dtype);
            if (!pass) {
                n_quant += q;
                continue;
            }
            if (!q) {
                put_string(out, name);
                put(out, &rank, 1);
                put(out, dims, 4u * rank);
                put(out, &dtype, 1);
                put(out, &n_bytes, 4);
                put(out, data, n_bytes);
                continue;
            }
            uint32_t rows = dims[0], cols = dims[1];
            int8_t *qv = malloc((size_t)rows * cols);
            float *scale = malloc(rows * sizeof(float)), *row = malloc(cols * sizeof(float));
            for (uint32_t a = 0; a < rows; a++) {
                float amax = 0.0f;
                for (uint32_t k = 0; k < cols; k++) {
                    size_t at = (size_t)a * cols + k;
                    if (dtype == CT2_F32) memcpy(&row[k], data + 4 * at, 4);
                    else {
                        uint16_t h;
                        memcpy(&h, data + 2 * at, 2);
                        row[k] = asr_f16_to_f32(h);
                    }
                    amax = fabsf(row[k]) > amax ? fabsf(row[k]) : amax;
                }
                scale[a] = amax > 0.0f ? 127.0f / amax : 1.0f;
                for (uint32_t k = 0; k < cols; k++) qv[(size_t)a * cols + k] = (int8_t)lrintf(row[k] * scale[a]);
            }
            uint8_t i8 = CT2_I8, f32 = CT2_F32, one = 1;
            uint32_t qbytes = rows * cols, sbytes = rows * 4;
            put_string(out, name);
            put(out, &rank, 1);
            put(out, dims, 8);
            put(out, &i8, 1);
            put(out, &qbytes, 4);
            put(out, qv, qbytes);
            char sname[280];
            snprintf(sname, sizeof sname, "%s_scale", name);
            put_string(out, sname);
            put(out, &one, 1);
            put(out, &rows, 4);
            put(out, &f32, 1);
            put(out, &sbytes, 4);
            put(out, scale, sbytes);
            free(qv);
            free(scale);
            free(row);
        }
        if (pass) {
            put(out, r.p + r.pos, r.size - r.pos); /* the alias table, as it was */
            fclose(out);
        }
    }
    free(buf);
    return n_quant;
}

/* The int8 values and scale of row `row` of tensor `name` in the model.bin
 * bytes buf (the file we wrote). */
static int file_row(const unsigned char *buf, size_t size, const char *name, int row, int8_t *q, float *scale,
                    int cols)
{
    reader r = {buf, 0, size};
    uint32_t version, revision, n_vars;
    uint16_t len;
    char spec[64], sname[280];
    int found = 0;
    snprintf(sname, sizeof sname, "%s_scale", name);
    int ok = buf && take(&r, &version, 4) && take(&r, &len, 2) && len <= sizeof spec && take(&r, spec, len) &&
             take(&r, &revision, 4) && take(&r, &n_vars, 4);
    for (uint32_t i = 0; ok && i < n_vars && found != 3; i++) {
        char vname[280];
        uint8_t rank, dtype;
        uint32_t dims[8], n_bytes;
        ok = take(&r, &len, 2) && len <= sizeof vname && take(&r, vname, len) && take(&r, &rank, 1) && rank <= 8 &&
             take(&r, dims, 4u * rank) && take(&r, &dtype, 1) && take(&r, &n_bytes, 4) && n_bytes <= r.size - r.pos;
        if (!ok) break;
        if (strcmp(vname, name) == 0 && dtype == CT2_I8) {
            memcpy(q, r.p + r.pos + (size_t)row * cols, (size_t)cols);
            found |= 1;
        }
        if (strcmp(vname, sname) == 0) {
            memcpy(scale, r.p + r.pos + 4 * (size_t)row, 4);
            found |= 2;
        }
        r.pos += n_bytes;
    }
    return ok && found == 3;
}

static unsigned char *read_all(const char *path, size_t *size)
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
    *size = (size_t)n;
    return buf;
}

static int link_beside(const char *model_dir, const char *dir, const char *file)
{
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%s", model_dir, file);
    snprintf(to, sizeof to, "%s/%s", dir, file);
    return access(from, R_OK) != 0 || symlink(from, to) == 0;
}

int main(void)
{
    char model_dir[4096], src[4200], dst[4200], dir[] = "/tmp/asr-test-ct2-int8-XXXXXX";
    const char *env = getenv("ASR_TEST_MODEL");
    if (env && *env) snprintf(model_dir, sizeof model_dir, "%s", env);
    else snprintf(model_dir, sizeof model_dir, "%s/.cache/asr/models/tiny.en", getenv("HOME") ? getenv("HOME") : ".");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(src, sizeof src, "%s/model.bin", model_dir);
    snprintf(dst, sizeof dst, "%s/model.bin", dir);
    int n_quant = write_int8_model(src, dst);
    CHECK(n_quant > 0, "wrote an int8 copy of %s with %d int8 weights", src, n_quant);
    int linked = link_beside(model_dir, dir, "config.json") && link_beside(model_dir, dir, "vocabulary.txt") &&
                 link_beside(model_dir, dir, "tokenizer.json");
    CHECK(linked, "linked the tokenizer and config beside it");
    size_t file_size = 0;
    unsigned char *file = read_all(dst, &file_size);
    if (n_quant <= 0 || !linked || !file) return CHECK_DONE();

    asr_error err;
    asr_model *m = NULL;
    asr_model_params p = asr_model_default_params();
    p.compute_type = ASR_COMPUTE_INT8;
    asr_status s = asr_model_load(dir, &p, &m, &err);
    CHECK(s == ASR_OK, "int8 model loads as int8 (%s)", s == ASR_OK ? "" : err.message);
    if (s == ASR_OK) {
        /* every row of two weights: the value is the file's q times 1/scale, exactly */
        static const char *const names[] = {"encoder/layer_0/self_attention/linear_0/weight",
                                            "decoder/embeddings/weight"};
        const asr_tensor *tensors[] = {&m->w.enc[0].attn_qkv_w, &m->w.tok_emb};
        for (int t = 0; t < 2; t++) {
            const asr_tensor *w = tensors[t];
            int cols = w->cols, rows = t == 0 ? w->rows : 200, same = w->dtype == ASR_DTYPE_I8;
            int8_t *q = malloc((size_t)cols);
            float *row = malloc((size_t)cols * sizeof(float)), scale = 0.0f;
            for (int r = 0; same && r < rows; r++) {
                same = file_row(file, file_size, names[t], r, q, &scale, cols);
                asr_tensor_row(w, r, row);
                for (int k = 0; same && k < cols; k++) same = row[k] == (float)q[k] * (1.0f / scale);
            }
            CHECK(same, "%s: int8 in memory, every value = the file's q / scale (%d rows)", names[t], rows);
            free(q);
            free(row);
        }
        asr_audio audio;
        char wav[4200];
        const char *shared = getenv("ASR_SHARED");
        snprintf(wav, sizeof wav, "%s/testdata/jfk.wav", shared && *shared ? shared : "/work/shared");
        asr_result *res = NULL;
        asr_state *st = asr_state_new(m, &err);
        s = st ? asr_audio_decode_file(wav, NULL, &audio, &err) : ASR_ERR_NO_MEMORY;
        if (s == ASR_OK) {
            asr_transcribe_params tp = asr_transcribe_default_params();
            s = asr_transcribe(st, audio.samples, audio.n_samples, &tp, &res, &err);
            asr_audio_free(&audio);
        }
        const char *text = s == ASR_OK ? asr_result_text(res) : "";
        CHECK(s == ASR_OK && strstr(text, "ask not what your country can do for you") &&
                  strstr(text, "ask what you can do for your country"),
              "int8 file in int8: jfk.wav reads '%s'", text);
        asr_result_free(res);
        asr_state_free(st);
        asr_model_free(m);
    }
    /* the same file in float32: dequantised on load */
    p.compute_type = ASR_COMPUTE_FLOAT32;
    s = asr_model_load(dir, &p, &m, &err);
    CHECK(s == ASR_OK, "int8 model loads as float32 (%s)", s == ASR_OK ? "" : err.message);
    if (s == ASR_OK) {
        const asr_tensor *w = &m->w.enc[0].attn_qkv_w;
        int8_t q[2048];
        float scale = 0.0f;
        int same = w->dtype == ASR_DTYPE_F32 && w->cols <= 2048 &&
                   file_row(file, file_size, "encoder/layer_0/self_attention/linear_0/weight", 5, q, &scale,
                                            w->cols);
        for (int k = 0; same && k < w->cols; k++) same = ((const float *)w->data)[5 * w->cols + k] == (float)q[k] / scale;
        CHECK(same, "float32: int8 weights dequantised as q / scale");
        asr_model_free(m);
    }
    free(file);
    char path[4200];
    static const char *const files[] = {"model.bin", "config.json", "vocabulary.txt", "tokenizer.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return CHECK_DONE();
}
