/* transcribe_batch.c — faster-whisper's BatchedInferencePipeline: VAD speech chunks packed into ≤ 30 s
 * windows, several windows encoded in one pass and decoded together, segments merged in time order. */
#include "decoding.h"
#include "timing.h"
#include "vad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A window: samples [start, end) of the collected speech. */
typedef struct window {
    size_t start, end;
} window;

/* faster-whisper's collect_chunks(max_duration = 30 s): consecutive chunks
 * join a window while it stays within 30 s; a chunk longer than that (only
 * when the caller's VAD options allow it) is cut into 30 s pieces. *out is
 * malloc'd. */
static asr_status pack_windows(const asr_vad_segment *chunks, size_t n_chunks, window **out, size_t *n_out,
                               asr_error *err)
{
    size_t cap = 0, at = 0;
    for (size_t i = 0; i < n_chunks; i++) cap += (chunks[i].end - chunks[i].start) / ASR_N_SAMPLES + 1;
    window *w = malloc((cap ? cap : 1) * sizeof *w);
    if (!w) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < n_chunks; i++) {
        size_t len = chunks[i].end - chunks[i].start;
        if (n > 0 && w[n - 1].end == at && at + len - w[n - 1].start <= ASR_N_SAMPLES) {
            w[n - 1].end = at + len;
        } else {
            for (size_t off = 0; off < len; off += ASR_N_SAMPLES)
                w[n++] = (window){at + off, at + (len - off > ASR_N_SAMPLES ? off + ASR_N_SAMPLES : len)};
        }
        at += len;
    }
    *out = w;
    *n_out = n;
    return ASR_OK;
}

static int has_text(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 1;
    return 0;
}

/* State of one batched transcription. */
typedef struct batched {
    asr_state *st;
    const asr_model *m;
    const asr_transcribe_params *p;
    asr_result *res;
    const float *speech;
    size_t n_speech;
    int lang;
    int *prompt, n_prompt;     /* initial_prompt, the same for every window */
    asr_decode_result dr[ASR_MAX_BATCH];
    double last_speech;        /* word timestamps: end of the last speech so far */
} batched;

static asr_decode_options window_options(const batched *bt, float temperature)
{
    const asr_transcribe_params *p = bt->p;
    return (asr_decode_options){
        .task = p->task,
        .lang_index = bt->m->multilingual ? bt->lang : -1,
        .temperature = temperature,
        .beam_size = p->beam_size,
        .patience = p->patience,
        .best_of = p->best_of,
        .prompt = bt->prompt,
        .n_prompt = bt->n_prompt,
        .without_timestamps = p->without_timestamps,
        .max_initial_timestamp = p->max_initial_timestamp,
        .suppress_blank = p->suppress_blank,
        .suppress_tokens = p->suppress_tokens_default,
        .length_penalty = p->length_penalty,
        .should_abort = p->should_abort,
        .user_data = p->user_data,
    };
}

/* Language: the one asked for, or detected on the first window of speech. */
static asr_status resolve_language(batched *bt, asr_error *err)
{
    const asr_transcribe_params *p = bt->p;
    int auto_detect = !p->language || !*p->language || strcmp(p->language, "auto") == 0;
    if (!bt->m->multilingual) {
        if (!auto_detect && asr_lang_find(p->language) != 0)
            return asr_fail(err, ASR_ERR_UNSUPPORTED, "model is English-only; language '%s' is not available",
                            p->language);
        if (p->task == ASR_TASK_TRANSLATE)
            return asr_fail(err, ASR_ERR_UNSUPPORTED, "model is English-only and cannot translate");
        bt->lang = 0;
        return ASR_OK;
    }
    if (!auto_detect) {
        int i = asr_lang_find(p->language);
        if (i < 0 || i >= bt->m->tok.n_langs)
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "unknown language '%s'", p->language);
        bt->lang = i;
        return ASR_OK;
    }
    if (bt->n_speech == 0) {
        bt->lang = 0;
        return ASR_OK;
    }
    return asr_detect_language(bt->st, bt->speech, bt->n_speech, &bt->lang, NULL, err);
}

/* Each window's log-mel, computed on its own samples padded to 30 s (as
 * faster-whisper's pipeline does), into slot i of the batch. */
