/* test_tokenizer.c — byte-level BPE against expectations from a real oracle:
 * encode matches tiktoken (Whisper's tokenizer), decode matches Python's
 * bytes.decode('utf-8', errors='replace'), on the tiny.en vocabulary.
 *
 * The expected ids below were produced by tiktoken 0.14 (and agree with the
 * Hugging Face `tokenizers` 0.23 run on the model's tokenizer.json), in a
 * venv outside the repo (python3 -m venv /tmp/venv-tok &&
 * /tmp/venv-tok/bin/pip install tiktoken tokenizers), with:
 *
 *   import tiktoken
 *   bs = [*range(33, 127), *range(161, 173), *range(174, 256)]; cs = bs[:]; n = 0
 *   for b in range(256):
 *       if b not in bs: bs.append(b); cs.append(256 + n); n += 1
 *   byte_of = {chr(c): b for b, c in zip(bs, cs)}
 *   lines = open(MODEL + "/vocabulary.txt", encoding="utf-8").read().split("\n")[:-1]
 *   eot = lines.index("<|endoftext|>")
 *   ranks = {bytes(byte_of[ch] for ch in t): i for i, t in enumerate(lines[:eot])}
 *   enc = tiktoken.Encoding(name="gpt2", pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
 *                           mergeable_ranks=ranks, special_tokens={})
 *   enc.encode_ordinary(text)                         # → encode_cases
 *   b"".join(enc.decode_single_token_bytes(i) for i in ids).decode("utf-8", errors="replace")
 *                                                     # → decode_cases
 *   raw.decode("utf-8", errors="replace")             # → repair_cases
 *
 * Needs the tiny.en model directory: $ASR_TEST_MODEL, else
 * ~/.cache/asr/models/tiny.en. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *text;
    int ids[64];
    int n;
} encode_cases[] = {
    {"Hello world",
     {15496, 995}, 2},
    {" And so my fellow Americans, ask not what your country can do for you.",
     {843, 523, 616, 5891, 3399, 11, 1265, 407, 644, 534, 1499, 460, 466, 329, 345, 13}, 16},
    {"I'm here, you're there; we'll see what they've done & it's 42.",
     {40, 1101, 994, 11, 345, 821, 612, 26, 356, 1183, 766, 644, 484, 1053, 1760, 1222, 340, 338, 5433, 13}, 20},
    {"Gr\xc3\xbc\xc3\x9f""e aus M\xc3\xbcnchen: \xc3\x9c""ber \xc3\x96l, \xc3\x84pfel und Stra\xc3\x9f""e.",
     {8642, 9116, 39683, 68, 257, 385, 40790, 77, 6607, 25, 49363, 527, 43307, 75, 11, 6184, 226, 79, 69, 417, 3318, 15195, 39683, 68, 13}, 25},
    {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82\xe6\x88\x91\xe4\xbb\xac\xe4\xbb\x8a\xe5\xa4\xa9\xe8\xae\xa8\xe8\xae\xba\xe8\xaf\xad\xe9\x9f\xb3\xe8\xaf\x86\xe5\x88\xab\xe3\x80\x82",
     {19526, 254, 25001, 121, 171, 120, 234, 10310, 244, 45911, 234, 16764, 22755, 239, 20015, 105, 20015, 232, 25465, 164, 106, 101, 164, 106, 118, 46237, 255, 165, 253, 111, 46237, 228, 26344, 104, 16764}, 35},
    {"Emoji: \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd\xf0\x9f\x8e\x89 and \xe2\x9d\xa4\xef\xb8\x8f!",
     {36, 5908, 7285, 25, 30325, 222, 41840, 235, 8582, 237, 121, 8582, 236, 231, 290, 43074, 97, 37929, 0}, 19},
    {"Numbers 1234567 and 3.14159, 1/2, \xc2\xbd \xc2\xb2",
     {49601, 17031, 2231, 3134, 290, 513, 13, 1415, 19707, 11, 352, 14, 17, 11, 25208, 1587, 110}, 17},
    {"   leading spaces\x09""and\x09tabs\x0a\x0anew lines  ",
     {220, 220, 3756, 9029, 197, 392, 197, 8658, 82, 198, 198, 3605, 3951, 220, 220}, 15},
    {"?!... \"quoted\" (parens) [brackets] {braces} -- dashes",
     {12248, 986, 366, 421, 5191, 1, 357, 11730, 82, 8, 685, 1671, 25180, 60, 1391, 1671, 2114, 92, 1377, 288, 7465}, 21},
    {"\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac, \xd1\x80\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb9, \xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80, \xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9",
     {138, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105, 11, 220, 21169, 35072, 21727, 21727, 31583, 18849, 140, 117, 11, 28225, 117, 11976, 123, 11976, 101, 24231, 235, 11976, 99, 24231, 222, 11, 28981, 44690, 26897, 39848, 22654, 45632}, 41},
    {"e\xcc\x81 cafe\xcc\x81 na\xc3\xafve",
     {68, 136, 223, 26725, 136, 223, 41492}, 7},
    {"\xc2\xa0nbsp\xe3\x80\x80ideographic",
     {1849, 77, 24145, 5099, 222, 485, 6826}, 7},
    {"'s 'S 'll 'LL don't DON'T",
     {338, 705, 50, 705, 297, 705, 3069, 836, 470, 23917, 6, 51}, 12},
};

static const struct {
    int ids[8];
    int n;
    const char *text;
} decode_cases[] = {
    {{19526, 254, 25001, 121}, 4, "\xe4\xbd\xa0\xe5\xa5\xbd"},
    {{19526}, 1, "\xef\xbf\xbd"},
    {{19526, 254, 25001}, 3, "\xe4\xbd\xa0\xef\xbf\xbd"},
    {{254, 25001, 121}, 3, "\xef\xbf\xbd\xe5\xa5\xbd"},
    {{30325, 222}, 2, " \xf0\x9f\x98\x80"},
    {{30325}, 1, " \xef\xbf\xbd"},
    {{8582, 237, 121}, 3, "\xf0\x9f\x8f\xbd"},
    {{43074, 97, 37929, 0}, 4, " \xe2\x9d\xa4\xef\xb8\x8f!"},
};

static const struct {
    const char *raw;
    size_t n;
    const char *text;
} repair_cases[] = {
    {"\xe0\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xe4\xb8", 2, "\xef\xbf\xbd"},
    {"\xe4\xb8""a", 3, "\xef\xbf\xbd""a"},
    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xff\xfe", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
    {"a\xf0\x9f\x98", 4, "a\xef\xbf\xbd"},
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
    {"\x80\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xc2", 1, "\xef\xbf\xbd"},
    {"\xf5\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xef\xbf\xbd", 3, "\xef\xbf\xbd"},
    {"\xe0\xa0\x80", 3, "\xe0\xa0\x80"},
    {"\xf0\x90\x80\x80", 4, "\xf0\x90\x80\x80"},
    {"\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"},
    {"\xed\x9f\xbf", 3, "\xed\x9f\xbf"},
    {"\xf0\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xe1\x80\xc0", 3, "\xef\xbf\xbd\xef\xbf\xbd"},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int same_ids(const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void test_encode(const asr_tokenizer *tok)
{
    for (int c = 0; c < COUNT(encode_cases); c++) {
        int ids[128];
        int n = asr_tokenizer_encode(tok, encode_cases[c].text, ids, 128);
        CHECK(n == encode_cases[c].n && same_ids(ids, encode_cases[c].ids, n),
              "encode case %d (%d ids, want %d)", c, n, encode_cases[c].n);
        CHECK(asr_tokenizer_encode(tok, encode_cases[c].text, NULL, 0) == encode_cases[c].n,
              "encode case %d counts without a buffer", c);
        /* Round trip: decoding the ids gives the text back. */
        char *back = asr_tokenizer_decode(tok, ids, n, asr_tokenizer_size(tok));
        CHECK(back && strcmp(back, encode_cases[c].text) == 0, "encode case %d round-trips", c);
        free(back);
    }
    int ids[4];
    int n = asr_tokenizer_encode(tok, encode_cases[1].text, ids, 4);
    CHECK(n == 4 && same_ids(ids, encode_cases[1].ids, 4), "encode stops at cap and keeps the first ids");
    CHECK(asr_tokenizer_encode(tok, "", ids, 4) == 0, "empty text encodes to nothing");
    CHECK(asr_tokenizer_encode(tok, NULL, ids, 4) == -1, "NULL text is an error");
    CHECK(asr_tokenizer_encode(NULL, "a", ids, 4) == -1, "NULL tokenizer is an error");
    /* Special-token text is ordinary text to encode (tiktoken's encode_ordinary). */
    n = asr_tokenizer_encode(tok, "<|endoftext|>", NULL, 0);
    CHECK(n > 1, "<|endoftext|> as text is split into ordinary tokens (%d)", n);
    /* Invalid UTF-8 still encodes, byte by byte. */
    n = asr_tokenizer_encode(tok, "a\xff\xfe", ids, 4);
    CHECK(n >= 2, "invalid UTF-8 encodes (%d ids)", n);
    char *back = asr_tokenizer_decode(tok, ids, n, asr_tokenizer_size(tok));
    CHECK(back && strcmp(back, "a\xef\xbf\xbd\xef\xbf\xbd") == 0, "and decodes with replacement characters");
    free(back);
}

