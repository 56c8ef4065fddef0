/* hub.c — `asr models pull hf:ORG/REPO`: a CTranslate2 Whisper repository
 * from the hub, with libcurl.
 *
 * The repository's file list comes from the hub's tree API
 * (GET BASE/api/models/ORG/REPO/tree/REV), which gives each file's size and
 * the digest the hub publishes for it: for files stored in LFS (model.bin)
 * the SHA-256 of the content ("lfs.oid", the same value the resolve
 * endpoint sends as X-Linked-Etag), for small files in git only the git blob
 * id (SHA-1 of "blob SIZE\0" + content, also their ETag). Each wanted file
 * is fetched from BASE/ORG/REPO/resolve/REV/FILE, following redirects, into
 * MODELS/.downloads/DIGEST.part; an interrupted transfer leaves that file
 * and the next pull continues it with a Range request. A finished file is
 * checked against its digest (a mismatch discards it) and moved into the
 * staging directory, which is renamed into place when every file is there,
 * so the model directory is complete or absent. */
#include "catalog/cache.h"
#include "catalog/sha1.h"
#include "catalog/sha256.h"

#include <curl/curl.h>
#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The hub's base URL when neither the caller nor HF_ENDPOINT names one:
 * empty unless the build sets it (make HUB_ENDPOINT=URL), so that no host
 * is written into the source. */
#ifndef ASR_HUB_ENDPOINT
#define ASR_HUB_ENDPOINT ""
#endif

enum {
    MAX_LISTING_BYTES = 4 << 20, /* the tree listing is read into memory */
    MAX_ERROR_BODY = 200,        /* bytes of an error response quoted     */
};

/* The files of a CTranslate2 Whisper repository that the engine reads;
 * everything else in the repository (README, .gitattributes) is skipped. */
static const char *const wanted_files[] = {
    "config.json",    "model.bin",       "tokenizer.json",
    "vocabulary.txt", "vocabulary.json", "preprocessor_config.json",
};
enum { N_WANTED = sizeof wanted_files / sizeof wanted_files[0] };

typedef struct hub_file {
    const char *name;    /* one of wanted_files                              */
    uint64_t size;
    int lfs;             /* digest is a SHA-256 (LFS) or a git blob SHA-1     */
    char digest[65];
} hub_file;

typedef struct hub {
    const asr_catalog_pull_params *p;
    char ref[300];          /* "hf:ORG/REPO", for messages                      */
    char endpoint[1024];    /* without a trailing '/'                            */
    const char *repo;       /* "ORG/REPO"                                        */
    const char *revision;
    char *revision_escaped; /* curl_free                                         */
    const char *token;      /* or NULL                                           */
    hub_file files[N_WANTED];
    int n_files;
} hub;

/* ---- HTTP ------------------------------------------------------------------ */

static CURL *hub_handle(const hub *h, const char *url, char *curl_error)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (under 1 byte/s for a minute) is given up, and
     * can be resumed by pulling again. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "asr-models-pull/1");
    if (h->token && *h->token) {
        /* libcurl sends it to the hub's host only: not to the storage host
         * a download is redirected to (CURLOPT_UNRESTRICTED_AUTH is off). */
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->token);
    }
    return c;
}

/* The printable start of an error response, for the message. */
static void quote_body(const char *body, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++)
        out[j++] = isprint((unsigned char)body[i]) ? body[i] : ' ';
    out[j] = '\0';
}

static asr_status http_failure(const hub *h, long status, const char *what, const char *body,
                               size_t body_len, asr_error *err)
{
    char quoted[MAX_ERROR_BODY + 1];
    quote_body(body, body_len, quoted, sizeof quoted);
    if (status == 401 || status == 403)
        return catalog_fail(err, ASR_ERR_IO,
                            "%s: the hub refused access to %s (HTTP %ld%s%s); a private or gated "
                            "repository needs a token in HF_TOKEN",
                            h->ref, what, status, quoted[0] ? ": " : "", quoted);
    if (status == 404)
        return catalog_fail(err, ASR_ERR_IO, "%s: the hub has no %s at revision %s (HTTP 404%s%s)",
                            h->ref, what, h->revision, quoted[0] ? ": " : "", quoted);
    return catalog_fail(err, ASR_ERR_IO, "%s: the hub answered HTTP %ld for %s%s%s", h->ref,
                        status, what, quoted[0] ? ": " : "", quoted);
}

