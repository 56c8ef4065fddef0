/* jobs.c — the decode worker pool: a bounded FIFO of jobs and N threads, each owning one asr_state. */
#include "server/server.h"
#include "internal.h" /* asr_fail, asr_error_clear */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct srv_worker {
    srv_pool *pool;
    pthread_t thread;
    asr_state *state;
    asr_state *model_states[SRV_MAX_MODELS]; /* for jobs on other served models, made on first use */
    int busy;               /* guarded by pool->mu */
    _Atomic double last_beat; /* monotonic seconds of the last sign of progress */
    srv_job *job;           /* the running job, for abort_all; guarded by pool->mu */
} srv_worker;

struct srv_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued or the pool is stopping */
    srv_job **queued;    /* waiting jobs in arrival order, capacity cap */
    int cap, count;
    int stopping;
    int n_workers, busy;
    srv_worker *workers;
    const asr_model *model;
    int n_threads;
    srv_metrics *metrics;
    double avg_job_s; /* moving average of job wall time, for Retry-After */
    int long_batch;   /* --batch-size: batched long-form for uploads over 30 s; 0 = off */
};

/* ---- events: reported to the job's listener, if any ----------------------- */

static void report(srv_job *job, const srv_job_event *event) /* caller holds job->mu */
{
    if (!job->on_event) return;
    job->on_event(job, event);
    pthread_cond_broadcast(&job->changed);
}

static void on_segment(const asr_segment *segment, void *user_data)
{
    srv_worker *w = user_data;
    w->last_beat = srv_now();
    srv_job *job = w->job;
    if (!job->on_event) return;
    pthread_mutex_lock(&job->mu);
    report(job, &(srv_job_event){.kind = SRV_EVENT_SEGMENT, .segment = segment});
    pthread_mutex_unlock(&job->mu);
}

static int should_abort(void *user_data)
{
    srv_worker *w = user_data;
    double now = srv_now();
    w->last_beat = now;
    srv_job *job = w->job;
    return atomic_load(&job->abort) || (job->deadline > 0 && now > job->deadline);
}

/* Polled by the audio decoder: a client gone or a shutdown stops decoding
 * too (its deadline is limits.deadline_s, which reports ASR_ERR_TIMEOUT). */
static int decode_should_abort(void *user_data)
{
    srv_worker *w = user_data;
    w->last_beat = srv_now();
    return atomic_load(&w->job->abort);
}

static void on_progress(float fraction, void *user_data)
{
    srv_worker *w = user_data;
    w->last_beat = srv_now();
    srv_job *job = w->job;
    if (!job->on_event) return;
    pthread_mutex_lock(&job->mu);
    report(job, &(srv_job_event){.kind = SRV_EVENT_PROGRESS, .fraction = fraction});
    pthread_mutex_unlock(&job->mu);
}

static void set_phase(srv_job *job, srv_job_phase phase)
{
    pthread_mutex_lock(&job->mu);
    job->phase = phase;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->mu);
}

/* The most audio a queued upload may decode to: raw s16le has exactly 2
 * bytes a sample; any other upload at most SRV_AUDIO_S_PER_BYTE seconds a
 * byte (twice the densest real encoder output, digital silence at 0.011 s a
 * byte in ASR_AUDIO_MAX_SECONDS_PER_BYTE's measurements), but always
 * SRV_AUDIO_MIN_S. submit() lowers a compressed upload's max_duration_s to
 * it, so the decoder enforces the bound the queue orders by (raw PCM cannot
 * pass its bound). */
#define SRV_AUDIO_S_PER_BYTE 0.02
#define SRV_AUDIO_MIN_S 60.0
static double audio_bound_s(const srv_job *job)
{
    if (job->limits.raw_pcm_s16le) return (double)job->upload_size / (2.0 * ASR_SAMPLE_RATE);
    double bound = (double)job->upload_size * SRV_AUDIO_S_PER_BYTE;
    return bound < SRV_AUDIO_MIN_S ? SRV_AUDIO_MIN_S : bound;
}

