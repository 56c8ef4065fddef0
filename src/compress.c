/* compress.c — the zlib compression ratio Whisper uses to spot repetitive output. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* openai/whisper utils.compression_ratio():
 *     text_bytes = text.encode("utf-8")
 *     return len(text_bytes) / len(zlib.compress(text_bytes))
 * Python's zlib.compress uses level -1 (= 6), 15 window bits and memLevel 8,
 * which is what compress2(Z_DEFAULT_COMPRESSION) does, so the compressed
 * length is the same byte for byte. Empty text gives 0 / 8 = 0. On OOM, or
 * for NULL, it returns 0: a ratio that never triggers a fallback. */
float asr_compression_ratio(const char *text)
{
    if (!text) return 0.0f;
    size_t n = strlen(text);
    uLong bound = compressBound((uLong)n);
    Bytef *buf = malloc(bound);
    if (!buf) return 0.0f;
    uLongf out_len = bound;
    int rc = compress2(buf, &out_len, (const Bytef *)text, (uLong)n, Z_DEFAULT_COMPRESSION);
    free(buf);
    if (rc != Z_OK || out_len == 0) return 0.0f;
    return (float)((double)n / (double)out_len);
}