/* ---- the listing ----------------------------------------------------------- */

typedef struct buffer {
    char *data;
    size_t len, cap, limit;
    int too_big;
} buffer;

static size_t buffer_write(char *data, size_t size, size_t n, void *user)
{
    buffer *b = user;
    size_t len = size * n;
    if (b->len + len > b->limit) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Take the wanted files out of the tree listing. */
static asr_status parse_listing(hub *h, const char *text, asr_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root || !json_is_array(root)) {
        json_decref(root);
        return catalog_fail(err, ASR_ERR_IO,
                            "%s: the hub's file list is not a JSON array (%s); is HF_ENDPOINT "
                            "the hub's base URL?",
                            h->ref, root ? "other JSON" : jerr.text);
    }
    size_t i;
    json_t *item;
    asr_status s = ASR_OK;
    json_array_foreach(root, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *path = json_string_value(json_object_get(item, "path"));
        if (!type || strcmp(type, "file") != 0 || !path)
            continue;
        int w = -1;
        for (int k = 0; k < N_WANTED; k++)
            if (strcmp(path, wanted_files[k]) == 0)
                w = k;
        if (w < 0)
            continue;
        for (int k = 0; k < h->n_files; k++)
            if (h->files[k].name == wanted_files[w]) {
                s = catalog_fail(err, ASR_ERR_IO, "%s: the hub lists %s twice", h->ref, path);
                goto done;
            }
        hub_file *f = &h->files[h->n_files];
        f->name = wanted_files[w];
        json_t *lfs = json_object_get(item, "lfs");
        json_t *size = lfs ? json_object_get(lfs, "size") : json_object_get(item, "size");
        const char *oid = json_string_value(json_object_get(lfs ? lfs : item, "oid"));
        f->lfs = lfs != NULL;
        if (!json_is_integer(size) || json_integer_value(size) < 0 || !oid ||
            !is_hex(oid, f->lfs ? 64 : 40)) {
            s = catalog_fail(err, ASR_ERR_IO,
                             "%s: the hub's entry for %s lacks a size or a %s digest", h->ref,
                             path, f->lfs ? "SHA-256" : "git blob");
            goto done;
        }
        f->size = (uint64_t)json_integer_value(size);
        snprintf(f->digest, sizeof f->digest, "%s", oid);
        h->n_files++;
    }
done:
    json_decref(root);
    if (s != ASR_OK)
        return s;
    int have_model = 0, have_config = 0, have_vocab = 0;
    for (int k = 0; k < h->n_files; k++) {
        const char *n = h->files[k].name;
        have_model |= strcmp(n, "model.bin") == 0;
        have_config |= strcmp(n, "config.json") == 0;
        have_vocab |= strcmp(n, "tokenizer.json") == 0 || strncmp(n, "vocabulary.", 11) == 0;
    }
    if (!have_model || !have_config || !have_vocab)
        return catalog_fail(err, ASR_ERR_MODEL,
                            "%s at revision %s is not a CTranslate2 Whisper repository: it has "
                            "no %s",
                            h->ref, h->revision,
                            !have_model    ? "model.bin"
                            : !have_config ? "config.json"
                                           : "tokenizer.json or vocabulary file");
    return ASR_OK;
}