/* The state a job runs on: the worker's own for the default model; for
 * another, the model is acquired (loaded again if idle unload freed it) and
 * the state is the worker's for that model, made on first use and kept, or,
 * for a model that may be unloaded, one made for this job (*owned; it must
 * not outlive the weights). asr_state_new costs 1-3 ms of allocation for
 * tiny/base. On NULL nothing is held. */
static asr_state *state_for(srv_worker *w, srv_model *m, int *owned, asr_error *err)
{
    *owned = 0;
    if (!m || m->index == 0) return w->state;
    if (m->index < 0 || m->index >= SRV_MAX_MODELS) {
        asr_fail(err, ASR_ERR_INTERNAL, "model index out of range");
        return NULL;
    }
    const asr_model *model = srv_model_acquire(m, err);
    if (!model) return NULL;
    asr_state *st;
    if (m->unloadable) {
        st = srv_model_state_new(m, model, err);
        *owned = st != NULL;
    } else {
        if (!w->model_states[m->index]) w->model_states[m->index] = srv_model_state_new(m, model, err);
        st = w->model_states[m->index];
    }
    if (!st) srv_model_release(m);
    return st;
}

static void run_job(srv_worker *w, srv_job *job)
{
    srv_pool *pool = w->pool;
    int multilingual = job->model ? job->model->info.multilingual : asr_model_is_multilingual(pool->model);
    asr_state *state = NULL;
    int state_owned = 0, model_held = 0;
    double t0 = srv_now();
    asr_status st;
    asr_error err;
    asr_error_clear(&err);
    asr_audio audio = {0};

    if (atomic_load(&job->abort)) {
        st = asr_fail(&err, ASR_ERR_CANCELLED, "request cancelled before it started");
        goto done;
    }
    if (job->deadline > 0 && t0 > job->deadline) {
        st = asr_fail(&err, ASR_ERR_TIMEOUT, "request deadline passed while queued");
        goto done;
    }
    set_phase(job, SRV_JOB_DECODING);
    asr_audio_limits limits = job->limits;
    if (job->deadline > 0) {
        double left = job->deadline - t0;
        if (limits.deadline_s <= 0 || left < limits.deadline_s) limits.deadline_s = left > 0.001 ? left : 0.001;
    }
    limits.should_abort = decode_should_abort;
    limits.abort_user_data = w;
    size_t upload_size = job->upload_size;
    st = asr_audio_decode_memory(job->upload, job->upload_size, &limits, &audio, &err);
    if (st == ASR_ERR_TOO_LARGE && job->size_bounded) /* the upload's own bound, not the server's duration limit */
        st = asr_fail(&err, ASR_ERR_AUDIO,
                      "audio: %zu bytes of input decode to more than %.0f s of audio (over %.2g s per byte): "
                      "the file is malformed or crafted", upload_size, limits.max_duration_s, SRV_AUDIO_S_PER_BYTE);
    pthread_mutex_lock(&job->mu);
    free(job->upload); /* the samples are all we need now; free the upload early */
    job->upload = NULL;
    job->upload_size = 0;
    pthread_mutex_unlock(&job->mu);
    if (st == ASR_ERR_TIMEOUT && !(job->deadline > 0 && srv_now() > job->deadline))
        st = asr_fail(&err, ASR_ERR_AUDIO, "decoding the audio took longer than its %.0f s limit", limits.deadline_s);
    if (st != ASR_OK) goto done;
    job->audio_s = (double)audio.n_samples / ASR_SAMPLE_RATE;
    state = state_for(w, job->model, &state_owned, &err);
    if (!state) { st = err.code ? err.code : ASR_ERR_NO_MEMORY; goto done; }
    model_held = job->model && job->model->index != 0;
    set_phase(job, SRV_JOB_RUNNING);

    if (job->kind == SRV_JOB_DETECT_LANGUAGE) {
        if (!multilingual) {
            /* An English-only model knows one language (faster-whisper answers the same). */
            job->lang_index = asr_lang_find("en");
            job->lang_prob = 1.0f;
        } else {
            int n = asr_lang_count();
            float *probs = calloc((size_t)n, sizeof *probs);
            if (!probs) { st = asr_fail(&err, ASR_ERR_NO_MEMORY, "out of memory"); goto done; }
            int idx = -1;
            st = asr_detect_language(state, audio.samples, audio.n_samples, &idx, probs, &err);
            if (st == ASR_OK) {
                job->lang_index = idx;
                job->lang_prob = (idx >= 0 && idx < n) ? probs[idx] : 0.0f;
            }
            free(probs);
        }
        goto done;
    }

    asr_transcribe_params tp = asr_transcribe_default_params();
    tp.task = job->task;
    /* An English-only model has no task tokens: like openai-whisper and
     * faster-whisper, "translate to English" is then plain transcription, and
     * the result reports the task the client asked for. */
    int english_only_translate = job->task == ASR_TASK_TRANSLATE && !multilingual;
    if (english_only_translate) tp.task = ASR_TASK_TRANSCRIBE;
    tp.language = job->language[0] ? job->language : NULL;
    tp.initial_prompt = job->prompt;
    tp.n_threads = pool->n_threads;
    tp.word_timestamps = job->word_timestamps;
    tp.vad_filter = job->vad_filter;
    tp.vad = job->vad;
    /* long uploads: VAD chunks decoded together (no conditioning on the
     * previous window's text, as faster-whisper's batched pipeline) */
    if (pool->long_batch > 0 && job->audio_s > 30.0) tp.batch_size = pool->long_batch;
    if (job->temperature >= 0) /* the ladder from it; unset: the default, the same ladder from 0 */
        tp.n_temperatures = srv_temperature_ladder(job->temperature, SRV_TEMPERATURE_INCREMENT, tp.temperatures,
                                                   ASR_MAX_TEMPERATURES);
    tp.on_segment = on_segment;
    tp.on_progress = on_progress;
    tp.should_abort = should_abort;
    tp.user_data = w;
    asr_result *result = NULL;
    st = asr_transcribe(state, audio.samples, audio.n_samples, &tp, &result, &err);
    if (st == ASR_ERR_CANCELLED && job->deadline > 0 && srv_now() > job->deadline && !atomic_load(&job->abort))
        st = asr_fail(&err, ASR_ERR_TIMEOUT, "request deadline passed during transcription");
    if (st == ASR_OK) {
        if (english_only_translate) result->task = ASR_TASK_TRANSLATE;
        pthread_mutex_lock(&job->mu);
        job->result = result;
        report(job, &(srv_job_event){.kind = SRV_EVENT_DONE, .result = result});
        pthread_mutex_unlock(&job->mu);
    }

done:
    asr_audio_free(&audio);
    if (state_owned) asr_state_free(state);
    if (model_held) srv_model_release(job->model);
    double busy = srv_now() - t0;
    pthread_mutex_lock(&job->mu);
    if (st != ASR_OK) report(job, &(srv_job_event){.kind = SRV_EVENT_ERROR, .status = st, .err = &err});
    job->status = st;
    job->err = err;
    job->busy_s = busy;
    job->phase = SRV_JOB_DONE;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->mu);
    const char *outcome = st == ASR_OK ? "ok" : st == ASR_ERR_CANCELLED ? "cancelled"
                        : st == ASR_ERR_TIMEOUT ? "timeout" : "error";
    srv_metrics_job(pool->metrics, outcome, st == ASR_OK ? job->audio_s : 0.0, busy);
    pthread_mutex_lock(&pool->mu);
    pool->avg_job_s = pool->avg_job_s <= 0 ? busy : 0.8 * pool->avg_job_s + 0.2 * busy;
    pthread_mutex_unlock(&pool->mu);
}

