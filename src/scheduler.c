/* scheduler.c — one compute thread for many states: their encoder windows one at a time, their decoder steps together.
 *
 * Each scheduled state keeps its transcription loop in its caller's thread
 * and hands every forward pass here (asr_sched_run, asr_sched_step), then
 * blocks until it ran. The scheduler thread takes the submissions in order,
 * with one exception that is the point of it: single-token decoder steps of
 * different states are run as one step (asr_decode_steps), so the decoder's
 * weights are read once per token for all of them. Other work (encoder
 * windows, prompts) goes first: every queued request needs it before it can
 * join the steps, and the more states a step carries the less each token
 * costs — the longest a decoding state waits is the encoder windows of the
 * other workers' requests, one each at most. A step then waits up to
 * max_wait_us for every state inside a decode loop to bring its next token. */
#include "engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ITEM_JOB, ITEM_STEP };

typedef struct sched_item {
    struct sched_item *next;
    int kind;
    asr_state *st;
    asr_sched_job_fn fn; /* ITEM_JOB */
    void *ctx;
    const int *tokens;   /* ITEM_STEP */
    int batch, n_past;
    asr_status status;
    asr_error *err;
    double submitted;
    int done;
    pthread_cond_t done_cv;
} sched_item;

struct asr_scheduler {
    const asr_model *model;
    asr_state *ws;   /* workspace: the thread pool, encoder buffers, step rows */
    float *logits;   /* (max_sequences, n_vocab) of a step                     */
    int max_sequences, max_wait_us;

    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_t thread;
    int started, stop;
    sched_item *head, *tail;
    int decoding_states;      /* states with sched_sequences > 0 */
    asr_scheduler_stats stats;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

asr_scheduler_params asr_scheduler_default_params(void)
{
    return (asr_scheduler_params){.n_threads = 0, .max_sequences = 64, .max_wait_us = 2000};
}

const asr_model *asr_sched_model(const asr_scheduler *s)
{
    return s->model;
}

static void unlink_item(asr_scheduler *s, sched_item *prev, sched_item *it)
{
    if (prev) prev->next = it->next;
    else s->head = it->next;
    if (s->tail == it) s->tail = prev;
    it->next = NULL;
    s->stats.queued--;
}

static void finish(asr_scheduler *s, sched_item *it, double started)
{
    s->stats.wait_seconds += started - it->submitted;
    it->done = 1;
    pthread_cond_signal(&it->done_cv);
}

static int size_bucket(int n)
{
    int b = 0;
    for (int cap = 1; n > cap && b < 8; cap *= 2) b++;
    return b;
}

/* Take the queued steps (in order, up to max_sequences rows) and run them
 * as one; called and returns with mu held. */
static void run_steps(asr_scheduler *s)
{
    asr_step steps[ASR_SCHED_MAX_STATES];
    sched_item *items[ASR_SCHED_MAX_STATES];
    int n = 0, rows = 0;
    sched_item *prev = NULL;
    for (sched_item *it = s->head, *next; it && n < ASR_SCHED_MAX_STATES; it = next) {
        next = it->next;
        if (it->kind != ITEM_STEP || (n > 0 && rows + it->batch > s->max_sequences)) {
            prev = it;
            continue;
        }
        unlink_item(s, prev, it);
        items[n] = it;
        steps[n] = (asr_step){it->st, it->tokens, it->batch, it->n_past, ASR_OK, it->err};
        rows += it->batch;
        n++;
    }
    double t0 = now_s();
    pthread_mutex_unlock(&s->mu);
    asr_decode_steps(s->ws, s->logits, steps, n);
    double t1 = now_s();
    pthread_mutex_lock(&s->mu);
    s->stats.steps++;
    s->stats.step_sequences += (uint64_t)rows;
    s->stats.step_states += (uint64_t)n;
    s->stats.steps_by_size[size_bucket(rows)]++;
    s->stats.busy_seconds += t1 - t0;
    for (int i = 0; i < n; i++) {
        items[i]->status = steps[i].status;
        finish(s, items[i], t0);
    }
}

static void run_job(asr_scheduler *s, sched_item *prev, sched_item *it)
{
    unlink_item(s, prev, it);
    double t0 = now_s();
    pthread_mutex_unlock(&s->mu);
    it->status = it->fn(it->ctx, s->ws, it->err);
    double t1 = now_s();
    pthread_mutex_lock(&s->mu);
    s->stats.jobs++;
    s->stats.busy_seconds += t1 - t0;
    finish(s, it, t0);
}

static void *scheduler_main(void *arg)
{
    asr_scheduler *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) pthread_cond_wait(&s->work, &s->mu);
        if (!s->head) break; /* stopping, nothing left */
        int steps = 0, jobs_of_decoders = 0;
        double oldest_step = 0;
        sched_item *job = NULL, *job_prev = NULL, *prev = NULL;
        for (sched_item *it = s->head; it; prev = it, it = it->next) {
            if (it->kind == ITEM_STEP) {
                if (!steps++) oldest_step = it->submitted;
            } else {
                if (!job) {
                    job = it;
                    job_prev = prev;
                }
                jobs_of_decoders += it->st->sched_sequences > 0;
            }
        }
        /* states inside a decode loop whose next token is not here yet */
        int missing = s->decoding_states - steps - jobs_of_decoders;
        double waited = steps ? now_s() - oldest_step : 0;
        if (job) {
            run_job(s, job_prev, job);
        } else if (missing <= 0 || waited * 1e6 >= s->max_wait_us || s->stop) {
            run_steps(s);
        } else {
            double until = oldest_step + s->max_wait_us * 1e-6;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double left = until - now_s();
            if (left < 0) left = 0;
            long ns = ts.tv_nsec + (long)(left * 1e9);
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&s->work, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

asr_status asr_scheduler_new(const asr_model *model, const asr_scheduler_params *params, asr_scheduler **out,
                             asr_error *err)
{
    asr_error_clear(err);
    if (!out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_scheduler_new: out is NULL");
    *out = NULL;
    if (!model) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_scheduler_new: model is NULL");
    asr_scheduler_params p = params ? *params : asr_scheduler_default_params();
    if (p.n_threads < 0 || p.n_threads > 1024)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "scheduler threads %d outside 0..1024", p.n_threads);
    /* one state's sequences (beam, best_of) always fit in a step */
    if (p.max_sequences < ASR_MAX_BATCH || p.max_sequences > ASR_SCHED_MAX_STATES)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "scheduler max_sequences %d outside %d..%d", p.max_sequences,
                        ASR_MAX_BATCH, ASR_SCHED_MAX_STATES);
    if (p.max_wait_us < 0 || p.max_wait_us > 1000000)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "scheduler max_wait_us %d outside 0..1000000", p.max_wait_us);
    asr_scheduler *s = calloc(1, sizeof *s);
    if (!s) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    s->model = model;
    s->max_wait_us = p.max_wait_us;
    s->ws = asr_state_new(model, err);
    asr_status st = s->ws ? ASR_OK : err->code;
    if (st == ASR_OK && p.n_threads > 0) st = asr_state_set_threads(s->ws, p.n_threads, err);
    if (st == ASR_OK) {
        /* a step's rows live in the workspace's decoder rows */
        s->max_sequences = p.max_sequences < s->ws->rows_cap ? p.max_sequences : s->ws->rows_cap;
        s->logits = malloc((size_t)s->max_sequences * (size_t)model->hp.n_vocab * sizeof(float));
        if (!s->logits) st = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory for the scheduler's logits");
    }
    if (st == ASR_OK) {
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->work, NULL);
        if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
            pthread_mutex_destroy(&s->mu);
            pthread_cond_destroy(&s->work);
            st = asr_fail(err, ASR_ERR_NO_MEMORY, "cannot start the scheduler thread");
        } else {
            s->started = 1;
        }
    }
    if (st != ASR_OK) {
        asr_state_free(s->ws);
        free(s->logits);
        free(s);
        return st;
    }
    *out = s;
    return ASR_OK;
}

