/* request.h — the server object and per-request state shared by the transport (http.c) and the endpoints (routes.c). */
#ifndef ASR_SERVER_REQUEST_H
#define ASR_SERVER_REQUEST_H

#include "server/server.h"

#include <microhttpd.h>
#include <stdarg.h>

/* One accepted TCP connection, tracked so the watchdog can enforce header
 * and body deadlines that MHD's idle timeout cannot (a client sending one
 * byte a second is never idle). Fields are guarded by srv_server.conn_mu. */
typedef enum srv_conn_phase {
    SRV_CONN_HEADERS,  /* waiting for (the rest of) a request's headers */
    SRV_CONN_BODY,     /* headers seen, body arriving                    */
    SRV_CONN_ANSWERING, /* body complete: decoding, or streaming a response */
    SRV_CONN_WRITING   /* a whole response queued: under the write deadline */
} srv_conn_phase;

typedef struct srv_conn {
    struct srv_conn *prev, *next;
    int fd;
    srv_conn_phase phase;
    double phase_since; /* monotonic seconds the phase began */
    int served;         /* requests already answered on this connection */
    int killed;         /* the watchdog or handler gave up on it */
    int killed_status;  /* the status the watchdog answered (408), 0 = none */
    int probed;         /* a half-close probe was written for this request */
    int upgraded;       /* a WebSocket now (realtime.c keeps its own deadlines) */
} srv_conn;

struct srv_server {
    srv_config cfg;
    const asr_model *model;
    double model_load_s;
    long long started_unix;        /* for /v1/models' "created" */
    srv_pool *pool;
    srv_metrics *metrics;
    struct MHD_Daemon *daemon;
    int listen_fd;
    int port;
    atomic_int draining;
    atomic_int inflight;           /* requests with headers received and not completed */
    atomic_ullong inflight_bytes;  /* upload buffer bytes reserved by requests (cfg.max_inflight_bytes) */
    atomic_ullong next_request_id;
    pthread_mutex_t log_mu;        /* one log line at a time */
    pthread_mutex_t conn_mu;
    srv_conn *conns;
    pthread_t watchdog;
    int watchdog_started;
    atomic_int stop_watchdog;
    atomic_int realtime_sessions;  /* open WebSocket sessions (realtime.c) */
};

/* Fields of a multipart form, collected by MHD's post processor. */
#define SRV_FIELD_MAX 256
typedef struct srv_form {
    unsigned char *file;   /* the upload */
    size_t file_len, file_cap;
    int have_file;
    char filename[256];
    char model[SRV_FIELD_MAX];
    char language[SRV_FIELD_MAX];
    char response_format[SRV_FIELD_MAX];
    char temperature[SRV_FIELD_MAX];
    char stream[SRV_FIELD_MAX];
    char granularities[SRV_FIELD_MAX]; /* every timestamp_granularities[] value, comma-joined */
    char chunking_strategy[SRV_FIELD_MAX]; /* "auto" or a JSON object, as sent     */
    char chunking_fields[SRV_FIELD_MAX];   /* chunking_strategy[NAME]=VALUE fields (the SDKs'
                                              form encoding of the object), "NAME=VALUE&..." */
    char *prompt;          /* malloc'd, up to SRV_PROMPT_MAX bytes */
    size_t prompt_len, prompt_cap;
    char error[128];       /* first problem seen while parsing, "" if none */
} srv_form;
#define SRV_PROMPT_MAX (64 * 1024)

typedef struct srv_route_def srv_route_def;

/* A request served without a connection (the fuzz harness,
 * tests/fuzz/fuzz_routes.c, through srv_local_serve): what libmicrohttpd
 * would otherwise look up, and where the answer goes. */
typedef struct srv_local {
    const char *const *headers; /* NAME, VALUE, ..., NULL (names case-insensitive) */
    const char *const *args;    /* the query string's NAME, VALUE, ..., NULL */
    int status;                 /* the answer; 0 = none */
    char *body;                 /* malloc'd (the caller frees it), NULL for none */
    size_t body_len;
} srv_local;

/* One part of a multipart form, as the post processor hands it over. */
typedef struct srv_local_part {
    const char *key;
    const char *filename;       /* NULL: a plain field */
    const char *data;
    size_t size;
} srv_local_part;

