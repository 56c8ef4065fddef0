/* fuzz_tokenizer.c — libFuzzer harness for the BPE tokenizer: encode, decode and UTF-8 repair.
 *
 * Vocabulary: the model directory in $ASR_FUZZ_VOCAB_DIR (or $ASR_TEST_MODEL),
 * tiny.en's in CI; without one, a synthetic byte-level vocabulary (the 256
 * bytes and a few hundred merges). The first input byte picks the mode:
 *   'E' encode the rest as text: encode must succeed, every id must be a
 *       token, and decoding the ids must give the text back byte for byte when
 *       it is valid UTF-8 (BPE loses nothing);
 *   'D' decode the rest as little-endian int32 ids (any value): the result is
 *       valid UTF-8 without NUL bytes;
 *   else asr_utf8_repair on the rest: valid UTF-8, no NUL, and the input
 *       itself when it was valid without NULs; asr_utf8_valid agrees with
 *       this harness's own check (fuzz_utf8.h).
 * Built by `make fuzz`; run by tests/integration/fuzz_smoke.sh.
 */
#include "internal.h"
#include "asr.h"
#include "fuzz_utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static asr_tokenizer *tok; /* built once, read-only afterwards */

static asr_tokenizer *synthetic_vocabulary(void)
{
    static const char *const words[] = {"th", "he", "the", " t", " the", "in", "an", "er", " a", "on",
                                        "re", " s", "at", "en", "nd", " and", "ou", "ing", " w", "is",
                                        "\xc3\xa4", "\xe6\x97\xa5", "\xe6\x97\xa5\xe6\x9c\xac", "  ", "\n\n", "<|endoftext|>"};
    enum { N_WORDS = sizeof words / sizeof words[0] };
    const char *tokens[256 + N_WORDS];
    size_t lens[256 + N_WORDS];
    static char bytes[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        tokens[i] = &bytes[i];
        lens[i] = 1;
    }
    for (int i = 0; i < N_WORDS; i++) {
        tokens[256 + i] = words[i];
        lens[256 + i] = strlen(words[i]);
    }
    asr_tokenizer *t = NULL;
    asr_error err;
    if (asr_tokenizer_from_bytes(tokens, lens, 256 + N_WORDS, &t, &err) != ASR_OK) {
        fprintf(stderr, "fuzz_tokenizer: synthetic vocabulary: %s\n", err.message);
        abort();
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("ASR_FUZZ_VOCAB_DIR");
    if (!dir || !*dir) dir = getenv("ASR_TEST_MODEL");
    asr_error err;
    if (dir && *dir && asr_tokenizer_load_dir(dir, &tok, &err) == ASR_OK) {
        fprintf(stderr, "fuzz_tokenizer: vocabulary of %s (%d tokens)\n", dir, asr_tokenizer_size(tok));
    } else {
        tok = synthetic_vocabulary();
        fprintf(stderr, "fuzz_tokenizer: synthetic vocabulary (%d tokens)\n", asr_tokenizer_size(tok));
    }
    return 0;
}

static void check_decoded(const char *out)
{
    if (!out) abort();
    if (!fuzz_utf8_valid((const unsigned char *)out, strlen(out))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    data++, size--;
    if (mode == 'E') {
        char *text = malloc(size + 1);
        if (!text) return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        size_t len = strlen(text);
        int n = asr_tokenizer_encode(tok, text, NULL, 0);
        if (n < 0 || (len > 0 && n == 0) || (size_t)n > len) abort(); /* at most one token per byte */
        int *ids = malloc(((size_t)n + 1) * sizeof *ids);
        if (!ids) { free(text); return 0; }
        int got = asr_tokenizer_encode(tok, text, ids, n);
        if (got != n) abort();
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            size_t tl = 0;
            if (!asr_tokenizer_bytes(tok, ids[i], &tl) || tl == 0) abort();
            total += tl;
        }
        if (total != len) abort(); /* the tokens' bytes add up to the text */
        char *back = asr_tokenizer_decode(tok, ids, n, asr_tokenizer_size(tok) + 1);
        check_decoded(back);
        if (fuzz_utf8_valid((const unsigned char *)text, len) && strcmp(back, text) != 0) abort();
        free(back);
        free(ids);
        free(text);
    } else if (mode == 'D') {
        int n = (int)(size / 4);
        int *ids = malloc(((size_t)n + 1) * sizeof *ids);
        if (!ids) return 0;
        for (int i = 0; i < n; i++)
            ids[i] = (int)((uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 | (uint32_t)data[4 * i + 2] << 16 |
                           (uint32_t)data[4 * i + 3] << 24);
        int skip_from = n > 0 ? ids[0] : asr_tokenizer_size(tok);
        char *out = asr_tokenizer_decode(tok, ids, n, skip_from);
        check_decoded(out);
        free(out);
        free(ids);
    } else {
        size_t out_len = 0;
        char *out = asr_utf8_repair((const char *)data, size, &out_len);
        if (!out) abort();
        if (out_len != strlen(out) || !fuzz_utf8_valid((const unsigned char *)out, out_len)) abort();
        if (!memchr(data, 0, size) && fuzz_utf8_valid(data, size) && (out_len != size || memcmp(out, data, size)))
            abort();
        if (asr_utf8_valid((const char *)data, size) != fuzz_utf8_valid(data, size)) abort(); /* two validators agree */
        free(out);
    }
    return 0;
}