void asr_scheduler_free(asr_scheduler *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    asr_state_free(s->ws);
    free(s->logits);
    free(s);
}

void asr_sched_attach(asr_scheduler *s, asr_state *st)
{
    pthread_mutex_lock(&s->mu);
    st->sched = s;
    s->stats.states++;
    pthread_mutex_unlock(&s->mu);
}

void asr_sched_detach(asr_state *st)
{
    asr_sched_decoding(st, 0);
    asr_scheduler *s = st->sched;
    pthread_mutex_lock(&s->mu);
    s->stats.states--;
    pthread_mutex_unlock(&s->mu);
    st->sched = NULL;
}

void asr_sched_decoding(asr_state *st, int sequences)
{
    asr_scheduler *s = st->sched;
    if (sequences < 0) sequences = 0;
    pthread_mutex_lock(&s->mu);
    s->decoding_states += (sequences > 0) - (st->sched_sequences > 0);
    s->stats.decoding_sequences += sequences - st->sched_sequences;
    st->sched_sequences = sequences;
    pthread_cond_signal(&s->work); /* a step may no longer need to wait for it */
    pthread_mutex_unlock(&s->mu);
}

/* Queue it and wait until the scheduler thread marked it done. */
static asr_status submit(asr_scheduler *s, sched_item *it)
{
    pthread_cond_init(&it->done_cv, NULL);
    pthread_mutex_lock(&s->mu);
    it->submitted = now_s();
    if (s->tail) s->tail->next = it;
    else s->head = it;
    s->tail = it;
    s->stats.queued++;
    pthread_cond_signal(&s->work);
    while (!it->done) pthread_cond_wait(&it->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&it->done_cv);
    return it->status;
}

asr_status asr_sched_run(asr_state *st, asr_sched_job_fn fn, void *ctx, asr_error *err)
{
    sched_item it = {.kind = ITEM_JOB, .st = st, .fn = fn, .ctx = ctx, .err = err};
    return submit(st->sched, &it);
}

asr_status asr_sched_step(asr_state *st, const int *tokens, int batch, int n_past, asr_error *err)
{
    if (batch < 1 || batch > st->sched->max_sequences)
        return asr_fail(err, ASR_ERR_INTERNAL, "scheduled step of %d sequences", batch);
    sched_item it = {.kind = ITEM_STEP, .st = st, .tokens = tokens, .batch = batch, .n_past = n_past, .err = err};
    return submit(st->sched, &it);
}

void asr_scheduler_get_stats(asr_scheduler *s, asr_scheduler_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}
