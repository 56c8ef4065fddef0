/* format.c — renders a result as txt, json, verbose_json, srt, vtt or tsv. */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int asr_format_parse(const char *name)
{
    static const struct { const char *name; asr_format format; } names[] = {
        {"txt", ASR_FORMAT_TXT}, {"text", ASR_FORMAT_TXT}, {"json", ASR_FORMAT_JSON},
        {"verbose_json", ASR_FORMAT_VERBOSE_JSON}, {"srt", ASR_FORMAT_SRT},
        {"vtt", ASR_FORMAT_VTT}, {"tsv", ASR_FORMAT_TSV},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) return (int)names[i].format;
    return -1;
}

/* ---- a growing output string ------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t n, cap;
    int oom; /* set once an allocation failed; later appends do nothing */
} strbuf;

static void sb_add(strbuf *sb, const char *s, size_t n)
{
    if (sb->oom) return;
    if (n + 1 > sb->cap - sb->n) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (n + 1 > cap - sb->n) {
            if (cap > SIZE_MAX / 2) {
                sb->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(sb->p, cap);
        if (!p) {
            sb->oom = 1;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->n, s, n);
    sb->n += n;
    sb->p[sb->n] = '\0';
}

static void sb_str(strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_printf(strbuf *sb, const char *fmt, ...) ASR_PRINTF(2, 3);
static void sb_printf(strbuf *sb, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        sb->oom = 1; /* only short numeric fields go through here */
        return;
    }
    sb_add(sb, buf, (size_t)n);
}

/* The finished string, or NULL (and nothing leaked) after an OOM. */
static char *sb_finish(strbuf *sb)
{
    if (!sb->oom && !sb->p) sb_add(sb, "", 0);
    if (sb->oom) {
        free(sb->p);
        return NULL;
    }
    return sb->p;
}

/* ---- text helpers -------------------------------------------------------------- */

/* Bounds of text with Python's str.strip() applied: [*start, *end). */
static void strip_bounds(const char *text, size_t *start, size_t *end)
{
    asr_strip_bounds(text, strlen(text), start, end);
}

/* Append text stripped, with every `from` replaced by `to` in one
 * left-to-right pass as Python's str.replace() does. */
static void sb_stripped_replace(strbuf *sb, const char *text, const char *from, const char *to)
{
    size_t a, b;
    strip_bounds(text, &a, &b);
    size_t from_len = strlen(from);
    for (size_t i = a; i < b;) {
        if (from_len && b - i >= from_len && memcmp(text + i, from, from_len) == 0) {
            sb_str(sb, to);
            i += from_len;
        } else {
            sb_add(sb, text + i, 1);
            i++;
        }
    }
}

static int json_write_cb(const char *buffer, size_t size, void *data)
{
    sb_add(data, buffer, size);
    return 0;
}

/* Append a JSON string literal; jansson does the escaping (quotes,
 * backslashes, control characters) and keeps UTF-8 as is. */
static void sb_json_string(strbuf *sb, const char *s, size_t n)
{
    json_t *js = json_stringn(s, n);
    if (!js) { /* not valid UTF-8: repair it first */
        char *fixed = asr_utf8_repair(s, n, &n);
        js = fixed ? json_stringn(fixed, n) : NULL;
        free(fixed);
    }
    if (!js || json_dump_callback(js, json_write_cb, sb, JSON_ENCODE_ANY) != 0) sb->oom = 1;
    json_decref(js);
}

/* Append a number as Python's repr() writes a float: the shortest digits
 * that read back to the same value (the same float32 when single is set,
 * since those fields hold floats), positional notation from 1e-4 to 1e16,
 * always a '.' or an exponent. NaN and infinities are not JSON: null. */
static void sb_number(strbuf *sb, double v, int single)
{
    if (!isfinite(v)) {
        sb_str(sb, "null");
        return;
    }
    char buf[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) break;
    }
    /* buf is [-]d[.ddd]e[+-]XX: split into sign, digit string and exponent. */
    char mant[24];
    size_t nd = 0;
    const char *p = buf;
    int negative = *p == '-';
    if (negative) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && mant[nd - 1] == '0') nd--; /* %.*e may pad with zeros */
    mant[nd] = '\0';
    char out[64];
    size_t o = 0;
    if (negative) out[o++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        out[o++] = mant[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = mant[i];
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp10; i--) out[o++] = '0';
        for (size_t i = 0; i < nd; i++) out[o++] = mant[i];
    } else {
        size_t int_digits = (size_t)exp10 + 1;
        for (size_t i = 0; i < int_digits; i++) out[o++] = i < nd ? mant[i] : '0';
        out[o++] = '.';
        if (nd > int_digits)
            for (size_t i = int_digits; i < nd; i++) out[o++] = mant[i];
        else
            out[o++] = '0';
    }
    sb_add(sb, out, o);
}

