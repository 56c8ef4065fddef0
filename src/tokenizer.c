/* tokenizer.c — Whisper's byte-level BPE: vocabulary loading, decode, encode. */
#include "internal.h"
#include "tokenizer_unicode.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what a model directory may ask of us (hostile input). */
#define MAX_VOCAB_FILE_BYTES (64u << 20)
#define MAX_TOKENS (1 << 21)

struct asr_tokenizer {
    int n_tokens;
    char *bytes;       /* raw bytes of every token, back to back                  */
    size_t *offsets;   /* (n_tokens + 1): token id's bytes are [offsets[id], offsets[id+1]) */
    int n_mergeable;   /* ids below this are BPE ranks (the <|endoftext|> id, or n_tokens) */
    int32_t *slots;    /* open-addressing hash of token bytes → lowest id, -1 = empty */
    uint32_t slot_mask; /* slot count - 1 (a power of two)                        */
};

/* ---- UTF-8 ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid;
 * *cp gets the code point. Follows the Unicode table of well-formed byte
 * sequences (no overlongs, surrogates or values past U+10FFFF). On failure,
 * *valid_prefix is how many bytes form a valid but truncated start
 * ("maximal subpart"), which Python replaces with a single U+FFFD. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, size_t *valid_prefix)
{
    unsigned char b0 = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    *valid_prefix = 1;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        *cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        *cp = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        *cp = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lo_i || s[i] > hi_i) {
            *valid_prefix = i;
            return 0;
        }
        *cp = (*cp << 6) | (s[i] & 0x3Fu);
    }
    return need;
}

char *asr_utf8_repair(const char *s, size_t n, size_t *out_len)
{
    /* Each invalid byte becomes at most 3 bytes (EF BF BD). */
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t prefix;
        size_t len = utf8_decode(u + i, n - i, &cp, &prefix);
        if (len > 0) {
            if (cp != 0) { /* a NUL byte would end the C string early: drop it */
                memcpy(out + o, u + i, len);
                o += len;
            }
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += prefix;
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

/* ---- hash table of token bytes ---------------------------------------------- */

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Lowest id whose bytes equal p[0..n), or -1. */
static int lookup(const asr_tokenizer *tok, const char *p, size_t n)
{
    for (uint32_t i = hash_bytes(p, n) & tok->slot_mask;; i = (i + 1) & tok->slot_mask) {
        int32_t id = tok->slots[i];
        if (id < 0) return -1;
        size_t len = tok->offsets[id + 1] - tok->offsets[id];
        if (len == n && memcmp(tok->bytes + tok->offsets[id], p, n) == 0) return id;
    }
}

/* Index all tokens; ids are inserted in ascending order so a duplicate byte
 * string keeps its lowest id. Also sets n_mergeable. */
static asr_status build_index(asr_tokenizer *tok, asr_error *err)
{
    uint32_t n_slots = 1024;
    while (n_slots < 2u * (uint32_t)tok->n_tokens) n_slots *= 2;
    tok->slots = malloc(n_slots * sizeof *tok->slots);
    if (!tok->slots) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory indexing the vocabulary");
    memset(tok->slots, 0xFF, n_slots * sizeof *tok->slots);
    tok->slot_mask = n_slots - 1;
    for (int id = 0; id < tok->n_tokens; id++) {
        const char *p = tok->bytes + tok->offsets[id];
        size_t n = tok->offsets[id + 1] - tok->offsets[id];
        uint32_t i = hash_bytes(p, n) & tok->slot_mask;
        for (;; i = (i + 1) & tok->slot_mask) {
            int32_t other = tok->slots[i];
            if (other < 0) {
                tok->slots[i] = id;
                break;
            }
            size_t len = tok->offsets[other + 1] - tok->offsets[other];
            if (len == n && memcmp(tok->bytes + tok->offsets[other], p, n) == 0) break;
        }
    }
    int eot = lookup(tok, "<|endoftext|>", 13);
    tok->n_mergeable = eot >= 0 ? eot : tok->n_tokens;
    return ASR_OK;
}

void asr_tokenizer_free(asr_tokenizer *tok)
{
    if (!tok) return;
    free(tok->bytes);
    free(tok->offsets);
    free(tok->slots);
    free(tok);
}

/* A tokenizer being filled token by token. */
typedef struct builder {
    asr_tokenizer *tok;
    size_t cap_bytes;
    int cap_tokens;
} builder;

static asr_status builder_init(builder *b, int expect_tokens, size_t expect_bytes, asr_error *err)
{
    b->tok = calloc(1, sizeof *b->tok);
    b->cap_tokens = expect_tokens > 16 ? expect_tokens : 16;
    b->cap_bytes = expect_bytes > 64 ? expect_bytes : 64;
    if (b->tok) {
        b->tok->offsets = malloc(((size_t)b->cap_tokens + 1) * sizeof *b->tok->offsets);
        b->tok->bytes = malloc(b->cap_bytes);
    }
    if (!b->tok || !b->tok->offsets || !b->tok->bytes) {
        asr_tokenizer_free(b->tok);
        b->tok = NULL;
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading the vocabulary");
    }
    b->tok->offsets[0] = 0;
    return ASR_OK;
}

static asr_status builder_add(builder *b, const char *p, size_t n, asr_error *err)
{
    asr_tokenizer *tok = b->tok;
    if (tok->n_tokens >= MAX_TOKENS)
        return asr_fail(err, ASR_ERR_MODEL, "vocabulary has more than %d tokens", MAX_TOKENS);
    if (tok->n_tokens == b->cap_tokens) {
        size_t *o = realloc(tok->offsets, ((size_t)b->cap_tokens * 2 + 1) * sizeof *o);
        if (!o) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading the vocabulary");
        tok->offsets = o;
        b->cap_tokens *= 2;
    }
    size_t used = tok->offsets[tok->n_tokens];
    if (n > b->cap_bytes - used) {
        size_t cap = b->cap_bytes;
        while (n > cap - used) cap *= 2;
        char *q = realloc(tok->bytes, cap);
        if (!q) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading the vocabulary");
        tok->bytes = q;
        b->cap_bytes = cap;
    }
    if (n) memcpy(tok->bytes + used, p, n);
    tok->n_tokens++;
    tok->offsets[tok->n_tokens] = used + n;
    return ASR_OK;
}

static asr_status builder_finish(builder *b, const char *where, asr_tokenizer **out, asr_error *err)
{
    if (b->tok->n_tokens == 0) {
        asr_tokenizer_free(b->tok);
        return asr_fail(err, ASR_ERR_MODEL, "%s: vocabulary is empty", where);
    }
    asr_status st = build_index(b->tok, err);
    if (st != ASR_OK) {
        asr_tokenizer_free(b->tok);
        return st;
    }
    *out = b->tok;
    return ASR_OK;
}

asr_status asr_tokenizer_from_bytes(const char *const *tokens, const size_t *lens, int n,
                                    asr_tokenizer **out, asr_error *err)
{
    asr_error_clear(err);
    if (!out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: out is NULL");
    *out = NULL;
    if (!tokens || !lens || n <= 0 || n > MAX_TOKENS)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: need 1..%d tokens, got %d", MAX_TOKENS, n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!tokens[i] && lens[i]) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: token %d is NULL", i);
        if (lens[i] > MAX_VOCAB_FILE_BYTES || total > MAX_VOCAB_FILE_BYTES)
            return asr_fail(err, ASR_ERR_MODEL, "tokenizer: vocabulary bytes exceed %u", MAX_VOCAB_FILE_BYTES);
        total += lens[i];
    }
    builder b;
    asr_status st = builder_init(&b, n, total, err);
    if (st != ASR_OK) return st;
    for (int i = 0; i < n && st == ASR_OK; i++) st = builder_add(&b, tokens[i], lens[i], err);
    if (st != ASR_OK) {
        asr_tokenizer_free(b.tok);
        return st;
    }
    return builder_finish(&b, "tokenizer", out, err);
}

