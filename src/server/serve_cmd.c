/* serve_cmd.c — `asr serve`: options and environment, model loading, signals, graceful shutdown. */
#include "server/server.h"
#include "catalog/catalog.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: asr serve [options]\n"
            "Speech-to-text HTTP service: OpenAI audio API (/v1/audio/transcriptions, /v1/audio/translations,\n"
            "/v1/models), whisper-asr-webservice (/asr, /detect-language), /healthz, /readyz, /metrics,\n"
            "/openapi.json, and a web page at / for trying it in a browser. Every option can also be set by the\n"
            "environment variable shown.\n"
            "Queue: the job with the least audio its upload can hold runs first (an upload may decode to at most\n"
            "0.02 s of audio per byte, and never less than 60 s); no job is overtaken once it has waited 30 s.\n\n"
            "  --model NAME|DIR[,...]      ASR_MODEL              model names or directories, comma-separated; the first\n"
            "                                                     is the default (whisper-1), a request's `model` picks\n"
            "                                                     another by its name (default tiny.en)\n"
            "  --host ADDR                 ASR_HOST               listen address (default 127.0.0.1)\n"
            "  --port N                    ASR_PORT               listen port, 0 = any free (default 8000)\n"
            "  --workers N                 ASR_WORKERS            requests decoded at once (default 4)\n"
            "  --queue N                   ASR_QUEUE              jobs waiting before 429 (default 16)\n"
            "  --threads N                 ASR_THREADS            compute threads of each model's scheduler (of each\n"
            "                                                     worker with --decode-batch 0), 0 = all CPUs (default 0)\n"
            "  --decode-batch N            ASR_DECODE_BATCH       the workers' requests share one compute per model: their\n"
            "                                                     decoder steps run together, up to N sequences a step\n"
            "                                                     (16..256); 0 = each worker computes alone (default 64)\n"
            "  --batch-size N              ASR_BATCH_SIZE         uploads over 30 s: VAD chunks decoded N windows at a\n"
            "                                                     time (asr transcribe --batch-size; no conditioning on\n"
            "                                                     the previous window's text), 1..16; 0 = off (default)\n"
            "  --compute-type TYPE         ASR_COMPUTE_TYPE       auto|float32|float16|bfloat16|int8|int8_float32|\n"
            "                                                     int8_bfloat16 (default auto)\n"
            "  --api-key KEY               ASR_API_KEY            require Authorization: Bearer KEY\n"
            "  --max-upload-mb N           ASR_MAX_UPLOAD_MB      request body limit → 413 (default 25)\n"
            "  --max-inflight-mb N         ASR_MAX_INFLIGHT_MB    uploads held in memory at once, all requests\n"
            "                                                     together → 503 (default: a quarter of the memory\n"
            "                                                     limit of the cgroup, at most 256)\n"
            "  --max-audio-seconds N       ASR_MAX_AUDIO_SECONDS  decoded audio limit → 413, 0 = none (default 1800)\n"
            "  --request-timeout S         ASR_REQUEST_TIMEOUT    per-request deadline, queue included (default 900)\n"
            "  --decode-timeout S          ASR_DECODE_TIMEOUT     audio decoding deadline (default 60)\n"
            "  --max-connections N         ASR_MAX_CONNECTIONS    open connections (default 128)\n"
            "  --max-connections-per-ip N  ASR_MAX_CONNECTIONS_PER_IP  0 = unlimited (default 32)\n"
            "  --idle-timeout S            ASR_IDLE_TIMEOUT       close a connection silent this long (default 30)\n"
            "  --header-timeout S          ASR_HEADER_TIMEOUT     deadline for request headers (default 10)\n"
            "  --body-timeout S            ASR_BODY_TIMEOUT       deadline for a request body (default 120)\n"
            "  --min-upload-rate B         ASR_MIN_UPLOAD_RATE    bytes/s a body must average (default 32768)\n"
            "  --write-timeout S           ASR_WRITE_TIMEOUT      deadline for sending a response, 0 = none (default 60)\n"
            "  --grace S                   ASR_GRACE              drain time on SIGTERM/SIGINT (default 30)\n"
            "  --stuck-timeout S           ASR_STUCK_TIMEOUT      busy worker silent this long fails /healthz (default 300)\n"
            "  --model-idle-unload S       ASR_MODEL_IDLE_UNLOAD  free a model other than the default after S seconds\n"
            "                                                     unused; the next request loads it again (0 = never)\n"
            "  --vad[=BOOL]                ASR_VAD                Silero VAD filter for requests that do not set\n"
            "                                                     chunking_strategy / vad_filter (default false)\n");
}

