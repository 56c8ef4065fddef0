/* fuzz_format.c — libFuzzer harness for the output formatters (asr_result_format, every format).
 *
 * The input describes up to 8 segments: for each, 2 bytes of start and
 * duration (centiseconds, times scale up to hours), 4 bytes of float32 bits
 * for the scores (NaN and infinities included), and a text up to the next
 * 0xFF byte (controls, "-->", quotes, any characters), made valid UTF-8 by
 * asr_utf8_repair as the token decoder does. Every format must render and
 * be valid UTF-8; json and verbose_json must parse as JSON with a "text"
 * string (and one entry per segment). Built by `make fuzz`; run by
 * tests/integration/fuzz_smoke.sh.
 */
#include "internal.h"
#include "fuzz_utf8.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float float_at(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    asr_result *r = asr_result_new();
    if (!r) return 0;
    snprintf(r->language, sizeof r->language, "en");
    r->task = size && data[0] & 1 ? ASR_TASK_TRANSLATE : ASR_TASK_TRANSCRIBE;
    size_t pos = size ? 1 : 0;
    double t = 0.0;
    static const int tokens[] = {50363, 1, 2, 50364};
    for (int id = 0; id < 8 && pos + 6 <= size; id++) {
        double scale = data[pos] & 0x80 ? 36.0 : 0.01; /* hours or centiseconds */
        double start = t + (data[pos] & 0x7F) * scale, dur = data[pos + 1] * 0.01;
        float score = float_at(data + pos + 2);
        pos += 6;
        const uint8_t *end = memchr(data + pos, 0xFF, size - pos);
        size_t len = end ? (size_t)(end - (data + pos)) : size - pos;
        char *text = asr_utf8_repair((const char *)data + pos, len, NULL); /* drops NULs too */
        if (!text) break;
        pos += len + (end ? 1 : 0);
        asr_segment seg = {.id = id, .seek = (int)(start * 100), .start = start, .end = start + dur, .text = text,
                           .tokens = tokens, .n_tokens = 4, .temperature = score, .avg_logprob = -score,
                           .compression_ratio = score, .no_speech_prob = score};
        asr_status s = asr_result_add_segment(r, &seg);
        free(text);
        if (s != ASR_OK) break;
        t = start + dur;
    }
    r->duration = t;
    if (asr_result_finish(r) != ASR_OK) {
        asr_result_free(r);
        return 0;
    }
    static const asr_format formats[] = {ASR_FORMAT_TXT, ASR_FORMAT_JSON, ASR_FORMAT_VERBOSE_JSON,
                                         ASR_FORMAT_SRT, ASR_FORMAT_VTT, ASR_FORMAT_TSV};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char *out = asr_result_format(r, formats[i]);
        if (!out) abort();
        if (!fuzz_utf8_valid((const unsigned char *)out, strlen(out))) abort();
        if (formats[i] == ASR_FORMAT_JSON || formats[i] == ASR_FORMAT_VERBOSE_JSON) {
            json_error_t jerr;
            json_t *j = json_loads(out, 0, &jerr);
            if (!j || !json_is_string(json_object_get(j, "text"))) abort();
            if (formats[i] == ASR_FORMAT_VERBOSE_JSON &&
                json_array_size(json_object_get(j, "segments")) != (size_t)asr_result_n_segments(r))
                abort();
            json_decref(j);
        }
        free(out);
    }
    asr_result_free(r);
    return 0;
}