static asr_status load_mels(batched *bt, const window *w, int n, int n_threads, asr_error *err)
{
    const int nm = bt->m->hp.n_mels;
    for (int i = 0; i < n; i++) {
        float *mel = NULL;
        int n_frames = 0;
        asr_status s = asr_log_mel(bt->speech + w[i].start, w[i].end - w[i].start, ASR_N_SAMPLES, nm, n_threads,
                                   &mel, &n_frames, err);
        if (s != ASR_OK) return s;
        float *dst = bt->st->batch->mel + (size_t)i * nm * ASR_N_FRAMES;
        for (int c = 0; c < nm; c++)
            memcpy(dst + (size_t)c * ASR_N_FRAMES, mel + (size_t)c * n_frames, ASR_N_FRAMES * sizeof(float));
        free(mel);
    }
    return ASR_OK;
}

/* openai's decode_with_fallback from the second temperature on, for one
 * window whose first (batched, greedy) result needs it. */
static asr_status redo_window(batched *bt, int slot, int first_t, asr_decode_result *r, asr_error *err)
{
    const asr_transcribe_params *p = bt->p;
    asr_batch_load_window(bt->st, slot);
    uint64_t rng = p->seed + (uint64_t)slot;
    for (int ti = first_t; ti < p->n_temperatures; ti++) {
        asr_decode_options o = window_options(bt, p->temperatures[ti]);
        o.rng = &rng;
        asr_status s = asr_decode_window(bt->st, &o, r, err);
        if (s != ASR_OK) return s;
        if (!asr_needs_fallback(p, r)) break;
    }
    return ASR_OK;
}

static asr_status add_segment(batched *bt, int seek, double start, double end, const int *tokens, int n,
                              const asr_decode_result *dr, asr_error *err)
{
    char *text = asr_tokenizer_decode(bt->m->tokenizer, tokens, n, bt->m->tok.eot);
    if (!text) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    if (start == end || !has_text(text)) { /* as the sequential loop: no empty or instantaneous segments */
        free(text);
        return ASR_OK;
    }
    asr_segment seg = {
        .id = bt->res->n_segments, .seek = seek, .start = start, .end = end, .text = text, .tokens = tokens,
        .n_tokens = n, .temperature = dr->temperature, .avg_logprob = dr->avg_logprob,
        .compression_ratio = dr->compression_ratio, .no_speech_prob = dr->no_speech_prob,
    };
    asr_status s = asr_result_add_segment(bt->res, &seg);
    free(text);
    return s == ASR_OK ? ASR_OK : asr_fail(err, s, "out of memory");
}

/* Audio a window may leave undecoded at its end; more is decoded again as
 * a window of its own (openai's seek, run alongside the other windows). */
#define MIN_TAIL_SAMPLES ASR_SAMPLE_RATE

/* The window's segments, cut at each pair of consecutive timestamps as
 * transcribe() does, at its offset in speech; none ends after the window.
 * Where the text stops at a timestamp more than a second before the
 * window's end (the rest of the speech not transcribed, or the text after
 * the last complete pair dropped as openai drops it), *tail becomes that
 * rest of the window, to be decoded again; else tail->end = tail->start. */