typedef enum opt_kind { OPT_STR, OPT_INT, OPT_NUM, OPT_BOOL } opt_kind;

typedef struct opt_spec {
    const char *flag, *env;
    opt_kind kind;
    double min, max;
    void *target; /* char[cap] for OPT_STR, int for OPT_INT and OPT_BOOL, double for OPT_NUM */
    size_t cap;
} opt_spec;

/* Parse and store one value; prints the problem and returns -1 if invalid. */
static int set_option(const opt_spec *o, const char *value, const char *source)
{
    if (o->kind == OPT_STR) {
        if (strlen(value) >= o->cap) {
            fprintf(stderr, "asr serve: %s is too long\n", source);
            return -1;
        }
        memcpy(o->target, value, strlen(value) + 1);
        return 0;
    }
    if (o->kind == OPT_BOOL) {
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0) *(int *)o->target = 1;
        else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0)
            *(int *)o->target = 0;
        else {
            fprintf(stderr, "asr serve: %s must be true or false, got '%s'\n", source, value);
            return -1;
        }
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || v < o->min || v > o->max || (o->kind == OPT_INT && v != (double)(long)v)) {
        fprintf(stderr, "asr serve: %s must be %s between %g and %g, got '%s'\n", source,
                o->kind == OPT_INT ? "an integer" : "a number", o->min, o->max, value);
        return -1;
    }
    if (o->kind == OPT_INT) *(int *)o->target = (int)v;
    else *(double *)o->target = v;
    return 0;
}

/* The longest recording accepted by default: 30 minutes. A 25 MB upload
 * (the default limit, OpenAI's too) holds 26 minutes of 128 kbit/s MP3;
 * longer audio at lower bitrates is what a queue-hogging client sends. */
#define SRV_DEFAULT_MAX_AUDIO_S 1800.0

/* The default in-flight upload budget: a quarter of the memory the cgroup
 * (the pod's container) may use, so uploads never take more than that share
 * of the limit, at most 256 MiB; 256 MiB where no limit is set. */
static size_t default_inflight_bytes(void)
{
    const size_t cap = (size_t)256 << 20;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* cgroup v2 */
    if (!f) f = fopen("/sys/fs/cgroup/memory/memory.limit_in_bytes", "r"); /* v1 */
    if (!f) return cap;
    unsigned long long limit = 0;
    int got = fscanf(f, "%llu", &limit); /* "max" (no limit) does not parse */
    fclose(f);
    if (got != 1 || limit == 0 || limit / 4 >= cap) return cap;
    size_t quarter = (size_t)(limit / 4);
    return quarter < ((size_t)32 << 20) ? ((size_t)32 << 20) : quarter;
}

