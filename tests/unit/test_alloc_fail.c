/* test_alloc_fail.c — malloc-failure injection: asr_model_load and asr_transcribe fail cleanly when the Nth allocation fails.
 *
 * Linked with -Wl,--wrap=malloc,... (TEST_LDFLAGS_test_alloc_fail in the
 * Makefile), so every allocation libasr makes itself goes through the
 * __wrap_ functions below; allocations made inside libc, OpenBLAS or FFmpeg
 * are not seen. For N = 0, 1, 2, ... (every N at first, then a widening
 * stride up to the call's whole count) the Nth allocation returns NULL and
 * the call must return an error status (ASR_ERR_NO_MEMORY, or another
 * clean error with a message) or succeed with what a clean run makes (an
 * optional buffer may fail: the model's fingerprint, the text) — never
 * crash — and must leave no
 * allocation behind: the wrappers count live blocks, and the SAN build's
 * LeakSanitizer checks the same at exit. The model is synth_model.h's tiny
 * ggml file (width 8, one layer) and its CTranslate2 twin beside the test
 * model's vocabulary.txt, the audio one second of a tone; and decoding
 * jfk.flac. A failed allocation must never read as ASR_ERR_MODEL.
 */
#include "asr.h"
#include "check.h"
#include "model.h"
/* the alias writer is for the loader tests */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "synth_model.h"

#include <execinfo.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

/* fail_at < 0: no failure; otherwise the allocation numbered fail_at (from 0) fails. */
static atomic_long n_calls, fail_at = -1, live;

/* ALLOC_FAIL_TRACE=1 prints where each injected failure happens (for debugging a finding). */
static int should_fail(void)
{
    long i = atomic_fetch_add(&n_calls, 1);
    if (i != atomic_load(&fail_at)) return 0;
    if (getenv("ALLOC_FAIL_TRACE")) {
        void *frames[12];
        int n = backtrace(frames, 12);
        backtrace_symbols_fd(frames, n, 1);
    }
    return 1;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail()) return NULL;
    void *p = __real_malloc(n);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
    if (should_fail()) return NULL;
    void *p = __real_calloc(k, n);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (should_fail()) return NULL;
    void *q = __real_realloc(p, n);
    if (q && !p) atomic_fetch_add(&live, 1);
    return q;
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (should_fail()) return NULL;
    void *p = __real_aligned_alloc(a, n);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (should_fail()) return 12; /* ENOMEM */
    int r = __real_posix_memalign(p, a, n);
    if (r == 0) atomic_fetch_add(&live, 1);
    return r;
}

char *__wrap_strdup(const char *s)
{
    if (should_fail()) return NULL;
    char *p = __real_strdup(s);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

void __wrap_free(void *p)
{
    if (p) atomic_fetch_sub(&live, 1);
    __real_free(p);
}

static char model_path[64], ct2_dir[64];

/* A CTranslate2 model directory: synth_model.h's model.bin beside the test model's
 * vocabulary.txt (the real tokenizer's 51864 entries; the synthetic width-8 weights
 * have as many rows). Returns 0 if the vocabulary is not there. */
static int write_ct2_dir(void)
{
    char vocab[4200], link_to[4200], bin[4200];
    const char *env = getenv("ASR_TEST_MODEL");
    const char *home = getenv("HOME");
    if (env && *env) snprintf(vocab, sizeof vocab, "%s/vocabulary.txt", env);
    else snprintf(vocab, sizeof vocab, "%s/.cache/asr/models/tiny.en/vocabulary.txt", home ? home : ".");
    if (access(vocab, R_OK) != 0) return 0;
    snprintf(ct2_dir, sizeof ct2_dir, "/tmp/asr_alloc_fail_ct2_%d", (int)getpid());
    if (mkdir(ct2_dir, 0700) != 0) return 0;
    snprintf(link_to, sizeof link_to, "%s/vocabulary.txt", ct2_dir);
    if (symlink(vocab, link_to) != 0) return 0;
    synth_hp hp = synth_default_hp();
    synth_ct2 c = {0};
    synth_buf b = {0};
    synth_ct2_model(&c, &hp);
    synth_ct2_finish(&c, &b);
    snprintf(bin, sizeof bin, "%s/model.bin", ct2_dir);
    FILE *f = fopen(bin, "wb");
    int ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f) ok = fclose(f) == 0 && ok;
    free(b.p);
    return ok;
}