/* ---- GPT-2 byte ↔ unicode ----------------------------------------------------- */

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map, in byte order, to U+0100, U+0101, ... Fills
 * byte_of[cp] (cp < 324) with the byte a code point stands for, or -1. */
static void gpt2_unicode_to_bytes(int16_t byte_of[324])
{
    for (int cp = 0; cp < 324; cp++) byte_of[cp] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_of[printable ? b : 256 + extra++] = (int16_t)b;
    }
}

/* Add one vocabulary entry given in GPT-2 form. Special tokens ("<|...|>"
 * from the <|endoftext|> id on) keep their text as bytes. */
static asr_status add_gpt2_token(builder *b, const int16_t byte_of[324], int *eot_id,
                                 const char *text, size_t n, const char *where, asr_error *err)
{
    int id = b->tok->n_tokens;
    if (*eot_id < 0 && n == 13 && memcmp(text, "<|endoftext|>", 13) == 0) *eot_id = id;
    if (*eot_id >= 0 && n >= 4 && memcmp(text, "<|", 2) == 0 && memcmp(text + n - 2, "|>", 2) == 0)
        return builder_add(b, text, n, err);
    if (n == 0) return asr_fail(err, ASR_ERR_MODEL, "%s: token %d is empty", where, id);
    /* A token's raw bytes are never longer than its GPT-2 text. */
    char raw[1024];
    if (n > sizeof raw) return asr_fail(err, ASR_ERR_MODEL, "%s: token %d is too long (%zu bytes)", where, id, n);
    size_t m = 0;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t prefix;
        size_t len = utf8_decode(u + i, n - i, &cp, &prefix);
        if (len == 0)
            return asr_fail(err, ASR_ERR_MODEL, "%s: token %d is not valid UTF-8", where, id);
        if (cp >= 324 || byte_of[cp] < 0)
            return asr_fail(err, ASR_ERR_MODEL,
                            "%s: token %d has U+%04X, which is not in GPT-2's byte alphabet",
                            where, id, (unsigned)cp);
        raw[m++] = (char)byte_of[cp];
        i += len;
    }
    return builder_add(b, raw, m, err);
}