/* A long hostile piece must not take quadratic time. */
static void test_long_piece(const asr_tokenizer *tok)
{
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = "ab"[i & 1];
    text[n] = '\0';
    int count = asr_tokenizer_encode(tok, text, NULL, 0);
    int *ids = malloc((size_t)count * sizeof *ids);
    int again = asr_tokenizer_encode(tok, text, ids, count);
    char *back = asr_tokenizer_decode(tok, ids, again, asr_tokenizer_size(tok));
    CHECK(count > 0 && again == count && back && strcmp(back, text) == 0,
          "a 1 MiB single-word text encodes to %d ids and round-trips", count);
    free(back);
    free(ids);
    free(text);
}

/* Any bytes at all encode, and decode back to their UTF-8-repaired form
 * (byte-level BPE loses nothing but invalid sequences). */
static void test_random_bytes_round_trip(const asr_tokenizer *tok)
{
    uint32_t state = 12345;
    int failures = 0;
    for (int it = 0; it < 2000; it++) {
        char text[96];
        state = state * 1664525u + 1013904223u;
        int n = (int)(state >> 24) % 95;
        for (int i = 0; i < n; i++) {
            state = state * 1664525u + 1013904223u;
            int c = (int)(state >> 24);
            text[i] = (char)(c ? c : ' ');
        }
        text[n] = '\0';
        int ids[200];
        int count = asr_tokenizer_encode(tok, text, ids, 200);
        char *back = count >= 0 ? asr_tokenizer_decode(tok, ids, count, asr_tokenizer_size(tok)) : NULL;
        char *want = asr_utf8_repair(text, (size_t)n, NULL);
        failures += !back || !want || strcmp(back, want) != 0;
        free(back);
        free(want);
    }
    CHECK(failures == 0, "2000 random byte strings round-trip (%d failed)", failures);
}