static asr_status fetch_listing(hub *h, asr_error *err)
{
    char url[2048], curl_error[CURL_ERROR_SIZE] = "";
    asr_status s = catalog_path(url, sizeof url, err, "%s/api/models/%s/tree/%s", h->endpoint,
                                h->repo, h->revision_escaped);
    if (s != ASR_OK)
        return s;
    CURL *c = hub_handle(h, url, curl_error);
    if (!c)
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "cannot start libcurl");
    buffer b = {.limit = MAX_LISTING_BYTES};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buffer_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (b.too_big)
        s = catalog_fail(err, ASR_ERR_TOO_LARGE, "%s: the hub's file list is over %d MiB",
                         h->ref, MAX_LISTING_BYTES >> 20);
    else if (rc != CURLE_OK)
        s = catalog_fail(err, ASR_ERR_IO, "%s: cannot list the repository at %s: %s", h->ref,
                         h->endpoint, curl_error[0] ? curl_error : curl_easy_strerror(rc));
    else if (status != 200) {
        char what[300];
        snprintf(what, sizeof what, "repository %s", h->repo);
        s = http_failure(h, status, what, b.data ? b.data : "", b.len, err);
    } else
        s = parse_listing(h, b.data ? b.data : "", err);
    free(b.data);
    return s;
}

/* ---- one file ------------------------------------------------------------------ */

typedef struct download {
    const hub *h;
    const hub_file *f;
    int fd;
    uint64_t have;          /* bytes in the .part file, all hashed          */
    asr_sha256 sha256;
    asr_sha1 sha1;
    long status;            /* of the response being received              */
    int body_started;
    int too_long;           /* the hub sent more than the listed size      */
    int write_failed;       /* errno in write_errno                        */
    int write_errno;
    int bad_range;          /* a 206 that does not start where we asked    */
    int wrong_object;       /* X-Linked-Etag names another LFS object      */
    char linked_etag[80];   /* the first X-Linked-Etag seen, unquoted      */
    char error_body[MAX_ERROR_BODY];
    size_t error_len;
    uint64_t reported;
} download;

static void hash_start(download *d)
{
    asr_sha256_init(&d->sha256);
    asr_sha1_init(&d->sha1);
    char header[48];
    int n = snprintf(header, sizeof header, "blob %llu", (unsigned long long)d->f->size);
    asr_sha1_update(&d->sha1, header, (size_t)n + 1); /* with its NUL */
}

static void hash_more(download *d, const void *data, size_t n)
{
    if (d->f->lfs)
        asr_sha256_update(&d->sha256, data, n);
    else
        asr_sha1_update(&d->sha1, data, n);
}

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    download *d = user;
    size_t len = size * n;
    char text[256];
    size_t keep = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, line, keep);
    text[keep] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    if (strncmp(text, "HTTP/", 5) == 0) {
        /* A new response (the first, or one after a redirect). */
        const char *sp = strchr(text, ' ');
        d->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (strncasecmp(text, "X-Linked-Etag:", 14) == 0 && !d->linked_etag[0]) {
        /* The hub's own answer (before any redirect to storage) names the
         * LFS object it points to. */
        const char *v = text + 14;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strncmp(v, "W/", 2) == 0)
            v += 2;
        size_t j = 0;
        for (; *v && j + 1 < sizeof d->linked_etag; v++)
            if (*v != '"')
                d->linked_etag[j++] = *v;
        d->linked_etag[j] = '\0';
    } else if (d->status == 206 && strncasecmp(text, "Content-Range:", 14) == 0) {
        const char *v = strstr(text, "bytes ");
        if (!v || strtoull(v + 6, NULL, 10) != d->have)
            d->bad_range = 1;
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    download *d = user;
    size_t len = size * n;
    if (d->status != 200 && d->status != 206) {
        size_t room = sizeof d->error_body - d->error_len;
        size_t take = len < room ? len : room;
        memcpy(d->error_body + d->error_len, data, take);
        d->error_len += take;
        return len;
    }
    if (d->bad_range)
        return 0;
    if (!d->body_started) {
        d->body_started = 1;
        /* Refuse another object before downloading gigabytes of it. */
        if (d->f->lfs && is_hex(d->linked_etag, 64) && strcmp(d->linked_etag, d->f->digest) != 0) {
            d->wrong_object = 1;
            return 0;
        }
        if (d->status == 200 && d->have > 0) {
            /* The server ignored the Range: start the file over. */
            if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
                d->write_failed = 1;
                d->write_errno = errno;
                return 0;
            }
            d->have = 0;
            hash_start(d);
        }
    }
    if (d->have + len > d->f->size) {
        d->too_long = 1;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(d->fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            d->write_failed = 1;
            d->write_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)w;
    }
    hash_more(d, data, len);
    d->have += len;
    if (d->have - d->reported >= (1u << 20) || d->have == d->f->size) {
        d->reported = d->have;
        catalog_bytes(d->h->p, d->f->name, d->have, d->f->size);
    }
    return len;
}