/* round(x) as Python does it for these non-negative times: half to even;
 * negative, NaN and absurd values clamp so the integer math stays defined. */
static long long round_ms(double ms)
{
    if (!(ms > 0)) return 0;
    if (ms > 1e15) ms = 1e15;
    return (long long)nearbyint(ms);
}

/* openai/whisper utils.format_timestamp(seconds, always_include_hours,
 * decimal_marker). */
static void sb_timestamp(strbuf *sb, double seconds, int always_include_hours, char decimal_marker)
{
    long long ms = round_ms(seconds * 1000.0);
    long long hours = ms / 3600000;
    ms -= hours * 3600000;
    long long minutes = ms / 60000;
    ms -= minutes * 60000;
    long long secs = ms / 1000;
    ms -= secs * 1000;
    if (always_include_hours || hours > 0) sb_printf(sb, "%02lld:", hours);
    sb_printf(sb, "%02lld:%02lld%c%03lld", minutes, secs, decimal_marker, ms);
}

/* ---- the formats ------------------------------------------------------------------ */

static void format_json(strbuf *sb, const asr_result *r)
{
    size_t a, b;
    const char *text = asr_result_text(r);
    strip_bounds(text, &a, &b);
    sb_str(sb, "{\"text\":");
    sb_json_string(sb, text + a, b - a);
    sb_str(sb, "}");
}

/* One word object. openai/whisper's per-segment form keeps the leading space
 * and has the probability; OpenAI's top-level list strips the word and has
 * no probability. */
static void sb_word(strbuf *sb, const asr_word *w, int comma, int per_segment)
{
    size_t a = 0, b = strlen(w->word);
    if (!per_segment) strip_bounds(w->word, &a, &b);
    sb_str(sb, comma ? ",{\"word\":" : "{\"word\":");
    sb_json_string(sb, w->word + a, b - a);
    sb_str(sb, ",\"start\":");
    sb_number(sb, w->start, 0);
    sb_str(sb, ",\"end\":");
    sb_number(sb, w->end, 0);
    if (per_segment) {
        sb_str(sb, ",\"probability\":");
        sb_number(sb, w->probability, 1);
    }
    sb_str(sb, "}");
}

/* OpenAI's verbose_json: the language by its English name, the text
 * stripped, the segments as openai/whisper's transcribe() returns them. */
