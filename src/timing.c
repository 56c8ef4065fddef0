/* timing.c — word timestamps from cross-attention, as openai/whisper's timing.py.
 *
 * The window's text is fed once more through the decoder, from the sot
 * sequence to eot, and the cross-attention logits of the model's alignment
 * heads are kept. Per head they are turned into weights over the audio
 * frames, standardised over tokens, median-filtered over time and averaged;
 * dynamic time warping through that matrix gives the frame where each token
 * starts, and words take the times of their first and last tokens. The
 * heuristics that follow (long words cut at pauses and sentence ends,
 * punctuation merged into neighbours, segment bounds moved to the words)
 * are openai's, in its order, so the words match the reference.
 */
#include "timing.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MEDFILT_WIDTH 7
#define TOKENS_PER_SECOND 50.0 /* encoder positions per second of audio */

static const char PREPEND_PUNCTUATION[] = "\"'\xe2\x80\x9c\xc2\xbf([{-";
static const char APPEND_PUNCTUATION[] = "\"'.\xe3\x80\x82,\xef\xbc\x8c!\xef\xbc\x81?\xef\xbc\x9f:\xef\xbc\x9a\xe2\x80\x9d)]}\xe3\x80\x81";
static const char SENTENCE_END[] = ".\xe3\x80\x82!\xef\xbc\x81?\xef\xbc\x9f";
static const char ASCII_PUNCTUATION[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/* A word while it is being built: bytes, token count, times, probability. */
typedef struct word_timing {
    char *text;
    size_t len;
    int n_tokens;
    double start, end;
    double probability;
} word_timing;

static int append_bytes(word_timing *w, const char *p, size_t n)
{
    char *t = realloc(w->text, w->len + n + 1);
    if (!t) return 0;
    memcpy(t + w->len, p, n);
    w->len += n;
    t[w->len] = '\0';
    w->text = t;
    return 1;
}

/* ---- splitting tokens into words (tokenizer.split_to_word_tokens) ---------------- */

/* 1: bytes are complete UTF-8; 0: they end inside a character; -1: invalid. */
static int utf8_state(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : (size_t)-1;
        if (need == (size_t)-1) return -1;
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n) return 0;
            if ((s[i + k] & 0xc0) != 0x80) return -1;
        }
        i += need + 1;
    }
    return 1;
}

/* Python's str.strip() (as openai/whisper's timing.py applies it to words): [*b, *e) of s. */
static void strip(const char *s, size_t len, size_t *b, size_t *e)
{
    asr_strip_bounds(s, len, b, e);
}

/* Python's `needle in haystack` for strings (the empty string is in every string). */
static int contains(const char *haystack, const char *needle, size_t n)
{
    if (n == 0) return 1;
    char buf[64];
    if (n >= sizeof buf) return 0;
    memcpy(buf, needle, n);
    buf[n] = '\0';
    return strstr(haystack, buf) != NULL;
}

/* tokens (text tokens then eot) → words; each word records how many tokens
 * it spans. Languages without spaces split on whole characters only. */
static int split_words(const asr_model *m, const int *tokens, int n, int by_spaces, word_timing **out, int *n_out)
{
    word_timing *words = calloc((size_t)n + 1, sizeof *words);
    if (!words) return 0;
    int n_words = 0;
    word_timing cur = {0};
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        size_t len;
        const char *bytes = asr_tokenizer_bytes(m->tokenizer, tokens[i], &len);
        if (!bytes) len = 0;
        ok = append_bytes(&cur, bytes ? bytes : "", len);
        cur.n_tokens++;
        /* a subword ends where the bytes so far decode without a partial character */
        if (ok && (utf8_state((const unsigned char *)cur.text, cur.len) != 0 || i == n - 1)) {
            int special = tokens[i - cur.n_tokens + 1] >= m->tok.eot;
            size_t b, e;
            strip(cur.text, cur.len, &b, &e);
            int with_space = cur.len > 0 && cur.text[0] == ' ';
            int punctuation = contains(ASCII_PUNCTUATION, cur.text + b, e - b);
            if (!by_spaces || special || with_space || punctuation || n_words == 0) {
                words[n_words++] = cur;
            } else {
                word_timing *last = &words[n_words - 1];
                ok = append_bytes(last, cur.text, cur.len);
                last->n_tokens += cur.n_tokens;
                free(cur.text);
            }
            memset(&cur, 0, sizeof cur);
        }
    }
    free(cur.text);
    if (!ok) {
        for (int i = 0; i < n_words; i++) free(words[i].text);
        free(words);
        return 0;
    }
    *out = words;
    *n_out = n_words;
    return 1;
}

