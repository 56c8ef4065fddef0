/* routes.c — the endpoints: OpenAI audio API, whisper-asr-webservice's /asr and /detect-language, health, metrics, the web page. */
#include "server/request.h"
#include "server/web.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum MHD_Result reply_json(srv_request *rq, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!body) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    return srv_reply(rq, status, "application/json", body, strlen(body), NULL);
}

/* ---- models: /v1/models, the model a request names, their metrics --------------- */

static const char *const model_dim_names[] = {"n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head",
                                              "n_audio_layer", "n_vocab", "n_text_ctx", "n_text_state",
                                              "n_text_head", "n_text_layer"};

/* OpenAI's model object (id, object, created, owned_by) and what the model can do. */
static json_t *model_object(const srv_server *s, const char *id, srv_model *m, int is_alias)
{
    const asr_model_info *in = &m->info;
    const int dims[] = {in->n_mels, in->n_audio_ctx, in->n_audio_state, in->n_audio_head, in->n_audio_layer,
                        in->n_vocab, in->n_text_ctx, in->n_text_state, in->n_text_head, in->n_text_layer};
    json_t *d = json_object();
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) json_object_set_new(d, model_dim_names[i], json_integer(dims[i]));
    json_t *obj = json_pack("{s:s, s:s, s:I, s:s, s:s, s:b, s:o, s:s, s:s, s:I, s:o, s:b}", "id", id, "object", "model",
                            "created", (json_int_t)s->started_unix, "owned_by", "asr", "type",
                            in->type ? in->type : "", "multilingual", in->multilingual != 0, "tasks",
                            in->multilingual ? json_pack("[s, s]", "transcribe", "translate") : json_pack("[s]", "transcribe"),
                            "format",
                            in->format ? in->format : "", "compute_type", asr_compute_type_name(in->compute_type),
                            "weight_bytes", (json_int_t)in->weight_bytes, "dims", d, "default", m->index == 0);
    if (obj && is_alias) json_object_set_new(obj, "alias_of", json_string(m->name));
    int loaded = 0;
    srv_model_status(m, &loaded, NULL, NULL);
    if (obj) json_object_set_new(obj, "loaded", json_boolean(loaded)); /* false: idle unload freed it */
    return obj;
}

/* The served models (serve_cmd.c fills the set before the server starts). */
static srv_model_set *served_models(const srv_server *s) { return s->cfg.models; }