/* Read a whole file of at most MAX_VOCAB_FILE_BYTES; ASR_ERR_IO if absent. */
static asr_status read_file(const char *path, char **data, size_t *size, asr_error *err)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return asr_fail(err, ASR_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    asr_status st = ASR_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_VOCAB_FILE_BYTES) {
                st = asr_fail(err, ASR_ERR_MODEL, "%s: larger than %u bytes", path, MAX_VOCAB_FILE_BYTES);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) { /* not a short file: a truncated vocabulary would read as a corrupt model */
                st = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading %s", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) st = asr_fail(err, ASR_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!buf) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading %s", path);
    if (st != ASR_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *size = n;
    return ASR_OK;
}

static asr_status load_vocabulary_txt(const char *path, asr_tokenizer **out, asr_error *err)
{
    char *data;
    size_t size = 0;
    asr_status st = read_file(path, &data, &size, err);
    if (st != ASR_OK) return st;
    int16_t byte_of[324];
    gpt2_unicode_to_bytes(byte_of);
    builder b;
    st = builder_init(&b, 52000, size, err);
    int eot_id = -1;
    for (size_t pos = 0; st == ASR_OK && pos < size;) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end - pos;
        if (len > 0 && data[pos + len - 1] == '\r') len--; /* tolerate CRLF files */
        st = add_gpt2_token(&b, byte_of, &eot_id, data + pos, len, path, err);
        pos = end + 1;
    }
    free(data);
    if (st != ASR_OK) {
        asr_tokenizer_free(b.tok);
        return st;
    }
    return builder_finish(&b, path, out, err);
}

/* vocabulary.json: a JSON array of token strings in GPT-2 form. */
static asr_status load_vocabulary_json(const char *path, asr_tokenizer **out, asr_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return asr_fail(err, ASR_ERR_MODEL, "%s:%d: %s", path, jerr.line, jerr.text);
    if (!json_is_array(root) || json_array_size(root) == 0 || json_array_size(root) > MAX_TOKENS) {
        json_decref(root);
        return asr_fail(err, ASR_ERR_MODEL, "%s: expected an array of 1..%d token strings", path, MAX_TOKENS);
    }
    int16_t byte_of[324];
    gpt2_unicode_to_bytes(byte_of);
    builder b;
    asr_status st = builder_init(&b, (int)json_array_size(root), 0, err);
    int eot_id = -1;
    for (size_t i = 0; st == ASR_OK && i < json_array_size(root); i++) {
        json_t *s = json_array_get(root, i);
        if (!json_is_string(s))
            st = asr_fail(err, ASR_ERR_MODEL, "%s: entry %zu is not a string", path, i);
        else if (json_string_length(s) == 0 && i + 1 < json_array_size(root))
            /* CTranslate2's multilingual vocabulary.json holds "" at 50256, an
             * id the model never produces; keep it as an empty token. */
            st = builder_add(&b, "", 0, err);
        else
            st = add_gpt2_token(&b, byte_of, &eot_id, json_string_value(s), json_string_length(s), path, err);
    }
    json_decref(root);
    if (st != ASR_OK) {
        asr_tokenizer_free(b.tok);
        return st;
    }
    return builder_finish(&b, path, out, err);
}

