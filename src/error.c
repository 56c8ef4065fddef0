/* error.c — status codes, their names, and filling an asr_error. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *asr_strerror(asr_status code)
{
    switch (code) {
    case ASR_OK: return "success";
    case ASR_ERR_INVALID_ARGUMENT: return "invalid argument";
    case ASR_ERR_IO: return "I/O error";
    case ASR_ERR_MODEL: return "model error";
    case ASR_ERR_AUDIO: return "audio error";
    case ASR_ERR_TOO_LARGE: return "input too large";
    case ASR_ERR_NO_MEMORY: return "out of memory";
    case ASR_ERR_CANCELLED: return "cancelled";
    case ASR_ERR_TIMEOUT: return "timed out";
    case ASR_ERR_UNSUPPORTED: return "unsupported";
    case ASR_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

asr_status asr_fail(asr_error *err, asr_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void asr_error_clear(asr_error *err)
{
    if (err) {
        err->code = ASR_OK;
        err->message[0] = '\0';
    }
}
