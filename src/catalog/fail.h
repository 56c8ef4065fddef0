/* fail.h — the catalogue's one error helper: fill an asr_error and return its code. */
#ifndef ASR_CATALOG_FAIL_H
#define ASR_CATALOG_FAIL_H

#include "asr.h"

#include <stdarg.h>
#include <stdio.h>

/* Inline so that files included whole by the unit tests (zip.c) need no
 * other catalogue object. */
static inline asr_status catalog_fail(asr_error *err, asr_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline asr_status catalog_fail(asr_error *err, asr_status code, const char *fmt, ...)
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

#endif