static void format_verbose_json(strbuf *sb, const asr_result *r)
{
    int lang = asr_lang_find(r->language);
    const char *language = lang >= 0 ? asr_lang_name(lang) : r->language;
    sb_str(sb, "{\"task\":");
    sb_json_string(sb, asr_result_task(r), strlen(asr_result_task(r)));
    sb_str(sb, ",\"language\":");
    sb_json_string(sb, language, strlen(language));
    sb_str(sb, ",\"duration\":");
    sb_number(sb, r->duration, 0);
    size_t a, b;
    const char *text = asr_result_text(r);
    strip_bounds(text, &a, &b);
    sb_str(sb, ",\"text\":");
    sb_json_string(sb, text + a, b - a);
    /* with word timestamps: OpenAI's top-level list (words stripped) */
    int n_words = 0;
    for (int i = 0; i < r->n_segments; i++) n_words += r->segments[i].n_words;
    if (n_words > 0) {
        sb_str(sb, ",\"words\":[");
        int k = 0;
        for (int i = 0; i < r->n_segments; i++)
            for (int j = 0; j < r->segments[i].n_words; j++) sb_word(sb, &r->segments[i].words[j], k++ > 0, 0);
        sb_str(sb, "]");
    }
    sb_str(sb, ",\"segments\":[");
    for (int i = 0; i < r->n_segments; i++) {
        const asr_segment *s = &r->segments[i];
        sb_printf(sb, "%s{\"id\":%d,\"seek\":%d,\"start\":", i ? "," : "", s->id, s->seek);
        sb_number(sb, s->start, 0);
        sb_str(sb, ",\"end\":");
        sb_number(sb, s->end, 0);
        sb_str(sb, ",\"text\":");
        sb_json_string(sb, s->text, strlen(s->text));
        sb_str(sb, ",\"tokens\":[");
        for (int t = 0; t < s->n_tokens; t++) sb_printf(sb, "%s%d", t ? "," : "", s->tokens[t]);
        sb_str(sb, "],\"temperature\":");
        sb_number(sb, s->temperature, 1);
        sb_str(sb, ",\"avg_logprob\":");
        sb_number(sb, s->avg_logprob, 1);
        sb_str(sb, ",\"compression_ratio\":");
        sb_number(sb, s->compression_ratio, 1);
        sb_str(sb, ",\"no_speech_prob\":");
        sb_number(sb, s->no_speech_prob, 1);
        if (s->n_words > 0) { /* openai/whisper's per-segment words */
            sb_str(sb, ",\"words\":[");
            for (int j = 0; j < s->n_words; j++) sb_word(sb, &s->words[j], j > 0, 1);
            sb_str(sb, "]");
        }
        sb_str(sb, "}");
    }
    sb_str(sb, "]}");
}

/* openai/whisper WriteSRT: 1-based index, HH:MM:SS,mmm, stripped text with
 * "-->" made "->", blank line. */
static void format_srt(strbuf *sb, const asr_result *r)
{
    for (int i = 0; i < r->n_segments; i++) {
        const asr_segment *s = &r->segments[i];
        sb_printf(sb, "%d\n", i + 1);
        sb_timestamp(sb, s->start, 1, ',');
        sb_str(sb, " --> ");
        sb_timestamp(sb, s->end, 1, ',');
        sb_str(sb, "\n");
        sb_stripped_replace(sb, s->text, "-->", "->");
        sb_str(sb, "\n\n");
    }
}

/* openai/whisper WriteVTT, with hours always written (HH:MM:SS.mmm) as the
 * OpenAI API does; whisper's CLI leaves them out below one hour. */
static void format_vtt(strbuf *sb, const asr_result *r)
{
    sb_str(sb, "WEBVTT\n\n");
    for (int i = 0; i < r->n_segments; i++) {
        const asr_segment *s = &r->segments[i];
        sb_timestamp(sb, s->start, 1, '.');
        sb_str(sb, " --> ");
        sb_timestamp(sb, s->end, 1, '.');
        sb_str(sb, "\n");
        sb_stripped_replace(sb, s->text, "-->", "->");
        sb_str(sb, "\n\n");
    }
}

/* openai/whisper WriteTSV: integer milliseconds, tabs in text made spaces. */
static void format_tsv(strbuf *sb, const asr_result *r)
{
    sb_str(sb, "start\tend\ttext\n");
    for (int i = 0; i < r->n_segments; i++) {
        const asr_segment *s = &r->segments[i];
        sb_printf(sb, "%lld\t%lld\t", round_ms(1000 * s->start), round_ms(1000 * s->end));
        sb_stripped_replace(sb, s->text, "\t", " ");
        sb_str(sb, "\n");
    }
}

char *asr_result_format(const asr_result *result, asr_format format)
{
    if (!result) return NULL;
    strbuf sb = {0};
    switch (format) {
    case ASR_FORMAT_TXT: {
        size_t a, b;
        const char *text = asr_result_text(result);
        strip_bounds(text, &a, &b);
        sb_add(&sb, text + a, b - a);
        sb_str(&sb, "\n");
        break;
    }
    case ASR_FORMAT_JSON: format_json(&sb, result); break;
    case ASR_FORMAT_VERBOSE_JSON: format_verbose_json(&sb, result); break;
    case ASR_FORMAT_SRT: format_srt(&sb, result); break;
    case ASR_FORMAT_VTT: format_vtt(&sb, result); break;
    case ASR_FORMAT_TSV: format_tsv(&sb, result); break;
    default: return NULL;
    }
    return sb_finish(&sb);
}