/* Hash what an earlier, interrupted pull left in the .part file. */
static int hash_existing(download *d)
{
    char buf[1 << 16];
    uint64_t left = d->have;
    if (lseek(d->fd, 0, SEEK_SET) != 0)
        return -1;
    while (left > 0) {
        ssize_t r = read(d->fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        hash_more(d, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    return lseek(d->fd, (off_t)d->have, SEEK_SET) == (off_t)d->have ? 0 : -1;
}

static double mb(uint64_t n) { return (double)n / 1e6; }

/* Download (or finish downloading) one file, check it, and move it into
 * staging. On a transfer failure the .part file is kept for the next pull;
 * on a digest mismatch or a hub that sends too much it is removed. */
static asr_status fetch_file(hub *h, const hub_file *f, const char *downloads,
                             const char *staging, int step, int n_steps, asr_error *err)
{
    char part[PATH_MAX], dest[PATH_MAX], url[2048], curl_error[CURL_ERROR_SIZE] = "";
    asr_status s;
    if ((s = catalog_path(part, sizeof part, err, "%s/%s.part", downloads, f->digest)) != ASR_OK ||
        (s = catalog_path(dest, sizeof dest, err, "%s/%s", staging, f->name)) != ASR_OK ||
        (s = catalog_path(url, sizeof url, err, "%s/%s/resolve/%s/%s", h->endpoint, h->repo,
                          h->revision_escaped, f->name)) != ASR_OK)
        return s;
    download d = {.h = h, .f = f, .fd = -1};
    d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (d.fd < 0)
        return catalog_fail(err, ASR_ERR_IO, "cannot create %.300s: %s", part, strerror(errno));
    if (flock(d.fd, LOCK_EX | LOCK_NB) != 0) {
        close(d.fd);
        return catalog_fail(err, ASR_ERR_IO,
                            "%s: another pull is downloading %s (%.300s is locked); let it finish",
                            h->ref, f->name, part);
    }
    struct stat st;
    if (fstat(d.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(d.fd);
        return catalog_fail(err, ASR_ERR_IO, "%.300s is not a regular file", part);
    }
    d.have = (uint64_t)st.st_size;
    if (d.have > f->size) {
        if (ftruncate(d.fd, 0) != 0) {
            close(d.fd);
            return catalog_fail(err, ASR_ERR_IO, "cannot truncate %.300s: %s", part, strerror(errno));
        }
        d.have = 0;
    }
    hash_start(&d);
    if (d.have > 0 && hash_existing(&d) != 0) {
        s = catalog_fail(err, ASR_ERR_IO, "cannot read %.300s: %s", part, strerror(errno));
        close(d.fd);
        return s;
    }
    d.reported = d.have;
    if (d.have > 0 && d.have < f->size)
        catalog_step(h->p, step, n_steps, "downloading %s (%.1f MB), resuming at %.1f MB", f->name,
                     mb(f->size), mb(d.have));
    else
        catalog_step(h->p, step, n_steps, "downloading %s (%.1f MB)", f->name, mb(f->size));

    int transfer_failed = 0;
    if (d.have < f->size) {
        CURL *c = hub_handle(h, url, curl_error);
        if (!c) {
            close(d.fd);
            return catalog_fail(err, ASR_ERR_NO_MEMORY, "cannot start libcurl");
        }
        char range[64];
        if (d.have > 0) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)d.have);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &d);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        if (d.too_long) {
            unlink(part);
            s = catalog_fail(err, ASR_ERR_IO,
                             "%s: the hub sent more than the %llu bytes it lists for %s; the "
                             "download was discarded",
                             h->ref, (unsigned long long)f->size, f->name);
        } else if (d.write_failed) {
            s = catalog_fail(err, ASR_ERR_IO, "writing %.300s: %s", part, strerror(d.write_errno));
        } else if (d.wrong_object) {
            unlink(part);
            s = catalog_fail(err, ASR_ERR_MODEL,
                             "%s: the hub lists SHA-256 %s for %s but served object %s; the "
                             "download was discarded",
                             h->ref, f->digest, f->name, d.linked_etag);
        } else if (d.bad_range) {
            unlink(part);
            s = catalog_fail(err, ASR_ERR_IO,
                             "%s: the hub resumed %s at another offset than asked; the partial "
                             "download was discarded, pull again",
                             h->ref, f->name);
        } else if (status == 416) {
            unlink(part);
            s = catalog_fail(err, ASR_ERR_IO,
                             "%s: the hub refused to resume %s (HTTP 416); the partial download "
                             "was discarded, pull again",
                             h->ref, f->name);
        } else if (status != 200 && status != 206 && status != 0) {
            char what[300];
            snprintf(what, sizeof what, "file %s in %s", f->name, h->repo);
            s = http_failure(h, status, what, d.error_body, d.error_len, err);
        } else if (rc != CURLE_OK || d.have < f->size) {
            transfer_failed = 1;
            s = catalog_fail(err, ASR_ERR_IO,
                             "%s: the download of %s stopped at %.1f of %.1f MB (%s); run the "
                             "pull again to resume it",
                             h->ref, f->name, mb(d.have), mb(f->size),
                             rc != CURLE_OK ? (curl_error[0] ? curl_error : curl_easy_strerror(rc))
                                            : "the hub closed the connection early");
        }
        if (s != ASR_OK) {
            if (d.have == 0 && !transfer_failed)
                unlink(part);
            close(d.fd);
            return s;
        }
    }

    char got[ASR_SHA256_HEX_SIZE];
    if (f->lfs) {
        uint8_t digest[ASR_SHA256_SIZE];
        asr_sha256_final(&d.sha256, digest);
        asr_sha256_hex(digest, got);
    } else {
        asr_sha1_final_hex(&d.sha1, got);
    }
    const char *kind = f->lfs ? "SHA-256" : "git blob SHA-1";
    if (strcmp(got, f->digest) != 0) {
        unlink(part);
        close(d.fd);
        return catalog_fail(err, ASR_ERR_MODEL,
                            "checksum mismatch for %s from %s:\n  the hub publishes %s %s\n  the "
                            "download has         %s\nthe download was discarded",
                            f->name, h->ref, kind, f->digest, got);
    }
    /* The resolve endpoint names the LFS object too; it must be the one listed. */
    if (f->lfs && is_hex(d.linked_etag, 64) && strcmp(d.linked_etag, f->digest) != 0) {
        unlink(part);
        close(d.fd);
        return catalog_fail(err, ASR_ERR_MODEL,
                            "%s: the hub lists SHA-256 %s for %s but served object %s; the "
                            "download was discarded",
                            h->ref, f->digest, f->name, d.linked_etag);
    }
    if (fsync(d.fd) != 0 || rename(part, dest) != 0) {
        s = catalog_fail(err, ASR_ERR_IO, "cannot move %.200s to %.200s: %s", part, dest,
                         strerror(errno));
        close(d.fd);
        return s;
    }
    close(d.fd);
    catalog_note(h->p, "      %s: %llu bytes, %s ok", f->name, (unsigned long long)f->size, kind);
    return ASR_OK;
}

/* ---- the pull ----------------------------------------------------------------- */

static int by_size(const void *a, const void *b)
{
    const hub_file *x = a, *y = b;
    return x->size < y->size ? -1 : x->size > y->size;
}

static asr_status check_space(const hub *h, const char *dir, asr_error *err)
{
    uint64_t need = 0;
    for (int i = 0; i < h->n_files; i++)
        need += h->files[i].size;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0)
        return ASR_OK; /* cannot tell; the writes will say */
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (need > free_bytes)
        return catalog_fail(err, ASR_ERR_IO, "%s needs %.1f MB but %.300s has %.1f MB free",
                            h->ref, mb(need), dir, mb(free_bytes));
    return ASR_OK;
}