static enum MHD_Result reply_models(srv_request *rq)
{
    srv_server *s = rq->srv;
    srv_model_set *set = served_models(s);
    if (!set || set->count < 1) return srv_reply_error(rq, 500, NULL, "internal_error", "no model loaded");
    if (strncmp(rq->path, "/v1/models/", 11) == 0) { /* retrieve one */
        const char *id = rq->path + 11;
        srv_model *m = NULL;
        if (strcmp(id, "whisper-1") == 0) m = &set->items[0];
        for (int i = 0; !m && i < set->count; i++)
            if (strcmp(id, set->items[i].name) == 0) m = &set->items[i];
        if (!m)
            return srv_reply_error(rq, 404, "model", "model_not_found", "The model '%.100s' does not exist", id);
        return reply_json(rq, 200, model_object(s, id, m, strcmp(id, "whisper-1") == 0));
    }
    json_t *data = json_array();
    json_array_append_new(data, model_object(s, "whisper-1", &set->items[0], 1));
    for (int i = 0; i < set->count; i++)
        json_array_append_new(data, model_object(s, set->items[i].name, &set->items[i], 0));
    return reply_json(rq, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 3 < cap; in++) {
        if (*in == '\\' || *in == '"') { out[o++] = '\\'; out[o++] = *in; }
        else if (*in == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else out[o++] = *in;
    }
    out[o] = 0;
}

/* snprintf at out + *len, never past cap (a cut line beats an overflow). */
__attribute__((format(printf, 4, 5))) static void appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* Each model's scheduler (--decode-batch): how many sequences its decoder
 * steps carried, what is decoding now, and how long work waited for it. */
static char *append_scheduler_metrics(srv_model_set *set, char *text)
{
    static const int size_le[] = {1, 2, 4, 8, 16, 32, 64, 128};
    asr_scheduler_stats st[SRV_MAX_MODELS];
    int have[SRV_MAX_MODELS], any = 0;
    for (int i = 0; i < set->count; i++) any |= have[i] = srv_model_scheduler_stats(&set->items[i], &st[i]);
    if (!any) return text;
    size_t len = strlen(text), cap = len + 2048 + (size_t)set->count * 4096;
    char *out = realloc(text, cap);
    if (!out) { free(text); return NULL; }
    static const char *const families[][3] = {
        {"asr_decode_batch_sequences", "histogram", "Sequences in each shared decoder step."},
        {"asr_decode_sequences_active", "gauge", "Sequences of requests inside a decode loop now."},
        {"asr_scheduler_jobs_total", "counter", "Encoder windows and prompts the scheduler ran (not batched)."},
        {"asr_scheduler_queued", "gauge", "Compute submissions waiting for the scheduler now."},
        {"asr_scheduler_wait_seconds_total", "counter", "Seconds submissions waited for the scheduler, summed."},
        {"asr_scheduler_busy_seconds_total", "counter", "Seconds the scheduler's compute ran."},
    };
    for (int f = 0; f < 6; f++) {
        appendf(out, cap, &len, "# HELP %s %s\n# TYPE %s %s\n", families[f][0], families[f][2], families[f][0],
                families[f][1]);
        for (int i = 0; i < set->count; i++) {
            if (!have[i]) continue;
            const asr_scheduler_stats *t = &st[i];
            char name[600];
            label_escape(set->items[i].name, name, sizeof name);
            const char *fam = families[f][0];
            if (f == 0) {
                unsigned long long cum = 0;
                for (int b = 0; b < 8; b++) {
                    cum += t->steps_by_size[b];
                    appendf(out, cap, &len, "%s_bucket{model=\"%s\",le=\"%d\"} %llu\n", fam, name, size_le[b], cum);
                }
                appendf(out, cap, &len, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n%s_sum{model=\"%s\"} %llu\n"
                        "%s_count{model=\"%s\"} %llu\n", fam, name, (unsigned long long)t->steps, fam, name,
                        (unsigned long long)t->step_sequences, fam, name, (unsigned long long)t->steps);
            }
            if (f == 1) appendf(out, cap, &len, "%s{model=\"%s\"} %d\n", fam, name, t->decoding_sequences);
            if (f == 2) appendf(out, cap, &len, "%s{model=\"%s\"} %llu\n", fam, name, (unsigned long long)t->jobs);
            if (f == 3) appendf(out, cap, &len, "%s{model=\"%s\"} %d\n", fam, name, t->queued);
            if (f == 4) appendf(out, cap, &len, "%s{model=\"%s\"} %.6f\n", fam, name, t->wait_seconds);
            if (f == 5) appendf(out, cap, &len, "%s{model=\"%s\"} %.6f\n", fam, name, t->busy_seconds);
        }
    }
    return out;
}

/* The served models' gauges, appended to metrics.c's exposition (malloc'd
 * text in, malloc'd text out; NULL on OOM, the input freed). */
static char *append_model_metrics(const srv_server *s, char *text)
{
    srv_model_set *set = served_models(s);
    if (!set) return text;
    int loaded[SRV_MAX_MODELS], loads[SRV_MAX_MODELS], n_loaded = 0;
    double load_s[SRV_MAX_MODELS];
    size_t total = 0;
    for (int i = 0; i < set->count; i++) {
        srv_model_status(&set->items[i], &loaded[i], &loads[i], &load_s[i]);
        n_loaded += loaded[i];
        if (loaded[i]) total += set->items[i].info.weight_bytes;
    }
    size_t len = strlen(text), cap = len + 1024 + (size_t)set->count * 4096;
    char *out = realloc(text, cap);
    if (!out) { free(text); return NULL; }
    appendf(out, cap, &len,
                            "# HELP asr_models_served Models this server answers to (--model).\n"
                            "# TYPE asr_models_served gauge\nasr_models_served %d\n"
                            "# HELP asr_models_loaded Served models whose weights are in memory now.\n"
                            "# TYPE asr_models_loaded gauge\nasr_models_loaded %d\n"
                            "# HELP asr_models_weight_bytes Memory the loaded models' weights take, all together.\n"
                            "# TYPE asr_models_weight_bytes gauge\nasr_models_weight_bytes %zu\n",
                            set->count, n_loaded, total);
    static const char *const families[][3] = {
        {"asr_model_loaded", "gauge", "1 while the model's weights are in memory."},
        {"asr_model_weight_bytes", "gauge", "Memory the model's weights take while loaded (0 when unloaded)."},
        {"asr_model_loads_total", "counter", "Times the model was loaded (again after an idle unload)."},
        {"asr_model_last_load_seconds", "gauge", "Seconds the model's last load took."},
    };
    for (int f = 0; f < 4; f++) {
        appendf(out, cap, &len, "# HELP %s %s\n# TYPE %s %s\n", families[f][0], families[f][2],
                                families[f][0], families[f][1]);
        for (int i = 0; i < set->count; i++) {
            char name[600];
            label_escape(set->items[i].name, name, sizeof name);
            if (f == 0) appendf(out, cap, &len, "%s{model=\"%s\"} %d\n", families[f][0], name, loaded[i]);
            if (f == 1)
                appendf(out, cap, &len, "%s{model=\"%s\"} %zu\n", families[f][0], name,
                                        loaded[i] ? set->items[i].info.weight_bytes : 0);
            if (f == 2) appendf(out, cap, &len, "%s{model=\"%s\"} %d\n", families[f][0], name, loads[i]);
            if (f == 3) appendf(out, cap, &len, "%s{model=\"%s\"} %.6f\n", families[f][0], name, load_s[i]);
        }
    }
    return append_scheduler_metrics(set, out);
}

/* ---- GET routes ------------------------------------------------------------------ */

static enum MHD_Result handle_healthz(srv_request *rq)
{
    srv_server *s = rq->srv;
    int stuck = srv_pool_stuck(s->pool, s->cfg.stuck_s);
    if (stuck) return reply_json(rq, 503, json_pack("{s:s, s:i}", "status", "unhealthy", "stuck_workers", stuck));
    return reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result handle_readyz(srv_request *rq)
{
    srv_server *s = rq->srv;
    int depth = srv_pool_queue_depth(s->pool), cap = srv_pool_queue_capacity(s->pool);
    const char *state = atomic_load(&s->draining) ? "draining" : depth >= cap ? "queue_full" : "ready";
    return reply_json(rq, strcmp(state, "ready") == 0 ? 200 : 503,
                      json_pack("{s:s, s:s, s:i, s:i}", "status", state, "model", s->cfg.model_name,
                                "queue_depth", depth, "queue_capacity", cap));
}

static enum MHD_Result handle_metrics(srv_request *rq)
{
    srv_server *s = rq->srv;
    srv_gauges g = {
        .queue_depth = srv_pool_queue_depth(s->pool),
        .queue_capacity = srv_pool_queue_capacity(s->pool),
        .busy_workers = srv_pool_busy(s->pool),
        .workers = srv_pool_workers(s->pool),
        .inflight_requests = atomic_load(&s->inflight),
        .draining = atomic_load(&s->draining),
        .model_load_s = s->model_load_s,
        .inflight_upload_bytes = atomic_load(&s->inflight_bytes),
        .inflight_upload_budget = s->cfg.max_inflight_bytes,
    };
    char *text = srv_metrics_render(s->metrics, &g);
    if (text) text = append_model_metrics(s, text);
    if (!text) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    return srv_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), NULL);
}

static enum MHD_Result handle_openapi(srv_request *rq)
{
    const char *doc = srv_openapi_json();
    char *copy = doc ? strdup(doc) : NULL;
    if (!copy) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    return srv_reply(rq, 200, "application/json", copy, strlen(copy), NULL);
}

/* ---- jobs: submit, wait, map failures ----------------------------------------- */

/* Answer for a job that failed. Undecodable or oversized audio is the
 * client's fault (4xx, so SDKs do not retry); only our own failures are 5xx. */
static enum MHD_Result reply_job_error(srv_request *rq, const srv_job *job)
{
    const char *msg = job->err.message[0] ? job->err.message : asr_strerror(job->status);
    switch (job->status) {
    case ASR_ERR_AUDIO: return srv_reply_error(rq, 400, "file", "invalid_audio", "could not decode the audio: %s", msg);
    case ASR_ERR_TOO_LARGE: return srv_reply_error(rq, 413, "file", "audio_too_long", "%s", msg);
    case ASR_ERR_INVALID_ARGUMENT: return srv_reply_error(rq, 400, NULL, "invalid_value", "%s", msg);
    case ASR_ERR_UNSUPPORTED: /* OpenAI answers 400 (e.g. a language an English-only model lacks); /asr, FastAPI's 422 */
        if (rq->route == SRV_ROUTE_TRANSCRIPTIONS || rq->route == SRV_ROUTE_TRANSLATIONS)
            return srv_reply_error(rq, 400, job->language[0] ? "language" : NULL, "unsupported_language", "%s", msg);
        return srv_reply_error(rq, 422, NULL, "unsupported", "%s", msg);
    case ASR_ERR_TIMEOUT: return srv_reply_error(rq, 504, NULL, "request_timeout", "%s", msg);
    case ASR_ERR_CANCELLED: return srv_reply_error(rq, 503, NULL, "cancelled", "%s", msg);
    default: return srv_reply_error(rq, 500, NULL, "internal_error", "%s", msg);
    }
}

/* Queue the job and wait, watching the client, until it reaches `until`
 * (SRV_JOB_RUNNING: a stream's events are then flowing) or ends. Returns 0
 * with the job there (still the caller's), or -1 after answering (the queue
 * is full, the server stopping, the job failed, the deadline passed while it
 * was queued, or the client left) and releasing the job. */
static int submit_and_wait(srv_request *rq, srv_job *job, srv_job_phase until, enum MHD_Result *answer)
{
    int rc = srv_pool_submit(rq->srv->pool, job);
    if (rc != 0) {
        if (rc == -1)
            *answer = srv_reply_error(rq, 429, NULL, "queue_full", "the server is busy (%d jobs queued); retry later",
                                      srv_pool_queue_capacity(rq->srv->pool));
        else
            *answer = srv_reply_error(rq, 503, NULL, "shutting_down", "the server is shutting down");
        srv_job_release(job);
        return -1;
    }
    int waited = srv_wait_job(rq, job, until);
    if (waited == -2) {
        *answer = srv_reply_error(rq, 504, NULL, "request_timeout", "the request waited in the queue past its %.0f s deadline",
                                  rq->srv->cfg.request_timeout_s);
    } else if (waited != 0) {
        rq->error_code = "client_disconnected";
        *answer = MHD_NO;
    } else {
        pthread_mutex_lock(&job->mu);
        int failed = job->phase == SRV_JOB_DONE && job->status != ASR_OK;
        pthread_mutex_unlock(&job->mu);
        rq->audio_s = job->audio_s;
        if (!failed) return 0;
        *answer = reply_job_error(rq, job);
    }
    srv_job_release(job);
    return -1;
}

/* Hand the upload and common settings to a new job (NULL after replying 500). */
static srv_job *job_from_form(srv_request *rq, srv_job_kind kind)
{
    srv_server *s = rq->srv;
    srv_job *job = srv_job_new();
    if (!job) return NULL;
    job->kind = kind;
    job->upload = rq->form.file;
    job->upload_size = rq->form.file_len;
    rq->form.file = NULL;
    rq->form.file_len = rq->form.file_cap = 0;
    job->limits.max_duration_s = s->cfg.max_audio_s;
    job->limits.deadline_s = s->cfg.decode_timeout_s;
    job->deadline = s->cfg.request_timeout_s > 0 ? rq->t_start + s->cfg.request_timeout_s : 0;
    return job;
}

/* ---- SSE streaming response ------------------------------------------------------ */

/* The SSE bytes of one stream job: its listener state (guarded by job->mu). */
typedef struct sse_events {
    char *buf;
    size_t len, cap;
    int first_delta_sent;
} sse_events;

static void sse_events_free(void *listener)
{
    sse_events *ev = listener;
    if (ev) free(ev->buf);
    free(ev);
}

/* Append one "data: {json}\n\n" event. On OOM the event is dropped (the
 * final done event still carries the whole text). */
static void sse_append(sse_events *ev, json_t *event)
{
    char *text = json_dumps(event, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
    json_decref(event);
    if (!text) return;
    size_t need = strlen(text) + 8;
    if (ev->len + need + 1 > ev->cap) {
        size_t cap = ev->cap ? ev->cap : 4096;
        while (cap < ev->len + need + 1) cap *= 2;
        char *grown = realloc(ev->buf, cap);
        if (!grown) { free(text); return; }
        ev->buf = grown;
        ev->cap = cap;
    }
    ev->len += (size_t)sprintf(ev->buf + ev->len, "data: %s\n\n", text);
    free(text);
}

/* The job's events as OpenAI's streamed transcription events. */
static void sse_on_event(srv_job *job, const srv_job_event *e)
{
    sse_events *ev = job->listener;
    switch (e->kind) {
    case SRV_EVENT_SEGMENT: {
        const char *delta = e->segment->text;
        if (!delta) return;
        if (!ev->first_delta_sent) /* the joined text is reported without its leading space */
            while (*delta == ' ') delta++;
        if (!*delta) return;
        ev->first_delta_sent = 1;
        /* start/end (beyond OpenAI's event) let a client time the segment, as the web page does */
        sse_append(ev, json_pack("{s:s, s:s, s:f, s:f}", "type", "transcript.text.delta", "delta", delta, "start",
                                 isfinite(e->segment->start) ? e->segment->start : 0.0, "end",
                                 isfinite(e->segment->end) ? e->segment->end : 0.0));
        return;
    }
    case SRV_EVENT_DONE: {
        char *text = asr_text_strip(asr_result_text(e->result)); /* as the json answer strips it */
        sse_append(ev, json_pack("{s:s, s:s?}", "type", "transcript.text.done", "text", text));
        free(text);
        return;
    }
    case SRV_EVENT_ERROR: /* the SDKs raise this as an APIError */
        sse_append(ev, json_pack("{s:s, s:{s:s, s:s, s:n, s:s}}", "type", "error", "error", "message", e->err->message,
                                 "type", "server_error", "param", "code", asr_strerror(e->status)));
        return;
    case SRV_EVENT_PROGRESS: return; /* OpenAI's stream has no progress event */
    }
}

/* Make the job report its events as SSE bytes (before it is submitted). */
static int sse_listen(srv_job *job)
{
    sse_events *ev = calloc(1, sizeof *ev);
    if (!ev) return -1;
    job->listener = ev;
    job->listener_free = sse_events_free;
    job->on_event = sse_on_event;
    return 0;
}

typedef struct sse_stream {
    srv_job *job;
    srv_request probe;      /* just enough of the request to poll its socket */
    uint64_t injected;      /* keep-alive comment bytes sent between job events */
    double last_write;      /* monotonic seconds */
    double keepalive_s;     /* quiet time before a keep-alive comment */
} sse_stream;

/* An SSE comment: clients ignore it, and it keeps MHD's idle timeout (and
 * proxies) from closing a stream while a long window decodes. */
static const char sse_keepalive[] = ": keep-alive\n\n";

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_stream *st = cls;
    srv_job *job = st->job;
    const sse_events *ev = job->listener;
    pthread_mutex_lock(&job->mu);
    for (;;) {
        size_t at = (size_t)(pos - st->injected); /* offset into the job's events */
        if (at < ev->len) {
            size_t n = ev->len - at;
            if (n > max) n = max;
            memcpy(buf, ev->buf + at, n);
            pthread_mutex_unlock(&job->mu);
            st->last_write = srv_now();
            return (ssize_t)n;
        }
        if (job->phase == SRV_JOB_DONE) {
            pthread_mutex_unlock(&job->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        srv_cond_wait_for(&job->changed, &job->mu, 0.1);
        if ((size_t)(pos - st->injected) < ev->len || job->phase == SRV_JOB_DONE) continue;
        pthread_mutex_unlock(&job->mu);
        if (srv_now() - st->last_write > st->keepalive_s && max >= sizeof sse_keepalive - 1) {
            memcpy(buf, sse_keepalive, sizeof sse_keepalive - 1);
            st->injected += sizeof sse_keepalive - 1;
            st->last_write = srv_now();
            return (ssize_t)(sizeof sse_keepalive - 1);
        }
        if (srv_client_gone(&st->probe)) {
            atomic_store(&job->abort, 1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        pthread_mutex_lock(&job->mu);
    }
}

static void sse_free(void *cls)
{
    sse_stream *st = cls;
    atomic_store(&st->job->abort, 1); /* no-op if finished; stops work nobody will read */
    srv_job_release(st->job);
    free(st->probe.conn);
    free(st);
}

static enum MHD_Result reply_stream(srv_request *rq, srv_job *job)
{
    if (!rq->mhd) { /* no connection to stream to (srv_local_serve): the events so far */
        pthread_mutex_lock(&job->mu);
        const sse_events *ev = job->listener;
        char *body = ev->len ? malloc(ev->len) : NULL;
        if (body) memcpy(body, ev->buf, ev->len);
        size_t n = body ? ev->len : 0;
        pthread_mutex_unlock(&job->mu);
        return srv_reply(rq, 200, "text/event-stream; charset=utf-8", body, n, NULL);
    }
    sse_stream *st = calloc(1, sizeof *st);
    srv_conn *conn_copy = calloc(1, sizeof *conn_copy);
    if (!st || !conn_copy) {
        free(st);
        free(conn_copy);
        return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    }
    /* The reader outlives nothing but needs the socket: copy the fd. */
    conn_copy->fd = rq->conn ? rq->conn->fd : -1;
    st->probe.conn = conn_copy;
    st->probe.status = 200; /* the response is under way: srv_client_gone must not write */
    pthread_mutex_lock(&job->mu);
    job->refs++;
    pthread_mutex_unlock(&job->mu);
    st->job = job;
    st->last_write = srv_now();
    st->keepalive_s = rq->srv->cfg.idle_timeout_s / 3.0;
    if (st->keepalive_s > 5.0) st->keepalive_s = 5.0;
    if (st->keepalive_s < 0.3) st->keepalive_s = 0.3;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, st, sse_free);
    if (!r) {
        sse_free(st);
        return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    char id[32];
    snprintf(id, sizeof id, "%llu", rq->id);
    MHD_add_response_header(r, "X-Request-Id", id);
    enum MHD_Result ok = MHD_queue_response(rq->mhd, 200, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES) rq->status = 200;
    return ok;
}

/* ---- OpenAI: /v1/audio/transcriptions and /v1/audio/translations ------------- */

static const struct { const char *name; asr_format format; const char *content_type; } openai_formats[] = {
    {"json", ASR_FORMAT_JSON, "application/json"},
    {"text", ASR_FORMAT_TXT, "text/plain; charset=utf-8"},
    {"srt", ASR_FORMAT_SRT, "text/plain; charset=utf-8"},
    {"verbose_json", ASR_FORMAT_VERBOSE_JSON, "application/json"},
    {"vtt", ASR_FORMAT_VTT, "text/plain; charset=utf-8"},
};

static int parse_bool(const char *v, int *out)
{
    if (!v[0] || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) { *out = 0; return 0; }
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) { *out = 1; return 0; }
    return -1;
}

/* The served model `name` picks, or NULL after answering as OpenAI does for
 * a model it does not have: 404 invalid_request_error, code model_not_found. */
static srv_model *pick_model(srv_request *rq, const char *name, enum MHD_Result *answer)
{
    srv_model_set *set = served_models(rq->srv);
    srv_model *m = srv_model_find(set, name[0] ? name : "whisper-1");
    if (m) return m;
    char names[1024];
    srv_models_names(set, names, sizeof names);
    *answer = srv_reply_error(rq, 404, NULL, "model_not_found",
                              "The model `%.100s` does not exist or you do not have access to it. This server has %.400s.",
                              name, names);
    return NULL;
}

/* ---- VAD: chunking_strategy (OpenAI) and vad_filter (/asr) ----------------------- */

void srv_form_chunking_part(srv_form *f, const char *key, const char *data, uint64_t off, size_t size)
{
    const char *sub = key + strlen("chunking_strategy");
    char *dst = f->chunking_strategy;
    char prefix[64] = "";
    if (*sub) { /* chunking_strategy[NAME] */
        size_t n = strlen(sub);
        int name_ok = n >= 3 && n < 40 && sub[0] == '[' && sub[n - 1] == ']';
        for (size_t i = 1; name_ok && i + 1 < n; i++) name_ok = (sub[i] >= 'a' && sub[i] <= 'z') || sub[i] == '_';
        if (!name_ok) {
            if (!f->error[0]) snprintf(f->error, sizeof f->error, "unknown form field '%.60s'", key);
            return;
        }
        dst = f->chunking_fields;
        if (off == 0) snprintf(prefix, sizeof prefix, "%s%.*s=", dst[0] ? "&" : "", (int)(n - 2), sub + 1);
    } else if (off == 0) {
        dst[0] = 0; /* a repeated field: the last value wins */
    }
    for (size_t i = 0; dst == f->chunking_fields && i < size; i++)
        if (data[i] == '&' || data[i] == '=' || data[i] == 0) {
            if (!f->error[0]) snprintf(f->error, sizeof f->error, "bad character in form field '%.60s'", key);
            return;
        }
    size_t cur = strlen(dst), pre = strlen(prefix);
    if (cur + pre + size >= SRV_FIELD_MAX || memchr(data, 0, size)) {
        if (!f->error[0]) snprintf(f->error, sizeof f->error, "form field '%.60s' is too long or malformed", key);
        return;
    }
    memcpy(dst + cur, prefix, pre);
    memcpy(dst + cur + pre, data, size);
    dst[cur + pre + size] = 0;
}

/* The SDKs' chunking_strategy[NAME]=VALUE fields as the JSON object they encode. */
static json_t *fields_object(const char *fields)
{
    json_t *obj = json_object();
    char copy[SRV_FIELD_MAX], *save = NULL;
    snprintf(copy, sizeof copy, "%s", fields);
    for (char *kv = strtok_r(copy, "&", &save); kv && obj; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = 0;
        const char *v = eq + 1;
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        json_object_set_new(obj, kv, (v[0] && !*end && !errno && isfinite(x)) ? json_real(x) : json_string(v));
    }
    return obj;
}

/* An integer number of milliseconds in [0, 1 h]. */
static int json_ms(json_t *v, int *out)
{
    if (!json_is_number(v)) return -1;
    double x = json_number_value(v);
    if (!(x >= 0 && x <= 3600000) || x != floor(x)) return -1;
    *out = (int)x;
    return 0;
}

/* OpenAI's chunking_strategy: "auto" (the server picks: Silero VAD with
 * faster-whisper's defaults) or {"type":"server_vad", "threshold",
 * "prefix_padding_ms", "silence_duration_ms"} — threshold is the speech
 * probability, prefix padding the padding around each speech chunk,
 * silence duration the silence that ends one; an option left out keeps
 * faster-whisper's default. "none" (ours) turns a server default off.
 * Unset: the server's --vad. 0, or -1 after a 400. */
static int parse_chunking(srv_request *rq, int *vad_on, asr_vad_params *vp, enum MHD_Result *answer)
{
    const srv_form *f = &rq->form;
    *vad_on = rq->srv->cfg.vad_default;
    *vp = asr_vad_default_params();
    const char *cs = f->chunking_strategy;
    if (!cs[0] && !f->chunking_fields[0]) return 0;
    if (strcmp(cs, "auto") == 0) { *vad_on = 1; return 0; }
    if (strcmp(cs, "none") == 0) { *vad_on = 0; return 0; }
    json_t *obj = NULL;
    if (cs[0]) {
        json_error_t jerr;
        obj = json_loads(cs, JSON_REJECT_DUPLICATES, &jerr);
    } else {
        obj = fields_object(f->chunking_fields);
    }
    const char *problem = NULL;
    char detail[160] = "";
    if (!json_is_object(obj)) {
        problem = "chunking_strategy must be 'auto' or a JSON object {\"type\": \"server_vad\", ...}";
    } else {
        json_t *type = json_object_get(obj, "type");
        if (!json_is_string(type) || strcmp(json_string_value(type), "server_vad") != 0)
            problem = "chunking_strategy.type must be 'server_vad'";
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            if (problem) break;
            if (strcmp(k, "type") == 0) continue;
            if (strcmp(k, "threshold") == 0) {
                double x = json_is_number(v) ? json_number_value(v) : -1;
                if (!(x >= 0.0 && x <= 1.0)) problem = "chunking_strategy.threshold must be a number between 0 and 1";
                else vp->threshold = x;
            } else if (strcmp(k, "prefix_padding_ms") == 0) {
                if (json_ms(v, &vp->speech_pad_ms) != 0)
                    problem = "chunking_strategy.prefix_padding_ms must be an integer between 0 and 3600000";
            } else if (strcmp(k, "silence_duration_ms") == 0) {
                if (json_ms(v, &vp->min_silence_duration_ms) != 0)
                    problem = "chunking_strategy.silence_duration_ms must be an integer between 0 and 3600000";
            } else {
                snprintf(detail, sizeof detail, "unknown chunking_strategy option '%.60s' (type, threshold, "
                                                "prefix_padding_ms, silence_duration_ms)", k);
                problem = detail;
            }
        }
    }
    json_decref(obj);
    if (problem) {
        *answer = srv_reply_error(rq, 400, "chunking_strategy", "invalid_value", "%s.", problem);
        return -1;
    }
    *vad_on = 1;
    return 0;
}

static enum MHD_Result handle_openai(srv_request *rq, asr_task task)
{
    srv_form *f = &rq->form;
    if (!f->have_file) return srv_reply_error(rq, 400, "file", "missing_file", "Missing required parameter: 'file'.");
    if (f->file_len == 0) return srv_reply_error(rq, 400, "file", "empty_file", "The uploaded file is empty.");
    if (!f->model[0]) return srv_reply_error(rq, 400, "model", "missing_model", "Missing required parameter: 'model'.");
    enum MHD_Result answer = MHD_NO;
    srv_model *model = pick_model(rq, f->model, &answer);
    if (!model) return answer;
    int fmt = -1;
    const char *rf = f->response_format[0] ? f->response_format : "json";
    for (int i = 0; i < (int)(sizeof openai_formats / sizeof openai_formats[0]); i++)
        if (strcmp(rf, openai_formats[i].name) == 0) fmt = i;
    if (fmt < 0)
        return srv_reply_error(rq, 400, "response_format", "invalid_value",
                               "Invalid response_format '%.60s': expected one of json, text, srt, verbose_json, vtt.", rf);
    int lang = -1;
    if (f->language[0] && task == ASR_TASK_TRANSCRIBE) {
        lang = asr_lang_find(f->language);
        if (lang < 0)
            return srv_reply_error(rq, 400, "language", "unsupported_language", "Unknown language '%.60s'.", f->language);
    }
    float temperature = -1.0f;
    if (f->temperature[0]) {
        char *end;
        errno = 0;
        double t = strtod(f->temperature, &end);
        /* decimal only: strtod would also take hex floats, inf and nan */
        if (errno || *end || end == f->temperature || !(t >= 0.0 && t <= 1.0) ||
            f->temperature[strspn(f->temperature, "0123456789.eE+-")])
            return srv_reply_error(rq, 400, "temperature", "invalid_value",
                                   "temperature must be a number between 0 and 1, got '%.40s'.", f->temperature);
        temperature = (float)t;
    }
    int stream = 0;
    if (parse_bool(f->stream, &stream) != 0)
        return srv_reply_error(rq, 400, "stream", "invalid_value", "stream must be true or false.");
    int words = 0;
    if (f->granularities[0]) {
        char list[SRV_FIELD_MAX], *save = NULL;
        snprintf(list, sizeof list, "%s", f->granularities);
        for (char *g = strtok_r(list, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
            if (strcmp(g, "word") == 0) words = 1;
            else if (strcmp(g, "segment") != 0)
                return srv_reply_error(rq, 400, "timestamp_granularities", "invalid_value",
                                       "Invalid timestamp granularity '%.40s'.", g);
        }
    }
    /* as OpenAI: word times are only reported in verbose_json */
    if (words && openai_formats[fmt].format != ASR_FORMAT_VERBOSE_JSON)
        return srv_reply_error(rq, 400, "timestamp_granularities", "invalid_value",
                               "response_format must be verbose_json to use word timestamps.");
    int vad_on = 0;
    asr_vad_params vad;
    if (parse_chunking(rq, &vad_on, &vad, &answer) != 0) return answer;

    srv_job *job = job_from_form(rq, SRV_JOB_TRANSCRIBE);
    if (!job) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    job->model = model;
    job->vad_filter = vad_on;
    job->vad = vad;
    job->task = task;
    if (lang >= 0) snprintf(job->language, sizeof job->language, "%s", asr_lang_code(lang));
    if (f->prompt && f->prompt_len) { job->prompt = f->prompt; f->prompt = NULL; }
    job->temperature = temperature;
    job->word_timestamps = words;
    if (stream && sse_listen(job) != 0) {
        srv_job_release(job);
        return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    }
    if (submit_and_wait(rq, job, stream ? SRV_JOB_RUNNING : SRV_JOB_DONE, &answer) != 0) return answer;
    if (stream) {
        answer = reply_stream(rq, job);
    } else {
        char *text = asr_result_format(job->result, openai_formats[fmt].format);
        if (!text) {
            answer = srv_reply_error(rq, 500, NULL, "internal_error", "could not render the result");
        } else {
            size_t n = strlen(text);
            if (openai_formats[fmt].format == ASR_FORMAT_TXT && (n == 0 || text[n - 1] != '\n')) {
                char *nl = realloc(text, n + 2); /* OpenAI's text answer ends with a newline */
                if (nl) { text = nl; text[n++] = '\n'; text[n] = 0; }
            }
            answer = srv_reply(rq, 200, openai_formats[fmt].content_type, text, n, NULL);
        }
    }
    srv_job_release(job);
    return answer;
}

/* ---- whisper-asr-webservice: /asr and /detect-language ------------------------ */

static const char *query(srv_request *rq, const char *name)
{
    const char *v = srv_request_value(rq, MHD_GET_ARGUMENT_KIND, name);
    return v ? v : "";
}

/* The segments one per line, stripped, as its WriteTXT does. */
static char *render_asr_txt(const asr_result *r)
{
    size_t cap = 1;
    int n = asr_result_n_segments(r);
    for (int i = 0; i < n; i++) cap += strlen(asr_result_segment(r, i)->text ? asr_result_segment(r, i)->text : "") + 1;
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        const char *t = asr_result_segment(r, i)->text ? asr_result_segment(r, i)->text : "";
        while (*t == ' ' || *t == '\t' || *t == '\n') t++;
        size_t len = strlen(t);
        while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\n')) len--;
        memcpy(p, t, len);
        p += len;
        *p++ = '\n';
    }
    *p = 0;
    return out;
}

/* JSON has no NaN or infinity (jansson refuses them): report those as 0. */
static double finite_or_zero(double x) { return isfinite(x) ? x : 0.0; }

/* {"text", "segments", "language"}: the result dict its engines dump. */
static char *render_asr_json(const asr_result *r)
{
    json_t *segs = json_array();
    for (int i = 0; i < asr_result_n_segments(r); i++) {
        const asr_segment *sg = asr_result_segment(r, i);
        json_t *tokens = json_array();
        for (int k = 0; k < sg->n_tokens; k++) json_array_append_new(tokens, json_integer(sg->tokens[k]));
        json_array_append_new(segs, json_pack("{s:i, s:i, s:f, s:f, s:s, s:o, s:f, s:f, s:f, s:f}", "id", sg->id,
                                              "seek", sg->seek, "start", finite_or_zero(sg->start), "end",
                                              finite_or_zero(sg->end), "text", sg->text ? sg->text : "", "tokens",
                                              tokens, "temperature", finite_or_zero(sg->temperature), "avg_logprob",
                                              finite_or_zero(sg->avg_logprob), "compression_ratio",
                                              finite_or_zero(sg->compression_ratio), "no_speech_prob",
                                              finite_or_zero(sg->no_speech_prob)));
        if (sg->n_words > 0) { /* word_timestamps=true: openai-whisper's per-segment words */
            json_t *words = json_array();
            for (int k = 0; k < sg->n_words; k++)
                json_array_append_new(words, json_pack("{s:s, s:f, s:f, s:f}", "word", sg->words[k].word, "start",
                                                       finite_or_zero(sg->words[k].start), "end",
                                                       finite_or_zero(sg->words[k].end), "probability",
                                                       finite_or_zero(sg->words[k].probability)));
            json_object_set_new(json_array_get(segs, json_array_size(segs) - 1), "words", words);
        }
    }
    json_t *obj = json_pack("{s:s, s:o, s:s}", "text", asr_result_text(r) ? asr_result_text(r) : "", "segments", segs,
                            "language", asr_result_language(r) ? asr_result_language(r) : "");
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    return text;
}

/* Python's urllib.parse.quote(name) (safe="/"). */
static void url_quote(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("_.-~/", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

static enum MHD_Result handle_asr(srv_request *rq)
{
    srv_form *f = &rq->form;
    /* Parameter errors are 422, as the FastAPI service answers them. */
    const char *task = query(rq, "task"), *language = query(rq, "language"), *output = query(rq, "output");
    const char *encode = query(rq, "encode"), *prompt = query(rq, "initial_prompt");
    const char *word_ts = query(rq, "word_timestamps"), *vad_filter = query(rq, "vad_filter");
    if (!task[0]) task = "transcribe";
    if (!output[0]) output = "txt";
    if (strcmp(task, "transcribe") != 0 && strcmp(task, "translate") != 0)
        return srv_reply_error(rq, 422, "task", "invalid_value", "task must be 'transcribe' or 'translate'.");
    static const char *const outputs[] = {"txt", "vtt", "srt", "tsv", "json"};
    int out = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(output, outputs[i]) == 0) out = i;
    if (out < 0) return srv_reply_error(rq, 422, "output", "invalid_value", "output must be one of txt, vtt, srt, tsv, json.");
    int lang = -1;
    if (language[0] && (lang = asr_lang_find(language)) < 0)
        return srv_reply_error(rq, 422, "language", "unsupported_language", "Unknown language '%.60s'.", language);
    int raw = 0, enc = 1;
    if (encode[0]) {
        if (parse_bool(encode, &enc) != 0) return srv_reply_error(rq, 422, "encode", "invalid_value", "encode must be true or false.");
        raw = !enc;
    }
    int words = 0;
    if (word_ts[0] && parse_bool(word_ts, &words) != 0)
        return srv_reply_error(rq, 422, "word_timestamps", "invalid_value", "word_timestamps must be true or false.");
    int vad_on = rq->srv->cfg.vad_default;
    if (vad_filter[0] && parse_bool(vad_filter, &vad_on) != 0)
        return srv_reply_error(rq, 422, "vad_filter", "invalid_value", "vad_filter must be true or false.");
    enum MHD_Result answer = MHD_NO;
    srv_model *model = pick_model(rq, query(rq, "model"), &answer);
    if (!model) return answer;
    if (!f->have_file) return srv_reply_error(rq, 422, "audio_file", "missing_file", "Missing required field: 'audio_file'.");
    if (f->file_len == 0) return srv_reply_error(rq, 400, "audio_file", "empty_file", "The uploaded file is empty.");

    char filename[256];
    snprintf(filename, sizeof filename, "%s", f->filename[0] ? f->filename : "audio");
    srv_job *job = job_from_form(rq, SRV_JOB_TRANSCRIBE);
    if (!job) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    job->task = strcmp(task, "translate") == 0 ? ASR_TASK_TRANSLATE : ASR_TASK_TRANSCRIBE;
    if (lang >= 0) snprintf(job->language, sizeof job->language, "%s", asr_lang_code(lang));
    if (prompt[0]) job->prompt = strdup(prompt);
    job->limits.raw_pcm_s16le = raw;
    job->word_timestamps = words;
    job->model = model;
    job->vad_filter = vad_on;
    if (submit_and_wait(rq, job, SRV_JOB_DONE, &answer) != 0) return answer;
    char *text = out == 0 ? render_asr_txt(job->result)
               : out == 4 ? render_asr_json(job->result)
               : asr_result_format(job->result, out == 1 ? ASR_FORMAT_VTT : out == 2 ? ASR_FORMAT_SRT : ASR_FORMAT_TSV);
    if (!text) {
        answer = srv_reply_error(rq, 500, NULL, "internal_error", "could not render the result");
    } else {
        char quoted[800], disposition[900];
        url_quote(filename, quoted, sizeof quoted);
        snprintf(disposition, sizeof disposition, "attachment; filename=\"%s.%s\"", quoted, output);
        const char *headers[] = {"Asr-Engine", "asr", MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition, NULL};
        answer = srv_reply(rq, 200, "text/plain; charset=utf-8", text, strlen(text), headers);
    }
    srv_job_release(job);
    return answer;
}

static enum MHD_Result handle_detect_language(srv_request *rq)
{
    srv_form *f = &rq->form;
    int raw = 0, enc = 1;
    const char *encode = query(rq, "encode");
    if (encode[0]) {
        if (parse_bool(encode, &enc) != 0) return srv_reply_error(rq, 422, "encode", "invalid_value", "encode must be true or false.");
        raw = !enc;
    }
    enum MHD_Result answer = MHD_NO;
    srv_model *model = pick_model(rq, query(rq, "model"), &answer);
    if (!model) return answer;
    if (!f->have_file) return srv_reply_error(rq, 422, "audio_file", "missing_file", "Missing required field: 'audio_file'.");
    if (f->file_len == 0) return srv_reply_error(rq, 400, "audio_file", "empty_file", "The uploaded file is empty.");
    srv_job *job = job_from_form(rq, SRV_JOB_DETECT_LANGUAGE);
    if (!job) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    job->limits.raw_pcm_s16le = raw;
    job->model = model;
    if (submit_and_wait(rq, job, SRV_JOB_DONE, &answer) != 0) return answer;
    if (job->lang_index < 0)
        answer = reply_job_error(rq, job);
    else
        answer = reply_json(rq, 200, json_pack("{s:s, s:s, s:f}", "detected_language", asr_lang_name(job->lang_index),
                                               "language_code", asr_lang_code(job->lang_index), "confidence",
                                               finite_or_zero(job->lang_prob)));
    srv_job_release(job);
    return answer;
}

static enum MHD_Result handle_transcriptions(srv_request *rq) { return handle_openai(rq, ASR_TASK_TRANSCRIBE); }
static enum MHD_Result handle_translations(srv_request *rq) { return handle_openai(rq, ASR_TASK_TRANSLATE); }

/* ---- the route table ------------------------------------------------------------- */

static int web_match(const char *path) { return srv_web_find(path) != NULL; }

/* Probes, metrics, the API description and the web page (whose API calls
 * carry the key the user types) stay reachable without a key. The order is
 * /openapi.json's; srv_route_find takes the first row that matches. */
static const srv_route_def route_table[] = {
    {.path = "/v1/audio/transcriptions", .method = "POST", .auth = 1, .file_field = "file",
     .handler = handle_transcriptions, .id = SRV_ROUTE_TRANSCRIPTIONS, .label = "/v1/audio/transcriptions",
     .doc = srv_doc_transcriptions},
    {.path = "/v1/audio/translations", .method = "POST", .auth = 1, .file_field = "file",
     .handler = handle_translations, .id = SRV_ROUTE_TRANSLATIONS, .label = "/v1/audio/translations",
     .doc = srv_doc_translations},
    {.path = "/v1/models", .method = "GET", .auth = 1, .handler = reply_models, .id = SRV_ROUTE_MODELS,
     .label = "/v1/models", .doc = srv_doc_models},
    {.path = "/v1/models/{model}", .method = "GET", .auth = 1, .handler = reply_models, .id = SRV_ROUTE_MODELS,
     .label = "/v1/models", .doc = srv_doc_model},
    {.path = "/asr", .method = "POST", .auth = 1, .file_field = "audio_file", .handler = handle_asr,
     .id = SRV_ROUTE_ASR, .label = "/asr", .doc = srv_doc_asr},
    {.path = "/detect-language", .method = "POST", .auth = 1, .file_field = "audio_file",
     .handler = handle_detect_language, .id = SRV_ROUTE_DETECT_LANGUAGE, .label = "/detect-language",
     .doc = srv_doc_detect_language},
    {.path = "/v1/realtime", .method = "GET", .handshake = 1, .auth = 1, .handler = srv_realtime_begin,
     .id = SRV_ROUTE_REALTIME, .label = "/v1/realtime", .doc = srv_doc_realtime},
    {.path = "/healthz", .method = "GET", .handler = handle_healthz, .id = SRV_ROUTE_HEALTHZ, .label = "/healthz",
     .doc = srv_doc_healthz},
    {.path = "/readyz", .method = "GET", .handler = handle_readyz, .id = SRV_ROUTE_READYZ, .label = "/readyz",
     .doc = srv_doc_readyz},
    {.path = "/metrics", .method = "GET", .handler = handle_metrics, .id = SRV_ROUTE_METRICS, .label = "/metrics",
     .doc = srv_doc_metrics},
    {.path = "/openapi.json", .method = "GET", .handler = handle_openapi, .id = SRV_ROUTE_OPENAPI,
     .label = "/openapi.json", .doc = srv_doc_openapi},
    {.path = "/", .match = web_match, .method = "GET", .handler = srv_web_reply, .id = SRV_ROUTE_WEB, .label = "web",
     .doc = srv_doc_web},
};
#define N_ROUTES ((int)(sizeof route_table / sizeof route_table[0]))

const srv_route_def *srv_route_table(int *n)
{
    *n = N_ROUTES;
    return route_table;
}

static int path_matches(const srv_route_def *def, const char *path)
{
    if (def->match) return def->match(path);
    const char *param = strchr(def->path, '{');
    if (!param) return strcmp(path, def->path) == 0;
    size_t fixed = (size_t)(param - def->path);
    return strncmp(path, def->path, fixed) == 0 && path[fixed] != 0;
}

const srv_route_def *srv_route_find(const char *path)
{
    for (int i = 0; i < N_ROUTES; i++)
        if (path_matches(&route_table[i], path)) return &route_table[i];
    return NULL;
}

int srv_route_is_post(const srv_route_def *def) { return def && strcmp(def->method, "POST") == 0; }

const char *srv_route_label(srv_route route)
{
    for (int i = 0; i < N_ROUTES; i++)
        if (route_table[i].id == route) return route_table[i].label;
    return "other";
}
