/* http.c — the HTTP transport of `asr serve`: libmicrohttpd daemon, connection deadlines, uploads, responses, request logs. */
#include "server/request.h"
#include "internal.h" /* asr_fail */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A body may start slowly (TCP slow start, 100-continue); the minimum data
 * rate applies once this many seconds have passed since the headers. */
#define SRV_RATE_GRACE_S 2.0

/* Replace every byte that is not part of valid UTF-8 with '?', in place:
 * jansson refuses invalid strings, and request paths, field values and
 * truncated messages can hold anything. */
static void utf8_sanitize(char *str)
{
    unsigned char *p = (unsigned char *)str;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        int ok = n >= 0;
        for (int i = 1; ok && i <= n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 1) ok = *p >= 0xC2;                                     /* overlong */
        if (ok && n == 2) ok = !(*p == 0xE0 && p[1] < 0xA0) && !(*p == 0xED && p[1] >= 0xA0); /* overlong, surrogates */
        if (ok && n == 3) ok = !(*p == 0xF0 && p[1] < 0x90) && !(*p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90));
        if (!ok) { *p++ = '?'; continue; }
        p += n + 1;
    }
}

/* ---- logging ---------------------------------------------------------------- */

static void log_json(srv_server *s, json_t *obj)
{
    char stamp[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    json_object_set_new(obj, "time", json_string(stamp));
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!line) return;
    pthread_mutex_lock(&s->log_mu);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}

__attribute__((format(printf, 2, 0))) static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    utf8_sanitize(msg);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    log_json(cls, json_pack("{s:s, s:s, s:s}", "level", "warn", "event", "http", "msg", msg));
}

/* ---- connection tracking and the deadline watchdog ------------------------- */

static void set_conn_phase(srv_server *s, srv_conn *conn, srv_conn_phase phase)
{
    if (!conn) return;
    pthread_mutex_lock(&s->conn_mu);
    conn->phase = phase;
    conn->phase_since = srv_now();
    pthread_mutex_unlock(&s->conn_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    srv_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_conn *conn = calloc(1, sizeof *conn);
        if (!conn) return;
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn->fd = info ? info->connect_fd : -1;
        conn->phase = SRV_CONN_HEADERS;
        conn->phase_since = srv_now();
        pthread_mutex_lock(&s->conn_mu);
        conn->next = s->conns;
        if (s->conns) s->conns->prev = conn;
        s->conns = conn;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = conn;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_conn *conn = *socket_context;
        if (!conn) return;
        pthread_mutex_lock(&s->conn_mu);
        if (conn->prev) conn->prev->next = conn->next;
        else s->conns = conn->next;
        if (conn->next) conn->next->prev = conn->prev;
        pthread_mutex_unlock(&s->conn_mu);
        free(conn);
        *socket_context = NULL;
    }
}

/* Write a complete, self-contained error response straight to the socket.
 * Used only where MHD cannot queue one (mid-body) just before the connection
 * is dropped, so no MHD output can interleave with it. */
static void write_raw_error(int fd, int status, const char *reason, const char *code, const char *message)
{
    if (fd < 0) return;
    json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type",
                            status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error",
                            "param", "code", code);
    char *body = json_dumps(err, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(err);
    if (!body) return;
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n%s"
                      "Content-Length: %zu\r\n\r\n", status, reason, status == 503 ? "Retry-After: 5\r\n" : "",
                      strlen(body));
    if (hn > 0 && hn < (int)sizeof head && send(fd, head, (size_t)hn, MSG_NOSIGNAL | MSG_DONTWAIT) == hn)
        (void)send(fd, body, strlen(body), MSG_NOSIGNAL | MSG_DONTWAIT);
    free(body);
}

/* Enforce the header and body deadlines: a connection still sending headers
 * header_timeout_s after it opened (or after its last response), or still
 * sending a body body_timeout_s after its headers, is answered 408 (unless it
 * is an idle keep-alive connection, which is just closed) and shut down; a
 * whole response not taken by the client within write_timeout_s is cut off.
 * The connection's own thread then sees the socket end and cleans up. */
