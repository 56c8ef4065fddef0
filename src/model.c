/* model.c — model loading entry point, special tokens, getters, half-float conversion. */
#include "model.h"

#include "cpu/features.h"
#include "cpu/kernels_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

asr_model_params asr_model_default_params(void)
{
    return (asr_model_params){.n_threads = 0};
}

float asr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float asr_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t asr_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even */
    return (uint16_t)half;
}

static int find_token(const asr_model *m, const char *text)
{
    return asr_tokenizer_find(m->tokenizer, text);
}

/* openai/whisper tokenizer.non_speech_tokens: symbols that are not speech. */
static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static asr_status derive_suppress_tokens(asr_model *m, asr_error *err)
{
    static const char *const symbols[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
        "_", "`", "{", "|", "}", "~", "「", "」", "『", "』", "<<", ">>", "<<<", ">>>", "--",
        "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]", "{{", "}}", "♪♪",
        "♪♪♪", "♩", "♪", "♫", "♬", "♭", "♮", "♯"};
    const int n_sym = (int)(sizeof symbols / sizeof *symbols);
    const int first_misc = n_sym - 7; /* the single musical symbols may span several tokens */
    int cap = 2 * n_sym + 16, n = 0;
    int *out = malloc((size_t)cap * sizeof(int));
    if (!out) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    int ids[16];
    char buf[32];
    for (int i = 0; i < n_sym; i++) {
        for (int spaced = 0; spaced < 2; spaced++) {
            snprintf(buf, sizeof buf, "%s%s", spaced ? " " : "", symbols[i]);
            int k = asr_tokenizer_encode(m->tokenizer, buf, ids, 16);
            if (k < 0) goto no_memory; /* the encoder's work buffers: a silently short list would be wrong */
            if (k == 1 || (k > 1 && i >= first_misc)) out[n++] = ids[0];
        }
    }
    for (int i = 0; i < 2; i++) {
        int k = asr_tokenizer_encode(m->tokenizer, i ? " '" : " -", ids, 16);
        if (k < 0) goto no_memory;
        if (k >= 1) out[n++] = ids[0];
    }
    const asr_special_tokens *t = &m->tok;
    int specials[] = {t->transcribe, t->translate, t->sot, t->sot_prev, t->sot_lm, t->no_speech};
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++)
        if (specials[i] >= 0) out[n++] = specials[i];
    /* a set, as openai builds it: several symbols share a first token */
    qsort(out, (size_t)n, sizeof *out, compare_ints);
    int unique = 0;
    for (int i = 0; i < n; i++)
        if (unique == 0 || out[i] != out[unique - 1]) out[unique++] = out[i];
    n = unique;
    m->suppress_tokens = out;
    m->n_suppress_tokens = n;
    return ASR_OK;
no_memory:
    free(out);
    return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory deriving the suppressed tokens");
}

