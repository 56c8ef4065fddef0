/* test_format.c — result building, every output format byte for byte, and
 * the compression ratio.
 *
 * The expected bytes were produced by /tmp/venv-tok/bin/python running
 * openai/whisper's format_timestamp and writers (WriteSRT, WriteVTT with
 * hours as the OpenAI API writes them, WriteTSV; txt = text.strip() + "\n")
 * and json.dumps(..., ensure_ascii=False, separators=(",", ":")) on the
 * same segments, with float32 fields written as their shortest float32
 * repr. Compression ratios: len(b) / len(zlib.compress(b)) with b = the
 * UTF-8 text, Python 3.11 zlib. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static asr_result *build_result(void)
{
    static const int tokens0[] = {50363, 843, 523, 616, 50888};
    static const int tokens1[] = {50888, 1, 2, 50980};
    const asr_segment segs[] = {
        {.id = 0, .seek = 0, .start = 0.0, .end = 10.5, .text = " And so my fellow Americans, ask not",
         .tokens = tokens0, .n_tokens = 5, .temperature = 0.0f, .avg_logprob = -0.3f,
         .compression_ratio = 1.2f, .no_speech_prob = 0.01f},
        /* quotes, tab, newline, "-->", non-ASCII, backslash, a control
         * character and trailing spaces */
        {.id = 1, .seek = 1050, .start = 10.5, .end = 12.345,
         .text = " He said \"hi\"\tthen\nleft --> \xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\ \x01 end  ",
         .tokens = tokens1, .n_tokens = 4, .temperature = 0.2f, .avg_logprob = -1.25f,
         .compression_ratio = 2.5f, .no_speech_prob = 0.5f},
        /* past one hour; 3723.9995 s rounds half to even: 3724000 ms */
        {.id = 2, .seek = 372000, .start = 3723.9995, .end = 3725.5, .text = " Last one.",
         .tokens = NULL, .n_tokens = 0, .temperature = 1.0f, .avg_logprob = -0.123456789f,
         .compression_ratio = 0.5f, .no_speech_prob = 1e-5f},
    };
    asr_result *r = asr_result_new();
    if (!r) return NULL;
    snprintf(r->language, sizeof r->language, "en");
    r->task = ASR_TASK_TRANSCRIBE;
    r->duration = 3725.5;
    for (int i = 0; i < 3; i++)
        if (asr_result_add_segment(r, &segs[i]) != ASR_OK) {
            asr_result_free(r);
            return NULL;
        }
    if (asr_result_finish(r) != ASR_OK) {
        asr_result_free(r);
        return NULL;
    }
    return r;
}

static const char expect_txt[] =
    "And so my fellow Americans, ask not He said \"hi\"\tthen\nleft --> \xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\ \x01 end   Last one.\n";

static const char expect_json[] =
    "{\"text\":\"And so my fellow Americans, ask not He said \\\"hi\\\"\\tthen\\nleft --> \xc3\xbc" "ber "
    "\xe6\x97\xa5\xe6\x9c\xac \\\\ \\u0001 end   Last one.\"}";

static const char expect_verbose_json[] =
    "{\"task\":\"transcribe\",\"language\":\"english\",\"duration\":3725.5,"
    "\"text\":\"And so my fellow Americans, ask not He said \\\"hi\\\"\\tthen\\nleft --> \xc3\xbc" "ber "
    "\xe6\x97\xa5\xe6\x9c\xac \\\\ \\u0001 end   Last one.\",\"segments\":["
    "{\"id\":0,\"seek\":0,\"start\":0.0,\"end\":10.5,\"text\":\" And so my fellow Americans, ask not\","
    "\"tokens\":[50363,843,523,616,50888],\"temperature\":0.0,\"avg_logprob\":-0.3,"
    "\"compression_ratio\":1.2,\"no_speech_prob\":0.01},"
    "{\"id\":1,\"seek\":1050,\"start\":10.5,\"end\":12.345,\"text\":\" He said \\\"hi\\\"\\tthen\\nleft --> "
    "\xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\\\ \\u0001 end  \",\"tokens\":[50888,1,2,50980],"
    "\"temperature\":0.2,\"avg_logprob\":-1.25,\"compression_ratio\":2.5,\"no_speech_prob\":0.5},"
    "{\"id\":2,\"seek\":372000,\"start\":3723.9995,\"end\":3725.5,\"text\":\" Last one.\",\"tokens\":[],"
    "\"temperature\":1.0,\"avg_logprob\":-0.12345679,\"compression_ratio\":0.5,\"no_speech_prob\":1e-05}]}";

