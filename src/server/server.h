/* server.h — the `asr serve` HTTP service: entry point and the pieces its files share. */
#ifndef ASR_SERVER_H
#define ASR_SERVER_H

#include "asr.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

/* `asr serve ARGS...` (argv[0] = "serve"); returns the process exit code. */
int asr_cli_serve(int argc, char **argv);

/* ---- the models one server serves (model_set.c) --------------------------- */

#define SRV_MAX_MODELS 8

/* One served model. All are loaded at startup (which checks them and reads
 * their shapes); with --model-idle-unload, a model other than the default
 * is freed after that long unused and loaded again by the next job for it.
 * Fields above `mu` are set before the server starts and read-only after. */
typedef struct srv_model {
    int index;                 /* its place in srv_model_set.items; 0 = the default */
    char name[256];            /* what a request's `model` names and /v1/models lists */
    char path[4096];
    asr_model_info info;       /* shapes, compute type, weight bytes (from the first load);
                                  its strings point into type and format, not the model */
    char type[32], format[32];
    asr_model_params params;   /* how it is (re)loaded */
    int unloadable;            /* not the default, and idle unload is on */
    pthread_mutex_t mu;
    asr_model *model;          /* NULL while unloaded; guarded by mu */
    int refs;                  /* jobs using it now; guarded by mu */
    double last_used;          /* monotonic seconds; guarded by mu */
    double load_s;             /* the last load's seconds; guarded by mu */
    int loads;                 /* loads so far; guarded by mu */
    int decode_batch;          /* --decode-batch: sequences per shared decoder
                                  step; 0 = each worker computes alone */
    asr_scheduler *sched;      /* with the model while loaded when decode_batch
                                  > 0; guarded by mu */
} srv_model;

/* `--model a,b,...`: items[0] is the default, what `whisper-1` means. */
typedef struct srv_model_set {
    int count;
    srv_model items[SRV_MAX_MODELS];
    double idle_unload_s;      /* 0 = never unload */
} srv_model_set;

/* An empty set: the caller fills in count and each entry's index, name,
 * path, params and unloadable (mutexes are initialised). NULL on OOM. */
srv_model_set *srv_models_new(void);
void srv_models_free(srv_model_set *set); /* frees every loaded model */
/* Load a model now (at startup): ASR_OK, or err says why. */
asr_status srv_model_load(srv_model *m, asr_error *err);
/* The model a request's `model` field names: "whisper-1" (the default), a
 * name as listed, or a model type ("tiny", "base") that names exactly one
 * served model. NULL if none. */
srv_model *srv_model_find(srv_model_set *set, const char *name);
/* The names a request may use, for messages: "'whisper-1', 'tiny.en', 'base'" (cut to fit n). */
void srv_models_names(const srv_model_set *set, char *buf, size_t n);
/* A job's hold on a model, loading it again if it was unloaded: the model,
 * or NULL with err. Every acquire is paired with a release. */
const asr_model *srv_model_acquire(srv_model *m, asr_error *err);
void srv_model_release(srv_model *m);
/* A state for m's weights (acquired by the caller): on m's scheduler when
 * it has one, else with its own threads. */
asr_state *srv_model_state_new(srv_model *m, const asr_model *model, asr_error *err);
/* m's scheduler counters; 0 when it has none (batching off, or unloaded). */
int srv_model_scheduler_stats(srv_model *m, asr_scheduler_stats *out);
/* Free models unused for idle_unload_s; returns how many were freed. */
int srv_models_unload_idle(srv_model_set *set);
/* A consistent look at one model: loaded (0/1), loads so far, last load's seconds. */
void srv_model_status(srv_model *m, int *loaded, int *loads, double *load_s);

/* ---- configuration (serve_cmd.c) ------------------------------------------ */

typedef struct srv_config {
    char host[256];
    int port;                  /* 0 = any free port (the log line says which) */
    int workers;               /* decoding threads, each with its own asr_state */
    int queue;                 /* jobs waiting for a worker before 429          */
    int threads;               /* matrix threads per worker, 0 = model default  */
    int decode_batch;          /* sequences per shared decoder step; 0 = off  */
    int long_batch;            /* --batch-size for uploads over 30 s; 0 = off */
    char model_path[4096];
    char model_name[256];      /* the default (first) model's name, what whisper-1 means */
    char api_key[512];         /* empty = no auth                             */
    char compute_type[32];     /* asr_compute_type_parse name                 */
    size_t max_upload_bytes;   /* request body limit → 413                    */
    size_t max_inflight_bytes; /* upload bytes held by all requests at once → 503 */
    double max_audio_s;        /* decoded duration limit → 413; 0 = none      */
    double request_timeout_s;  /* whole job (queue + decode) deadline         */
    double decode_timeout_s;   /* FFmpeg decode deadline                      */
    int max_connections;
    int max_connections_per_ip; /* 0 = unlimited                              */
    int idle_timeout_s;        /* no bytes on a connection for this long → close */
    double header_timeout_s;   /* from connect (or last response) to full headers */
    double body_timeout_s;     /* from headers to the end of the body        */
    double write_timeout_s;    /* from a response queued to its last byte sent */
    double min_upload_rate;    /* bytes/s a body must average after the first seconds */
    double grace_s;            /* drain period on SIGTERM/SIGINT              */
    double stuck_s;            /* a busy worker silent this long fails /healthz */
    int vad_default;           /* --vad: Silero VAD filter when a request does not say */
    srv_model_set *models;     /* every served model, items[0] = model_name/model_path */
} srv_config;