asr_status asr_model_finish_load(asr_model *m, asr_error *err)
{
    asr_status hs = asr_hparams_check(&m->hp, "model", err);
    if (hs != ASR_OK) return hs;
    asr_special_tokens *t = &m->tok;
    t->eot = find_token(m, "<|endoftext|>");
    t->sot = find_token(m, "<|startoftranscript|>");
    t->sot_prev = find_token(m, "<|startofprev|>");
    t->sot_lm = find_token(m, "<|startoflm|>");
    t->translate = find_token(m, "<|translate|>");
    t->transcribe = find_token(m, "<|transcribe|>");
    t->no_speech = find_token(m, "<|nospeech|>");
    if (t->no_speech < 0) t->no_speech = find_token(m, "<|nocaptions|>");
    t->no_timestamps = find_token(m, "<|notimestamps|>");
    t->timestamp_begin = find_token(m, "<|0.00|>");
    t->first_lang = find_token(m, "<|en|>");
    if (t->eot < 0 || t->sot < 0 || t->sot_prev < 0 || t->translate < 0 || t->transcribe < 0 ||
        t->no_timestamps < 0 || t->timestamp_begin < 0 || t->first_lang != t->sot + 1)
        return asr_fail(err, ASR_ERR_MODEL, "vocabulary lacks Whisper's special tokens");
    if (asr_tokenizer_size(m->tokenizer) > m->hp.n_vocab)
        return asr_fail(err, ASR_ERR_MODEL, "vocabulary has %d tokens but the model only %d embeddings",
                        asr_tokenizer_size(m->tokenizer), m->hp.n_vocab);
    if (t->timestamp_begin + 1500 >= m->hp.n_vocab)
        return asr_fail(err, ASR_ERR_MODEL, "vocabulary has %d entries, too few for the timestamp tokens", m->hp.n_vocab);
    m->multilingual = m->hp.n_vocab >= 51865;
    t->n_langs = 0;
    if (m->multilingual) {
        char name[32];
        for (int i = 0; i < asr_lang_count(); i++) {
            snprintf(name, sizeof name, "<|%s|>", asr_lang_code(i));
            if (find_token(m, name) != t->first_lang + i) break;
            t->n_langs = i + 1;
        }
    }
    int ids[8];
    int n_blank = asr_tokenizer_encode(m->tokenizer, " ", ids, 8);
    if (n_blank < 0) n_blank = 0;
    m->suppress_blank = malloc((size_t)(n_blank + 1) * sizeof(int));
    if (!m->suppress_blank) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < n_blank; i++) m->suppress_blank[i] = ids[i];
    m->suppress_blank[n_blank] = t->eot;
    m->n_suppress_blank = n_blank + 1;
    if (!m->suppress_tokens) {
        asr_status s = derive_suppress_tokens(m, err);
        if (s != ASR_OK) return s;
    }
    if (m->n_align_heads == 0) {
        int first = m->hp.n_text_layer / 2, n = (m->hp.n_text_layer - first) * m->hp.n_text_head;
        m->align_heads = malloc((size_t)n * sizeof *m->align_heads);
        if (!m->align_heads) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        for (int l = first; l < m->hp.n_text_layer; l++)
            for (int h = 0; h < m->hp.n_text_head; h++) {
                m->align_heads[m->n_align_heads][0] = l;
                m->align_heads[m->n_align_heads][1] = h;
                m->n_align_heads++;
            }
    }
    static const struct { int layers, state; const char *name; } sizes[] = {
        {4, 384, "tiny"}, {6, 512, "base"}, {12, 768, "small"}, {24, 1024, "medium"}, {32, 1280, "large"}};
    snprintf(m->type, sizeof m->type, "custom");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (m->hp.n_audio_layer == sizes[i].layers && m->hp.n_audio_state == sizes[i].state)
            snprintf(m->type, sizeof m->type, "%s%s", sizes[i].name,
                     m->hp.n_mels == 128 ? (m->hp.n_text_layer == 4 ? "-v3-turbo" : "-v3") : "");
    return ASR_OK;
}

void *asr_alloc_weights(size_t bytes, int zero)
{
    const size_t huge = (size_t)2 << 20;
    size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (rounded == 0 || posix_memalign(&p, huge, rounded) != 0) return NULL;
    madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without THP it is plain memory */
    if (zero) memset(p, 0, bytes);
    return p;
}

void asr_release_pages(const void *p, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)p, hi = lo + bytes;
    uintptr_t a = (lo + page - 1) / page * page, b = hi / page * page;
    if (b <= a) return;
    /* First take the range out of the huge-page hint: khugepaged (which, by
     * default, collapses a 2 MiB range with even one page present) would
     * otherwise fill the holes back in seconds later and the memory would
     * return (tiny.en long-form: +30 MB after about 10 s). */
    madvise((void *)a, b - a, MADV_NOHUGEPAGE);
    madvise((void *)a, b - a, MADV_DONTNEED);
}

void asr_f16_to_f32_n(const uint16_t *in, float *out, size_t n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) {
        asr_f16_to_f32_avx2(in, out, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) out[i] = asr_f16_to_f32(in[i]);
}

void asr_f16_bytes_to_f32_n(const unsigned char *in, float *out, size_t n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) {
        asr_f16_bytes_to_f32_avx2(in, out, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        out[i] = asr_f16_to_f32(h);
    }
}