static void test_decode(const asr_tokenizer *tok)
{
    for (int c = 0; c < COUNT(decode_cases); c++) {
        char *text = asr_tokenizer_decode(tok, decode_cases[c].ids, decode_cases[c].n, 50256);
        CHECK(text && strcmp(text, decode_cases[c].text) == 0, "decode case %d", c);
        free(text);
    }
    /* Special and timestamp ids are skipped from skip_from on; ids outside
     * the vocabulary are skipped too. */
    int with_specials[] = {50257, 50258, 50358, 50362, 15496, -5, 995, 999999, 50256};
    char *text = asr_tokenizer_decode(tok, with_specials, 9, 50256);
    CHECK(text && strcmp(text, "Hello world") == 0, "specials and bad ids are skipped: \"%s\"", text ? text : "(null)");
    free(text);
    int with_timestamps[] = {50363, 15496, 995, 50403};
    text = asr_tokenizer_decode(tok, with_timestamps, 4, 50363);
    CHECK(text && strcmp(text, "Hello world") == 0, "timestamps are skipped from timestamp_begin");
    free(text);
    text = asr_tokenizer_decode(tok, with_timestamps, 4, 51864);
    CHECK(text && strcmp(text, "<|0.00|>Hello world<|0.80|>") == 0, "with skip_from past the vocabulary, specials decode as text");
    free(text);
    text = asr_tokenizer_decode(tok, NULL, 0, 50256);
    CHECK(text && text[0] == '\0', "no ids decode to an empty string");
    free(text);
    /* Token 0 of GPT-2 is "!"; the NUL byte is id 188 (U+0100 in GPT-2 form). */
    int with_nul[] = {15496, 188, 995};
    text = asr_tokenizer_decode(tok, with_nul, 3, 50256);
    CHECK(text && strcmp(text, "Hello world") == 0, "a NUL byte is dropped, not truncating the text");
    free(text);
}