/* tokenizer.json (Hugging Face): model.vocab {token: id} plus added_tokens
 * [{id, content}]; ids must cover 0..n-1 exactly once. */
static asr_status load_tokenizer_json(const char *path, asr_tokenizer **out, asr_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return asr_fail(err, ASR_ERR_MODEL, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    json_t *added = json_object_get(root, "added_tokens");
    asr_status st = ASR_OK;
    const char **text = NULL;
    size_t *len = NULL;
    size_t n = json_object_size(vocab) + json_array_size(added);
    if (!json_is_object(vocab) || n == 0 || n > MAX_TOKENS) {
        st = asr_fail(err, ASR_ERR_MODEL, "%s: no model.vocab object with 1..%d tokens", path, MAX_TOKENS);
        goto done;
    }
    text = calloc(n, sizeof *text);
    len = calloc(n, sizeof *len);
    if (!text || !len) {
        st = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory loading %s", path);
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || (size_t)id >= n || text[id]) {
            st = asr_fail(err, ASR_ERR_MODEL, "%s: token \"%.64s\" has a bad or repeated id", path, key);
            goto done;
        }
        text[id] = key;
        len[id] = strlen(key);
    }
    size_t i;
    json_array_foreach(added, i, value) {
        json_t *jid = json_object_get(value, "id"), *content = json_object_get(value, "content");
        json_int_t id = json_is_integer(jid) ? json_integer_value(jid) : -1;
        if (!json_is_string(content) || id < 0 || (size_t)id >= n) {
            st = asr_fail(err, ASR_ERR_MODEL, "%s: added_tokens[%zu] is malformed", path, i);
            goto done;
        }
        if (text[id]) {
            /* An added token may repeat a vocab entry with the same id. */
            if (strcmp(text[id], json_string_value(content)) != 0) {
                st = asr_fail(err, ASR_ERR_MODEL, "%s: id %lld names two tokens", path, (long long)id);
                goto done;
            }
            continue;
        }
        text[id] = json_string_value(content);
        len[id] = json_string_length(content);
    }
    size_t count = 0;
    while (count < n && text[count]) count++;
    for (size_t j = count; j < n; j++) {
        if (text[j]) {
            st = asr_fail(err, ASR_ERR_MODEL, "%s: token ids are not contiguous (no id %zu)", path, count);
            goto done;
        }
    }
    int16_t byte_of[324];
    gpt2_unicode_to_bytes(byte_of);
    builder b;
    st = builder_init(&b, (int)count, 0, err);
    int eot_id = -1;
    for (size_t j = 0; st == ASR_OK && j < count; j++)
        st = add_gpt2_token(&b, byte_of, &eot_id, text[j], len[j], path, err);
    if (st == ASR_OK)
        st = builder_finish(&b, path, out, err);
    else
        asr_tokenizer_free(b.tok);
done:
    free(text);
    free(len);
    json_decref(root);
    return st;
}

asr_status asr_tokenizer_load_dir(const char *dir, asr_tokenizer **out, asr_error *err)
{
    asr_error_clear(err);
    if (!out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: out is NULL");
    *out = NULL;
    if (!dir) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: directory is NULL");
    static const char *const names[] = {"vocabulary.txt", "vocabulary.json", "tokenizer.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "tokenizer: directory path too long");
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fclose(f);
        if (i == 0) return load_vocabulary_txt(path, out, err);
        if (i == 1) return load_vocabulary_json(path, out, err);
        return load_tokenizer_json(path, out, err);
    }
    return asr_fail(err, ASR_ERR_MODEL,
                    "%s: no vocabulary.txt, vocabulary.json or tokenizer.json", dir);
}

/* ---- lookups and decode -------------------------------------------------------- */

int asr_tokenizer_size(const asr_tokenizer *tok)
{
    return tok ? tok->n_tokens : 0;
}

int asr_tokenizer_find(const asr_tokenizer *tok, const char *text)
{
    if (!tok || !text) return -1;
    int id = lookup(tok, text, strlen(text));
    if (id >= 0) return id;
    /* Vocabularies converted from Hugging Face (CTranslate2's) keep two old
     * names where Whisper's tiktoken has new ones: <|nocaptions|> for
     * <|nospeech|> and <|iw|> for Hebrew's <|he|>. Either name finds
     * whichever one the vocabulary has. */
    static const char *const renamed[][2] = {{"<|nospeech|>", "<|nocaptions|>"}, {"<|he|>", "<|iw|>"}};
    for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++) {
        if (strcmp(text, renamed[i][0]) == 0) return lookup(tok, renamed[i][1], strlen(renamed[i][1]));
        if (strcmp(text, renamed[i][1]) == 0) return lookup(tok, renamed[i][0], strlen(renamed[i][0]));
    }
    return -1;
}