/* Defaults, then environment, then command line (which wins). */
static int parse_config(int argc, char **argv, srv_config *cfg, char *model_arg, size_t model_cap, double *idle_unload)
{
    double upload_mb = 25, inflight_mb = 0;
    *cfg = (srv_config){
        .host = "127.0.0.1", .compute_type = "auto", .port = 8000, .workers = 4, .decode_batch = 64, .queue = 16, .threads = 0,
        .max_audio_s = SRV_DEFAULT_MAX_AUDIO_S, .request_timeout_s = 900, .decode_timeout_s = 60,
        .max_connections = 128, .max_connections_per_ip = 32, .idle_timeout_s = 30,
        .header_timeout_s = 10, .body_timeout_s = 120, .min_upload_rate = 32768, .write_timeout_s = 60,
        .grace_s = 30, .stuck_s = 300,
    };
    model_arg[0] = 0;
    double idle = cfg->idle_timeout_s;
    const opt_spec opts[] = {
        {"--model", "ASR_MODEL", OPT_STR, 0, 0, model_arg, model_cap},
        {"--host", "ASR_HOST", OPT_STR, 0, 0, cfg->host, sizeof cfg->host},
        {"--port", "ASR_PORT", OPT_INT, 0, 65535, &cfg->port, 0},
        {"--workers", "ASR_WORKERS", OPT_INT, 1, 256, &cfg->workers, 0},
        {"--queue", "ASR_QUEUE", OPT_INT, 1, 100000, &cfg->queue, 0},
        {"--threads", "ASR_THREADS", OPT_INT, 0, 1024, &cfg->threads, 0},
        {"--decode-batch", "ASR_DECODE_BATCH", OPT_INT, 0, 256, &cfg->decode_batch, 0},
        {"--batch-size", "ASR_BATCH_SIZE", OPT_INT, 0, 16, &cfg->long_batch, 0},
        {"--compute-type", "ASR_COMPUTE_TYPE", OPT_STR, 0, 0, cfg->compute_type, sizeof cfg->compute_type},
        {"--api-key", "ASR_API_KEY", OPT_STR, 0, 0, cfg->api_key, sizeof cfg->api_key},
        {"--max-upload-mb", "ASR_MAX_UPLOAD_MB", OPT_NUM, 0.001, 4096, &upload_mb, 0},
        {"--max-inflight-mb", "ASR_MAX_INFLIGHT_MB", OPT_NUM, 0.001, 1048576, &inflight_mb, 0},
        {"--max-audio-seconds", "ASR_MAX_AUDIO_SECONDS", OPT_NUM, 0, 1e7, &cfg->max_audio_s, 0},
        {"--request-timeout", "ASR_REQUEST_TIMEOUT", OPT_NUM, 0, 1e7, &cfg->request_timeout_s, 0},
        {"--decode-timeout", "ASR_DECODE_TIMEOUT", OPT_NUM, 0, 1e7, &cfg->decode_timeout_s, 0},
        {"--max-connections", "ASR_MAX_CONNECTIONS", OPT_INT, 1, 100000, &cfg->max_connections, 0},
        {"--max-connections-per-ip", "ASR_MAX_CONNECTIONS_PER_IP", OPT_INT, 0, 100000, &cfg->max_connections_per_ip, 0},
        {"--idle-timeout", "ASR_IDLE_TIMEOUT", OPT_NUM, 1, 86400, &idle, 0},
        {"--header-timeout", "ASR_HEADER_TIMEOUT", OPT_NUM, 0.1, 86400, &cfg->header_timeout_s, 0},
        {"--body-timeout", "ASR_BODY_TIMEOUT", OPT_NUM, 0.1, 86400, &cfg->body_timeout_s, 0},
        {"--min-upload-rate", "ASR_MIN_UPLOAD_RATE", OPT_NUM, 0, 1e12, &cfg->min_upload_rate, 0},
        {"--write-timeout", "ASR_WRITE_TIMEOUT", OPT_NUM, 0, 86400, &cfg->write_timeout_s, 0},
        {"--grace", "ASR_GRACE", OPT_NUM, 0, 86400, &cfg->grace_s, 0},
        {"--stuck-timeout", "ASR_STUCK_TIMEOUT", OPT_NUM, 1, 86400, &cfg->stuck_s, 0},
        {"--vad", "ASR_VAD", OPT_BOOL, 0, 0, &cfg->vad_default, 0},
        {"--model-idle-unload", "ASR_MODEL_IDLE_UNLOAD", OPT_NUM, 0, 1e7, idle_unload, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    for (int i = 0; i < n_opts; i++) {
        const char *v = getenv(opts[i].env);
        if (v && v[0] && set_option(&opts[i], v, opts[i].env) != 0) return -1;
    }
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) { usage(stdout); return 1; }
        const char *arg = argv[a], *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const opt_spec *o = NULL;
        for (int i = 0; i < n_opts; i++)
            if (strlen(opts[i].flag) == name_len && strncmp(arg, opts[i].flag, name_len) == 0) o = &opts[i];
        if (!o) {
            fprintf(stderr, "asr serve: unknown option '%s' (see asr serve --help)\n", arg);
            return -1;
        }
        const char *value = eq ? eq + 1 : o->kind == OPT_BOOL ? "true" /* a bare --vad */
                                        : (a + 1 < argc ? argv[++a] : NULL);
        if (!value) {
            fprintf(stderr, "asr serve: %s needs a value\n", o->flag);
            return -1;
        }
        if (set_option(o, value, o->flag) != 0) return -1;
    }
    if (asr_compute_type_parse(cfg->compute_type) < 0) {
        fprintf(stderr, "asr serve: unknown compute type '%s' (auto|float32|float16|bfloat16|int8|int8_float32|"
                        "int8_bfloat16)\n", cfg->compute_type);
        return -1;
    }
    if (cfg->decode_batch > 0 && cfg->decode_batch < 16) {
        fprintf(stderr, "asr serve: --decode-batch must be 0 (off) or 16..256 (one request's beam or best_of "
                        "may hold 16 sequences)\n");
        return -1;
    }
    cfg->max_upload_bytes = (size_t)(upload_mb * 1024 * 1024);
    cfg->max_inflight_bytes = inflight_mb > 0 ? (size_t)(inflight_mb * 1024 * 1024) : default_inflight_bytes();
    if (inflight_mb <= 0 && cfg->max_inflight_bytes < cfg->max_upload_bytes + 1)
        cfg->max_inflight_bytes = cfg->max_upload_bytes + 1; /* the derived default holds at least one upload */
    if (cfg->max_inflight_bytes < cfg->max_upload_bytes + 1) {
        fprintf(stderr, "asr serve: the upload budget (%zu MiB, --max-inflight-mb) must hold one upload of the "
                        "--max-upload-mb limit (%.3g MiB)\n", cfg->max_inflight_bytes >> 20, upload_mb);
        return -1;
    }
    cfg->idle_timeout_s = (int)(idle + 0.999);
    return 0;
}