/* ---- metrics (metrics.c) ---------------------------------------------------- */

typedef enum srv_route {
    SRV_ROUTE_TRANSCRIPTIONS,
    SRV_ROUTE_TRANSLATIONS,
    SRV_ROUTE_ASR,
    SRV_ROUTE_DETECT_LANGUAGE,
    SRV_ROUTE_MODELS,
    SRV_ROUTE_HEALTHZ,
    SRV_ROUTE_READYZ,
    SRV_ROUTE_METRICS,
    SRV_ROUTE_OPENAPI,
    SRV_ROUTE_WEB, /* the browser page at / and its files */
    SRV_ROUTE_REALTIME, /* WebSocket: live transcription (realtime.c) */
    SRV_ROUTE_OTHER,
    SRV_ROUTE_COUNT
} srv_route;

/* The metrics label of a route (its row in routes.c's table), "other" for none. */
const char *srv_route_label(srv_route route);

typedef struct srv_metrics srv_metrics;

srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, srv_route route, int status, double seconds);
/* A finished decode: seconds of audio and wall seconds spent on it. */
void srv_metrics_job(srv_metrics *m, const char *outcome, double audio_s, double busy_s);
/* Realtime WebSocket sessions (realtime.c): opened (+1) / closed (-1), and one committed turn. */
void srv_metrics_realtime_session(srv_metrics *m, int delta);
void srv_metrics_realtime_turn(srv_metrics *m);
/* One partial decode of a turn in progress: stopped by the turn's end or not, wall seconds. */
void srv_metrics_realtime_partial(srv_metrics *m, int aborted, double busy_s);
/* Prometheus text exposition; gauges are passed in by the caller. Returns malloc'd text. */
typedef struct srv_gauges {
    int queue_depth, queue_capacity, busy_workers, workers, inflight_requests, draining;
    double model_load_s;
    unsigned long long inflight_upload_bytes, inflight_upload_budget;
} srv_gauges;
char *srv_metrics_render(srv_metrics *m, const srv_gauges *g);

/* ---- jobs and the worker pool (jobs.c) ------------------------------------- */

typedef enum srv_job_kind { SRV_JOB_TRANSCRIBE, SRV_JOB_DETECT_LANGUAGE } srv_job_kind;
typedef enum srv_job_phase { SRV_JOB_QUEUED, SRV_JOB_DECODING, SRV_JOB_RUNNING, SRV_JOB_DONE } srv_job_phase;

/* What a job reports while it runs, to whoever listens (routes.c turns
 * them into Server-Sent Events). Pointers are valid during the call only. */
typedef enum srv_job_event_kind {
    SRV_EVENT_SEGMENT,  /* a segment finished: segment */
    SRV_EVENT_PROGRESS, /* progress: fraction of the audio done */
    SRV_EVENT_DONE,     /* success, last event: result */
    SRV_EVENT_ERROR     /* failure, last event: status, err */
} srv_job_event_kind;

typedef struct srv_job_event {
    srv_job_event_kind kind;
    const asr_segment *segment;
    float fraction;
    const asr_result *result;
    asr_status status;
    const asr_error *err;
} srv_job_event;

typedef struct srv_job srv_job;
/* Called by the worker with job->mu held (it broadcasts job->changed after). */
typedef void (*srv_job_listener)(srv_job *job, const srv_job_event *event);

/* One request's work. Shared by the HTTP thread that waits for it and the
 * worker that runs it; freed when both have released it. Fields under
 * "input" are written before submission and read-only afterwards; the rest
 * are guarded by mu. */
struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* phase advanced or an event was reported */
    int refs;

    /* input */
    srv_job_kind kind;
    srv_model *model;       /* NULL = the pool's model (the default) */
    unsigned char *upload; /* the uploaded file; the worker frees it once decoded */
    size_t upload_size;
    asr_audio_limits limits;
    asr_task task;
    char language[16];     /* "" = detect */
    char *prompt;          /* NULL = none */
    float temperature;     /* < 0 = default fallback ladder */
    int word_timestamps;   /* timestamp_granularities[] has "word"     */
    int vad_filter;        /* transcribe only the speech Silero VAD finds */
    asr_vad_params vad;    /* its options (chunking_strategy)          */
    srv_job_listener on_event; /* NULL = no events wanted */
    void *listener;        /* on_event's state: guarded by mu, freed with the job */
    void (*listener_free)(void *listener);
    double deadline;       /* monotonic seconds; 0 = none */
    double queued_at;      /* monotonic seconds it entered the queue (set by submit) */
    int size_bounded;      /* submit lowered limits.max_duration_s to the upload's size bound */

    atomic_int abort;      /* set by the HTTP side: client gone, shutdown */

    /* output */
    srv_job_phase phase;
    asr_status status;
    asr_error err;
    asr_result *result;    /* SRV_JOB_TRANSCRIBE on success */
    int lang_index;        /* SRV_JOB_DETECT_LANGUAGE on success */
    float lang_prob;
    double audio_s, busy_s;
};

srv_job *srv_job_new(void);
void srv_job_release(srv_job *job);

typedef struct srv_pool srv_pool;

/* Start `workers` threads, each with its own state on `model`. NULL + err on
 * failure. A job for another model (job->model) runs on a state the worker
 * creates for that model on first use and keeps. */
srv_pool *srv_pool_start(srv_model *model, int workers, int queue_cap, int n_threads,
                         srv_metrics *metrics, asr_error *err);
/* --batch-size: uploads of more than 30 s are transcribed with the batched
 * long-form pipeline, batch_size windows at a time (0 = never). Set before
 * the first job. */
void srv_pool_set_long_batch(srv_pool *pool, int batch_size);
/* Queue a job: 0 = queued, -1 = queue full, -2 = pool stopping. */
int srv_pool_submit(srv_pool *pool, srv_job *job);
/* Take a job that is still queued out of the queue now (its client left, or
 * its deadline passed): it ends with `status`, its upload is freed and its
 * slot is free at once. Returns 1 if removed, 0 if a worker has it already
 * (then only job->abort stops it). */
int srv_pool_cancel(srv_pool *pool, srv_job *job, asr_status status, const char *why);
void srv_pool_abort_all(srv_pool *pool);
void srv_pool_stop(srv_pool *pool); /* abort queued jobs, join, free */
int srv_pool_queue_depth(srv_pool *pool);
int srv_pool_queue_capacity(const srv_pool *pool);
int srv_pool_busy(srv_pool *pool);
int srv_pool_workers(const srv_pool *pool);
/* Number of busy workers that have shown no progress for stuck_s seconds. */
int srv_pool_stuck(srv_pool *pool, double stuck_s);
/* Seconds a new job should expect to wait, for Retry-After (1..120). */
int srv_pool_retry_after(srv_pool *pool);

/* ---- the monotonic clock (clock.c) ------------------------------------------- */

double srv_now(void); /* monotonic seconds: every deadline and duration the server measures */
/* A condition variable whose timed waits run on that clock. */
void srv_cond_init(pthread_cond_t *cond);
/* pthread_cond_timedwait for at most `seconds` from now (cond made by srv_cond_init). */
int srv_cond_wait_for(pthread_cond_t *cond, pthread_mutex_t *mu, double seconds);

/* ---- temperatures (temperature.c) ------------------------------------------- */

/* The fallback ladder a temperature T names, as openai-whisper's CLI builds
 * it: T, T + increment, ... up to 1.0 (numpy's arange(T, 1.0 + 1e-6,
 * increment)); T alone when increment is 0 or T is above 1. A window whose
 * decode fails the compression-ratio or log-probability threshold is decoded
 * again at the next one. `asr transcribe --temperature T
 * --temperature-increment-on-fallback D` and the API's `temperature` field
 * (step 0.2) both mean this. Writes out[0..n) with n <= cap; returns n >= 1. */
#define SRV_TEMPERATURE_INCREMENT 0.2
int srv_temperature_ladder(double start, double increment, float *out, int cap);

/* ---- the HTTP service (http.c) ---------------------------------------------- */

typedef struct srv_server srv_server;

srv_server *srv_server_start(const srv_config *cfg, const asr_model *model, double model_load_s,
                             srv_pool *pool, srv_metrics *metrics, asr_error *err);
int srv_server_port(const srv_server *s);
/* Readiness off, stop accepting, wait up to grace_s for in-flight requests
 * (cancelling what is left). A second stop signal cuts the wait short: one
 * in `interrupt` (if not NULL) taken by this thread, or one caught by a
 * handler on another thread, which counts it in *stop_signals (if not NULL;
 * the count includes the signal that began the drain, so above 1 means
 * another came). Returns the number of requests that had to be cancelled. */
int srv_server_drain(srv_server *s, double grace_s, const sigset_t *interrupt, atomic_int *stop_signals);
void srv_server_free(srv_server *s);

/* ---- OpenAPI document (openapi.c) ------------------------------------------- */

const char *srv_openapi_json(void);

#endif /* ASR_SERVER_H */