const char *asr_tokenizer_bytes(const asr_tokenizer *tok, int id, size_t *len)
{
    if (!tok || id < 0 || id >= tok->n_tokens) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->offsets[id + 1] - tok->offsets[id];
    return tok->bytes + tok->offsets[id];
}

char *asr_tokenizer_decode(const asr_tokenizer *tok, const int *ids, int n, int skip_from)
{
    if (!tok || (n > 0 && !ids)) return NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < tok->n_tokens && ids[i] < skip_from)
            total += tok->offsets[ids[i] + 1] - tok->offsets[ids[i]];
    /* Decode the concatenation, not token by token: a character's bytes may
     * be split across tokens. */
    char *cat = malloc(total + 1);
    if (!cat) return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= tok->n_tokens || id >= skip_from) continue;
        size_t len = tok->offsets[id + 1] - tok->offsets[id];
        memcpy(cat + o, tok->bytes + tok->offsets[id], len);
        o += len;
    }
    char *text = asr_utf8_repair(cat, o, NULL);
    free(cat);
    return text;
}

/* ---- encode: pre-tokenisation --------------------------------------------------- */

/* Class of a code point in GPT-2's pattern: 'L' letter, 'N' number, 'S' space,
 * 'O' anything else (also bytes that are not valid UTF-8). */
static char char_class(uint32_t cp)
{
    size_t lo = 0, hi = sizeof unicode_ranges / sizeof unicode_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < unicode_ranges[mid].first)
            hi = mid;
        else if (cp > unicode_ranges[mid].last)
            lo = mid + 1;
        else
            return unicode_ranges[mid].cls;
    }
    return 'O';
}

/* Class and byte length of the character at s[pos]; invalid bytes count as
 * one-byte 'O' characters. */
static char class_at(const unsigned char *s, size_t n, size_t pos, size_t *len)
{
    uint32_t cp;
    size_t prefix;
    *len = utf8_decode(s + pos, n - pos, &cp, &prefix);
    if (*len == 0) {
        *len = 1;
        return 'O';
    }
    return char_class(cp);
}

/* End of a run of characters of class cls starting at pos. */
static size_t run_end(const unsigned char *s, size_t n, size_t pos, char cls)
{
    while (pos < n) {
        size_t len;
        if (class_at(s, n, pos, &len) != cls) break;
        pos += len;
    }
    return pos;
}

/* End of the piece that GPT-2's split pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * matches at pos (< n), trying the alternatives in order as a regex would.
 * The classes come from tokenizer_unicode.h, a full Unicode table. */
static size_t next_piece(const unsigned char *s, size_t n, size_t pos)
{
    if (s[pos] == '\'' && pos + 1 < n) {
        unsigned char c = s[pos + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return pos + 2;
        if (pos + 2 < n) {
            unsigned char c2 = s[pos + 2];
            if ((c == 'r' && c2 == 'e') || (c == 'v' && c2 == 'e') || (c == 'l' && c2 == 'l')) return pos + 3;
        }
    }
    size_t after_space = s[pos] == ' ' ? pos + 1 : pos, len;
    if (after_space < n) {
        char cls = class_at(s, n, after_space, &len);
        if (cls == 'L' || cls == 'N' || cls == 'O') return run_end(s, n, after_space, cls);
    }
    /* The character at pos is whitespace (the optional-space alternatives
     * all failed). \s+(?!\S): the whole run if the text ends there, else the
     * run less its last character, which then leads the next piece. */
    size_t last = pos, q = pos, count = 0;
    while (q < n && class_at(s, n, q, &len) == 'S') {
        last = q;
        q += len;
        count++;
    }
    if (q == n || count < 2) return q; /* count < 2: \s+ takes the lone char */
    return last;
}

/* ---- encode: byte-pair merges ---------------------------------------------------- */

/* A candidate merge of the two adjacent parts spanning piece[start, end). */
typedef struct merge { int rank; uint32_t start, end; } merge;

typedef struct bpe_work {
    uint32_t *next;      /* (len+1): start of the part after the part starting here */
    uint32_t *prev;      /* (len+1): start of the part before it                    */
    unsigned char *live; /* (len+1): a part starts here                             */
    merge *heap;         /* binary min-heap on (rank, start)                        */
    size_t cap, heap_cap, heap_n;
} bpe_work;

static int merge_less(const merge *a, const merge *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->start < b->start);
}

