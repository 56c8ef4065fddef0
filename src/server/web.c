/* web.c — serves the embedded browser page: content types, security headers, ETag revalidation. */
#include "server/web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The page loads its script and style from the server itself and talks
 * only to this origin's API; no inline code, nothing from elsewhere. Audio
 * plays from blob: URLs made of the chosen file or the recording. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                          "media-src 'self' blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
                          "frame-ancestors 'none'";

const srv_web_file *srv_web_find(const char *path)
{
    if (path[0] != '/') return NULL;
    const char *name = path[1] ? path + 1 : "index.html";
    for (const srv_web_file *f = srv_web_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static const char *content_type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* A strong validator from the bytes (FNV-1a): the files change only with the binary. */
static void etag_of(const srv_web_file *f, char *out, size_t cap)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < f->size; i++) {
        h ^= f->data[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, cap, "\"%016llx-%zx\"", h, f->size);
}

/* If-None-Match: "*" or a comma-separated list of tags (W/ prefixes compare weakly, as RFC 9110 says for GET). */
static int etag_listed(const char *header, const char *etag)
{
    size_t n = strlen(etag);
    for (const char *p = header; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '*') return 1;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == ' ' || p[n] == '\t')) return 1;
        while (*p && *p != ',') p++;
    }
    return 0;
}

enum MHD_Result srv_web_reply(srv_request *rq)
{
    const srv_web_file *f = srv_web_find(rq->path);
    if (!f) return srv_reply_error(rq, 404, NULL, "not_found", "no route for %s %s", rq->method, rq->path);
    char etag[48];
    etag_of(f, etag, sizeof etag);
    /* no-cache: the browser keeps its copy but asks each time, so a new
     * binary's page is never mixed with an old script. */
    const char *headers[] = {
        MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache",
        MHD_HTTP_HEADER_ETAG, etag,
        "X-Content-Type-Options", "nosniff",
        "Content-Security-Policy", csp,
        "Referrer-Policy", "no-referrer",
        "X-Frame-Options", "DENY",
        "Permissions-Policy", "microphone=(self), camera=(), geolocation=()",
        NULL,
    };
    const char *inm = srv_request_value(rq, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && etag_listed(inm, etag)) return srv_reply(rq, 304, NULL, NULL, 0, headers);
    char *body = malloc(f->size ? f->size : 1);
    if (!body) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    memcpy(body, f->data, f->size);
    return srv_reply(rq, 200, content_type_of(f->name), body, f->size, headers);
}