/* The queue policy: the job with the least audio it can possibly decode to
 * goes first (so a 3-second clip is not queued behind a 10-minute file, and a
 * tiny upload that decodes to hours cannot jump ahead: it is refused at its
 * bound), equal bounds in arrival order; a job that has waited
 * SRV_FAIR_WAIT_S is taken first regardless, so long files are delayed by at
 * most that long on top of FIFO order. Caller holds mu; count > 0. */
#define SRV_FAIR_WAIT_S 30.0
static double queue_key_s(const srv_job *job)
{
    double bound = audio_bound_s(job), limit = job->limits.max_duration_s;
    return limit > 0 && limit < bound ? limit : bound;
}

static int pick_next(const srv_pool *pool, double now)
{
    if (now - pool->queued[0]->queued_at >= SRV_FAIR_WAIT_S) return 0;
    int best = 0;
    double best_s = queue_key_s(pool->queued[0]);
    for (int i = 1; i < pool->count; i++) {
        double key = queue_key_s(pool->queued[i]);
        if (key < best_s) { best = i; best_s = key; }
    }
    return best;
}

static void *worker_main(void *arg)
{
    srv_worker *w = arg;
    srv_pool *pool = w->pool;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stopping && pool->count == 0) pthread_cond_wait(&pool->work, &pool->mu);
        if (pool->stopping) break;
        int pick = pick_next(pool, srv_now());
        srv_job *job = pool->queued[pick];
        memmove(pool->queued + pick, pool->queued + pick + 1, (size_t)(pool->count - pick - 1) * sizeof *pool->queued);
        pool->count--;
        w->busy = 1;
        w->job = job;
        pool->busy++;
        w->last_beat = srv_now();
        pthread_mutex_unlock(&pool->mu);

        run_job(w, job);

        pthread_mutex_lock(&pool->mu);
        w->busy = 0;
        w->job = NULL;
        pool->busy--;
        pthread_mutex_unlock(&pool->mu);
        srv_job_release(job);
        pthread_mutex_lock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