/* ---- the alignment matrix and DTW -------------------------------------------- */

/* Median over a window of MEDFILT_WIDTH along a row, reflect-padded (torch). */
static void median_filter_row(const float *in, float *out, int n)
{
    const int pad = MEDFILT_WIDTH / 2;
    if (n <= pad) {
        memcpy(out, in, (size_t)n * sizeof(float));
        return;
    }
    float win[MEDFILT_WIDTH];
    for (int t = 0; t < n; t++) {
        for (int k = -pad; k <= pad; k++) {
            int i = t + k;
            if (i < 0) i = -i;
            if (i >= n) i = 2 * (n - 1) - i;
            win[k + pad] = in[i];
        }
        for (int a = 1; a < MEDFILT_WIDTH; a++) /* insertion sort: 7 values, per element */
            for (int b = a; b > 0 && win[b - 1] > win[b]; b--) {
                float x = win[b];
                win[b] = win[b - 1];
                win[b - 1] = x;
            }
        out[t] = win[pad];
    }
}

/* openai's dtw_cpu + backtrace on cost x (N, M): fills the path's text and
 * time indices (at most N+M entries) and returns its length, -1 on OOM. */
static int dtw(const double *x, int N, int M, int *text_idx, int *time_idx)
{
    size_t W = (size_t)M + 1;
    float *cost = malloc((size_t)(N + 1) * W * sizeof(float));
    signed char *trace = malloc((size_t)(N + 1) * W);
    if (!cost || !trace) {
        free(cost);
        free(trace);
        return -1;
    }
    for (size_t i = 0; i < (size_t)(N + 1) * W; i++) {
        cost[i] = INFINITY;
        trace[i] = -1;
    }
    cost[0] = 0.0f;
    for (int j = 1; j <= M; j++)
        for (int i = 1; i <= N; i++) {
            float c0 = cost[(size_t)(i - 1) * W + j - 1], c1 = cost[(size_t)(i - 1) * W + j], c2 = cost[(size_t)i * W + j - 1];
            float c;
            signed char t;
            if (c0 < c1 && c0 < c2) c = c0, t = 0;
            else if (c1 < c0 && c1 < c2) c = c1, t = 1;
            else c = c2, t = 2;
            cost[(size_t)i * W + j] = (float)(x[(size_t)(i - 1) * M + j - 1] + c);
            trace[(size_t)i * W + j] = t;
        }
    for (size_t j = 0; j < W; j++) trace[j] = 2;
    for (int i = 0; i <= N; i++) trace[(size_t)i * W] = 1;
    int i = N, j = M, len = 0;
    while (i > 0 || j > 0) {
        text_idx[len] = i - 1;
        time_idx[len] = j - 1;
        len++;
        signed char t = trace[(size_t)i * W + j];
        if (t == 0) i--, j--;
        else if (t == 1) i--;
        else j--;
    }
    for (int a = 0, b = len - 1; a < b; a++, b--) { /* reverse into time order */
        int ti = text_idx[a], tt = time_idx[a];
        text_idx[a] = text_idx[b], time_idx[a] = time_idx[b];
        text_idx[b] = ti, time_idx[b] = tt;
    }
    free(cost);
    free(trace);
    return len;
}

/* find_alignment: words of text (n tokens) with start/end in seconds from the
 * window start and their probabilities. */
