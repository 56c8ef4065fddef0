/* metrics.c — request and decode counters of the server, rendered in the Prometheus text format. */
#include "server/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Status codes the server answers with; anything else counts under "other". */
/* 101: a WebSocket upgrade; 499: the client left before its answer; 411, 414, 417, 431, 501, 505: answers of libmicrohttpd itself. */
static const int tracked_status[] = {101, 200, 304, 400, 401, 404, 405, 408, 411, 413, 414, 415, 417,
                                     422, 429, 431, 499, 500, 501, 503, 504, 505};
#define N_STATUS ((int)(sizeof tracked_status / sizeof tracked_status[0]) + 1)

static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define N_BOUNDS ((int)(sizeof latency_bounds / sizeof latency_bounds[0]))

static const double rtf_bounds[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2};
#define N_RTF ((int)(sizeof rtf_bounds / sizeof rtf_bounds[0]))

static const char *const job_outcomes[] = {"ok", "error", "cancelled", "timeout"};
#define N_OUTCOMES 4

struct srv_metrics {
    pthread_mutex_t mu;
    unsigned long long requests[SRV_ROUTE_COUNT][N_STATUS];
    unsigned long long latency_buckets[SRV_ROUTE_COUNT][N_BOUNDS]; /* non-cumulative */
    unsigned long long latency_count[SRV_ROUTE_COUNT];
    double latency_sum[SRV_ROUTE_COUNT];
    unsigned long long jobs[N_OUTCOMES];
    double audio_seconds, busy_seconds;
    unsigned long long rtf_buckets[N_RTF];
    unsigned long long rtf_count;
    double rtf_sum;
    long long realtime_open;
    unsigned long long realtime_total, realtime_turns;
    unsigned long long realtime_partials, realtime_partials_aborted;
    double realtime_partial_s;
};