void asr_f32_to_f16_n(const float *in, uint16_t *out, size_t n)
{
#if defined(__x86_64__)
    if (asr_cpu_has_avx2()) {
        asr_f32_to_f16_avx2(in, out, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) out[i] = asr_f32_to_f16(in[i]);
}

asr_status asr_hparams_check(const asr_hparams *hp, const char *what, asr_error *err)
{
    if (hp->n_mels != 80 && hp->n_mels != 128)
        return asr_fail(err, ASR_ERR_MODEL, "%s: n_mels is %d, Whisper uses 80 or 128", what, hp->n_mels);
    if (hp->n_audio_ctx != ASR_N_FRAMES / 2) /* not n_audio_ctx * 2: that overflows for crafted values */
        return asr_fail(err, ASR_ERR_MODEL, "%s: n_audio_ctx is %d, Whisper needs %d", what, hp->n_audio_ctx,
                        ASR_N_FRAMES / 2);
    if (hp->n_audio_state < 8 || hp->n_audio_state > ASR_MAX_WIDTH || hp->n_audio_state % 8 != 0 ||
        hp->n_text_state < 8 || hp->n_text_state > ASR_MAX_WIDTH || hp->n_text_state % 8 != 0)
        return asr_fail(err, ASR_ERR_MODEL, "%s: implausible widths n_audio_state %d, n_text_state %d (need multiples "
                        "of 8 up to %d)", what, hp->n_audio_state, hp->n_text_state, ASR_MAX_WIDTH);
    if (hp->n_audio_head < 1 || hp->n_audio_head > ASR_MAX_HEADS || hp->n_audio_state % hp->n_audio_head != 0 ||
        hp->n_text_head < 1 || hp->n_text_head > ASR_MAX_HEADS || hp->n_text_state % hp->n_text_head != 0)
        return asr_fail(err, ASR_ERR_MODEL, "%s: head counts %d/%d do not divide the widths %d/%d (1..%d heads)", what,
                        hp->n_audio_head, hp->n_text_head, hp->n_audio_state, hp->n_text_state, ASR_MAX_HEADS);
    if (hp->n_audio_layer < 1 || hp->n_audio_layer > ASR_MAX_LAYERS || hp->n_text_layer < 1 ||
        hp->n_text_layer > ASR_MAX_LAYERS)
        return asr_fail(err, ASR_ERR_MODEL, "%s: implausible layer counts %d/%d (1..%d)", what, hp->n_audio_layer,
                        hp->n_text_layer, ASR_MAX_LAYERS);
    if (hp->n_text_ctx < ASR_MIN_TEXT_CTX || hp->n_text_ctx > ASR_MAX_TEXT_CTX)
        return asr_fail(err, ASR_ERR_MODEL, "%s: n_text_ctx is %d, outside %d..%d", what, hp->n_text_ctx,
                        ASR_MIN_TEXT_CTX, ASR_MAX_TEXT_CTX);
    if (hp->n_vocab < ASR_MIN_VOCAB || hp->n_vocab > ASR_MAX_VOCAB)
        return asr_fail(err, ASR_ERR_MODEL, "%s: n_vocab is %d, outside %d..%d", what, hp->n_vocab, ASR_MIN_VOCAB,
                        ASR_MAX_VOCAB);
    return ASR_OK;
}

size_t asr_decoder_halves(const asr_hparams *hp)
{
    size_t d = (size_t)hp->n_text_state;
    return (size_t)hp->n_vocab * d + (size_t)hp->n_text_layer * 14 * d * d;
}

asr_status asr_model_load(const char *path, const asr_model_params *params, asr_model **out, asr_error *err)
{
    asr_error_clear(err);
    if (!out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "no model path given");
    struct stat st;
    if (stat(path, &st) != 0) return asr_fail(err, ASR_ERR_MODEL, "model '%s' not found", path);
    asr_model *m = calloc(1, sizeof *m);
    if (!m) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    asr_model_params p = params ? *params : asr_model_default_params();
    m->n_threads = p.n_threads > 0 ? p.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (m->n_threads < 1) m->n_threads = 1;
    if ((int)p.compute_type < ASR_COMPUTE_AUTO || (int)p.compute_type > ASR_COMPUTE_INT8_BFLOAT16) {
        free(m);
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "unknown compute type %d", (int)p.compute_type);
    }
    m->cpu_features = asr_cpu_features();
    m->compute_type = p.compute_type == ASR_COMPUTE_AUTO ? asr_compute_type_auto(m->cpu_features) : p.compute_type;
    asr_status s;
    if (S_ISDIR(st.st_mode)) {
        s = asr_model_load_ct2(m, path, err);
    } else if (S_ISREG(st.st_mode)) {
        s = asr_model_load_ggml(m, path, err);
    } else {
        s = asr_fail(err, ASR_ERR_MODEL, "model '%s' is neither a directory nor a file", path);
    }
    if (s == ASR_OK) s = asr_model_finish_load(m, err);
    if (s == ASR_OK) s = asr_model_convert_weights(m, err);
    if (s != ASR_OK) {
        asr_model_free(m);
        return s;
    }
    *out = m;
    return ASR_OK;
}

void asr_model_free(asr_model *m)
{
    if (!m) return;
    asr_tensor *tensors[4096];
    int n = asr_model_linear_tensors(m, tensors, 4096);
    for (int i = 0; i < n && i < 4096; i++) asr_tensor_free(tensors[i]);
    free(m->arena);
    free(m->arena16);
    free(m->w.enc);
    free(m->w.dec);
    free(m->suppress_tokens);
    free(m->suppress_blank);
    free(m->align_heads);
    asr_tokenizer_free(m->tokenizer);
    free(m);
}

int asr_model_is_multilingual(const asr_model *m) { return m->multilingual; }
int asr_model_n_mels(const asr_model *m) { return m->hp.n_mels; }
int asr_model_n_vocab(const asr_model *m) { return m->hp.n_vocab; }
int asr_model_n_text_ctx(const asr_model *m) { return m->hp.n_text_ctx; }
const char *asr_model_type(const asr_model *m) { return m->type; }