static int heap_push(bpe_work *w, merge m)
{
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        merge *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return -1;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0 && merge_less(&m, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = m;
    return 0;
}

static merge heap_pop(bpe_work *w)
{
    merge top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_n) break;
        if (c + 1 < w->heap_n && merge_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!merge_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_n) w->heap[i] = last;
    return top;
}

/* Rank of a byte string as a mergeable token (its id), or -1. */
static int rank_of(const asr_tokenizer *tok, const unsigned char *p, size_t n)
{
    int id = lookup(tok, (const char *)p, n);
    return id < tok->n_mergeable ? id : -1;
}

/* Candidate merge of the part at start with its right neighbour, if any. */
static int push_pair(const asr_tokenizer *tok, bpe_work *w, const unsigned char *piece,
                     size_t len, uint32_t start)
{
    uint32_t mid = w->next[start];
    if (mid >= len) return 0;
    uint32_t end = w->next[mid];
    int rank = rank_of(tok, piece + start, end - start);
    if (rank < 0) return 0;
    return heap_push(w, (merge){rank, start, end});
}

/* Append id to out (when it has room) and count it. */
static void emit(int id, int *ids, int cap, int *count)
{
    if (ids && *count < cap) ids[*count] = id;
    (*count)++;
}

/* tiktoken's byte_pair_merge: repeatedly merge the adjacent pair whose
 * concatenation has the lowest rank (leftmost on ties) until no pair is a
 * token. A heap with lazy invalidation keeps this O(n log n) for long,
 * hostile pieces where tiktoken's rescans would be quadratic. */
static int bpe_piece(const asr_tokenizer *tok, bpe_work *w, const unsigned char *piece,
                     size_t len, int *ids, int cap, int *count)
{
    int whole = rank_of(tok, piece, len);
    if (whole >= 0) {
        emit(whole, ids, cap, count);
        return 0;
    }
    if (len + 1 > w->cap) {
        size_t c = len + 1;
        uint32_t *nx = realloc(w->next, c * sizeof *nx);
        if (nx) w->next = nx;
        uint32_t *pv = realloc(w->prev, c * sizeof *pv);
        if (pv) w->prev = pv;
        unsigned char *lv = realloc(w->live, c);
        if (lv) w->live = lv;
        if (!nx || !pv || !lv) return -1;
        w->cap = c;
    }
    for (uint32_t i = 0; i <= len; i++) {
        w->next[i] = i + 1;
        w->prev[i] = i ? i - 1 : 0;
        w->live[i] = 1;
    }
    w->heap_n = 0;
    for (uint32_t i = 0; i + 1 < len; i++)
        if (push_pair(tok, w, piece, len, i) < 0) return -1;
    while (w->heap_n) {
        merge m = heap_pop(w);
        /* Stale if either part changed since the candidate was made. */
        if (!w->live[m.start] || w->next[m.start] >= len || w->next[w->next[m.start]] != m.end) continue;
        uint32_t mid = w->next[m.start];
        w->live[mid] = 0;
        w->next[m.start] = m.end;
        if (m.end < len) w->prev[m.end] = m.start;
        if (m.start > 0 && push_pair(tok, w, piece, len, w->prev[m.start]) < 0) return -1;
        if (push_pair(tok, w, piece, len, m.start) < 0) return -1;
    }
    for (uint32_t i = 0; i < len; i = w->next[i]) {
        int id = rank_of(tok, piece + i, w->next[i] - i);
        if (id < 0) return -1; /* a byte with no token: not a byte-level vocabulary */
        emit(id, ids, cap, count);
    }
    return 0;
}

int asr_tokenizer_encode(const asr_tokenizer *tok, const char *text, int *ids, int cap)
{
    if (!tok || !text || cap < 0) return -1;
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    if (n >= UINT32_MAX) return -1;
    bpe_work w = {0};
    int count = 0, rc = 0;
    for (size_t pos = 0; pos < n && rc == 0;) {
        size_t end = next_piece(s, n, pos);
        rc = bpe_piece(tok, &w, s + pos, end - pos, ids, cap, &count);
        if (count == INT_MAX) rc = -1;
        pos = end;
    }
    free(w.next);
    free(w.prev);
    free(w.live);
    free(w.heap);
    if (rc < 0) return -1;
    return ids && count > cap ? cap : count;
}