static void remove_ct2_dir(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/model.bin", ct2_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/vocabulary.txt", ct2_dir);
    unlink(p);
    rmdir(ct2_dir);
}

static void write_model(void)
{
    synth_hp hp = synth_default_hp();
    synth_buf b = {0};
    synth_ggml_model(&b, &hp);
    snprintf(model_path, sizeof model_path, "/tmp/asr_alloc_fail_%d.bin", (int)getpid());
    FILE *f = fopen(model_path, "wb");
    int ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f) ok = fclose(f) == 0 && ok;
    free(b.p);
    if (!ok) {
        printf("FAIL test_alloc_fail: cannot write %s\n", model_path);
        exit(1);
    }
}

/* The next N to try after n: every one up to 96, then steps of about 1/24 of n. */
static long next_n(long n) { return n < 96 ? n + 1 : n + 1 + n / 24; }

/* A run returns its status and, on success, a fingerprint of what it made: a run that succeeds
 * despite a failed allocation (an optional buffer) must make the same as a clean run. */
typedef asr_status (*run_fn)(const void *ctx, unsigned long *fingerprint, asr_error *err);

static unsigned long hash_bytes(unsigned long h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ul;
    return h;
}

static asr_status run_load(const void *ctx, unsigned long *fingerprint, asr_error *err)
{
    const char *path = ctx;
    asr_model *m = NULL;
    asr_model_params p = asr_model_default_params();
    p.n_threads = 1;
    asr_status s = asr_model_load(path, &p, &m, err);
    if (s == ASR_OK) {
        unsigned long h = hash_bytes(14695981039346656037ul, &m->hp, sizeof m->hp);
        h = hash_bytes(h, m->suppress_tokens, (size_t)m->n_suppress_tokens * sizeof *m->suppress_tokens);
        *fingerprint = h;
        asr_model_free(m);
    }
    return s;
}

typedef struct transcribe_ctx {
    asr_model *model;
    const float *samples;
    size_t n;
    int n_threads;
} transcribe_ctx;

static asr_status run_transcribe(const void *ctx, unsigned long *fingerprint, asr_error *err)
{
    const transcribe_ctx *t = ctx;
    asr_state *st = asr_state_new(t->model, err);
    if (!st) return err->code ? err->code : ASR_ERR_NO_MEMORY;
    asr_transcribe_params tp = asr_transcribe_default_params();
    tp.n_threads = t->n_threads;
    asr_result *res = NULL;
    asr_status s = asr_transcribe(st, t->samples, t->n, &tp, &res, err);
    if (s == ASR_OK) {
        const char *text = asr_result_text(res);
        if (!text) s = ASR_ERR_INTERNAL; /* a result must have text, even "" */
        else *fingerprint = hash_bytes(14695981039346656037ul, text, strlen(text));
    }
    asr_result_free(res);
    asr_state_free(st);
    return s;
}

/* Decoding a file as the server and the CLI do (FFmpeg's own allocations are not seen,
 * the sample buffers and resampling are). */
static asr_status run_decode(const void *ctx, unsigned long *fingerprint, asr_error *err)
{
    asr_audio a;
    asr_status s = asr_audio_decode_file(ctx, NULL, &a, err);
    if (s == ASR_OK) {
        *fingerprint = hash_bytes(14695981039346656037ul, a.samples, a.n_samples * sizeof *a.samples);
        asr_audio_free(&a);
    }
    return s;
}