static const char expect_srt[] =
    "1\n00:00:00,000 --> 00:00:10,500\nAnd so my fellow Americans, ask not\n\n"
    "2\n00:00:10,500 --> 00:00:12,345\nHe said \"hi\"\tthen\nleft -> \xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\ \x01 end\n\n"
    "3\n01:02:04,000 --> 01:02:05,500\nLast one.\n\n";

static const char expect_vtt[] =
    "WEBVTT\n\n"
    "00:00:00.000 --> 00:00:10.500\nAnd so my fellow Americans, ask not\n\n"
    "00:00:10.500 --> 00:00:12.345\nHe said \"hi\"\tthen\nleft -> \xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\ \x01 end\n\n"
    "01:02:04.000 --> 01:02:05.500\nLast one.\n\n";

static const char expect_tsv[] =
    "start\tend\ttext\n"
    "0\t10500\tAnd so my fellow Americans, ask not\n"
    "10500\t12345\tHe said \"hi\" then\nleft --> \xc3\xbc" "ber \xe6\x97\xa5\xe6\x9c\xac \\ \x01 end\n"
    "3724000\t3725500\tLast one.\n";

/* Print where two strings first differ, to make a failure readable. */
static int same_text(const char *what, const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0) return 1;
    if (!got) {
        printf("     %s: got NULL\n", what);
        return 0;
    }
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    printf("     %s differs at byte %zu:\n     got  \"%.60s\"\n     want \"%.60s\"\n", what, i, got + i, want + i);
    return 0;
}

static void test_formats(void)
{
    asr_result *r = build_result();
    CHECK(r != NULL, "build a result by hand");
    if (!r) return;
    CHECK(asr_result_n_segments(r) == 3, "3 segments");
    CHECK(strcmp(asr_result_text(r), " And so my fellow Americans, ask not He said \"hi\"\tthen\nleft --> \xc3\xbc" "ber "
                                     "\xe6\x97\xa5\xe6\x9c\xac \\ \x01 end   Last one.") == 0,
          "text is the segment texts joined, leading space kept");
    CHECK(strcmp(asr_result_language(r), "en") == 0 && strcmp(asr_result_task(r), "transcribe") == 0, "language and task");
    CHECK(asr_result_duration(r) == 3725.5, "duration");
    const asr_segment *s = asr_result_segment(r, 1);
    CHECK(s && s->id == 1 && s->seek == 1050 && s->n_tokens == 4 && s->tokens[3] == 50980 && s->avg_logprob == -1.25f,
          "segment fields copied");
    CHECK(asr_result_segment(r, 3) == NULL && asr_result_segment(r, -1) == NULL, "segment index out of range");

    static const struct { asr_format format; const char *name; const char *want; } cases[] = {
        {ASR_FORMAT_TXT, "txt", expect_txt},
        {ASR_FORMAT_JSON, "json", expect_json},
        {ASR_FORMAT_VERBOSE_JSON, "verbose_json", expect_verbose_json},
        {ASR_FORMAT_SRT, "srt", expect_srt},
        {ASR_FORMAT_VTT, "vtt", expect_vtt},
        {ASR_FORMAT_TSV, "tsv", expect_tsv},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = asr_result_format(r, cases[i].format);
        CHECK(same_text(cases[i].name, out, cases[i].want), "%s bytes", cases[i].name);
        free(out);
    }
    CHECK(asr_result_format(r, (asr_format)42) == NULL, "unknown format renders nothing");
    CHECK(asr_result_format(NULL, ASR_FORMAT_TXT) == NULL, "NULL result renders nothing");

    /* A translation in another language names it in verbose_json. */
    snprintf(r->language, sizeof r->language, "de");
    r->task = ASR_TASK_TRANSLATE;
    char *out = asr_result_format(r, ASR_FORMAT_VERBOSE_JSON);
    const char *prefix = "{\"task\":\"translate\",\"language\":\"german\",";
    CHECK(out && strncmp(out, prefix, strlen(prefix)) == 0, "translate, german");
    free(out);
    asr_result_free(r);
}

/* Words: openai's per-segment list (leading space, probability) and
 * OpenAI's top-level list (stripped, no probability), byte for byte. */
