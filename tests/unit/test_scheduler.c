/* test_scheduler.c — decoder steps shared by several states give each state exactly the logits it gets alone.
 *
 * On a synthetic model, for float32, bfloat16 and int8:
 * 1. asr_decode_steps over three states at different positions and batch
 *    sizes (1, 16, 1) writes into each state the same logits, bit for bit, as
 *    asr_decode of that state alone (a step re-run at the same position
 *    rewrites the same cache entries, so the alone run can come first).
 * 2. Four threads, each with a scheduled state (asr_state_new_scheduled) and
 *    its own random window, encode and decode 12 greedy tokens; the tokens
 *    and the last logits equal the same run on plain states one after the
 *    other, and the scheduler did share steps (mean sequences per step > 1).
 * 3. Bad parameters are refused with ASR_ERR_INVALID_ARGUMENT.
 */
#include "check.h"
#include "engine.h"
#include "synth_model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { THREADS = 4, STEPS = 12, MAX_ROWS = ASR_MAX_BATCH };

static void fill_random(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* One request's run: encode its window, a two-token prompt, then greedy
 * steps for `rows` sequences (sequence r starts from prompt token 11 + r). */
typedef struct run {
    asr_state *st;
    int rows, seed;
    int tokens[MAX_ROWS][STEPS];
    float *last_logits; /* (rows, V) after the last step */
    asr_status status;
} run;

static void *do_run(void *arg)
{
    run *r = arg;
    asr_state *st = r->st;
    asr_error err;
    const int V = st->model->hp.n_vocab;
    fill_random(st->mel, (size_t)st->model->hp.n_mels * ASR_N_FRAMES, (uint64_t)r->seed);
    asr_status s = asr_encode(st, st->mel, &err);
    if (s == ASR_OK) s = asr_state_reserve(st, r->rows, &err);
    int prompt[2 * MAX_ROWS];
    for (int b = 0; b < r->rows; b++) prompt[2 * b] = 50257, prompt[2 * b + 1] = 11 + b;
    if (st->sched) asr_sched_decoding(st, r->rows);
    if (s == ASR_OK) s = asr_decode(st, prompt, r->rows, 2, 0, 1, &err);
    for (int k = 0; s == ASR_OK && k < STEPS; k++) {
        int next[MAX_ROWS];
        for (int b = 0; b < r->rows; b++) next[b] = r->tokens[b][k] = argmax(st->logits + (size_t)b * V, V);
        s = asr_decode(st, next, r->rows, 1, 2 + k, 0, &err);
    }
    if (st->sched) asr_sched_decoding(st, 0);
    if (s == ASR_OK) memcpy(r->last_logits, st->logits, (size_t)r->rows * V * sizeof(float));
    r->status = s;
    return NULL;
}

static void check_type(const char *path, asr_compute_type type, const char *name)
{
    asr_error err;
    asr_model *m = NULL;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = 2;
    mp.compute_type = type;
    asr_status s = asr_model_load(path, &mp, &m, &err);
    CHECK(s == ASR_OK, "%s: load the synthetic model: %s", name, err.message);
    if (s != ASR_OK) return;
    const int V = m->hp.n_vocab;
    const size_t mel_n = (size_t)m->hp.n_mels * ASR_N_FRAMES;

    /* 1. asr_decode_steps against asr_decode alone */
    asr_state *ws = asr_state_new(m, &err), *st[3];
    const int batch[3] = {1, ASR_MAX_BATCH, 1}, n_prompt[3] = {2, 2, 3}; /* 18 rows: above the small-product height */
    float *alone[3];
    asr_step steps[3];
    int tok[3][MAX_ROWS];
    for (int i = 0; i < 3; i++) {
        st[i] = asr_state_new(m, &err);
        fill_random(st[i]->mel, mel_n, 100 + (uint64_t)i);
        s = asr_encode(st[i], st[i]->mel, &err);
        if (s == ASR_OK) s = asr_state_reserve(st[i], batch[i], &err);
        int prompt[3 * MAX_ROWS];
        for (int r = 0; r < batch[i] * n_prompt[i]; r++) prompt[r] = 50257 + r % n_prompt[i] + r / n_prompt[i];
        if (s == ASR_OK) s = asr_decode(st[i], prompt, batch[i], n_prompt[i], 0, n_prompt[i] - 1, &err);
        for (int b = 0; b < batch[i]; b++) tok[i][b] = argmax(st[i]->logits + (size_t)b * V, V);
        if (s == ASR_OK) s = asr_decode(st[i], tok[i], batch[i], 1, n_prompt[i], 0, &err);
        alone[i] = malloc((size_t)batch[i] * V * sizeof(float));
        memcpy(alone[i], st[i]->logits, (size_t)batch[i] * V * sizeof(float));
        memset(st[i]->logits, 0, (size_t)batch[i] * V * sizeof(float));
        CHECK(s == ASR_OK, "%s: state %d prompt and step alone", name, i);
        asr_error *e = malloc(sizeof *e);
        steps[i] = (asr_step){st[i], tok[i], batch[i], n_prompt[i], ASR_OK, e};
    }
    float *logits = malloc((size_t)ws->rows_cap * V * sizeof(float));
    asr_decode_steps(ws, logits, steps, 3);
    for (int i = 0; i < 3; i++) {
        CHECK(steps[i].status == ASR_OK, "%s: shared step, state %d ran", name, i);
        CHECK(memcmp(alone[i], st[i]->logits, (size_t)batch[i] * V * sizeof(float)) == 0,
              "%s: shared step, state %d (batch %d at position %d): logits identical to alone", name, i, batch[i],
              n_prompt[i]);
    }
    CHECK(memcmp(alone[0], alone[2], (size_t)V * sizeof(float)) != 0, "%s: the states' logits differ", name);
    int bad_tok = V;
    asr_step bad = {st[0], &bad_tok, 1, 3, ASR_OK, steps[0].err};
    asr_decode_steps(ws, logits, &bad, 1);
    CHECK(bad.status == ASR_ERR_INTERNAL, "%s: a token outside the vocabulary is refused", name);
    for (int i = 0; i < 3; i++) {
        free(steps[i].err);
        free(alone[i]);
        asr_state_free(st[i]);
    }
    free(logits);
    asr_state_free(ws);

    /* 2. threads on a scheduler against plain states one at a time */
    asr_scheduler_params sp = asr_scheduler_default_params();
    sp.max_wait_us = 200000; /* long, so steps wait for all four: the test sees sharing */
    asr_scheduler *sched = NULL;
    s = asr_scheduler_new(m, &sp, &sched, &err);
    CHECK(s == ASR_OK, "%s: asr_scheduler_new: %s", name, err.message);
    run plain[THREADS], shared[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        int rows = i == 1 ? 3 : 1;
        plain[i] = (run){.st = asr_state_new(m, &err), .rows = rows, .seed = 7 + i};
        shared[i] = (run){.st = sched ? asr_state_new_scheduled(sched, &err) : NULL, .rows = rows, .seed = 7 + i};
        plain[i].last_logits = malloc((size_t)rows * V * sizeof(float));
        shared[i].last_logits = malloc((size_t)rows * V * sizeof(float));
        do_run(&plain[i]);
    }
    for (int i = 0; i < THREADS && sched; i++) pthread_create(&th[i], NULL, do_run, &shared[i]);
    for (int i = 0; i < THREADS && sched; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS && sched; i++) {
        int same = plain[i].status == ASR_OK && shared[i].status == ASR_OK &&
                   memcmp(plain[i].tokens, shared[i].tokens, sizeof plain[i].tokens) == 0 &&
                   memcmp(plain[i].last_logits, shared[i].last_logits, (size_t)plain[i].rows * V * sizeof(float)) == 0;
        CHECK(same, "%s: thread %d (%d sequences) on the scheduler: tokens and logits identical to alone", name, i,
              plain[i].rows);
    }
    if (sched) {
        asr_scheduler_stats stats;
        asr_scheduler_get_stats(sched, &stats);
        double mean = stats.steps ? (double)stats.step_sequences / (double)stats.steps : 0;
        CHECK(stats.states == THREADS && stats.decoding_sequences == 0 && stats.queued == 0,
              "%s: stats after the runs: %d states, %d decoding, %d queued", name, stats.states,
              stats.decoding_sequences, stats.queued);
        CHECK(mean > 1.5, "%s: steps were shared: %llu steps, %.2f sequences each", name,
              (unsigned long long)stats.steps, mean);
        CHECK(stats.jobs >= THREADS * 2, "%s: encoder windows and prompts ran as jobs (%llu)", name,
              (unsigned long long)stats.jobs);
    }
    for (int i = 0; i < THREADS; i++) {
        asr_state_free(plain[i].st);
        asr_state_free(shared[i].st);
        free(plain[i].last_logits);
        free(shared[i].last_logits);
    }
    asr_scheduler_free(sched);
    asr_model_free(m);
}

int main(void)
{
    (void)synth_ct2_model, (void)synth_ct2_alias, (void)synth_ct2_finish; /* the CTranslate2 writer is unused */
    synth_hp hp = synth_default_hp();
    hp.d = 32;
    hp.heads = 2;
    hp.dec_layers = 2;
    hp.n_text_ctx = 32;
    synth_buf file = {0};
    synth_ggml_model(&file, &hp);
    char path[] = "/tmp/asr-test-scheduler-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, file.p, file.n) == (ssize_t)file.n, "write the synthetic model");
    if (fd >= 0) close(fd);
    free(file.p);

    check_type(path, ASR_COMPUTE_FLOAT32, "float32");
    check_type(path, ASR_COMPUTE_BFLOAT16, "bfloat16");
    check_type(path, ASR_COMPUTE_INT8, "int8");

    /* 3. bad parameters */
    asr_error err;
    asr_model *m = NULL;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = 1;
    if (asr_model_load(path, &mp, &m, &err) == ASR_OK) {
        asr_scheduler *s = NULL;
        asr_scheduler_params sp = asr_scheduler_default_params();
        sp.max_sequences = ASR_MAX_BATCH - 1;
        CHECK(asr_scheduler_new(m, &sp, &s, &err) == ASR_ERR_INVALID_ARGUMENT && !s,
              "max_sequences below one state's %d sequences is refused: %s", ASR_MAX_BATCH, err.message);
        sp = asr_scheduler_default_params();
        sp.max_wait_us = -1;
        CHECK(asr_scheduler_new(m, &sp, &s, &err) == ASR_ERR_INVALID_ARGUMENT, "a negative wait is refused");
        CHECK(asr_scheduler_new(NULL, NULL, &s, &err) == ASR_ERR_INVALID_ARGUMENT, "a NULL model is refused");
        CHECK(asr_state_new_scheduled(NULL, &err) == NULL && err.code == ASR_ERR_INVALID_ARGUMENT,
              "a state on a NULL scheduler is refused");
        asr_model_free(m);
    }
    unlink(path);
    return CHECK_DONE();
}