static asr_status setup(hub *h, const char *repo, const asr_catalog_pull_params *p, asr_error *err)
{
    h->p = p;
    h->repo = repo;
    snprintf(h->ref, sizeof h->ref, "%s%s", ASR_CATALOG_HUB_PREFIX, repo);
    h->revision = p->revision && *p->revision ? p->revision : "main";
    if (strlen(h->revision) > 200)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "--revision is too long");
    for (const char *c = h->revision; *c; c++)
        if (!isgraph((unsigned char)*c))
            return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                                "--revision must be a branch, tag or commit name");
    const char *endpoint = p->endpoint && *p->endpoint ? p->endpoint : getenv("HF_ENDPOINT");
    if (!endpoint || !*endpoint)
        endpoint = ASR_HUB_ENDPOINT;
    if (!*endpoint)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                            "no hub address: set HF_ENDPOINT (or --endpoint) to the hub's base "
                            "URL, e.g. HF_ENDPOINT=https://HUB-HOST");
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                            "the hub's base URL must start with http:// or https:// (got "
                            "'%.200s')",
                            endpoint);
    if (catalog_path(h->endpoint, sizeof h->endpoint, err, "%s", endpoint) != ASR_OK)
        return ASR_ERR_INVALID_ARGUMENT;
    for (size_t n = strlen(h->endpoint); n > 0 && h->endpoint[n - 1] == '/'; n--)
        h->endpoint[n - 1] = '\0';
    const char *token = p->token ? p->token : getenv("HF_TOKEN");
    h->token = token && *token ? token : NULL;
    if (h->token)
        for (const char *c = h->token; *c; c++)
            if (!isgraph((unsigned char)*c))
                return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                                    "HF_TOKEN holds spaces or control characters");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return catalog_fail(err, ASR_ERR_INTERNAL, "cannot initialise libcurl");
    /* Branch names may hold '/' (refs/pr/1); the hub wants them escaped. */
    h->revision_escaped = curl_easy_escape(NULL, h->revision, 0);
    if (!h->revision_escaped)
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    return ASR_OK;
}

