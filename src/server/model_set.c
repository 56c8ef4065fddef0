/* model_set.c — the models one `asr serve` serves: lookup by a request's name, loading, use counts, idle unload. */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

srv_model_set *srv_models_new(void)
{
    srv_model_set *set = calloc(1, sizeof *set);
    if (!set) return NULL;
    for (int i = 0; i < SRV_MAX_MODELS; i++) {
        pthread_mutex_init(&set->items[i].mu, NULL);
        set->items[i].index = i;
    }
    return set;
}

void srv_models_free(srv_model_set *set)
{
    if (!set) return;
    for (int i = 0; i < SRV_MAX_MODELS; i++) {
        asr_scheduler_free(set->items[i].sched); /* after every state made from it */
        asr_model_free(set->items[i].model);
        pthread_mutex_destroy(&set->items[i].mu);
    }
    free(set);
}

/* Caller holds m->mu. */
static asr_status load_locked(srv_model *m, asr_error *err)
{
    double t0 = srv_now();
    asr_model *model = NULL;
    asr_status st = asr_model_load(m->path, &m->params, &model, err);
    if (st != ASR_OK) return st;
    if (m->decode_batch > 0) {
        asr_scheduler_params sp = asr_scheduler_default_params();
        sp.max_sequences = m->decode_batch;
        st = asr_scheduler_new(model, &sp, &m->sched, err);
        if (st != ASR_OK) {
            asr_model_free(model);
            return st;
        }
    }
    m->model = model;
    m->load_s = srv_now() - t0;
    m->loads++;
    m->last_used = srv_now();
    if (m->loads == 1) { /* kept while unloaded: copy what points into the model */
        asr_model_get_info(model, &m->info);
        snprintf(m->type, sizeof m->type, "%s", m->info.type ? m->info.type : "");
        snprintf(m->format, sizeof m->format, "%s", m->info.format ? m->info.format : "");
        m->info.type = m->type;
        m->info.format = m->format;
    }
    return ASR_OK;
}

asr_status srv_model_load(srv_model *m, asr_error *err)
{
    pthread_mutex_lock(&m->mu);
    asr_status st = m->model ? ASR_OK : load_locked(m, err);
    pthread_mutex_unlock(&m->mu);
    return st;
}

srv_model *srv_model_find(srv_model_set *set, const char *name)
{
    if (!set || set->count < 1 || !name) return NULL;
    if (strcmp(name, "whisper-1") == 0) return &set->items[0];
    for (int i = 0; i < set->count; i++)
        if (strcmp(name, set->items[i].name) == 0) return &set->items[i];
    srv_model *by_type = NULL; /* "tiny" for a model served as "tiny.en": only when unambiguous */
    for (int i = 0; i < set->count; i++) {
        if (strcmp(name, set->items[i].info.type ? set->items[i].info.type : "") != 0) continue;
        if (by_type) return NULL;
        by_type = &set->items[i];
    }
    return by_type;
}

void srv_models_names(const srv_model_set *set, char *buf, size_t n)
{
    snprintf(buf, n, "'whisper-1'");
    for (int i = 0; set && i < set->count; i++) {
        size_t at = strlen(buf);
        if (at + 1 < n) snprintf(buf + at, n - at, ", '%s'", set->items[i].name);
    }
}

/* The load (0.1-1 s for tiny/base) runs under the model's lock, so jobs
 * for that model wait for one load instead of each starting its own. */
const asr_model *srv_model_acquire(srv_model *m, asr_error *err)
{
    pthread_mutex_lock(&m->mu);
    const asr_model *model = NULL;
    if (m->model || load_locked(m, err) == ASR_OK) {
        m->refs++;
        m->last_used = srv_now();
        model = m->model;
    }
    pthread_mutex_unlock(&m->mu);
    return model;
}

void srv_model_release(srv_model *m)
{
    pthread_mutex_lock(&m->mu);
    m->refs--;
    m->last_used = srv_now();
    pthread_mutex_unlock(&m->mu);
}

int srv_models_unload_idle(srv_model_set *set)
{
    if (!set || set->idle_unload_s <= 0) return 0;
    int freed = 0;
    double now = srv_now();
    for (int i = 0; i < set->count; i++) {
        srv_model *m = &set->items[i];
        asr_model *gone = NULL;
        asr_scheduler *gone_sched = NULL;
        pthread_mutex_lock(&m->mu);
        if (m->unloadable && m->model && m->refs == 0 && now - m->last_used >= set->idle_unload_s) {
            gone = m->model;
            gone_sched = m->sched;
            m->model = NULL;
            m->sched = NULL;
        }
        pthread_mutex_unlock(&m->mu);
        if (gone) { /* no job holds it (nor a state of its scheduler), and a new one would load its own copy */
            asr_scheduler_free(gone_sched);
            asr_model_free(gone);
            freed++;
        }
    }
    return freed;
}

asr_state *srv_model_state_new(srv_model *m, const asr_model *model, asr_error *err)
{
    pthread_mutex_lock(&m->mu);
    asr_scheduler *sched = m->sched; /* stays while the caller holds the model */
    pthread_mutex_unlock(&m->mu);
    return sched ? asr_state_new_scheduled(sched, err) : asr_state_new(model, err);
}

int srv_model_scheduler_stats(srv_model *m, asr_scheduler_stats *out)
{
    pthread_mutex_lock(&m->mu);
    int have = m->sched != NULL;
    if (have) asr_scheduler_get_stats(m->sched, out);
    pthread_mutex_unlock(&m->mu);
    return have;
}

void srv_model_status(srv_model *m, int *loaded, int *loads, double *load_s)
{
    pthread_mutex_lock(&m->mu);
    if (loaded) *loaded = m->model != NULL;
    if (loads) *loads = m->loads;
    if (load_s) *load_s = m->load_s;
    pthread_mutex_unlock(&m->mu);
}
