/* result.c — the transcription result: segments, joined text, getters. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

asr_result *asr_result_new(void)
{
    /* language stays "" and task transcribe until the engine sets them. */
    return calloc(1, sizeof(asr_result));
}

/* The copies of text and tokens belong to the result; asr_segment exposes
 * them as const to callers. */
asr_status asr_result_add_segment(asr_result *r, const asr_segment *seg)
{
    if (!r || !seg || seg->n_tokens < 0 || (seg->n_tokens > 0 && !seg->tokens))
        return ASR_ERR_INVALID_ARGUMENT;
    if (r->n_segments == r->cap_segments) {
        if (r->cap_segments > (1 << 24)) return ASR_ERR_NO_MEMORY; /* far past any real audio */
        int cap = r->cap_segments > 0 ? r->cap_segments * 2 : 16;
        asr_segment *s = realloc(r->segments, (size_t)cap * sizeof *s);
        if (!s) return ASR_ERR_NO_MEMORY;
        r->segments = s;
        r->cap_segments = cap;
    }
    /* Repair the text so every output format can rely on valid UTF-8. */
    const char *text = seg->text ? seg->text : "";
    char *text_copy = asr_utf8_repair(text, strlen(text), NULL);
    int *tokens_copy = malloc(((size_t)seg->n_tokens + 1) * sizeof *tokens_copy);
    if (!text_copy || !tokens_copy) {
        free(text_copy);
        free(tokens_copy);
        return ASR_ERR_NO_MEMORY;
    }
    if (seg->n_tokens) memcpy(tokens_copy, seg->tokens, (size_t)seg->n_tokens * sizeof *tokens_copy);
    asr_segment *dst = &r->segments[r->n_segments++];
    *dst = *seg;
    dst->text = text_copy;
    dst->tokens = tokens_copy;
    dst->words = NULL;
    dst->n_words = 0;
    return ASR_OK;
}

static void free_words(asr_segment *seg)
{
    for (int k = 0; k < seg->n_words; k++) free((char *)seg->words[k].word);
    free((asr_word *)seg->words);
    seg->words = NULL;
    seg->n_words = 0;
}

asr_status asr_result_set_words(asr_result *r, int i, const asr_word *words, int n)
{
    if (!r || i < 0 || i >= r->n_segments || n < 0 || (n > 0 && !words)) return ASR_ERR_INVALID_ARGUMENT;
    asr_word *copy = calloc(n > 0 ? (size_t)n : 1, sizeof *copy);
    if (!copy) return ASR_ERR_NO_MEMORY;
    for (int k = 0; k < n; k++) {
        const char *w = words[k].word ? words[k].word : "";
        copy[k] = words[k];
        copy[k].word = asr_utf8_repair(w, strlen(w), NULL);
        if (!copy[k].word) {
            for (int j = 0; j < k; j++) free((char *)copy[j].word);
            free(copy);
            return ASR_ERR_NO_MEMORY;
        }
    }
    free_words(&r->segments[i]);
    r->segments[i].words = copy;
    r->segments[i].n_words = n;
    return ASR_OK;
}

/* Like openai/whisper transcribe(): text = "".join(segment texts), leading
 * space kept; callers strip where their format wants it. */
asr_status asr_result_finish(asr_result *r)
{
    if (!r) return ASR_ERR_INVALID_ARGUMENT;
    size_t total = 0;
    for (int i = 0; i < r->n_segments; i++) total += strlen(r->segments[i].text);
    char *text = malloc(total + 1);
    if (!text) return ASR_ERR_NO_MEMORY;
    size_t o = 0;
    for (int i = 0; i < r->n_segments; i++) {
        size_t len = strlen(r->segments[i].text);
        memcpy(text + o, r->segments[i].text, len);
        o += len;
    }
    text[o] = '\0';
    free(r->text);
    r->text = text;
    return ASR_OK;
}

int asr_result_n_segments(const asr_result *result)
{
    return result ? result->n_segments : 0;
}

const asr_segment *asr_result_segment(const asr_result *result, int i)
{
    if (!result || i < 0 || i >= result->n_segments) return NULL;
    return &result->segments[i];
}

const char *asr_result_text(const asr_result *result)
{
    return result && result->text ? result->text : "";
}

const char *asr_result_language(const asr_result *result)
{
    return result ? result->language : "";
}

const char *asr_result_task(const asr_result *result)
{
    if (!result) return "";
    return result->task == ASR_TASK_TRANSLATE ? "translate" : "transcribe";
}

double asr_result_duration(const asr_result *result)
{
    return result ? result->duration : 0.0;
}

void asr_result_free(asr_result *result)
{
    if (!result) return;
    for (int i = 0; i < result->n_segments; i++) {
        free((char *)result->segments[i].text);
        free((int *)result->segments[i].tokens);
        free_words(&result->segments[i]);
    }
    free(result->segments);
    free(result->text);
    free(result);
}