static void log_event(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!line) return;
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    free(line);
}

static void log_error(const char *msg)
{
    log_event(json_pack("{s:s, s:s, s:s}", "level", "error", "event", "startup", "msg", msg));
}

/* The name clients may use for a --model entry: the entry if it is a name,
 * else the directory's last component. */
static void model_name_of(const char *entry, char *out, size_t cap)
{
    size_t len = strlen(entry);
    while (len > 1 && entry[len - 1] == '/') len--;
    const char *base = entry + len;
    while (base > entry && base[-1] != '/') base--;
    size_t base_len = (size_t)(entry + len - base);
    if (base_len >= cap) base_len = cap - 1; /* a name, not a path: cut */
    memcpy(out, base, base_len);
    out[base_len] = 0;
}

/* Split `--model a,b` into resolved entries: 0, or -1 after saying why. */
static int parse_model_list(const char *arg, srv_model_set *set)
{
    const char *p = arg[0] ? arg : ASR_CATALOG_DEFAULT_MODEL;
    set->count = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char entry[4096];
        if (n == 0 || n >= sizeof entry) {
            fprintf(stderr, "asr serve: --model: %s entry in '%s'\n", n ? "too long an" : "an empty", arg);
            return -1;
        }
        if (set->count == SRV_MAX_MODELS) {
            fprintf(stderr, "asr serve: --model: at most %d models\n", SRV_MAX_MODELS);
            return -1;
        }
        memcpy(entry, p, n);
        entry[n] = 0;
        srv_model *m = &set->items[set->count];
        asr_error rerr;
        if (asr_catalog_resolve(entry, m->path, sizeof m->path, &rerr) != ASR_OK) {
            fprintf(stderr, "asr: %s\n", rerr.message);
            return -1;
        }
        model_name_of(entry, m->name, sizeof m->name);
        for (int i = 0; i < set->count; i++)
            if (strcmp(set->items[i].name, m->name) == 0) {
                fprintf(stderr, "asr serve: --model: '%s' is listed twice\n", m->name);
                return -1;
            }
        set->count++;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* The one piece of static state: a signal handler can reach nothing else.
 * Set by note_stop_signal, read by the main loop and the drain: the last stop
 * signal caught by a handler, and how many stop signals have come in all
 * (the main loop adds the one it takes with sigtimedwait), so that a second
 * SIGTERM during the drain is seen whichever thread the kernel gives it to.
 * A lock-free atomic is async-signal-safe. */
static volatile sig_atomic_t stop_signal_seen;
static atomic_int stop_signal_count;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs a lock-free atomic_int");

static void note_stop_signal(int sig)
{
    stop_signal_seen = sig;
    atomic_fetch_add(&stop_signal_count, 1);
}

int asr_cli_serve(int argc, char **argv)
{
    srv_config cfg;
    char model_arg[4 * 4096];
    double idle_unload = 0;
    int prc = parse_config(argc, argv, &cfg, model_arg, sizeof model_arg, &idle_unload);
    if (prc != 0) return prc > 0 ? 0 : 2;

    srv_model_set *models = srv_models_new();
    if (!models) return 1;
    if (parse_model_list(model_arg, models) != 0) { srv_models_free(models); return 2; }
    models->idle_unload_s = idle_unload;
    memcpy(cfg.model_path, models->items[0].path, sizeof cfg.model_path);
    memcpy(cfg.model_name, models->items[0].name, sizeof cfg.model_name);
    cfg.models = models;

    /* Signals are taken synchronously by this thread (sigtimedwait), so every
     * thread started below inherits the blocked mask and no server code runs
     * in async-signal context (the handler below only sets a flag). */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Threads that libraries start before main (OpenBLAS's pool, from its
     * constructor) do not block them: a SIGTERM sent while this thread is
     * not inside sigtimedwait would go to one of those and, by default,
     * kill the process without draining. Caught there, it is passed on. */
    struct sigaction sa = {0};
    sa.sa_handler = note_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    asr_error err;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = cfg.threads;
    mp.compute_type = (asr_compute_type)asr_compute_type_parse(cfg.compute_type);
    for (int i = 0; i < models->count; i++) {
        srv_model *m = &models->items[i];
        m->params = mp;
        m->unloadable = i > 0 && idle_unload > 0;
        m->decode_batch = cfg.decode_batch;
        if (srv_model_load(m, &err) != ASR_OK) {
            log_error(err.message);
            srv_models_free(models);
            return 1;
        }
    }
    asr_model *model = models->items[0].model;
    double load_s = models->items[0].load_s;
    srv_metrics *metrics = srv_metrics_new();
    srv_pool *pool = metrics ? srv_pool_start(&models->items[0], cfg.workers, cfg.queue, cfg.threads, metrics, &err) : NULL;
    if (!pool) {
        log_error(metrics ? err.message : "out of memory");
        srv_metrics_free(metrics);
        srv_models_free(models);
        return 1;
    }
    srv_pool_set_long_batch(pool, cfg.long_batch);
    srv_server *server = srv_server_start(&cfg, model, load_s, pool, metrics, &err);
    if (!server) {
        log_error(err.message);
        srv_pool_stop(pool);
        srv_metrics_free(metrics);
        srv_models_free(models);
        return 1;
    }
    json_t *names = json_array();
    for (int i = 0; i < models->count; i++) json_array_append_new(names, json_string(models->items[i].name));
    log_event(json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:s, s:s, s:f, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:f}", "level",
                        "info", "event", "listening", "host", cfg.host, "port", srv_server_port(server), "model",
                        cfg.model_name, "models", names, "model_path", cfg.model_path, "compute_type",
                        asr_compute_type_name(asr_model_compute_type(model)), "model_load_s", load_s, "workers",
                        cfg.workers, "decode_batch", cfg.decode_batch, "batch_size", cfg.long_batch, "queue", cfg.queue,
                        "threads", cfg.threads,
                        "auth", cfg.api_key[0] != 0,
                        "vad", cfg.vad_default != 0, "model_idle_unload_s", idle_unload));

    int sig = 0;
    while (sig <= 0) {
        siginfo_t info;
        struct timespec tick = {0, 250 * 1000 * 1000};
        sig = sigtimedwait(&stop_signals, &info, &tick);
        if (sig > 0) atomic_fetch_add(&stop_signal_count, 1);
        if (sig <= 0 && stop_signal_seen) sig = (int)stop_signal_seen;
        if (srv_models_unload_idle(models) > 0)
            log_event(json_pack("{s:s, s:s, s:f}", "level", "info", "event", "models_unloaded", "idle_s", idle_unload));
    }
    log_event(json_pack("{s:s, s:s, s:s, s:f}", "level", "info", "event", "draining", "signal",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT", "grace_s", cfg.grace_s));
    int cancelled = srv_server_drain(server, cfg.grace_s, &stop_signals, &stop_signal_count);
    srv_server_free(server);
    srv_pool_stop(pool);
    srv_metrics_free(metrics);
    srv_models_free(models);
    log_event(json_pack("{s:s, s:s, s:i}", "level", "info", "event", "stopped", "cancelled_requests", cancelled));
    return 0;
}