typedef struct srv_request {
    srv_server *srv;
    struct MHD_Connection *mhd; /* NULL when local is set */
    srv_local *local;         /* a request without a connection (srv_local_serve) */
    srv_conn *conn;
    const srv_route_def *def; /* the route table's row for the path; NULL = none (404) */
    srv_route route;          /* its metrics slot (SRV_ROUTE_OTHER when def is NULL) */
    char method[16];
    char path[256];
    unsigned long long id;
    double t_start;           /* headers received */
    int status;               /* status of the response sent, 0 = none yet */
    int deferred;             /* bodiless request, answered once MHD has read it whole */
    const char *error_code;   /* for the log line */
    struct MHD_PostProcessor *pp;
    size_t body_bytes;
    int begun;                /* on_request has seen its headers (it may exist earlier, from the URI log) */
    int over_limit;           /* body passed max_upload_bytes: drain, then 413 */
    size_t expected_bytes;    /* Content-Length, 0 = unknown (chunked) */
    size_t reserved_bytes;    /* share of srv_server.inflight_bytes this request holds */
    /* An error decided before or during the body, answered once the body is
     * drained (up to a bound), so a client that sends its whole body before
     * reading (Python's requests, httpx) reads the error, not a broken pipe. */
    int pending_status;
    const char *pending_param, *pending_code;
    char pending_message[256];
    int must_close;           /* answer with Connection: close (framing was suspect) */
    int has_body;             /* a POST with Content-Length > 0 or Transfer-Encoding */
    int http10;               /* an HTTP/1.0 request: no interim (1xx) responses allowed */
    srv_form form;
    double audio_s;           /* decoded audio duration, for the log */
} srv_request;

/* ---- responses (http.c) ---- */

/* Queue a response that takes ownership of malloc'd body (may be NULL for an
 * empty body). headers: NULL or name, value, ..., NULL. */
enum MHD_Result srv_reply(srv_request *rq, int status, const char *content_type, char *body, size_t len,
                          const char *const *headers);
/* A request header (MHD_HEADER_KIND) or query argument (MHD_GET_ARGUMENT_KIND), or NULL. */
const char *srv_request_value(const srv_request *rq, enum MHD_ValueKind kind, const char *name);
/* Serve one request without a connection, as http.c serves one from a
 * socket: the route, method, key, Content-Type and size checks, the form
 * parts (handed to the form collector in pieces of at most `piece` bytes,
 * as the post processor would), then the endpoint. The answer lands in
 * local->status and local->body; the request is counted in /metrics. */
void srv_local_serve(srv_server *s, const char *method, const char *path, srv_local *local,
                     const srv_local_part *parts, int n_parts, size_t piece);
/* OpenAI error JSON: {"error":{"message","type","param","code"}}; param and code may be NULL. */
enum MHD_Result srv_reply_error(srv_request *rq, int status, const char *param, const char *code,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Wait until job reaches `until`, watching the client's socket: returns 0;
 * -1 after setting job->abort when the client hung up; -2 after setting it
 * when the job was still queued at its deadline. */
int srv_wait_job(srv_request *rq, srv_job *job, srv_job_phase until);
/* True if the peer has closed or reset the connection. */
int srv_client_gone(const srv_request *rq);

/* ---- realtime transcription over WebSocket (realtime.c) ---- */

/* GET /v1/realtime: check auth and the handshake, answer 101 and run the
 * session on its own thread (or answer an HTTP error). */
enum MHD_Result srv_realtime_begin(srv_request *rq);
/* Set draining and wait for every session thread to finish (they close with
 * 1001 within a poll interval, or once a blocked send times out). */
void srv_realtime_stop(srv_server *s);

/* ---- endpoints (routes.c) ---- */

/* A chunking_strategy or chunking_strategy[NAME] form part, from the post
 * processor (a value may arrive in pieces: off is the piece's offset). */
void srv_form_chunking_part(srv_form *f, const char *key, const char *data, uint64_t off, size_t size);

/* One row of the route table: everything the transport, the metrics and
 * /openapi.json know about an endpoint. */
typedef enum MHD_Result (*srv_handler)(srv_request *rq);
struct srv_route_def {
    const char *path;       /* as /openapi.json names it; a last segment "{name}" matches any non-empty rest */
    int (*match)(const char *path); /* instead of path, if set: the paths this row serves */
    const char *method;     /* "POST", or "GET" (HEAD too) */
    int handshake;          /* the handler takes the request at its headers and checks method and key itself */
    int auth;               /* needs the API key when the server has one */
    const char *file_field; /* POST: the multipart part that holds the upload */
    srv_handler handler;    /* GET: at the headers; POST: once the form is parsed without error */
    srv_route id;           /* the metrics slot */
    const char *label;      /* asr_http_requests_total's route label */
    const char *doc;        /* this path's item in /openapi.json (openapi.c) */
};

/* The table, in /openapi.json's order; *n = its rows. */
const srv_route_def *srv_route_table(int *n);
/* The row that serves `path`, or NULL. */
const srv_route_def *srv_route_find(const char *path);
int srv_route_is_post(const srv_route_def *def);

/* Each route's OpenAPI path item (openapi.c), named by its row. */
extern const char srv_doc_transcriptions[], srv_doc_translations[], srv_doc_models[], srv_doc_model[],
    srv_doc_asr[], srv_doc_detect_language[], srv_doc_realtime[], srv_doc_healthz[], srv_doc_readyz[],
    srv_doc_metrics[], srv_doc_openapi[], srv_doc_web[];

#endif /* ASR_SERVER_REQUEST_H */