static asr_status find_alignment(asr_state *st, const int *sot_seq, int n_sot, const int *text, int n, int n_frames,
                                 int by_spaces, word_timing **out, int *n_out, asr_error *err)
{
    const asr_model *m = st->model;
    const int T = n_sot + n + 2, H = m->n_align_heads, eot = m->tok.eot;
    int K = n_frames / 2;
    if (K > m->hp.n_audio_ctx) K = m->hp.n_audio_ctx;
    *out = NULL;
    *n_out = 0;
    if (n == 0 || K < 1 || T > m->hp.n_text_ctx) return ASR_OK;
    int *tokens = malloc((size_t)T * sizeof(int));
    float *qk = malloc((size_t)H * T * K * sizeof(float));
    float *row = malloc((size_t)K * sizeof(float));
    float *matrix = calloc((size_t)T * K, sizeof(float));
    double *probs = malloc((size_t)n * sizeof(double));
    double *cost = malloc((size_t)(n + 1) * K * sizeof(double));
    int *text_idx = malloc((size_t)(n + 1 + K) * sizeof(int)), *time_idx = malloc((size_t)(n + 1 + K) * sizeof(int));
    double *jump_times = malloc((size_t)(n + 1) * sizeof(double));
    int *split_tokens = malloc(((size_t)n + 1) * sizeof(int));
    word_timing *words = NULL;
    int n_words = 0;
    asr_status s = ASR_OK;
    if (!tokens || !qk || !row || !matrix || !probs || !cost || !text_idx || !time_idx || !jump_times || !split_tokens) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
        goto done;
    }
    memcpy(tokens, sot_seq, (size_t)n_sot * sizeof(int));
    tokens[n_sot] = m->tok.no_timestamps;
    memcpy(tokens + n_sot + 1, text, (size_t)n * sizeof(int));
    tokens[T - 1] = eot;

    asr_cross_capture cap = {m->align_heads, H, K, qk};
    st->capture = &cap;
    s = asr_decode(st, tokens, 1, T, 0, T - 1, err);
    st->capture = NULL;
    if (s != ASR_OK) goto done;

    /* probability of each text token, softmax over the text vocabulary */
    for (int i0 = 0; i0 < n; i0 += ASR_MAX_BATCH) {
        int k = n - i0 < ASR_MAX_BATCH ? n - i0 : ASR_MAX_BATCH;
        asr_decode_logits_rows(st, n_sot + i0, k);
        for (int r = 0; r < k; r++) {
            float *lg = st->logits + (size_t)r * m->hp.n_vocab;
            asr_softmax(lg, eot);
            int t = text[i0 + r];
            probs[i0 + r] = t < eot ? lg[t] : 0.0;
        }
    }

    /* weights: softmax over frames, standardised over tokens, median-filtered, mean over heads */
    for (int h = 0; h < H; h++) {
        float *w = qk + (size_t)h * T * K;
        for (int r = 0; r < T; r++) asr_softmax(w + (size_t)r * K, K);
        for (int t = 0; t < K; t++) {
            double mean = 0.0, var = 0.0;
            for (int r = 0; r < T; r++) mean += w[(size_t)r * K + t];
            mean /= T;
            for (int r = 0; r < T; r++) var += (w[(size_t)r * K + t] - mean) * (w[(size_t)r * K + t] - mean);
            double sd = sqrt(var / T);
            if (!(sd > 0.0)) sd = 1.0; /* a constant column: keep it finite for DTW */
            for (int r = 0; r < T; r++) w[(size_t)r * K + t] = (float)((w[(size_t)r * K + t] - mean) / sd);
        }
        for (int r = 0; r < T; r++) {
            median_filter_row(w + (size_t)r * K, row, K);
            for (int t = 0; t < K; t++) matrix[(size_t)r * K + t] += row[t] / (float)H;
        }
    }
    /* rows n_sot .. T-2: no_timestamps and the text tokens; DTW on the negated matrix */
    for (int r = 0; r <= n; r++)
        for (int t = 0; t < K; t++) cost[(size_t)r * K + t] = -(double)matrix[(size_t)(n_sot + r) * K + t];
    int len = dtw(cost, n + 1, K, text_idx, time_idx);
    if (len < 0) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
        goto done;
    }
    int n_jumps = 0;
    for (int k = 0; k < len && n_jumps <= n; k++)
        if (k == 0 || text_idx[k] != text_idx[k - 1]) jump_times[n_jumps++] = time_idx[k] / TOKENS_PER_SECOND;

    memcpy(split_tokens, text, (size_t)n * sizeof(int));
    split_tokens[n] = eot;
    if (!split_words(m, split_tokens, n + 1, by_spaces, &words, &n_words)) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
        goto done;
    }
    if (n_words <= 1 || n_jumps != n + 1) { /* nothing to time (or a path that skipped a token) */
        for (int i = 0; i < n_words; i++) free(words[i].text);
        free(words);
        words = NULL;
        n_words = 0;
        goto done;
    }
    /* the last word is eot: drop it; word i spans tokens [b, b + n_tokens) */
    free(words[n_words - 1].text);
    n_words--;
    for (int i = 0, b = 0; i < n_words; i++) {
        int e = b + words[i].n_tokens;
        words[i].start = jump_times[b];
        words[i].end = jump_times[e];
        double p = 0.0;
        for (int k = b; k < e; k++) p += probs[k];
        words[i].probability = p / words[i].n_tokens;
        b = e;
    }