static void test_words(void)
{
    asr_result *r = asr_result_new();
    int tokens[] = {50363, 843, 50400};
    asr_segment seg = {.id = 0, .seek = 0, .start = 0.0, .end = 0.74, .text = " Hi \"x\"", .tokens = tokens,
                       .n_tokens = 3, .temperature = 0.0f, .avg_logprob = -0.5f, .compression_ratio = 1.0f,
                       .no_speech_prob = 0.25f};
    asr_word words[] = {{" Hi", 0.0, 0.3, 0.5f}, {" \"x\"", 0.3, 0.74, 1.0f}};
    CHECK(r && asr_result_add_segment(r, &seg) == ASR_OK && asr_result_set_words(r, 0, words, 2) == ASR_OK &&
          asr_result_finish(r) == ASR_OK, "a segment with two words");
    CHECK(asr_result_set_words(r, 1, words, 2) == ASR_ERR_INVALID_ARGUMENT, "words for a missing segment rejected");
    const char *want =
        "{\"task\":\"transcribe\",\"language\":\"\",\"duration\":0.0,\"text\":\"Hi \\\"x\\\"\","
        "\"words\":[{\"word\":\"Hi\",\"start\":0.0,\"end\":0.3},{\"word\":\"\\\"x\\\"\",\"start\":0.3,\"end\":0.74}],"
        "\"segments\":[{\"id\":0,\"seek\":0,\"start\":0.0,\"end\":0.74,\"text\":\" Hi \\\"x\\\"\",\"tokens\":[50363,843,50400],"
        "\"temperature\":0.0,\"avg_logprob\":-0.5,\"compression_ratio\":1.0,\"no_speech_prob\":0.25,"
        "\"words\":[{\"word\":\" Hi\",\"start\":0.0,\"end\":0.3,\"probability\":0.5},"
        "{\"word\":\" \\\"x\\\"\",\"start\":0.3,\"end\":0.74,\"probability\":1.0}]}]}";
    char *out = asr_result_format(r, ASR_FORMAT_VERBOSE_JSON);
    CHECK(same_text("verbose_json with words", out, want), "verbose_json with words bytes");
    free(out);
    asr_result_free(r);
}

