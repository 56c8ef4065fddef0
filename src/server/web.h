/* web.h — the browser page `asr serve` answers at / and its files, compiled in from src/server/web/. */
#ifndef ASR_SERVER_WEB_H
#define ASR_SERVER_WEB_H

#include "server/request.h"

#include <stddef.h>

typedef struct srv_web_file {
    const char *name;          /* file name under src/server/web/; NULL ends the list */
    const unsigned char *data;
    size_t size;
} srv_web_file;

/* Generated at build time by scripts/embed-files.sh ($(BUILD)/gen/web_files.c). */
extern const srv_web_file srv_web_files[];

/* The embedded file a GET path names ("/" is index.html), or NULL. */
const srv_web_file *srv_web_find(const char *path);
/* Answer GET/HEAD for a path srv_web_find knows: the file, or 304 when If-None-Match matches. */
enum MHD_Result srv_web_reply(srv_request *rq);

#endif /* ASR_SERVER_WEB_H */