srv_pool *srv_pool_start(srv_model *model, int workers, int queue_cap, int n_threads,
                         srv_metrics *metrics, asr_error *err)
{
    if (workers < 1 || queue_cap < 1) {
        asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "workers and queue must be at least 1");
        return NULL;
    }
    srv_pool *pool = calloc(1, sizeof *pool);
    if (!pool) { asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory"); return NULL; }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->cap = queue_cap;
    pool->model = model->model;
    pool->n_threads = n_threads;
    pool->metrics = metrics;
    pool->queued = calloc((size_t)queue_cap, sizeof *pool->queued);
    pool->workers = calloc((size_t)workers, sizeof *pool->workers);
    if (!pool->queued || !pool->workers) {
        asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        srv_pool_stop(pool);
        return NULL;
    }
    for (int i = 0; i < workers; i++) {
        srv_worker *w = &pool->workers[i];
        w->pool = pool;
        w->state = srv_model_state_new(model, model->model, err);
        if (!w->state) { srv_pool_stop(pool); return NULL; }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            asr_state_free(w->state);
            w->state = NULL;
            asr_fail(err, ASR_ERR_INTERNAL, "cannot start worker thread %d", i);
            srv_pool_stop(pool);
            return NULL;
        }
        pool->n_workers++;
    }
    return pool;
}

void srv_pool_set_long_batch(srv_pool *pool, int batch_size)
{
    pool->long_batch = batch_size;
}