static void test_repair(void)
{
    for (int c = 0; c < COUNT(repair_cases); c++) {
        size_t len = 0;
        char *text = asr_utf8_repair(repair_cases[c].raw, repair_cases[c].n, &len);
        CHECK(text && strcmp(text, repair_cases[c].text) == 0 && len == strlen(repair_cases[c].text),
              "utf8 repair case %d", c);
        free(text);
    }
}

static void test_lookups(const asr_tokenizer *tok)
{
    CHECK(asr_tokenizer_size(tok) == 51864, "tiny.en has 51864 tokens (%d)", asr_tokenizer_size(tok));
    CHECK(asr_tokenizer_find(tok, "<|endoftext|>") == 50256, "eot");
    CHECK(asr_tokenizer_find(tok, "<|startoftranscript|>") == 50257, "sot");
    CHECK(asr_tokenizer_find(tok, "<|en|>") == 50258, "<|en|>");
    CHECK(asr_tokenizer_find(tok, "<|su|>") == 50356, "<|su|>, the 99th language");
    CHECK(asr_tokenizer_find(tok, "<|translate|>") == 50357, "translate");
    CHECK(asr_tokenizer_find(tok, "<|transcribe|>") == 50358, "transcribe");
    CHECK(asr_tokenizer_find(tok, "<|startofprev|>") == 50360, "startofprev");
    CHECK(asr_tokenizer_find(tok, "<|nocaptions|>") == 50361, "nocaptions");
    CHECK(asr_tokenizer_find(tok, "<|nospeech|>") == 50361, "nospeech finds the older name");
    CHECK(asr_tokenizer_find(tok, "<|iw|>") == 50278 && asr_tokenizer_find(tok, "<|he|>") == 50278,
          "Hebrew is <|iw|> in this vocabulary; <|he|> finds it");
    CHECK(asr_tokenizer_find(tok, "<|notimestamps|>") == 50362, "notimestamps");
    CHECK(asr_tokenizer_find(tok, "<|0.00|>") == 50363, "first timestamp");
    CHECK(asr_tokenizer_find(tok, "<|30.00|>") == 51863, "last timestamp");
    CHECK(asr_tokenizer_find(tok, "<|yue|>") == -1, "no <|yue|> in an English-only vocabulary");
    CHECK(asr_tokenizer_find(tok, " the") == 262, "ordinary tokens are found by their raw bytes");
    CHECK(asr_tokenizer_find(tok, "Hello") == 15496, "Hello");
    CHECK(asr_tokenizer_find(tok, NULL) == -1, "NULL text");
    size_t len = 99;
    const char *b = asr_tokenizer_bytes(tok, 262, &len);
    CHECK(b && len == 4 && memcmp(b, " the", 4) == 0, "bytes of id 262 are \" the\"");
    b = asr_tokenizer_bytes(tok, 198, &len);
    CHECK(b && len == 1 && b[0] == '\n', "id 198 is a newline byte");
    b = asr_tokenizer_bytes(tok, 50258, &len);
    CHECK(b && len == 6 && memcmp(b, "<|en|>", 6) == 0, "special tokens keep their text");
    CHECK(asr_tokenizer_bytes(tok, -1, &len) == NULL && len == 0, "id -1 has no bytes");
    CHECK(asr_tokenizer_bytes(tok, 51864, &len) == NULL, "id past the end has no bytes");
}