static void *watchdog_main(void *arg)
{
    srv_server *s = arg;
    while (!atomic_load(&s->stop_watchdog)) {
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
        double now = srv_now();
        pthread_mutex_lock(&s->conn_mu);
        for (srv_conn *conn = s->conns; conn; conn = conn->next) {
            if (conn->killed || conn->fd < 0 || conn->upgraded) continue;
            double age = now - conn->phase_since;
            if (conn->phase == SRV_CONN_HEADERS && age > s->cfg.header_timeout_s) {
                if (conn->served == 0) {
                    write_raw_error(conn->fd, 408, "Request Timeout", "request_timeout",
                                    "request headers were not received in time");
                    conn->killed_status = 408;
                }
            } else if (conn->phase == SRV_CONN_BODY && age > s->cfg.body_timeout_s) {
                write_raw_error(conn->fd, 408, "Request Timeout", "request_timeout",
                                "request body was not received in time");
                conn->killed_status = 408;
            } else if (conn->phase == SRV_CONN_WRITING && s->cfg.write_timeout_s > 0 &&
                       age > s->cfg.write_timeout_s) {
                /* A reader too slow to take its answer in time: nothing more
                 * can be said on this connection, just close it. */
            } else {
                continue;
            }
            conn->killed = 1;
            shutdown(conn->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&s->conn_mu);
    }
    return NULL;
}

/* Give up on the request mid-body: answer with a raw error and close. */
static const char *reason_phrase(int status);

static enum MHD_Result abort_mid_body(srv_request *rq, int status, const char *code, const char *message)
{
    srv_server *s = rq->srv;
    pthread_mutex_lock(&s->conn_mu);
    int already = rq->conn ? rq->conn->killed : 0;
    if (rq->conn) rq->conn->killed = 1;
    if (!already) write_raw_error(rq->conn ? rq->conn->fd : -1, status, reason_phrase(status), code, message);
    pthread_mutex_unlock(&s->conn_mu);
    rq->status = status;
    rq->error_code = code;
    return MHD_NO;
}

/* ---- request values ----------------------------------------------------------- */

static const char *pairs_lookup(const char *const *pairs, const char *name, int nocase)
{
    for (int i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2)
        if (nocase ? strcasecmp(pairs[i], name) == 0 : strcmp(pairs[i], name) == 0) return pairs[i + 1];
    return NULL;
}

const char *srv_request_value(const srv_request *rq, enum MHD_ValueKind kind, const char *name)
{
    if (rq->local) return pairs_lookup(kind == MHD_HEADER_KIND ? rq->local->headers : rq->local->args, name,
                                       kind == MHD_HEADER_KIND);
    return rq->mhd ? MHD_lookup_connection_value(rq->mhd, kind, name) : NULL;
}

/* ---- responses --------------------------------------------------------------- */

enum MHD_Result srv_reply(srv_request *rq, int status, const char *content_type, char *body, size_t len,
                          const char *const *headers)
{
    if (rq->local) { /* no connection: the answer is the caller's */
        free(rq->local->body);
        rq->local->body = body;
        rq->local->body_len = body ? len : 0;
        rq->local->status = rq->status = status;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) { free(body); return MHD_NO; }
    if (content_type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (int i = 0; headers && headers[i] && headers[i + 1]; i += 2) MHD_add_response_header(r, headers[i], headers[i + 1]);
    char id[32];
    snprintf(id, sizeof id, "%llu", rq->id);
    MHD_add_response_header(r, "X-Request-Id", id);
    if (atomic_load(&rq->srv->draining) || rq->must_close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(rq->mhd, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES) {
        rq->status = status;
        set_conn_phase(rq->srv, rq->conn, SRV_CONN_WRITING);
    }
    return ok;
}

static const char *error_type(int status)
{
    if (status == 401) return "authentication_error";
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
}

enum MHD_Result srv_reply_error(srv_request *rq, int status, const char *param, const char *code, const char *fmt, ...)
{
    char message[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    utf8_sanitize(message);
    json_t *inner = json_object();
    json_object_set_new(inner, "message", json_string(message));
    json_object_set_new(inner, "type", json_string(error_type(status)));
    json_object_set_new(inner, "param", param ? json_string(param) : json_null());
    json_object_set_new(inner, "code", code ? json_string(code) : json_null());
    json_t *obj = json_pack("{s:o}", "error", inner);
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    rq->error_code = code ? code : "error";
    if (!body) return MHD_NO;
    char retry[16];
    const char *headers[8] = {NULL};
    int h = 0;
    if (status == 429 || status == 503) {
        snprintf(retry, sizeof retry, "%d", srv_pool_retry_after(rq->srv->pool));
        headers[h++] = MHD_HTTP_HEADER_RETRY_AFTER;
        headers[h++] = retry;
    }
    if (status == 401) {
        headers[h++] = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        headers[h++] = "Bearer";
    }
    if (status == 405) {
        headers[h++] = MHD_HTTP_HEADER_ALLOW;
        headers[h++] = srv_route_is_post(rq->def) ? "POST" : "GET, HEAD";
    }
    return srv_reply(rq, status, "application/json", body, strlen(body), headers);
}

/* ---- waiting for a job while watching the client ---------------------------- */

/* An interim response every HTTP/1.1 client must read past, expected or
 * not (RFC 9110 section 15.2; Python's http.client skips 100 exactly). */
static const char probe_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

int srv_client_gone(const srv_request *rq)
{
    if (!rq->conn || rq->conn->fd < 0) return 0;
    struct pollfd p = {.fd = rq->conn->fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return 1; /* reset, or closed both ways */
    if (!(p.revents & POLLRDHUP)) return 0;
    if (rq->http10) return 1; /* no 1xx may be sent to it (RFC 9110 section 15.2): take the close as final */
    /* The peer has shut its sending side. It may have closed the socket
     * (gone), or only half-closed it after sending its whole request, and
     * wait for the answer (RFC 9112 section 9.6). Only a write tells them
     * apart: a closed socket answers it with a reset, which the next poll
     * sees as POLLERR. Before the response starts (status 0, on the request's
     * own connection) an unsolicited "100 Continue" is such a write; once a
     * response is under way its own writes (SSE keep-alives) do the same. */
    if (rq->status == 0 && rq->mhd && !rq->conn->probed) {
        rq->conn->probed = 1;
        if (send(rq->conn->fd, probe_continue, sizeof probe_continue - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) return 1;
    }
    return 0;
}

/* A queued job whose client left or whose deadline passed leaves the queue
 * now, freeing its slot and its upload; a running one stops at its next
 * abort poll. */
static void cancel_job(srv_request *rq, srv_job *job, asr_status status, const char *why)
{
    if (!srv_pool_cancel(rq->srv->pool, job, status, why)) atomic_store(&job->abort, 1);
}

int srv_wait_job(srv_request *rq, srv_job *job, srv_job_phase until)
{
    pthread_mutex_lock(&job->mu);
    while (job->phase < until) {
        srv_cond_wait_for(&job->changed, &job->mu, 0.1);
        if (job->phase >= until) break;
        /* Still queued past the deadline (workers busy with long files): give
         * up now rather than when a worker finally dequeues it. */
        int expired = job->phase == SRV_JOB_QUEUED && job->deadline > 0 && srv_now() > job->deadline;
        pthread_mutex_unlock(&job->mu);
        if (expired) {
            cancel_job(rq, job, ASR_ERR_TIMEOUT, "request deadline passed while queued");
            return -2;
        }
        if (srv_client_gone(rq)) {
            cancel_job(rq, job, ASR_ERR_CANCELLED, "the client disconnected");
            return -1;
        }
        pthread_mutex_lock(&job->mu);
    }
    pthread_mutex_unlock(&job->mu);
    return 0;
}

/* ---- multipart form collection (MHD's post processor) ---------------------- */

static int append_bytes(unsigned char **buf, size_t *len, size_t *cap, const char *data, size_t n, size_t limit)
{
    if (*len + n > limit) return -1;
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 64 * 1024;
        while (c < *len + n + 1) c *= 2;
        unsigned char *grown = realloc(*buf, c);
        if (!grown) return -2;
        *buf = grown;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

/* ---- the server-wide upload budget ----------------------------------------- */

/* Reserve n more bytes of the in-flight upload budget for rq; 0 if that
 * would pass cfg.max_inflight_bytes. Every upload buffer is covered by its
 * request's reservation until the request completes (the queue wait and the
 * decode included), so the sum of all upload buffers stays under the budget. */
static int budget_reserve(srv_request *rq, size_t n)
{
    srv_server *s = rq->srv;
    unsigned long long cur = atomic_load(&s->inflight_bytes);
    do {
        if (cur + n > s->cfg.max_inflight_bytes) return 0;
    } while (!atomic_compare_exchange_weak(&s->inflight_bytes, &cur, cur + n));
    rq->reserved_bytes += n;
    return 1;
}

static void budget_release(srv_request *rq)
{
    if (rq->reserved_bytes) atomic_fetch_sub(&rq->srv->inflight_bytes, rq->reserved_bytes);
    rq->reserved_bytes = 0;
}

/* Append to the upload: -1 past max_upload_bytes, -2 out of memory, -3 past
 * the server's budget. The buffer is sized exactly when Content-Length is
 * known (its reservation was taken with the headers); for a chunked body it
 * doubles, never past the upload limit, each growth reserved first. */
static int file_append(srv_request *rq, const char *data, size_t n)
{
    srv_form *f = &rq->form;
    size_t limit = rq->srv->cfg.max_upload_bytes;
    if (f->file_len + n > limit) return -1;
    size_t need = f->file_len + n + 1;
    if (need > f->file_cap) {
        size_t c = f->file_cap ? f->file_cap * 2 : rq->expected_bytes ? rq->expected_bytes + 1 : 256 * 1024;
        if (c < need) c = need;
        if (c > limit + 1) c = limit + 1;
        if (c > rq->reserved_bytes && !budget_reserve(rq, c - rq->reserved_bytes)) return -3;
        unsigned char *grown = realloc(f->file, c);
        if (!grown) return -2;
        f->file = grown;
        f->file_cap = c;
    }
    memcpy(f->file + f->file_len, data, n);
    f->file_len += n;
    f->file[f->file_len] = 0;
    return 0;
}

/* Decide the answer now, send it once the body is drained (see
 * srv_request.pending_status). The first decision wins. */
static void set_pending(srv_request *rq, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_pending(srv_request *rq, int status, const char *param, const char *code, const char *fmt, ...)
{
    if (rq->pending_status) return;
    rq->pending_status = status;
    rq->pending_param = param;
    rq->pending_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->pending_message, sizeof rq->pending_message, fmt, ap);
    va_end(ap);
}

static void form_fail(srv_form *f, const char *msg)
{
    if (!f->error[0]) snprintf(f->error, sizeof f->error, "%s", msg);
}

static void field_append(srv_form *f, char *field, const char *key, const char *data, uint64_t off, size_t size)
{
    size_t cur = strlen(field);
    if ((uint64_t)cur != off && !(off == 0 && cur > 0)) { form_fail(f, "malformed form field"); return; }
    if (off == 0 && cur > 0 && size > 0) { /* a repeated field: the last value wins */
        field[0] = 0;
        cur = 0;
    }
    if (cur + size >= SRV_FIELD_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg, "form field '%.40s' is too long", key);
        form_fail(f, msg);
        return;
    }
    memcpy(field + cur, data, size);
    field[cur + size] = 0;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                    const char *content_type, const char *transfer_encoding, const char *data,
                                    uint64_t off, size_t size)
{
    (void)kind; (void)content_type; (void)transfer_encoding;
    srv_request *rq = cls;
    srv_form *f = &rq->form;
    if (!key) return MHD_YES;
    if (rq->def && rq->def->file_field && strcmp(key, rq->def->file_field) == 0) {
        if (off == 0 && f->file_len > 0) { form_fail(f, "more than one file was uploaded"); return MHD_YES; }
        if (!f->have_file && filename) snprintf(f->filename, sizeof f->filename, "%s", filename);
        f->have_file = 1;
        int rc = file_append(rq, data, size);
        if (rc == -1 && !rq->over_limit) {
            rq->over_limit = 1;
            set_pending(rq, 413, "file", "file_too_large", "the upload exceeds the limit of %zu bytes",
                        rq->srv->cfg.max_upload_bytes);
        }
        if (rc == -2) form_fail(f, "out of memory");
        if (rc == -3) {
            free(f->file); /* give the memory back now; the rest of the body is drained */
            f->file = NULL;
            f->file_len = f->file_cap = 0;
            budget_release(rq);
            set_pending(rq, 503, NULL, "server_busy",
                        "the server is holding its limit of %zu MiB of uploads; retry later",
                        rq->srv->cfg.max_inflight_bytes >> 20);
        }
        return MHD_YES;
    }
    if (filename && strcmp(key, "prompt") != 0 && strcmp(key, "initial_prompt") != 0) return MHD_YES; /* stray upload */
    if (strcmp(key, "model") == 0) field_append(f, f->model, key, data, off, size);
    else if (strcmp(key, "language") == 0) field_append(f, f->language, key, data, off, size);
    else if (strcmp(key, "response_format") == 0) field_append(f, f->response_format, key, data, off, size);
    else if (strcmp(key, "temperature") == 0) field_append(f, f->temperature, key, data, off, size);
    else if (strcmp(key, "stream") == 0) field_append(f, f->stream, key, data, off, size);
    else if (strncmp(key, "chunking_strategy", 17) == 0) srv_form_chunking_part(f, key, data, off, size);
    else if (strcmp(key, "timestamp_granularities[]") == 0 || strcmp(key, "timestamp_granularities") == 0) {
        size_t cur = strlen(f->granularities);
        if (off == 0 && cur > 0 && size > 0 && cur + 1 < SRV_FIELD_MAX) { f->granularities[cur] = ','; f->granularities[cur + 1] = 0; }
        if (strlen(f->granularities) + size >= SRV_FIELD_MAX) form_fail(f, "timestamp_granularities is too long");
        else strncat(f->granularities, data, size);
    } else if (strcmp(key, "prompt") == 0) {
        int rc = append_bytes((unsigned char **)&f->prompt, &f->prompt_len, &f->prompt_cap, data, size, SRV_PROMPT_MAX);
        if (rc == -1) form_fail(f, "prompt is too long");
        if (rc == -2) form_fail(f, "out of memory");
    }
    /* Other fields (include[], ...) are accepted and ignored. */
    return MHD_YES;
}

/* ---- the request handler ------------------------------------------------------ */

/* Constant-time comparison of the bearer token (time depends only on the
 * length of the configured key). */
static int token_matches(const char *given, const char *expected)
{
    size_t ne = strlen(expected), ng = strlen(given);
    unsigned char diff = (unsigned char)(ng != ne);
    for (size_t i = 0; i < ne; i++) {
        unsigned char g = i < ng ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

static int authorized(srv_request *rq)
{
    const char *key = rq->srv->cfg.api_key;
    if (!key[0] || !rq->def->auth) return 1;
    const char *h = srv_request_value(rq, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ') h++;
    return token_matches(h, key);
}

/* How much of a body the server reads and discards to deliver an early
 * answer; a client sending more gets the answer written raw and the
 * connection closed (it may see a reset). */
static size_t drain_limit(const srv_server *s)
{
    size_t n = 2 * s->cfg.max_upload_bytes;
    return n < 1024 * 1024 ? 1024 * 1024 : n;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* An error found with the headers of a request that has a body. A client
 * that waits for 100 Continue, or whose body is past the drain limit, is
 * answered now (MHD then closes the connection unread); any other is
 * answered after its body, read and discarded, so it can read the answer. */
static enum MHD_Result early_error(srv_request *rq, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result early_error(srv_request *rq, int status, const char *param, const char *code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    const char *expect = srv_request_value(rq, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    int waits = expect && strcasestr(expect, "100-continue");
    if (rq->has_body && !waits && rq->expected_bytes <= drain_limit(rq->srv)) {
        set_pending(rq, status, param, code, "%s", message);
        set_conn_phase(rq->srv, rq->conn, SRV_CONN_BODY);
        return MHD_YES;
    }
    if (rq->has_body) rq->must_close = 1;
    return srv_reply_error(rq, status, param, code, "%s", message);
}

static enum MHD_Result begin_request(srv_request *rq)
{
    srv_server *s = rq->srv;
    if (!rq->def) return early_error(rq, 404, NULL, "not_found", "no route for %s %s", rq->method, rq->path);
    int is_get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    int is_post = strcmp(rq->method, "POST") == 0;
    if (rq->def->handshake) return rq->def->handler(rq); /* a WebSocket: its key may come as a subprotocol */
    if (srv_route_is_post(rq->def) ? !is_post : !is_get)
        return early_error(rq, 405, NULL, "method_not_allowed", "method %s is not allowed on %s", rq->method, rq->path);
    if (!authorized(rq))
        return early_error(rq, 401, NULL, "invalid_api_key", "missing or incorrect API key (use Authorization: Bearer KEY)");
    if (is_get) return rq->def->handler(rq);

    if (atomic_load(&s->draining))
        return early_error(rq, 503, NULL, "shutting_down", "the server is shutting down");
    const char *ctype = srv_request_value(rq, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0)
        return early_error(rq, 415, NULL, "unsupported_media_type",
                           "Content-Type must be multipart/form-data, got '%.100s'", ctype ? ctype : "(none)");
    if (rq->expected_bytes > s->cfg.max_upload_bytes)
        return early_error(rq, 413, "file", "file_too_large", "the upload is %zu bytes; the limit is %zu bytes",
                           rq->expected_bytes, s->cfg.max_upload_bytes);
    /* The whole upload's buffer is reserved now, at its exact size. */
    if (rq->expected_bytes && !budget_reserve(rq, rq->expected_bytes + 1))
        return early_error(rq, 503, NULL, "server_busy", "the server is holding its limit of %zu MiB of uploads; retry later",
                           s->cfg.max_inflight_bytes >> 20);
    if (rq->local) return MHD_YES; /* srv_local_serve hands the form parts over itself */
    rq->pp = MHD_create_post_processor(rq->mhd, 16 * 1024, on_form_part, rq);
    if (!rq->pp) return early_error(rq, 400, NULL, "invalid_multipart", "multipart/form-data without a usable boundary");
    set_conn_phase(s, rq->conn, SRV_CONN_BODY);
    return MHD_YES;
}

/* The checks on n more body bytes: -1 after giving up on the request, 0 to
 * read and discard them (an answer is pending, or the form is already
 * invalid), 1 to parse them. */
static int body_arrived(srv_request *rq, size_t n)
{
    srv_server *s = rq->srv;
    if (rq->conn) {
        pthread_mutex_lock(&s->conn_mu);
        int killed = rq->conn->killed;
        pthread_mutex_unlock(&s->conn_mu);
        if (killed) { rq->status = 408; rq->error_code = "request_timeout"; return -1; }
    }
    rq->body_bytes += n;
    double elapsed = srv_now() - rq->t_start;
    if (elapsed > s->cfg.body_timeout_s) {
        abort_mid_body(rq, 408, "request_timeout", "request body was not received in time");
        return -1;
    }
    if (s->cfg.min_upload_rate > 0 && elapsed > SRV_RATE_GRACE_S &&
        (double)rq->body_bytes < s->cfg.min_upload_rate * elapsed) {
        abort_mid_body(rq, 408, "request_too_slow", "request body is arriving too slowly");
        return -1;
    }
    if (rq->body_bytes > s->cfg.max_upload_bytes && !rq->over_limit) {
        rq->over_limit = 1;
        set_pending(rq, 413, "file", "file_too_large", "the upload exceeds the limit of %zu bytes", s->cfg.max_upload_bytes);
    }
    if (rq->pending_status) {
        /* Keep reading (so the client can read the answer) but only up to
         * the drain limit; past that, answer raw and drop the connection. */
        if (rq->body_bytes > drain_limit(s)) {
            abort_mid_body(rq, rq->pending_status, rq->pending_code, rq->pending_message);
            return -1;
        }
        return 0;
    }
    return rq->form.error[0] ? 0 : 1; /* already invalid: drain, then 400 */
}

static enum MHD_Result receive_body(srv_request *rq, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    int go = body_arrived(rq, n);
    if (go < 0) return MHD_NO;
    if (go > 0 && MHD_post_process(rq->pp, data, n) != MHD_YES) form_fail(&rq->form, "malformed multipart/form-data body");
    return MHD_YES;
}

static enum MHD_Result finish_request(srv_request *rq)
{
    srv_server *s = rq->srv;
    if (rq->conn) set_conn_phase(s, rq->conn, SRV_CONN_ANSWERING);
    int complete = MHD_YES;
    if (rq->pp) {
        complete = MHD_destroy_post_processor(rq->pp);
        rq->pp = NULL;
    }
    if (rq->pending_status)
        return srv_reply_error(rq, rq->pending_status, rq->pending_param, rq->pending_code, "%s", rq->pending_message);
    if (rq->form.error[0]) return srv_reply_error(rq, 400, NULL, "invalid_multipart", "%s", rq->form.error);
    if (complete != MHD_YES)
        return srv_reply_error(rq, 400, NULL, "invalid_multipart", "the multipart/form-data body is truncated or malformed");
    return rq->def->handler(rq);
}

/* Request framing MHD lets through: a repeated Content-Length (MHD reads the
 * first), or Content-Length with Transfer-Encoding (MHD goes by the
 * latter). A proxy in front may frame the same bytes differently (request
 * smuggling, RFC 9112 section 6.3), so both are refused with 400 and the
 * connection is closed. */
typedef struct framing { int content_length, transfer_encoding; } framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind; (void)value;
    framing *f = cls;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) f->content_length++;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) f->transfer_encoding++;
    return MHD_YES;
}

static void set_route(srv_request *rq, const char *path)
{
    rq->def = srv_route_find(path);
    rq->route = rq->def ? rq->def->id : SRV_ROUTE_OTHER;
}

/* A request object, made when MHD has read the request line (so MHD's own
 * error answers and clients that leave mid-headers are counted too) or, at
 * the latest, with the headers. */
static srv_request *request_new(srv_server *s, struct MHD_Connection *c, const char *uri)
{
    srv_request *rq = calloc(1, sizeof *rq);
    if (!rq) return NULL;
    rq->srv = s;
    rq->mhd = c;
    rq->t_start = srv_now();
    rq->id = atomic_fetch_add(&s->next_request_id, 1) + 1;
    snprintf(rq->path, sizeof rq->path, "%.*s", (int)strcspn(uri ? uri : "", "?"), uri ? uri : "");
    utf8_sanitize(rq->path);
    set_route(rq, rq->path);
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    rq->conn = info ? info->socket_context : NULL;
    return rq;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    return request_new(cls, c, uri);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    srv_server *s = cls;
    srv_request *rq = *con_cls;
    if (!rq || !rq->begun) {
        if (!rq && !(rq = request_new(s, c, url))) return MHD_NO;
        *con_cls = rq;
        rq->begun = 1;
        rq->t_start = srv_now();
        rq->http10 = version && strcmp(version, "HTTP/1.0") == 0;
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%s", url);
        utf8_sanitize(rq->method);
        utf8_sanitize(rq->path);
        set_route(rq, url);
        atomic_fetch_add(&s->inflight, 1);
        set_conn_phase(s, rq->conn, SRV_CONN_BODY);
        framing fr = {0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &fr);
        if (fr.content_length > 1 || (fr.content_length && fr.transfer_encoding) || fr.transfer_encoding > 1) {
            rq->must_close = 1;
            return srv_reply_error(rq, 400, NULL, "invalid_framing",
                                   fr.content_length > 1 ? "the request has more than one Content-Length header"
                                   : fr.transfer_encoding > 1 ? "the request has more than one Transfer-Encoding header"
                                   : "the request has both Content-Length and Transfer-Encoding");
        }
        const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen) { /* MHD has checked it is a number */
            unsigned long long n = strtoull(clen, NULL, 10);
            rq->expected_bytes = n > SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)n;
        }
        /* Bodiless requests are answered on the next call: a response queued
         * before MHD has seen the (empty) body makes it close the connection,
         * which would defeat keep-alive for probes and metrics scrapes. */
        rq->deferred = strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 && strcmp(method, "PATCH") != 0;
        rq->has_body = !rq->deferred && (rq->expected_bytes > 0 || fr.transfer_encoding);
        return rq->deferred ? MHD_YES : begin_request(rq);
    }
    if (rq->deferred) {
        if (*upload_data_size) { *upload_data_size = 0; return MHD_YES; } /* a body on a GET: ignored */
        rq->deferred = 0;
        return begin_request(rq);
    }
    if (rq->status) { /* already answered (early error): discard the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) return receive_body(rq, upload_data, upload_data_size);
    return finish_request(rq);
}

/* What a request holds: its post processor, upload, prompt and budget share. */
static void request_free(srv_request *rq)
{
    if (rq->pp) MHD_destroy_post_processor(rq->pp);
    free(rq->form.file);
    free(rq->form.prompt);
    budget_release(rq);
    if (rq->begun) atomic_fetch_sub(&rq->srv->inflight, 1);
    free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    srv_server *s = cls;
    srv_request *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    double seconds = srv_now() - rq->t_start;
    int status = rq->status;
    int by_library = 0;
    if (!status && rq->conn) {
        pthread_mutex_lock(&s->conn_mu);
        status = rq->conn->killed_status; /* the watchdog's 408 */
        pthread_mutex_unlock(&s->conn_mu);
    }
    if (!status) { /* an answer MHD made itself (bad Content-Length, headers too large, ...) */
        const union MHD_ConnectionInfo *hs = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (hs && hs->http_status >= 100 && hs->http_status < 600) {
            status = (int)hs->http_status;
            by_library = 1;
        }
    }
    /* 499: the client went away before an answer (nginx's convention). */
    if (!status) status = 499;
    srv_metrics_request(s->metrics, rq->route, status, seconds);

    char client[64] = "";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        if (ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, client, sizeof client);
        else if (ci->client_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, client, sizeof client);
    }
    static const char *const toe_names[] = {"ok", "error", "timeout", "daemon_shutdown", "read_error", "client_abort"};
    const char *outcome = (unsigned)toe < sizeof toe_names / sizeof toe_names[0] ? toe_names[toe] : "unknown";
    json_t *line = json_pack("{s:s, s:s, s:I, s:s, s:s, s:i, s:f, s:I, s:s, s:s}", "level", "info", "event", "request",
                             "id", (json_int_t)rq->id, "method", rq->method, "path", rq->path, "status", status,
                             "duration_ms", seconds * 1000.0, "bytes_in", (json_int_t)rq->body_bytes,
                             "client", client, "outcome", outcome);
    if (line) {
        if (rq->audio_s > 0) json_object_set_new(line, "audio_s", json_real(rq->audio_s));
        if (rq->error_code) json_object_set_new(line, "error", json_string(rq->error_code));
        if (by_library) json_object_set_new(line, "error", json_string("rejected_by_http_library"));
        log_json(s, line);
    }
    if (rq->conn) {
        pthread_mutex_lock(&s->conn_mu);
        rq->conn->served++;
        rq->conn->probed = 0;
        rq->conn->phase = SRV_CONN_HEADERS;
        rq->conn->phase_since = srv_now();
        pthread_mutex_unlock(&s->conn_mu);
    }
    request_free(rq);
}

/* ---- requests without a connection (srv_local_serve) ------------------------------ */

void srv_local_serve(srv_server *s, const char *method, const char *path, srv_local *local,
                     const srv_local_part *parts, int n_parts, size_t piece)
{
    srv_request *rq = calloc(1, sizeof *rq);
    if (!rq) return;
    rq->srv = s;
    rq->local = local;
    rq->begun = 1;
    rq->t_start = srv_now();
    rq->id = atomic_fetch_add(&s->next_request_id, 1) + 1;
    atomic_fetch_add(&s->inflight, 1);
    snprintf(rq->method, sizeof rq->method, "%s", method);
    snprintf(rq->path, sizeof rq->path, "%s", path);
    utf8_sanitize(rq->method);
    utf8_sanitize(rq->path);
    set_route(rq, rq->path);
    const char *clen = pairs_lookup(local->headers, MHD_HTTP_HEADER_CONTENT_LENGTH, 1);
    if (clen && clen[0] && clen[strspn(clen, "0123456789")] == 0) { /* MHD refuses any other */
        unsigned long long n = strtoull(clen, NULL, 10);
        rq->expected_bytes = n > SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)n;
    }
    int post = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    rq->has_body = post && (rq->expected_bytes > 0 || n_parts > 0);
    if (piece < 1) piece = 1;
    if (rq->def && rq->def->handshake) /* the realtime WebSocket: nothing to upgrade */
        srv_reply_error(rq, 400, NULL, "no_connection", "%s needs a connection to upgrade", rq->path);
    else if (begin_request(rq) == MHD_YES && !rq->status && post) {
        for (int i = 0; i < n_parts && !rq->status; i++) {
            const srv_local_part *p = &parts[i];
            size_t off = 0;
            do { /* an empty part is still handed over once, as MHD does */
                size_t n = p->size - off < piece ? p->size - off : piece;
                int go = body_arrived(rq, n);
                if (go < 0) break;
                if (go > 0)
                    on_form_part(rq, MHD_POSTDATA_KIND, p->key, p->filename, NULL, NULL, p->data ? p->data + off : "", off, n);
                off += n;
            } while (off < p->size);
        }
        if (!rq->status) finish_request(rq);
    }
    if (!local->status) local->status = rq->status; /* a raw answer (abort_mid_body) */
    srv_metrics_request(s->metrics, rq->route, local->status ? local->status : 499, srv_now() - rq->t_start);
    request_free(rq);
}

/* ---- daemon lifecycle ---------------------------------------------------------- */

static int resolve_listen_address(const char *host, int port, struct sockaddr_storage *out, asr_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0 || !res) {
        asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "cannot resolve listen address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memset(out, 0, sizeof *out);
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

srv_server *srv_server_start(const srv_config *cfg, const asr_model *model, double model_load_s, srv_pool *pool,
                             srv_metrics *metrics, asr_error *err)
{
    srv_server *s = calloc(1, sizeof *s);
    if (!s) { asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory"); return NULL; }
    s->cfg = *cfg;
    s->model = model;
    s->model_load_s = model_load_s;
    s->started_unix = (long long)time(NULL);
    s->pool = pool;
    s->metrics = metrics;
    s->listen_fd = -1;
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);

    struct sockaddr_storage addr;
    if (resolve_listen_address(cfg->host, cfg->port, &addr, err) != 0) { srv_server_free(s); return NULL; }
    /* Thread per connection: a handler may block waiting for its job while
     * polling its own socket, so a client that disconnects cancels its job at
     * once (a suspended connection in the epoll mode is not watched by MHD,
     * so its hang-up would go unnoticed until the job ended), and an SSE
     * reader can sleep on the job's condition variable. The connection limit
     * bounds the thread count; decoding never runs on these threads. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE /* realtime.c's WebSocket */;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, /* first, so every MHD message is a JSON line */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)128,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        asr_fail(err, ASR_ERR_IO, "cannot listen on %s:%d (address in use or not permitted?)", cfg->host, cfg->port);
        srv_server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        asr_fail(err, ASR_ERR_INTERNAL, "cannot start the watchdog thread");
        srv_server_free(s);
        return NULL;
    }
    s->watchdog_started = 1;
    return s;
}

int srv_server_port(const srv_server *s) { return s->port; }

int srv_server_drain(srv_server *s, double grace_s, const sigset_t *interrupt, atomic_int *stop_signals)
{
    atomic_store(&s->draining, 1);
    /* Refuse new connections now: quiesce MHD, then shut the listening socket
     * down so the kernel stops completing handshakes for it (it may only be
     * closed after MHD_stop_daemon). */
    s->listen_fd = MHD_quiesce_daemon(s->daemon);
    if (s->listen_fd >= 0) shutdown(s->listen_fd, SHUT_RDWR);
    double deadline = srv_now() + grace_s;
    while ((atomic_load(&s->inflight) > 0 || atomic_load(&s->realtime_sessions) > 0) && srv_now() < deadline) {
        struct timespec nap = {0, 20 * 1000 * 1000};
        /* A second signal: stop waiting, cancel what is left. Threads that do
         * not block the signals (OpenBLAS starts its own before main) take
         * most of them, so the count their handler keeps is checked too. */
        if (stop_signals && atomic_load(stop_signals) > 1) break;
        if (!interrupt) {
            nanosleep(&nap, NULL);
        } else if (sigtimedwait(interrupt, NULL, &nap) > 0) {
            if (stop_signals) atomic_fetch_add(stop_signals, 1);
            break;
        }
    }
    int left = atomic_load(&s->inflight);
    if (left > 0) {
        srv_pool_abort_all(s->pool);
        /* Give the aborted jobs a moment to answer their clients: a job notices
         * the abort at its next check (a decoder step, a window, an audio
         * frame), which on a loaded machine can take a few seconds. */
        double until = srv_now() + 5.0;
        while (atomic_load(&s->inflight) > 0 && srv_now() < until) {
            struct timespec nap = {0, 20 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    return left;
}

void srv_server_free(srv_server *s)
{
    if (!s) return;
    srv_realtime_stop(s); /* its session threads use s and the daemon */
    if (s->daemon) {
        if (s->listen_fd < 0) s->listen_fd = MHD_quiesce_daemon(s->daemon);
        MHD_stop_daemon(s->daemon);
    }
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->watchdog_started) {
        atomic_store(&s->stop_watchdog, 1);
        pthread_join(s->watchdog, NULL);
    }
    srv_conn *conn = s->conns;
    while (conn) {
        srv_conn *next = conn->next;
        free(conn);
        conn = next;
    }
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