int srv_pool_submit(srv_pool *pool, srv_job *job)
{
    pthread_mutex_lock(&pool->mu);
    int rc = 0;
    if (pool->stopping) rc = -2;
    else if (pool->count >= pool->cap) rc = -1;
    else {
        pthread_mutex_lock(&job->mu);
        job->refs++; /* the queue's (then the worker's) reference */
        job->phase = SRV_JOB_QUEUED;
        pthread_mutex_unlock(&job->mu);
        job->queued_at = srv_now();
        double bound = audio_bound_s(job);
        if (!job->limits.raw_pcm_s16le && (job->limits.max_duration_s <= 0 || job->limits.max_duration_s > bound)) {
            job->limits.max_duration_s = bound; /* raw PCM is exactly its bound already */
            job->size_bounded = 1;
        }
        pool->queued[pool->count++] = job;
        pthread_cond_signal(&pool->work);
    }
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

int srv_pool_cancel(srv_pool *pool, srv_job *job, asr_status status, const char *why)
{
    pthread_mutex_lock(&pool->mu);
    int at = -1;
    for (int i = 0; i < pool->count; i++)
        if (pool->queued[i] == job) at = i;
    if (at >= 0) {
        memmove(pool->queued + at, pool->queued + at + 1, (size_t)(pool->count - at - 1) * sizeof *pool->queued);
        pool->count--;
    }
    pthread_mutex_unlock(&pool->mu);
    atomic_store(&job->abort, 1);
    if (at < 0) return 0;
    pthread_mutex_lock(&job->mu);
    free(job->upload);
    job->upload = NULL;
    job->upload_size = 0;
    job->status = asr_fail(&job->err, status, "%s", why);
    job->phase = SRV_JOB_DONE;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->mu);
    srv_metrics_job(pool->metrics, status == ASR_ERR_TIMEOUT ? "timeout" : "cancelled", 0.0, 0.0);
    srv_job_release(job); /* the queue's reference */
    return 1;
}

void srv_pool_abort_all(srv_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    for (int i = 0; i < pool->count; i++) atomic_store(&pool->queued[i]->abort, 1);
    for (int i = 0; i < pool->n_workers; i++)
        if (pool->workers[i].job) atomic_store(&pool->workers[i].job->abort, 1);
    pthread_mutex_unlock(&pool->mu);
}

void srv_pool_stop(srv_pool *pool)
{
    if (!pool) return;
    srv_pool_abort_all(pool);
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_workers; i++) pthread_join(pool->workers[i].thread, NULL);
    /* Jobs still queued never ran: finish them as cancelled so waiters wake. */
    for (int i = 0; i < pool->count; i++) {
        srv_job *job = pool->queued[i];
        pthread_mutex_lock(&job->mu);
        job->status = asr_fail(&job->err, ASR_ERR_CANCELLED, "server shutting down");
        job->phase = SRV_JOB_DONE;
        pthread_cond_broadcast(&job->changed);
        pthread_mutex_unlock(&job->mu);
        srv_job_release(job);
    }
    if (pool->workers)
        for (int i = 0; i < pool->n_workers; i++) {
            asr_state_free(pool->workers[i].state);
            for (int k = 0; k < SRV_MAX_MODELS; k++) asr_state_free(pool->workers[i].model_states[k]);
        }
    free(pool->workers);
    free(pool->queued);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

int srv_pool_queue_depth(srv_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    int n = pool->count;
    pthread_mutex_unlock(&pool->mu);
    return n;
}

int srv_pool_queue_capacity(const srv_pool *pool) { return pool->cap; }
int srv_pool_workers(const srv_pool *pool) { return pool->n_workers; }

int srv_pool_busy(srv_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    int n = pool->busy;
    pthread_mutex_unlock(&pool->mu);
    return n;
}

int srv_pool_stuck(srv_pool *pool, double stuck_s)
{
    double now = srv_now();
    int stuck = 0;
    pthread_mutex_lock(&pool->mu);
    for (int i = 0; i < pool->n_workers; i++)
        if (pool->workers[i].busy && now - pool->workers[i].last_beat > stuck_s) stuck++;
    pthread_mutex_unlock(&pool->mu);
    return stuck;
}

int srv_pool_retry_after(srv_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    double per_job = pool->avg_job_s > 0 ? pool->avg_job_s : 1.0;
    double wait = per_job * (pool->count + 1) / pool->n_workers;
    pthread_mutex_unlock(&pool->mu);
    int s = (int)ceil(wait);
    return s < 1 ? 1 : s > 120 ? 120 : s;
}