/* Counts the allocations of one clean run, then fails each chosen one in turn. */
static void inject(const char *what, run_fn fn, const void *ctx, int stride)
{
    asr_error err;
    unsigned long clean = 0, got = 0;
    atomic_store(&fail_at, -1);
    atomic_store(&n_calls, 0);
    long live0 = atomic_load(&live);
    asr_status s = fn(ctx, &clean, &err);
    long total = atomic_load(&n_calls);
    CHECK(s == ASR_OK, "%s without injected failure succeeds (%s), %ld allocations", what,
          s == ASR_OK ? "" : err.message, total);
    CHECK(atomic_load(&live) == live0, "%s leaves no block behind (%ld live)", what, atomic_load(&live) - live0);
    if (s != ASR_OK) return;
    int tried = 0, bad_status = 0, leaked = 0, no_memory = 0, succeeded = 0, differ = 0;
    long first_bad = -1, first_leak = -1, first_differ = -1;
    for (long n = 0; n < total; n = stride > 1 ? n + stride : next_n(n)) {
        atomic_store(&n_calls, 0);
        live0 = atomic_load(&live);
        atomic_store(&fail_at, n);
        memset(&err, 0, sizeof err);
        got = 0;
        s = fn(ctx, &got, &err);
        atomic_store(&fail_at, -1);
        if (s == ASR_OK && got != clean) {
            if (first_differ < 0) first_differ = n;
            differ++;
        }
        tried++;
        if (getenv("ALLOC_FAIL_VERBOSE")) printf("     %s N=%ld status %d calls %ld %s\n", what, n, (int)s, atomic_load(&n_calls), err.message);
        if (s == ASR_OK) succeeded++;
        else if (s == ASR_ERR_NO_MEMORY) no_memory++;
        /* an allocation that fails is not a corrupt model: that would send an operator looking
         * at a good file (a short read of the vocabulary did exactly that); any other status
         * must still be a real error with a message */
        if (s == ASR_ERR_MODEL) {
            if (first_bad < 0) first_bad = n;
            bad_status++;
        } else
        if (s != ASR_OK && (s < ASR_ERR_INVALID_ARGUMENT || s > ASR_ERR_INTERNAL || s == ASR_ERR_INTERNAL ||
                            !err.message[0])) {
            if (first_bad < 0) first_bad = n;
            bad_status++;
        }
        if (atomic_load(&live) != live0) {
            if (first_leak < 0) {
                first_leak = n;
                printf("     %s: failing allocation %ld leaks %ld blocks (status %d: %s)\n", what, n,
                       atomic_load(&live) - live0, (int)s, err.message);
            }
            leaked++;
        }
    }
    CHECK(bad_status == 0, "%s: every failed allocation gives a clean error status (%d of %d not; first N=%ld)", what,
          bad_status, tried, first_bad);
    CHECK(leaked == 0, "%s: no failed allocation leaks (%d of %d leak; first N=%ld)", what, leaked, tried,
          first_leak);
    CHECK(differ == 0, "%s: a run that succeeds despite a failed allocation makes what a clean run makes "
          "(%d of %d differ; first N=%ld)", what, differ, succeeded, first_differ);
    CHECK(no_memory > 0, "%s: failures surface as ASR_ERR_NO_MEMORY (%d of %d; %d still succeed)", what, no_memory,
          tried, succeeded);
}

int main(void)
{
    if (getenv("ALLOC_FAIL_TRACE")) setvbuf(stdout, NULL, _IONBF, 0);
    write_model();
    inject("asr_model_load (ggml)", run_load, model_path, 1);
    int have_ct2 = write_ct2_dir();
    CHECK(have_ct2, "a CTranslate2 directory made beside the test model's vocabulary.txt (ASR_TEST_MODEL)");
    if (have_ct2) inject("asr_model_load (CTranslate2)", run_load, ct2_dir, 1);
    remove_ct2_dir();

    asr_model *m = NULL;
    asr_error err;
    asr_model_params p = asr_model_default_params();
    p.n_threads = 1;
    asr_status s = asr_model_load(model_path, &p, &m, &err);
    CHECK(s == ASR_OK, "the synthetic model loads (%s)", s == ASR_OK ? "" : err.message);
    if (s == ASR_OK) {
        enum { N = 16000 };
        float *tone = malloc(N * sizeof *tone);
        for (int i = 0; tone && i < N; i++) tone[i] = 0.3f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / 16000.0f);
        transcribe_ctx t = {m, tone, N, 1};
        if (tone) inject("asr_transcribe", run_transcribe, &t, 1);
        t.n_threads = 2; /* the thread pool's own allocations */
        if (tone) inject("asr_transcribe on 2 threads", run_transcribe, &t, 5);
        free(tone);
        asr_model_free(m);
    }
    char flac[4200];
    const char *shared = getenv("ASR_SHARED");
    snprintf(flac, sizeof flac, "%s/testdata/jfk.flac", shared && *shared ? shared : "/work/shared");
    inject("asr_audio_decode_file (jfk.flac)", run_decode, flac, 1);
    unlink(model_path);
    return CHECK_DONE();
}