done:
    free(tokens);
    free(qk);
    free(row);
    free(matrix);
    free(probs);
    free(cost);
    free(text_idx);
    free(time_idx);
    free(jump_times);
    free(split_tokens);
    *out = words;
    *n_out = n_words;
    return s;
}

/* ---- openai's adjustments ----------------------------------------------------- */

static void clear_word(word_timing *w)
{
    w->len = 0;
    if (w->text) w->text[0] = '\0';
    w->n_tokens = 0;
}

static int merge_punctuations(word_timing *a, int n)
{
    /* prepended: " (" joins the word after it */
    for (int i = n - 2, j = n - 1; i >= 0; i--) {
        word_timing *prev = &a[i], *next = &a[j];
        size_t b, e;
        strip(prev->text ? prev->text : "", prev->len, &b, &e);
        if (prev->len > 0 && prev->text[0] == ' ' && contains(PREPEND_PUNCTUATION, prev->text + b, e - b)) {
            char *joined = malloc(prev->len + next->len + 1);
            if (!joined) return 0;
            memcpy(joined, prev->text, prev->len);
            memcpy(joined + prev->len, next->text ? next->text : "", next->len);
            joined[prev->len + next->len] = '\0';
            free(next->text);
            next->text = joined;
            next->len += prev->len;
            next->n_tokens += prev->n_tokens;
            clear_word(prev);
        } else {
            j = i;
        }
    }
    /* appended: "." joins the word before it */
    for (int i = 0, j = 1; j < n; j++) {
        word_timing *prev = &a[i], *next = &a[j];
        int ends_with_space = prev->len > 0 && prev->text[prev->len - 1] == ' ';
        if (!ends_with_space && contains(APPEND_PUNCTUATION, next->text ? next->text : "", next->len)) {
            if (!append_bytes(prev, next->text ? next->text : "", next->len)) return 0;
            prev->n_tokens += next->n_tokens;
            clear_word(next);
        } else {
            i = j;
        }
    }
    return 1;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double round2(double x) { return nearbyint(x * 100.0) / 100.0; }

asr_status asr_add_word_timestamps(asr_state *st, asr_result *res, int first, int task, int lang, int n_frames,
                                   double *last_speech, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_special_tokens *tk = &m->tok;
    if (first >= res->n_segments) return ASR_OK;
    int n_text = 0;
    for (int i = first; i < res->n_segments; i++)
        for (int k = 0; k < res->segments[i].n_tokens; k++) n_text += res->segments[i].tokens[k] < tk->eot;
    int *text = malloc(((size_t)n_text + 1) * sizeof(int));
    if (!text) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
    n_text = 0;
    for (int i = first; i < res->n_segments; i++)
        for (int k = 0; k < res->segments[i].n_tokens; k++)
            if (res->segments[i].tokens[k] < tk->eot) text[n_text++] = res->segments[i].tokens[k];

    int sot_seq[3], n_sot = 0;
    sot_seq[n_sot++] = tk->sot;
    if (m->multilingual) {
        sot_seq[n_sot++] = tk->first_lang + (lang >= 0 ? lang : 0);
        sot_seq[n_sot++] = task == ASR_TASK_TRANSLATE ? tk->translate : tk->transcribe;
    }
    static const char *const no_spaces[] = {"zh", "ja", "th", "lo", "my", "yue"};
    int by_spaces = 1;
    for (size_t i = 0; i < sizeof no_spaces / sizeof *no_spaces; i++)
        if (strcmp(res->language, no_spaces[i]) == 0) by_spaces = 0;

    word_timing *words = NULL;
    int n_words = 0;
    asr_status s = find_alignment(st, sot_seq, n_sot, text, n_text, n_frames, by_spaces, &words, &n_words, err);
    free(text);
    if (s != ASR_OK || n_words == 0) return s;

    /* median word duration (non-zero ones), capped at 0.7 s */
    double *durations = malloc((size_t)n_words * sizeof(double));
    asr_word *out = malloc((size_t)n_words * sizeof(asr_word));
    if (!durations || !out) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
        goto done;
    }
    int n_dur = 0;
    for (int i = 0; i < n_words; i++)
        if (words[i].end - words[i].start != 0.0) durations[n_dur++] = words[i].end - words[i].start;
    double median = 0.0;
    if (n_dur > 0) {
        qsort(durations, (size_t)n_dur, sizeof(double), compare_doubles);
        median = n_dur % 2 ? durations[n_dur / 2] : 0.5 * (durations[n_dur / 2 - 1] + durations[n_dur / 2]);
    }
    if (median > 0.7) median = 0.7;
    double max_duration = median * 2;
    /* long words at sentence boundaries are cut to max_duration */
    if (n_dur > 0)
        for (int i = 1; i < n_words; i++)
            if (words[i].end - words[i].start > max_duration) {
                if (words[i].len > 0 && contains(SENTENCE_END, words[i].text, words[i].len))
                    words[i].end = words[i].start + max_duration;
                else if (words[i - 1].len > 0 && contains(SENTENCE_END, words[i - 1].text, words[i - 1].len))
                    words[i].start = words[i].end - max_duration;
            }
    if (!merge_punctuations(words, n_words)) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory aligning words");
        goto done;
    }

    double time_offset = (double)res->segments[first].seek * ASR_HOP_LENGTH / ASR_SAMPLE_RATE;
    int wi = 0;
    for (int si = first; si < res->n_segments && s == ASR_OK; si++) {
        asr_segment *seg = &res->segments[si];
        int seg_text = 0, saved = 0, n_out = 0;
        for (int k = 0; k < seg->n_tokens; k++) seg_text += seg->tokens[k] < tk->eot;
        while (wi < n_words && saved < seg_text) {
            word_timing *w = &words[wi];
            if (w->len > 0)
                out[n_out++] = (asr_word){w->text, round2(time_offset + w->start), round2(time_offset + w->end),
                                          (float)w->probability};
            saved += w->n_tokens;
            wi++;
        }
        if (n_out > 0) {
            /* a first word after a pause is at most max_duration long */
            if (out[0].end - *last_speech > median * 4 &&
                (out[0].end - out[0].start > max_duration ||
                 (n_out > 1 && out[1].end - out[0].start > max_duration * 2))) {
                if (n_out > 1 && out[1].end - out[1].start > max_duration) {
                    double boundary = fmax(out[1].end / 2, out[1].end - max_duration);
                    out[0].end = out[1].start = boundary;
                }
                out[0].start = fmax(0.0, out[0].end - max_duration);
            }
            /* prefer the segment's own start/end when the first/last word is too long */
            if (seg->start < out[0].end && seg->start - 0.5 > out[0].start)
                out[0].start = fmax(0.0, fmin(out[0].end - median, seg->start));
            else
                seg->start = out[0].start;
            if (seg->end > out[n_out - 1].start && seg->end + 0.5 < out[n_out - 1].end)
                out[n_out - 1].end = fmax(out[n_out - 1].start + median, seg->end);
            else
                seg->end = out[n_out - 1].end;
            *last_speech = seg->end;
        }
        s = asr_result_set_words(res, si, out, n_out);
        if (s != ASR_OK) s = asr_fail(err, s, "out of memory aligning words");
    }
done:
    for (int i = 0; i < n_words; i++) free(words[i].text);
    free(words);
    free(durations);
    free(out);
    return s;
}

double asr_words_end(const asr_result *res, int first)
{
    for (int i = res->n_segments - 1; i >= first; i--)
        if (res->segments[i].n_words > 0) return res->segments[i].words[res->segments[i].n_words - 1].end;
    return first < res->n_segments ? res->segments[res->n_segments - 1].end : -1.0;
}