asr_status catalog_pull_hub(const char *repo, const char *cache_name, const char *models_dir,
                            const char *final_dir, const asr_catalog_pull_params *p,
                            asr_error *err)
{
    hub h = {0};
    char downloads[PATH_MAX] = "", staging[PATH_MAX] = "";
    asr_status s = setup(&h, repo, p, err);
    if (s != ASR_OK)
        goto out;
    catalog_note(p, "pulling %s (revision %s) from %s", h.ref, h.revision, h.endpoint);
    if ((s = fetch_listing(&h, err)) != ASR_OK)
        goto out;
    qsort(h.files, (size_t)h.n_files, sizeof h.files[0], by_size);
    if ((s = check_space(&h, models_dir, err)) != ASR_OK)
        goto out;
    if ((s = catalog_path(downloads, sizeof downloads, err, "%s/.downloads", models_dir)) != ASR_OK)
        goto out;
    if (mkdir(downloads, 0700) != 0 && errno != EEXIST) {
        s = catalog_fail(err, ASR_ERR_IO, "cannot create %.300s: %s", downloads, strerror(errno));
        goto out;
    }
    if ((s = catalog_make_staging(final_dir, staging, sizeof staging, err)) != ASR_OK)
        goto out;
    int n_steps = h.n_files + 1;
    for (int i = 0; i < h.n_files; i++)
        if ((s = fetch_file(&h, &h.files[i], downloads, staging, i + 1, n_steps, err)) != ASR_OK)
            goto out;
    catalog_step(p, n_steps, n_steps, "installing into %s", final_dir);
    if ((s = catalog_install_staged(staging, final_dir, cache_name, p->force, p, err)) != ASR_OK)
        goto out;
out:
    if (staging[0])
        catalog_remove_tree(staging); /* gone already when it was renamed into place */
    if (downloads[0])
        rmdir(downloads); /* only when empty: no partial download to resume */
    curl_free(h.revision_escaped);
    return s;
}