static asr_status emit_window(batched *bt, const window *w, const asr_decode_result *dr, window *tail,
                              asr_error *err)
{
    const int tb = bt->m->tok.timestamp_begin, *tok = dr->tokens, n = dr->n_tokens;
    const int seek = (int)(w->start / ASR_HOP_LENGTH);
    const double offset = (double)w->start / ASR_SAMPLE_RATE, precision = 0.02;
    const double limit = offset + (double)(w->end - w->start) / ASR_SAMPLE_RATE;
    const size_t per_ts = (size_t)(precision * ASR_SAMPLE_RATE); /* 320 samples */
    int single_ending = n >= 2 && tok[n - 2] < tb && tok[n - 1] >= tb, last_slice = 0, consecutive = 0;
    *tail = (window){w->end, w->end};
    for (int i = 1; i < n; i++)
        if (tok[i - 1] >= tb && tok[i] >= tb) consecutive = 1;
    if (!consecutive) {
        double end = limit;
        for (int i = n - 1; i >= 0; i--)
            if (tok[i] >= tb) {
                if (tok[i] != tb) end = fmin(limit, offset + (tok[i] - tb) * precision);
                break;
            }
        return add_segment(bt, seek, offset, end, tok, n, dr, err);
    }
    for (int i = 1; i <= n; i++) {
        int is_cut = (i < n && tok[i - 1] >= tb && tok[i] >= tb) || (i == n && single_ending);
        if (!is_cut) continue;
        const int *slice = tok + last_slice;
        int len = i - last_slice;
        double end = fmin(limit, offset + (slice[len - 1] - tb) * precision);
        double start = fmin(end, offset + (slice[0] - tb) * precision);
        asr_status s = add_segment(bt, seek, start, end, slice, len, dr, err);
        if (s != ASR_OK) return s;
        last_slice = i;
    }
    size_t done = w->start + (size_t)(tok[(single_ending ? n : last_slice) - 1] - tb) * per_ts;
    if (done > w->start && done + MIN_TAIL_SAMPLES < w->end) {
        *tail = (window){done, w->end};
        return ASR_OK;
    }
    /* text after the last complete pair, too close to the end to decode again: up to the window's end */
    if (last_slice < n && !single_ending) {
        const int *slice = tok + last_slice;
        int len = n - last_slice;
        double start = fmin(limit, offset + (slice[0] >= tb ? (slice[0] - tb) * precision : 0.0));
        return add_segment(bt, seek, start, limit, slice, len, dr, err);
    }
    return ASR_OK;
}

/* Decode the encoded windows 0..n-1 of the batch and add their segments;
 * tails[i] is what window i leaves to decode again (empty: nothing). */
static asr_status decode_pass(batched *bt, const window *w, int n, window *tails, asr_error *err)
{
    const asr_transcribe_params *p = bt->p;
    asr_status s = ASR_OK;
    int greedy = p->beam_size <= 1 && p->temperatures[0] == 0.0f;
    if (greedy) {
        asr_decode_options o = window_options(bt, 0.0f);
        s = asr_decode_batch_greedy(bt->st, &o, n, bt->dr, err);
    }
    for (int i = 0; s == ASR_OK && i < n; i++) {
        asr_decode_result *r = &bt->dr[i];
        tails[i] = (window){w[i].end, w[i].end};
        if (!greedy) s = redo_window(bt, i, 0, r, err);
        else if (asr_needs_fallback(p, r)) s = redo_window(bt, i, 1, r, err);
        if (s != ASR_OK || asr_window_is_silent(p, r)) continue;
        int first = bt->res->n_segments;
        s = emit_window(bt, &w[i], r, &tails[i], err);
        if (s == ASR_OK && p->word_timestamps && bt->res->n_segments > first) {
            asr_batch_load_window(bt->st, i);
            int frames = (int)((w[i].end - w[i].start) / ASR_HOP_LENGTH);
            double last_speech = (double)w[i].start / ASR_SAMPLE_RATE; /* windows are decoded out of order */
            s = asr_add_word_timestamps(bt->st, bt->res, first, p->task, bt->m->multilingual ? bt->lang : -1,
                                        frames, &last_speech, err);
        }
    }
    return s;
}

/* Windows waiting to be decoded, earliest first. */
typedef struct window_queue {
    window *v;
    size_t n, cap;
} window_queue;

static int queue_insert(window_queue *q, window w)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        window *v = realloc(q->v, cap * sizeof *v);
        if (!v) return 0;
        q->v = v;
        q->cap = cap;
    }
    size_t at = q->n;
    while (at > 0 && q->v[at - 1].start > w.start) at--;
    memmove(q->v + at + 1, q->v + at, (q->n - at) * sizeof *q->v);
    q->v[at] = w;
    q->n++;
    return 1;
}

static int segment_before(const asr_segment *a, const asr_segment *b)
{
    return a->start < b->start || (a->start == b->start && a->id < b->id);
}

/* Put segments [from, n) in time order (the windows of a pass and their
 * tails finish out of order), then report those no window still waiting
 * can precede: the ones starting before `horizon` seconds. Returns the
 * new count of reported segments. */