srv_metrics *srv_metrics_new(void)
{
    srv_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void srv_metrics_free(srv_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int status_slot(int status)
{
    for (int i = 0; i < N_STATUS - 1; i++)
        if (tracked_status[i] == status) return i;
    return N_STATUS - 1;
}

void srv_metrics_request(srv_metrics *m, srv_route route, int status, double seconds)
{
    if (route < 0 || route >= SRV_ROUTE_COUNT) route = SRV_ROUTE_OTHER;
    pthread_mutex_lock(&m->mu);
    m->requests[route][status_slot(status)]++;
    int b = 0;
    while (b < N_BOUNDS && seconds > latency_bounds[b]) b++;
    if (b < N_BOUNDS) m->latency_buckets[route][b]++;
    m->latency_count[route]++;
    m->latency_sum[route] += seconds;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_job(srv_metrics *m, const char *outcome, double audio_s, double busy_s)
{
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < N_OUTCOMES; i++)
        if (strcmp(outcome, job_outcomes[i]) == 0) m->jobs[i]++;
    m->busy_seconds += busy_s;
    if (audio_s > 0) {
        m->audio_seconds += audio_s;
        double rtf = busy_s / audio_s;
        int b = 0;
        while (b < N_RTF && rtf > rtf_bounds[b]) b++;
        if (b < N_RTF) m->rtf_buckets[b]++;
        m->rtf_count++;
        m->rtf_sum += rtf;
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_realtime_session(srv_metrics *m, int delta)
{
    pthread_mutex_lock(&m->mu);
    m->realtime_open += delta;
    if (delta > 0) m->realtime_total++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_realtime_turn(srv_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->realtime_turns++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_realtime_partial(srv_metrics *m, int aborted, double busy_s)
{
    pthread_mutex_lock(&m->mu);
    m->realtime_partials++;
    m->realtime_partials_aborted += aborted != 0;
    m->realtime_partial_s += busy_s;
    pthread_mutex_unlock(&m->mu);
}

/* A growable text buffer for the exposition. */
typedef struct text_buf { char *data; size_t len, cap; int oom; } text_buf;

static void buf_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(text_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if (b->data && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) { b->oom = 1; return; }
        b->data = grown;
        b->cap = cap;
    }
}

static const char *status_label(int slot, char *buf, size_t cap)
{
    if (slot == N_STATUS - 1) return "other";
    snprintf(buf, cap, "%d", tracked_status[slot]);
    return buf;
}

char *srv_metrics_render(srv_metrics *m, const srv_gauges *g)
{
    text_buf b = {0};
    char sl[16];
    pthread_mutex_lock(&m->mu);
    buf_printf(&b, "# HELP asr_http_requests_total HTTP requests answered, by route and status code.\n"
            "# TYPE asr_http_requests_total counter\n");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++)
        for (int s = 0; s < N_STATUS; s++)
            if (m->requests[r][s])
                buf_printf(&b, "asr_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n", srv_route_label(r),
                    status_label(s, sl, sizeof sl), m->requests[r][s]);
    buf_printf(&b, "# HELP asr_http_request_duration_seconds Time from request headers to the last response byte.\n"
            "# TYPE asr_http_request_duration_seconds histogram\n");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++) {
        if (!m->latency_count[r]) continue;
        unsigned long long cum = 0;
        for (int i = 0; i < N_BOUNDS; i++) {
            cum += m->latency_buckets[r][i];
            buf_printf(&b, "asr_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", srv_route_label(r),
                latency_bounds[i], cum);
        }
        buf_printf(&b, "asr_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", srv_route_label(r),
            m->latency_count[r]);
        buf_printf(&b, "asr_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", srv_route_label(r), m->latency_sum[r]);
        buf_printf(&b, "asr_http_request_duration_seconds_count{route=\"%s\"} %llu\n", srv_route_label(r),
            m->latency_count[r]);
    }
    buf_printf(&b, "# HELP asr_jobs_total Decode jobs finished by the workers, by outcome.\n# TYPE asr_jobs_total counter\n");
    for (int i = 0; i < N_OUTCOMES; i++) buf_printf(&b, "asr_jobs_total{outcome=\"%s\"} %llu\n", job_outcomes[i], m->jobs[i]);
    buf_printf(&b, "# HELP asr_audio_seconds_total Seconds of audio transcribed successfully.\n"
            "# TYPE asr_audio_seconds_total counter\nasr_audio_seconds_total %.3f\n", m->audio_seconds);
    buf_printf(&b, "# HELP asr_worker_busy_seconds_total Wall seconds workers spent on jobs.\n"
            "# TYPE asr_worker_busy_seconds_total counter\nasr_worker_busy_seconds_total %.3f\n", m->busy_seconds);
    buf_printf(&b, "# HELP asr_real_time_factor Worker seconds per audio second over all successful jobs (lower is faster).\n"
            "# TYPE asr_real_time_factor gauge\nasr_real_time_factor %.6f\n",
        m->audio_seconds > 0 ? m->busy_seconds / m->audio_seconds : 0.0);
    buf_printf(&b, "# HELP asr_job_real_time_factor Real-time factor of each successful job.\n"
            "# TYPE asr_job_real_time_factor histogram\n");
    unsigned long long cum = 0;
    for (int i = 0; i < N_RTF; i++) {
        cum += m->rtf_buckets[i];
        buf_printf(&b, "asr_job_real_time_factor_bucket{le=\"%g\"} %llu\n", rtf_bounds[i], cum);
    }
    buf_printf(&b, "asr_job_real_time_factor_bucket{le=\"+Inf\"} %llu\nasr_job_real_time_factor_sum %.6f\n"
            "asr_job_real_time_factor_count %llu\n", m->rtf_count, m->rtf_sum, m->rtf_count);
    buf_printf(&b, "# HELP asr_realtime_connections_open Realtime WebSocket sessions open now.\n"
            "# TYPE asr_realtime_connections_open gauge\nasr_realtime_connections_open %lld\n"
            "# HELP asr_realtime_connections_total Realtime WebSocket sessions opened.\n"
            "# TYPE asr_realtime_connections_total counter\nasr_realtime_connections_total %llu\n"
            "# HELP asr_realtime_turns_total Audio turns committed and transcribed by realtime sessions.\n"
            "# TYPE asr_realtime_turns_total counter\nasr_realtime_turns_total %llu\n"
            "# HELP asr_realtime_partials_total Partial decodes of turns in progress (server VAD).\n"
            "# TYPE asr_realtime_partials_total counter\nasr_realtime_partials_total %llu\n"
            "# HELP asr_realtime_partials_aborted_total Partial decodes stopped by their turn's end.\n"
            "# TYPE asr_realtime_partials_aborted_total counter\nasr_realtime_partials_aborted_total %llu\n"
            "# HELP asr_realtime_partial_seconds_total Wall seconds spent in partial decodes.\n"
            "# TYPE asr_realtime_partial_seconds_total counter\nasr_realtime_partial_seconds_total %.6f\n",
        m->realtime_open, m->realtime_total, m->realtime_turns, m->realtime_partials, m->realtime_partials_aborted,
        m->realtime_partial_s);
    pthread_mutex_unlock(&m->mu);

    buf_printf(&b, "# HELP asr_queue_depth Jobs waiting for a worker.\n# TYPE asr_queue_depth gauge\nasr_queue_depth %d\n",
        g->queue_depth);
    buf_printf(&b, "# HELP asr_queue_capacity Jobs that may wait before requests get 429.\n"
            "# TYPE asr_queue_capacity gauge\nasr_queue_capacity %d\n", g->queue_capacity);
    buf_printf(&b, "# HELP asr_workers_busy Workers decoding right now.\n# TYPE asr_workers_busy gauge\nasr_workers_busy %d\n",
        g->busy_workers);
    buf_printf(&b, "# HELP asr_workers Worker threads.\n# TYPE asr_workers gauge\nasr_workers %d\n", g->workers);
    buf_printf(&b, "# HELP asr_http_requests_in_flight Requests received and not yet answered.\n"
            "# TYPE asr_http_requests_in_flight gauge\nasr_http_requests_in_flight %d\n", g->inflight_requests);
    buf_printf(&b, "# HELP asr_upload_bytes_in_flight Upload buffer bytes held by requests (queued and decoding included).\n"
            "# TYPE asr_upload_bytes_in_flight gauge\nasr_upload_bytes_in_flight %llu\n", g->inflight_upload_bytes);
    buf_printf(&b, "# HELP asr_upload_bytes_budget Upload bytes all requests may hold at once before 503.\n"
            "# TYPE asr_upload_bytes_budget gauge\nasr_upload_bytes_budget %llu\n", g->inflight_upload_budget);
    buf_printf(&b, "# HELP asr_draining 1 while shutting down.\n# TYPE asr_draining gauge\nasr_draining %d\n", g->draining);
    buf_printf(&b, "# HELP asr_model_load_seconds Time it took to load the model.\n"
            "# TYPE asr_model_load_seconds gauge\nasr_model_load_seconds %.6f\n", g->model_load_s);
    if (b.oom) { free(b.data); return NULL; }
    return b.data;
}
