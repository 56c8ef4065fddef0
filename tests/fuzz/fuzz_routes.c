/* fuzz_routes.c — libFuzzer harness for the server's request handling: routing, method and key checks, the multipart form collector and every endpoint's validation (src/server/, through srv_local_serve, without a socket).
 *
 * Input: byte 0 picks the piece size the form parts arrive in (1 to 2048
 * bytes, as the post processor hands them over) and, with its top bit, a
 * draining server; then a text request:
 *
 *     METHOD PATH[?QUERY]
 *     Header-Name: value        (any number, up to an empty line)
 *
 *     --NAME                    a form field; its value runs to the next "\n--" line
 *     --NAME; FILENAME          a file part
 *
 * The parts reach the same collector (on_form_part) that libmicrohttpd's
 * post processor feeds; the multipart parser itself is the library's, not
 * ours. The jobs are the server's own (job.c); the worker pool is a stub
 * defined here: it ends a job at once, with an outcome picked by the
 * upload's first byte (queue full, shutting down, each failure status, or
 * a detected language), so no audio is decoded
 * (fuzz_audio covers decoding). Checked on every input: the answer's status
 * is one the server may give, every error is OpenAI's error JSON, a JSON
 * answer parses, and the request gives back its whole share of the upload
 * budget and its in-flight count. Leaks are libFuzzer's to find.
 * Built by `make fuzz`; run by tests/integration/fuzz_smoke.sh.
 */
#include "server/request.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define API_KEY "sk-fuzz"
#define MAX_HEADERS 16
#define MAX_ARGS 16
#define MAX_PARTS 24

/* ---- the stub pool: jobs end as soon as they are submitted ----------------------- */

struct srv_pool { int unused; };

int srv_pool_submit(srv_pool *pool, srv_job *job)
{
    (void)pool;
    unsigned char pick = job->upload_size ? job->upload[0] : 0;
    if (pick == 'q') return -1;
    if (pick == 's') return -2;
    static const asr_status failures[] = {ASR_ERR_AUDIO, ASR_ERR_TOO_LARGE, ASR_ERR_INVALID_ARGUMENT,
                                          ASR_ERR_UNSUPPORTED, ASR_ERR_TIMEOUT, ASR_ERR_CANCELLED};
    pthread_mutex_lock(&job->mu);
    if (job->kind == SRV_JOB_DETECT_LANGUAGE && pick == 'l') {
        job->status = ASR_OK;
        job->lang_index = job->upload_size > 1 ? job->upload[1] % asr_lang_count() : 0;
        job->lang_prob = 0.5f;
    } else { /* a transcription never succeeds here: there is no result to render */
        job->status = job->err.code = failures[pick % 6];
        snprintf(job->err.message, sizeof job->err.message, "stub pool: outcome %u", pick % 6u);
        if (job->on_event)
            job->on_event(job, &(srv_job_event){.kind = SRV_EVENT_ERROR, .status = job->status, .err = &job->err});
    }
    job->audio_s = 1.0;
    job->phase = SRV_JOB_DONE;
    pthread_cond_broadcast(&job->changed);
    pthread_mutex_unlock(&job->mu);
    return 0;
}

int srv_pool_cancel(srv_pool *pool, srv_job *job, asr_status status, const char *why)
{
    (void)pool; (void)status; (void)why;
    atomic_store(&job->abort, 1);
    return 0;
}
void srv_pool_abort_all(srv_pool *pool) { (void)pool; }
int srv_pool_queue_depth(srv_pool *pool) { (void)pool; return 0; }
int srv_pool_queue_capacity(const srv_pool *pool) { (void)pool; return 4; }
int srv_pool_busy(srv_pool *pool) { (void)pool; return 0; }
int srv_pool_workers(const srv_pool *pool) { (void)pool; return 1; }
int srv_pool_stuck(srv_pool *pool, double stuck_s) { (void)pool; (void)stuck_s; return 0; }
int srv_pool_retry_after(srv_pool *pool) { (void)pool; return 1; }

/* ---- one server for the whole run ---------------------------------------------- */

static srv_server *server(void)
{
    static srv_server *s;
    static srv_pool pool;
    if (s) return s;
    s = calloc(1, sizeof *s);
    srv_model_set *set = srv_models_new();
    if (!s || !set) abort();
    static const char *const names[] = {"tiny.en", "base"};
    set->count = 2;
    for (int i = 0; i < 2; i++) { /* their shapes only: the stub pool never loads them */
        srv_model *m = &set->items[i];
        snprintf(m->name, sizeof m->name, "%s", names[i]);
        snprintf(m->type, sizeof m->type, "%s", i ? "base" : "tiny");
        snprintf(m->format, sizeof m->format, "ctranslate2");
        m->info.type = m->type;
        m->info.format = m->format;
        m->info.multilingual = i;
        m->info.n_mels = 80;
    }
    srv_config *c = &s->cfg;
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    snprintf(c->model_name, sizeof c->model_name, "tiny.en");
    snprintf(c->api_key, sizeof c->api_key, API_KEY);
    c->workers = 1;
    c->queue = 4;
    c->max_upload_bytes = 64 * 1024;     /* small, so 413 is within reach */
    c->max_inflight_bytes = 256 * 1024;  /* and the budget's 503 */
    c->max_audio_s = 600;
    c->request_timeout_s = 0;
    c->decode_timeout_s = 10;
    c->body_timeout_s = 1e9;             /* no clock in the outcome */
    c->header_timeout_s = c->write_timeout_s = 1e9;
    c->idle_timeout_s = 30;
    c->stuck_s = 1e9;
    c->models = set;
    s->pool = &pool;
    s->metrics = srv_metrics_new();
    if (!s->metrics) abort();
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    return s;
}