/* Byte strings with ranks chosen so that the lowest id merges first. */
static void test_from_bytes(void)
{
    const char *tokens[260];
    size_t lens[260];
    char single[256];
    for (int i = 0; i < 256; i++) {
        single[i] = (char)i;
        tokens[i] = &single[i];
        lens[i] = 1;
    }
    tokens[256] = "bc", lens[256] = 2;
    tokens[257] = "ab", lens[257] = 2;
    tokens[258] = "cd", lens[258] = 2;
    tokens[259] = "<|endoftext|>", lens[259] = 13;
    asr_error err;
    asr_tokenizer *tok = NULL;
    CHECK(asr_tokenizer_from_bytes(tokens, lens, 260, &tok, &err) == ASR_OK, "from_bytes");
    if (!tok) return;
    int ids[8];
    int n = asr_tokenizer_encode(tok, "abcd", ids, 8);
    /* bc (256) merges before ab (257) and cd (258): a bc d, not ab cd. */
    CHECK(n == 3 && ids[0] == 'a' && ids[1] == 256 && ids[2] == 'd', "lowest rank merges first (%d ids)", n);
    n = asr_tokenizer_encode(tok, "<|endoftext|>", ids, 8);
    CHECK(n > 1, "a special token's text is not a merge rank");
    CHECK(asr_tokenizer_find(tok, "<|endoftext|>") == 259, "find special");
    asr_tokenizer_free(tok);

    /* Without every single byte, encoding some text is impossible. */
    tokens[0] = "a", lens[0] = 1;
    CHECK(asr_tokenizer_from_bytes(tokens + 1, lens + 1, 1, &tok, &err) == ASR_OK, "one-token table");
    CHECK(asr_tokenizer_encode(tok, "z", ids, 8) == -1, "a byte with no token is an error");
    asr_tokenizer_free(tok);
    CHECK(asr_tokenizer_from_bytes(tokens, lens, 0, &tok, &err) == ASR_ERR_INVALID_ARGUMENT && tok == NULL,
          "zero tokens rejected: %s", err.message);
}

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(data, f);
    return fclose(f);
}