static void test_empty_and_odd(void)
{
    asr_result *r = asr_result_new();
    CHECK(r && asr_result_text(r)[0] == '\0' && asr_result_n_segments(r) == 0, "new result is empty");
    CHECK(asr_result_finish(r) == ASR_OK, "finish with no segments");
    static const struct { asr_format format; const char *want; } cases[] = {
        {ASR_FORMAT_TXT, "\n"},
        {ASR_FORMAT_JSON, "{\"text\":\"\"}"},
        {ASR_FORMAT_VERBOSE_JSON, "{\"task\":\"transcribe\",\"language\":\"\",\"duration\":0.0,\"text\":\"\",\"segments\":[]}"},
        {ASR_FORMAT_SRT, ""},
        {ASR_FORMAT_VTT, "WEBVTT\n\n"},
        {ASR_FORMAT_TSV, "start\tend\ttext\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = asr_result_format(r, cases[i].format);
        CHECK(same_text("empty", out, cases[i].want), "empty result, format %d", (int)cases[i].format);
        free(out);
    }

    /* Invalid UTF-8 in a segment is repaired on the way in; NULL text is "";
     * negative and NaN times clamp to zero; non-finite numbers are null;
     * Unicode spaces are stripped like Python's str.strip(). */
    asr_segment bad = {.id = 0, .start = -1.0, .end = NAN, .text = "\xe3\x80\x80 caf\xc3 \xff\xc2\xa0",
                       .avg_logprob = -INFINITY, .no_speech_prob = NAN};
    CHECK(asr_result_add_segment(r, &bad) == ASR_OK, "add a hostile segment");
    asr_segment null_text = {.id = 1, .start = 100000.0, .end = 1e300, .text = NULL};
    CHECK(asr_result_add_segment(r, &null_text) == ASR_OK, "add a NULL-text segment");
    asr_segment neg = {.n_tokens = -1};
    CHECK(asr_result_add_segment(r, &neg) == ASR_ERR_INVALID_ARGUMENT, "negative token count rejected");
    asr_segment missing = {.n_tokens = 3, .tokens = NULL};
    CHECK(asr_result_add_segment(r, &missing) == ASR_ERR_INVALID_ARGUMENT, "tokens NULL with a count rejected");
    CHECK(asr_result_add_segment(NULL, &bad) == ASR_ERR_INVALID_ARGUMENT, "NULL result rejected");
    CHECK(asr_result_finish(r) == ASR_OK, "finish again");
    CHECK(strcmp(asr_result_text(r), "\xe3\x80\x80 caf\xef\xbf\xbd \xef\xbf\xbd\xc2\xa0") == 0, "text repaired");
    char *out = asr_result_format(r, ASR_FORMAT_TXT);
    CHECK(same_text("txt", out, "caf\xef\xbf\xbd \xef\xbf\xbd\n"), "Unicode spaces stripped");
    free(out);
    out = asr_result_format(r, ASR_FORMAT_SRT);
    CHECK(same_text("srt", out,
                    "1\n00:00:00,000 --> 00:00:00,000\ncaf\xef\xbf\xbd \xef\xbf\xbd\n\n"
                    "2\n27:46:40,000 --> 277777777:46:40,000\n\n\n"),
          "clamped and huge times");
    free(out);
    out = asr_result_format(r, ASR_FORMAT_VERBOSE_JSON);
    CHECK(out && strstr(out, "\"start\":-1.0,\"end\":null,") && strstr(out, "\"avg_logprob\":null,") &&
              strstr(out, "\"no_speech_prob\":null}") && strstr(out, "\"end\":1e+300,"),
          "non-finite numbers are null, big ones use an exponent: %s", out ? out : "(null)");
    free(out);
    asr_result_free(r);
    asr_result_free(NULL);
    CHECK(asr_result_n_segments(NULL) == 0 && asr_result_text(NULL)[0] == '\0', "getters accept NULL");
}

/* Numbers as Python's repr() writes them. */
static void test_numbers(void)
{
    static const struct { double v; const char *want; } cases[] = {
        {0.0, "0.0"}, {-0.0, "-0.0"}, {1.0, "1.0"}, {100.0, "100.0"}, {0.1, "0.1"}, {1e-4, "0.0001"},
        {1.5e-5, "1.5e-05"}, {123456789012345.0, "123456789012345.0"}, {1e16, "1e+16"}, {2.5e16, "2.5e+16"},
        {1.0 / 3.0, "0.3333333333333333"}, {0.30000000000000004, "0.30000000000000004"}, {29.98, "29.98"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        asr_result *r = asr_result_new();
        r->duration = cases[i].v;
        char *out = asr_result_format(r, ASR_FORMAT_VERBOSE_JSON);
        char want[128];
        snprintf(want, sizeof want, "\"duration\":%s,", cases[i].want);
        CHECK(out && strstr(out, want), "duration %s: %s", cases[i].want, out ? out : "(null)");
        free(out);
        asr_result_free(r);
    }
}

static void test_parse(void)
{
    CHECK(asr_format_parse("txt") == ASR_FORMAT_TXT && asr_format_parse("text") == ASR_FORMAT_TXT, "txt, text");
    CHECK(asr_format_parse("json") == ASR_FORMAT_JSON, "json");
    CHECK(asr_format_parse("verbose_json") == ASR_FORMAT_VERBOSE_JSON, "verbose_json");
    CHECK(asr_format_parse("srt") == ASR_FORMAT_SRT && asr_format_parse("vtt") == ASR_FORMAT_VTT &&
              asr_format_parse("tsv") == ASR_FORMAT_TSV, "srt, vtt, tsv");
    CHECK(asr_format_parse("xml") == -1 && asr_format_parse("") == -1 && asr_format_parse(NULL) == -1 &&
              asr_format_parse("json ") == -1, "unknown names");
}

static void test_compression_ratio(void)
{
    static const struct { const char *text; double want; } cases[] = {
        {"", 0.0},
        {"hello world", 0.5789473684210527},
        {" the the the the the the the the the the the the the the the the the the the the"
         " the the the the the the the the the the the the the the the the the the the the", 10.666666666666666},
        {" And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
         1.3670886075949367},
        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x80\x81"
         "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x80\x82",
         1.3170731707317074},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = asr_compression_ratio(cases[i].text);
        CHECK(got == (float)cases[i].want, "compression ratio case %zu: %.9g (want %.9g)", i, got, cases[i].want);
    }
    CHECK(asr_compression_ratio(NULL) == 0.0f, "NULL text");
}

int main(void)
{
    test_formats();
    test_words();
    test_empty_and_odd();
    test_numbers();
    test_parse();
    test_compression_ratio();
    return CHECK_DONE();
}