/* ---- the input ------------------------------------------------------------------- */

/* The next line of [*p, end), NUL-terminated in place (the input is a copy). */
static char *next_line(char **p, char *end)
{
    if (*p >= end) return NULL;
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) nl = end;
    *p = nl < end ? nl + 1 : end;
    *nl = 0;
    if (nl > line && nl[-1] == '\r') nl[-1] = 0;
    return line;
}

/* %XX and '+' decoding of a query component, in place. */
static void unescape(char *s)
{
    char *o = s;
    for (char *i = s; *i; i++) {
        if (*i == '+') *o++ = ' ';
        else if (*i == '%' && i[1] && i[2] && strchr("0123456789abcdefABCDEF", i[1]) && strchr("0123456789abcdefABCDEF", i[2])) {
            char hex[3] = {i[1], i[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else *o++ = *i;
    }
    *o = 0;
}

static int status_allowed(int status)
{
    static const int ok[] = {200, 304, 400, 401, 404, 405, 413, 415, 422, 429, 503, 504};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (status == ok[i]) return 1;
    return 0;
}

/* OpenAI's error shape: {"error": {"message": str, "type": str, "param": str|null, "code": str|null}}. */
static int is_openai_error(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *obj = json_loadb(body, len, 0, &jerr);
    json_t *e = json_object_get(obj, "error");
    json_t *param = json_object_get(e, "param"), *code = json_object_get(e, "code");
    int ok = json_is_object(e) && json_is_string(json_object_get(e, "message")) &&
             json_is_string(json_object_get(e, "type")) && (json_is_string(param) || json_is_null(param)) &&
             (json_is_string(code) || json_is_null(code));
    json_decref(obj);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    srv_server *s = server();
    size_t piece = (size_t)1 << (data[0] % 12);
    atomic_store(&s->draining, (data[0] & 0x80) != 0);
    char *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    char *p = copy, *end = copy + size - 1;

    char *request_line = next_line(&p, end);
    char *sp = request_line ? strchr(request_line, ' ') : NULL;
    if (!sp) { free(copy); return 0; }
    *sp = 0;
    char *method = request_line, *path = sp + 1, *query = strchr(path, '?');
    if (query) *query++ = 0;
    const char *args[2 * MAX_ARGS + 1] = {NULL};
    int n_args = 0;
    for (char *save = NULL, *kv = query ? strtok_r(query, "&", &save) : NULL; kv && n_args < MAX_ARGS;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq) *eq++ = 0;
        unescape(kv);
        if (eq) unescape(eq);
        args[2 * n_args] = kv;
        args[2 * n_args + 1] = eq ? eq : "";
        n_args++;
    }
    const char *headers[2 * MAX_HEADERS + 1] = {NULL};
    int n_headers = 0;
    for (char *line; (line = next_line(&p, end)) && line[0];) {
        char *colon = strchr(line, ':');
        if (!colon || n_headers == MAX_HEADERS) continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ') v++;
        headers[2 * n_headers] = line;
        headers[2 * n_headers + 1] = v;
        n_headers++;
    }
    srv_local_part parts[MAX_PARTS];
    int n_parts = 0;
    while (p + 2 <= end && p[0] == '-' && p[1] == '-' && n_parts < MAX_PARTS) {
        char *name = next_line(&p, end) + 2, *semi = strstr(name, "; ");
        if (semi) *semi = 0;
        char *value = p, *stop = value;
        while (stop < end && !(stop + 2 < end && stop[0] == '\n' && stop[1] == '-' && stop[2] == '-')) stop++;
        p = stop < end ? stop + 1 : end;
        parts[n_parts++] = (srv_local_part){.key = name, .filename = semi ? semi + 2 : NULL, .data = value,
                                            .size = (size_t)(stop - value)};
    }

    srv_local local = {.headers = headers, .args = args};
    srv_local_serve(s, method, path, &local, parts, n_parts, piece);

    if (getenv("FUZZ_ROUTES_VERBOSE")) /* what each input got, to check a seed does what it is for */
        fprintf(stderr, "%s %s -> %d %.*s\n", method, path, local.status, (int)(local.body_len < 160 ? local.body_len : 160),
                local.body ? local.body : "");
    if (!status_allowed(local.status)) abort();
    /* the probes answer 503 with their own {"status": ...} body; every other error is OpenAI's */
    int probe = strcmp(path, "/readyz") == 0 || strcmp(path, "/healthz") == 0;
    if (local.status >= 400 && !(probe && local.status == 503) && !is_openai_error(local.body, local.body_len)) abort();
    if (local.status == 200 && local.body_len && local.body[0] == '{') {
        json_error_t jerr;
        json_t *obj = json_loadb(local.body, local.body_len, 0, &jerr);
        if (!obj) abort();
        json_decref(obj);
    }
    if (atomic_load(&s->inflight_bytes) != 0 || atomic_load(&s->inflight) != 0) abort(); /* all given back */
    free(local.body);
    free(copy);
    return 0;
}
