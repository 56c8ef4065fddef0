/* files.c — `asr transcribe`'s input files: one after another, or several at once on one scheduler, outputs in input order. */
#include "files.h"
#include "../server/server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct progress_ctx {
    const char *file;
    int enabled;
    double started;
} progress_ctx;

static void on_progress(float fraction, void *user_data)
{
    progress_ctx *p = user_data;
    if (!p->enabled) return;
    fprintf(stderr, "\r%s: %5.1f%% (%.1f s)", p->file, 100.0 * fraction, srv_now() - p->started);
    if (fraction >= 1.0f) fputc('\n', stderr);
    fflush(stderr);
}

/* Decode, transcribe and format one file; *body is malloc'd on success.
 * Errors are reported on stderr. live_progress: the per-window progress line
 * (one file at a time only: lines of several files would overwrite each other). */
static int transcribe_one(const cli_files *run, asr_state *state, const char *file, int live_progress, char **body)
{
    asr_error err;
    asr_audio audio = {0};
    *body = NULL;
    asr_status s = asr_audio_decode_file(file, run->limits, &audio, &err);
    if (s != ASR_OK) {
        if (s == ASR_ERR_TOO_LARGE)
            fprintf(stderr, "asr: %s: %s (set another limit with --max-duration SECONDS, 0 = none)\n", file, err.message);
        else
            fprintf(stderr, "asr: %s: %s\n", file, err.message);
        return exit_code_for(s);
    }
    progress_ctx pc = {.file = file, .enabled = run->progress && live_progress, .started = srv_now()};
    asr_transcribe_params tp = *run->tp;
    tp.on_progress = on_progress;
    tp.user_data = &pc;
    asr_result *result = NULL;
    s = asr_transcribe(state, audio.samples, audio.n_samples, &tp, &result, &err);
    double audio_s = (double)audio.n_samples / ASR_SAMPLE_RATE;
    asr_audio_free(&audio);
    if (s != ASR_OK) {
        fprintf(stderr, "asr: %s: %s\n", file, err.message);
        return exit_code_for(s);
    }
    if (run->progress) {
        double took = srv_now() - pc.started;
        fprintf(stderr, "asr: %s: %.1f s of audio in %.2f s (real-time factor %.3f), language %s\n", file, audio_s,
                took, audio_s > 0 ? took / audio_s : 0.0, asr_result_language(result));
    }
    *body = asr_result_format(result, (asr_format)run->fmt);
    asr_result_free(result);
    if (!*body) {
        fprintf(stderr, "asr: out of memory\n");
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static int write_result(const cli_files *run, const char *file, int rc, char *body, int *first_rc)
{
    if (rc == EXIT_OK) rc = run->write(file, body, run->write_ctx);
    free(body);
    if (rc != EXIT_OK && *first_rc == EXIT_OK) *first_rc = rc;
    return rc;
}

/* ---- several at once ------------------------------------------------------ */

typedef struct file_slot {
    int done, rc;
    char *body;
} file_slot;

typedef struct parallel {
    const cli_files *run;
    asr_scheduler *sched;
    char **files;
    int n, next;
    file_slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t changed;
} parallel;

static void *job_main(void *arg)
{
    parallel *p = arg;
    asr_error err;
    asr_state *state = asr_state_new_scheduled(p->sched, &err);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->next < p->n ? p->next++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (i < 0) break;
        char *body = NULL;
        int rc = state ? transcribe_one(p->run, state, p->files[i], 0, &body) : EXIT_INTERNAL;
        if (!state) fprintf(stderr, "asr: %s: %s\n", p->files[i], err.message);
        pthread_mutex_lock(&p->mu);
        p->slots[i] = (file_slot){1, rc, body};
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
    }
    asr_state_free(state);
    return NULL;
}

static int transcribe_parallel(const cli_files *run, char **files, int n, int *first_rc)
{
    asr_error err;
    parallel p = {.run = run, .files = files, .n = n};
    asr_scheduler_params sp = asr_scheduler_default_params();
    if (asr_scheduler_new(run->model, &sp, &p.sched, &err) != ASR_OK) {
        fprintf(stderr, "asr: %s\n", err.message);
        return -1;
    }
    p.slots = calloc((size_t)n, sizeof *p.slots);
    int jobs = run->jobs < n ? run->jobs : n;
    pthread_t *threads = calloc((size_t)jobs, sizeof *threads);
    if (!p.slots || !threads) {
        free(p.slots);
        free(threads);
        asr_scheduler_free(p.sched);
        return -1;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.changed, NULL);
    int started = 0;
    while (started < jobs && pthread_create(&threads[started], NULL, job_main, &p) == 0) started++;
    if (started == 0) { /* no thread: the caller does it alone */
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.changed);
        free(p.slots);
        free(threads);
        asr_scheduler_free(p.sched);
        return -1;
    }
    /* outputs in input order, each as soon as it and every earlier one are done */
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&p.mu);
        while (!p.slots[i].done) pthread_cond_wait(&p.changed, &p.mu);
        file_slot slot = p.slots[i];
        pthread_mutex_unlock(&p.mu);
        write_result(run, files[i], slot.rc, slot.body, first_rc);
    }
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.changed);
    free(p.slots);
    free(threads);
    asr_scheduler_free(p.sched);
    return 0;
}

int cli_transcribe_files(const cli_files *run, char **files, int n)
{
    int first_rc = EXIT_OK;
    if (run->jobs > 1 && n > 1 && transcribe_parallel(run, files, n, &first_rc) == 0) return first_rc;
    asr_error err;
    asr_state *state = asr_state_new(run->model, &err);
    if (!state) {
        fprintf(stderr, "asr: %s\n", err.message);
        return EXIT_INTERNAL;
    }
    for (int i = 0; i < n; i++) {
        char *body = NULL;
        int rc = transcribe_one(run, state, files[i], 1, &body);
        write_result(run, files[i], rc, body, &first_rc);
    }
    asr_state_free(state);
    return first_rc;
}