static int report_in_order(batched *bt, int from, double horizon)
{
    asr_result *res = bt->res;
    for (int i = from + 1; i < res->n_segments; i++) { /* insertion sort: nearly sorted already */
        asr_segment seg = res->segments[i];
        int j = i;
        while (j > from && segment_before(&seg, &res->segments[j - 1])) {
            res->segments[j] = res->segments[j - 1];
            j--;
        }
        res->segments[j] = seg;
    }
    int i = from;
    for (; i < res->n_segments && res->segments[i].start < horizon; i++) {
        res->segments[i].id = i;
        if (bt->p->on_segment) bt->p->on_segment(&res->segments[i], bt->p->user_data);
    }
    return i;
}

asr_status asr_transcribe_batched(asr_state *st, const float *speech, size_t n_speech, const asr_vad_segment *chunks,
                                  size_t n_chunks, const asr_transcribe_params *params, asr_result **out,
                                  asr_error *err)
{
    const asr_model *m = st->model;
    const int B = params->batch_size;
    int n_threads = params->n_threads > 0 ? params->n_threads : m->n_threads;
    batched bt = {.st = st, .m = m, .p = params, .speech = speech, .n_speech = n_speech};
    window *w = NULL;
    size_t n_windows = 0;
    asr_status s = asr_state_set_threads(st, n_threads, err);
    if (s == ASR_OK) s = asr_batch_reserve(st, B, err);
    if (s == ASR_OK) s = pack_windows(chunks, n_chunks, &w, &n_windows, err);
    if (s == ASR_OK && !(bt.res = asr_result_new())) s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; s == ASR_OK && i < B; i++)
        if (!(bt.dr[i].tokens = malloc((size_t)(m->hp.n_text_ctx + 1) * sizeof(int))))
            s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    if (s == ASR_OK) {
        bt.res->task = params->task;
        bt.res->duration = (double)n_speech / ASR_SAMPLE_RATE;
        s = resolve_language(&bt, err);
    }
    if (s == ASR_OK) {
        snprintf(bt.res->language, sizeof bt.res->language, "%s", asr_lang_code(bt.lang));
        s = asr_encode_prompt(m, params->initial_prompt, &bt.prompt, &bt.n_prompt, err);
    }
    window_queue queue = {0};
    for (size_t i = 0; s == ASR_OK && i < n_windows; i++)
        if (!queue_insert(&queue, w[i])) s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    int reported = 0;
    while (s == ASR_OK && queue.n > 0) {
        if (params->should_abort && params->should_abort(params->user_data)) {
            s = asr_fail(err, ASR_ERR_CANCELLED, "transcription cancelled");
            break;
        }
        window pass[ASR_MAX_BATCH], tails[ASR_MAX_BATCH];
        int n = queue.n < (size_t)B ? (int)queue.n : B;
        memcpy(pass, queue.v, (size_t)n * sizeof *pass);
        memmove(queue.v, queue.v + n, (queue.n - (size_t)n) * sizeof *queue.v);
        queue.n -= (size_t)n;
        s = load_mels(&bt, pass, n, n_threads, err);
        if (s == ASR_OK) s = asr_encode_batch(st, n, err);
        if (s == ASR_OK) s = decode_pass(&bt, pass, n, tails, err);
        for (int i = 0; s == ASR_OK && i < n; i++)
            if (tails[i].end > tails[i].start && !queue_insert(&queue, tails[i]))
                s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        if (s != ASR_OK) break;
        reported = report_in_order(&bt, reported, queue.n ? (double)queue.v[0].start / ASR_SAMPLE_RATE : INFINITY);
        if (params->on_progress)
            params->on_progress(queue.n ? (float)((double)queue.v[0].start / (double)n_speech) : 1.0f,
                                params->user_data);
    }
    free(queue.v);
    if (s == ASR_OK) {
        s = asr_result_finish(bt.res);
        if (s != ASR_OK) s = asr_fail(err, s, "out of memory");
    }
    for (int i = 0; i < B; i++) free(bt.dr[i].tokens);
    free(bt.prompt);
    free(w);
    if (s != ASR_OK) {
        asr_result_free(bt.res);
        return s;
    }
    *out = bt.res;
    return ASR_OK;
}