/* Malformed vocabularies fail with ASR_ERR_MODEL and a message, not a crash. */
static void test_bad_dirs(const char *model_dir)
{
    asr_error err;
    asr_tokenizer *tok = (asr_tokenizer *)&err; /* must be reset to NULL */
    CHECK(asr_tokenizer_load_dir("/nonexistent-asr-dir", &tok, &err) == ASR_ERR_MODEL && tok == NULL,
          "missing dir: %s", err.message);
    char dir[] = "/tmp/asr-test-tok-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char path[256], json_path[256], link_path[256];
    snprintf(path, sizeof path, "%s/vocabulary.txt", dir);
    snprintf(json_path, sizeof json_path, "%s/vocabulary.json", dir);
    snprintf(link_path, sizeof link_path, "%s/tokenizer.json", dir);
    static const struct { const char *data; const char *why; } bad[] = {
        {"", "empty file"},
        {"a\n\nb\n", "empty line"},
        {"a b\n", "a raw space is not in GPT-2's byte alphabet"},
        {"\xff\n", "invalid UTF-8"},
        {"a\n\xe4\xbd\xa0\n", "a code point past U+0143"},
    };
    for (int i = 0; i < COUNT(bad); i++) {
        write_file(path, bad[i].data);
        CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_ERR_MODEL && tok == NULL,
              "%s: %s", bad[i].why, err.message);
    }
    write_file(path, "a\nb\r\n\xc4\xa0\xc4\x8a\n<|endoftext|>\n<|a b|>");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_OK, "small vocabulary.txt with CRLF and no final newline");
    if (tok) {
        size_t len;
        const char *b = asr_tokenizer_bytes(tok, 2, &len);
        CHECK(asr_tokenizer_size(tok) == 5 && b && len == 2 && memcmp(b, " \n", 2) == 0, "GPT-2 form mapped to raw bytes");
        CHECK(asr_tokenizer_find(tok, "<|a b|>") == 4 && asr_tokenizer_find(tok, "b") == 1, "find");
        asr_tokenizer_free(tok);
    }
    unlink(path);

    write_file(json_path, "[\"a\", \"\\u0120the\", \"<|endoftext|>\"]");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_OK, "vocabulary.json fallback: %s", err.message);
    if (tok) {
        CHECK(asr_tokenizer_size(tok) == 3 && asr_tokenizer_find(tok, " the") == 1, "vocabulary.json content");
        asr_tokenizer_free(tok);
    }
    write_file(json_path, "[\"a\", 5]");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_ERR_MODEL && tok == NULL, "non-string entry: %s", err.message);
    write_file(json_path, "{\"a\": 1");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_ERR_MODEL && tok == NULL, "broken JSON: %s", err.message);
    unlink(json_path);

    write_file(link_path, "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 2}}}");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_ERR_MODEL && tok == NULL, "ids with a gap: %s", err.message);
    write_file(link_path, "{\"model\": {\"vocab\": {\"a\": 0, \"b\": -1}}}");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_ERR_MODEL && tok == NULL, "negative id: %s", err.message);
    unlink(link_path);

    /* The real tokenizer.json encodes like vocabulary.txt. */
    char real[4200];
    snprintf(real, sizeof real, "%s/tokenizer.json", model_dir);
    CHECK(symlink(real, link_path) == 0, "link tokenizer.json");
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_OK, "tokenizer.json fallback: %s", err.message);
    if (tok) {
        CHECK(asr_tokenizer_size(tok) == 50363, "tokenizer.json has 50363 tokens (%d)", asr_tokenizer_size(tok));
        CHECK(asr_tokenizer_find(tok, "<|notimestamps|>") == 50362, "its specials");
        for (int c = 0; c < COUNT(encode_cases); c++) {
            int ids[128];
            int n = asr_tokenizer_encode(tok, encode_cases[c].text, ids, 128);
            CHECK(n == encode_cases[c].n && same_ids(ids, encode_cases[c].ids, n), "tokenizer.json encode case %d", c);
        }
        asr_tokenizer_free(tok);
    }
    unlink(link_path);
    rmdir(dir);
}

int main(void)
{
    char model_dir[4096];
    const char *env = getenv("ASR_TEST_MODEL");
    if (env && *env)
        snprintf(model_dir, sizeof model_dir, "%s", env);
    else
        snprintf(model_dir, sizeof model_dir, "%s/.cache/asr/models/tiny.en", getenv("HOME") ? getenv("HOME") : "");

    test_repair();
    test_from_bytes();

    asr_error err;
    asr_tokenizer *tok = NULL;
    asr_status st = asr_tokenizer_load_dir(model_dir, &tok, &err);
    CHECK(st == ASR_OK, "load %s: %s", model_dir, st == ASR_OK ? "ok" : err.message);
    if (tok) {
        test_lookups(tok);
        test_encode(tok);
        test_decode(tok);
        test_long_piece(tok);
        test_random_bytes_round_trip(tok);
        asr_tokenizer_free(tok);
    }
    test_bad_dirs(model_dir);
    return CHECK_DONE();
}
