/* transcribe.c — openai/whisper transcribe(): the seek loop over 30 s windows, temperature
 * fallback, segment splitting on timestamp tokens, prompt conditioning, language detection. */
#include "decoding.h"
#include "timing.h"
#include "vad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

asr_transcribe_params asr_transcribe_default_params(void)
{
    return (asr_transcribe_params){
        .task = ASR_TASK_TRANSCRIBE,
        .language = NULL,
        .beam_size = 1,
        .patience = 1.0f,
        .best_of = 5,
        .temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f},
        .n_temperatures = 6,
        .compression_ratio_threshold = 2.4f,
        .logprob_threshold = -1.0f,
        .no_speech_threshold = 0.6f,
        .condition_on_previous_text = 1,
        .prompt_reset_on_temperature = 0.5f,
        .initial_prompt = NULL,
        .without_timestamps = 0,
        .max_initial_timestamp = 1.0f,
        .suppress_blank = 1,
        .suppress_tokens_default = 1,
        .length_penalty = NAN,
        .seed = 0x5eed,
        .n_threads = 0,
        .vad_filter = 0,
        .vad = asr_vad_default_params(),
        .batch_size = 0,
    };
}

static asr_status check_params(const asr_transcribe_params *p, asr_error *err)
{
    if (p->task != ASR_TASK_TRANSCRIBE && p->task != ASR_TASK_TRANSLATE)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "task must be transcribe or translate");
    if (p->beam_size < 0 || p->beam_size > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "beam_size must be between 1 and %d", ASR_MAX_BATCH);
    if (p->best_of < 0 || p->best_of > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "best_of must be between 1 and %d", ASR_MAX_BATCH);
    if (!(p->patience > 0.0f) || p->patience * (float)p->beam_size > 2.0f * ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "patience must be positive (and beam_size·patience ≤ %d)",
                        2 * ASR_MAX_BATCH);
    if (p->n_temperatures < 1 || p->n_temperatures > ASR_MAX_TEMPERATURES)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "between 1 and %d temperatures are needed", ASR_MAX_TEMPERATURES);
    if (p->batch_size < 0 || p->batch_size > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "batch_size must be between 0 and %d", ASR_MAX_BATCH);
    for (int i = 0; i < p->n_temperatures; i++)
        if (!(p->temperatures[i] >= 0.0f && p->temperatures[i] <= 2.0f))
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "temperature %g is outside [0, 2]", p->temperatures[i]);
    return ASR_OK;
}

/* Language index for the request, detecting it from the first window when asked. */
/* The encoder's input window: frames [from, from+take) of the whole mel
 * (n_mels, n_frames), zero-padded to ASR_N_FRAMES as openai's pad_or_trim. */
static void load_window(asr_state *st, const float *mel, int n_mels, int n_frames, int from, int take)
{
    for (int c = 0; c < n_mels; c++) {
        float *row = st->mel + (size_t)c * ASR_N_FRAMES;
        memcpy(row, mel + (size_t)c * n_frames + from, (size_t)take * sizeof(float));
        memset(row + take, 0, (size_t)(ASR_N_FRAMES - take) * sizeof(float));
    }
}

static asr_status resolve_language(asr_state *st, const asr_transcribe_params *p, const float *mel, int n_frames,
                                   int *lang, asr_error *err)
{
    const asr_model *m = st->model;
    int auto_detect = !p->language || !*p->language || strcmp(p->language, "auto") == 0;
    if (!m->multilingual) {
        if (!auto_detect && asr_lang_find(p->language) != 0)
            return asr_fail(err, ASR_ERR_UNSUPPORTED, "model is English-only; language '%s' is not available",
                            p->language);
        if (p->task == ASR_TASK_TRANSLATE)
            return asr_fail(err, ASR_ERR_UNSUPPORTED, "model is English-only and cannot translate");
        *lang = 0;
        return ASR_OK;
    }
    if (!auto_detect) {
        int i = asr_lang_find(p->language);
        if (i < 0 || i >= m->tok.n_langs)
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "unknown language '%s'", p->language);
        *lang = i;
        return ASR_OK;
    }
    /* detect on the first 30 s of the padded mel, as transcribe() does */
    int nm = m->hp.n_mels;
    load_window(st, mel, nm, n_frames, 0, n_frames < ASR_N_FRAMES ? n_frames : ASR_N_FRAMES);
    asr_status s = asr_encode(st, st->mel, err);
    if (s == ASR_OK) s = asr_detect_language_encoded(st, NULL, lang, err);
    return s;
}

static int has_text(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 1;
    return 0;
}

typedef struct token_list {
    int *v;
    int n, cap;
} token_list;

static int token_list_append(token_list *l, const int *ids, int n)
{
    if (l->n + n > l->cap) {
        int cap = l->cap ? l->cap : 256;
        while (cap < l->n + n) cap *= 2;
        int *v = realloc(l->v, (size_t)cap * sizeof(int));
        if (!v) return 0;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v + l->n, ids, (size_t)n * sizeof(int));
    l->n += n;
    return 1;
}

/* Emit a segment for tokens [0, n) of the window; returns status. */
static asr_status add_segment(asr_result *res, const asr_model *m, const asr_transcribe_params *p, int seek,
                              double start, double end, const int *tokens, int n, const asr_decode_result *dr,
                              token_list *all_tokens, asr_error *err)
{
    char *text = asr_tokenizer_decode(m->tokenizer, tokens, n, m->tok.eot);
    if (!text) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    /* an instantaneous segment or one without text is emptied (openai keeps
     * it with no text; we drop it from the result but not from the seek math) */
    if (start == end || !has_text(text)) {
        free(text);
        return ASR_OK;
    }
    /* The model may close the last segment with a timestamp in the window's
     * zero padding (openai and faster-whisper report it as is); a segment
     * never ends after the audio does. */
    if (end > res->duration) end = res->duration;
    if (start > end) start = end;
    asr_segment seg = {
        .id = res->n_segments,
        .seek = seek,
        .start = start,
        .end = end,
        .text = text,
        .tokens = tokens,
        .n_tokens = n,
        .temperature = dr->temperature,
        .avg_logprob = dr->avg_logprob,
        .compression_ratio = dr->compression_ratio,
        .no_speech_prob = dr->no_speech_prob,
    };
    asr_status s = asr_result_add_segment(res, &seg);
    free(text);
    if (s != ASR_OK) return asr_fail(err, s, "out of memory");
    if (!token_list_append(all_tokens, tokens, n)) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    /* with word timestamps the window's segments are reported once aligned */
    if (p->on_segment && !p->word_timestamps) p->on_segment(asr_result_segment(res, res->n_segments - 1), p->user_data);
    return ASR_OK;
}

int asr_needs_fallback(const asr_transcribe_params *p, const asr_decode_result *r)
{
    int needs = 0;
    if (p->compression_ratio_threshold > 0 && r->compression_ratio > p->compression_ratio_threshold)
        needs = 1; /* too repetitive */
    if (!isnan(p->logprob_threshold) && r->avg_logprob < p->logprob_threshold)
        needs = 1; /* too unlikely */
    if (!isnan(p->no_speech_threshold) && r->no_speech_prob > p->no_speech_threshold &&
        !isnan(p->logprob_threshold) && r->avg_logprob < p->logprob_threshold)
        needs = 0; /* silence */
    return needs;
}

int asr_window_is_silent(const asr_transcribe_params *p, const asr_decode_result *r)
{
    if (isnan(p->no_speech_threshold)) return 0;
    int skip = r->no_speech_prob > p->no_speech_threshold;
    if (!isnan(p->logprob_threshold) && r->avg_logprob > p->logprob_threshold) skip = 0;
    return skip;
}

/* State of one asr_transcribe call: the seek loop's variables. */
typedef struct transcription {
    asr_state *st;
    const asr_model *m;
    const asr_transcribe_params *p;
    asr_result *res;
    const float *mel;        /* (n_mels, n_frames): the audio plus 30 s of padding */
    int n_frames;
    int content_frames;      /* frames of real audio                        */
    int lang;
    token_list all_tokens;   /* prompt, then every emitted segment's tokens  */
    int prompt_reset_since;  /* conditioning uses all_tokens from here      */
    uint64_t rng;
    asr_decode_result dr;    /* the current window's accepted decode        */
    double last_speech;      /* word timestamps: end of the last speech so far */
} transcription;

asr_status asr_encode_prompt(const asr_model *m, const char *prompt, int **ids_out, int *n_out, asr_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    if (!prompt || !*prompt) return ASR_OK;
    const char *b = prompt;
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
    size_t len = strlen(b);
    while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t' || b[len - 1] == '\n' || b[len - 1] == '\r')) len--;
    char *text = malloc(len + 2);
    if (!text) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    text[0] = ' ';
    memcpy(text + 1, b, len);
    text[len + 1] = '\0';
    int n = asr_tokenizer_encode(m->tokenizer, text, NULL, 0);
    int *ids = n > 0 ? malloc((size_t)n * sizeof(int)) : NULL;
    if (n > 0 && ids) n = asr_tokenizer_encode(m->tokenizer, text, ids, n);
    free(text);
    if (n < 0 || (n > 0 && !ids)) {
        free(ids);
        return asr_fail(err, n < 0 ? ASR_ERR_INVALID_ARGUMENT : ASR_ERR_NO_MEMORY, "cannot encode the prompt");
    }
    *ids_out = ids;
    *n_out = n;
    return ASR_OK;
}

/* initial_prompt into all_tokens. */
static asr_status encode_initial_prompt(transcription *tr, asr_error *err)
{
    int *ids = NULL, n = 0;
    asr_status s = asr_encode_prompt(tr->m, tr->p->initial_prompt, &ids, &n, err);
    if (s == ASR_OK && n > 0 && !token_list_append(&tr->all_tokens, ids, n))
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "cannot encode the prompt");
    free(ids);
    return s;
}

/* openai decode_with_fallback: decode the encoded window at each
 * temperature in turn until a result needs no fallback (or none are left). */
static asr_status decode_with_fallback(transcription *tr, asr_error *err)
{
    const asr_transcribe_params *p = tr->p;
    for (int ti = 0; ti < p->n_temperatures; ti++) {
        asr_decode_options o = {
            .task = p->task,
            .lang_index = tr->m->multilingual ? tr->lang : -1,
            .temperature = p->temperatures[ti],
            .beam_size = p->beam_size,
            .patience = p->patience,
            .best_of = p->best_of,
            .prompt = tr->all_tokens.v + tr->prompt_reset_since,
            .n_prompt = tr->all_tokens.n - tr->prompt_reset_since,
            .without_timestamps = p->without_timestamps,
            .max_initial_timestamp = p->max_initial_timestamp,
            .suppress_blank = p->suppress_blank,
            .suppress_tokens = p->suppress_tokens_default,
            .length_penalty = p->length_penalty,
            .rng = &tr->rng,
            .should_abort = p->should_abort,
            .user_data = p->user_data,
        };
        asr_status s = asr_decode_window(tr->st, &o, &tr->dr, err);
        if (s != ASR_OK) return s;
        if (!asr_needs_fallback(p, &tr->dr)) break;
    }
    return ASR_OK;
}

/* Segments of the decoded window at *seek (segment_size frames): cut at
 * each pair of consecutive timestamps, or one segment when there is none;
 * advances *seek as openai does. *single_ending: the window ended on one
 * timestamp. */
static asr_status emit_segments(transcription *tr, int *seek, int segment_size, int *single_ending, asr_error *err)
{
    const asr_model *m = tr->m;
    const int input_stride = ASR_N_FRAMES / m->hp.n_audio_ctx;                            /* 2 */
    const double time_precision = (double)input_stride * ASR_HOP_LENGTH / ASR_SAMPLE_RATE; /* 0.02 s */
    const double time_offset = (double)*seek * ASR_HOP_LENGTH / ASR_SAMPLE_RATE;
    const int *tok = tr->dr.tokens;
    const int n = tr->dr.n_tokens, tb = m->tok.timestamp_begin, window_seek = *seek;
    *single_ending = n >= 2 && tok[n - 2] < tb && tok[n - 1] >= tb;
    int n_consecutive = 0, last_slice = 0;
    for (int i = 1; i < n; i++)
        if (tok[i - 1] >= tb && tok[i] >= tb) n_consecutive++;
    asr_status s;
    if (n_consecutive > 0) {
        for (int i = 1; i <= n; i++) {
            int is_cut = (i < n && tok[i - 1] >= tb && tok[i] >= tb) || (i == n && *single_ending);
            if (!is_cut) continue;
            const int *slice = tok + last_slice;
            int len = i - last_slice;
            double start = time_offset + (slice[0] - tb) * time_precision;
            double end = time_offset + (slice[len - 1] - tb) * time_precision;
            s = add_segment(tr->res, m, tr->p, window_seek, start, end, slice, len, &tr->dr, &tr->all_tokens, err);
            if (s != ASR_OK) return s;
            last_slice = i;
        }
        if (*single_ending) *seek += segment_size;
        else *seek += (tok[last_slice - 1] - tb) * input_stride; /* up to the last timestamp */
        return ASR_OK;
    }
    double duration = (double)segment_size * ASR_HOP_LENGTH / ASR_SAMPLE_RATE;
    int last_ts = -1;
    for (int i = 0; i < n; i++)
        if (tok[i] >= tb) last_ts = tok[i];
    if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * time_precision;
    s = add_segment(tr->res, m, tr->p, window_seek, time_offset, time_offset + duration, tok, n, &tr->dr,
                    &tr->all_tokens, err);
    if (s != ASR_OK) return s;
    *seek += segment_size;
    return ASR_OK;
}

/* Word timing of the window's segments (from first_segment), which also
 * moves the next window's start to after the last word, then reports them. */
static asr_status time_words(transcription *tr, int first_segment, int window_seek, int segment_size,
                             int single_ending, int *seek, asr_error *err)
{
    const asr_transcribe_params *p = tr->p;
    const double time_offset = (double)window_seek * ASR_HOP_LENGTH / ASR_SAMPLE_RATE;
    asr_status s = asr_add_word_timestamps(tr->st, tr->res, first_segment, p->task, tr->m->multilingual ? tr->lang : -1,
                                           segment_size, &tr->last_speech, err);
    if (s != ASR_OK) return s;
    double last_word_end = asr_words_end(tr->res, first_segment);
    if (!single_ending && last_word_end > time_offset)
        *seek = (int)nearbyint(last_word_end * ASR_SAMPLE_RATE / ASR_HOP_LENGTH);
    if (last_word_end >= 0) tr->last_speech = last_word_end;
    for (int i = first_segment; p->on_segment && i < tr->res->n_segments; i++)
        p->on_segment(asr_result_segment(tr->res, i), p->user_data);
    return ASR_OK;
}

static void report_progress(const transcription *tr, int seek)
{
    if (tr->p->on_progress)
        tr->p->on_progress((float)(seek < tr->content_frames ? seek : tr->content_frames) / (float)tr->content_frames,
                           tr->p->user_data);
}

/* openai transcribe()'s loop: window by window from seek 0 to the end of the audio. */
static asr_status seek_loop(transcription *tr, asr_error *err)
{
    const asr_transcribe_params *p = tr->p;
    const int nm = tr->m->hp.n_mels;
    int seek = 0;
    while (seek < tr->content_frames) {
        const int segment_size = tr->content_frames - seek < ASR_N_FRAMES ? tr->content_frames - seek : ASR_N_FRAMES;
        load_window(tr->st, tr->mel, nm, tr->n_frames, seek, segment_size);
        asr_status s = asr_encode(tr->st, tr->st->mel, err);
        if (s == ASR_OK) s = decode_with_fallback(tr, err);
        if (s != ASR_OK) return s;
        if (asr_window_is_silent(p, &tr->dr)) {
            seek += segment_size;
            report_progress(tr, seek);
            continue;
        }
        const int window_seek = seek, first_segment = tr->res->n_segments;
        int single_ending = 0;
        s = emit_segments(tr, &seek, segment_size, &single_ending, err);
        if (s == ASR_OK && p->word_timestamps)
            s = time_words(tr, first_segment, window_seek, segment_size, single_ending, &seek, err);
        if (s != ASR_OK) return s;
        if (!p->condition_on_previous_text || tr->dr.temperature > p->prompt_reset_on_temperature)
            tr->prompt_reset_since = tr->all_tokens.n;
        report_progress(tr, seek);
    }
    return ASR_OK;
}

asr_status asr_transcribe(asr_state *st, const float *samples, size_t n_samples, const asr_transcribe_params *params,
                          asr_result **out, asr_error *err)
{
    asr_error_clear(err);
    if (!st || !out || (!samples && n_samples))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_transcribe: NULL argument");
    *out = NULL;
    asr_transcribe_params p = params ? *params : asr_transcribe_default_params();
    asr_status s = check_params(&p, err);
    if (s != ASR_OK) return s;
    if (p.vad_filter || p.batch_size > 0) return asr_transcribe_vad(st, samples, n_samples, &p, out, err);
    const asr_model *m = st->model;
    int n_threads = p.n_threads > 0 ? p.n_threads : m->n_threads;
    s = asr_state_set_threads(st, n_threads, err);
    if (s != ASR_OK) return s;

    transcription tr = {.st = st, .m = m, .p = &p, .rng = p.seed};
    float *mel = NULL;
    tr.res = asr_result_new();
    tr.dr.tokens = malloc((size_t)(m->hp.n_text_ctx + 1) * sizeof(int));
    if (!tr.res || !tr.dr.tokens) s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    if (s == ASR_OK) {
        tr.res->task = p.task;
        tr.res->duration = (double)n_samples / ASR_SAMPLE_RATE;
        s = asr_log_mel(samples, n_samples, ASR_N_SAMPLES, m->hp.n_mels, n_threads, &mel, &tr.n_frames, err);
    }
    if (s == ASR_OK) {
        tr.mel = mel;
        tr.content_frames = tr.n_frames - ASR_N_FRAMES;
        s = resolve_language(st, &p, mel, tr.n_frames, &tr.lang, err);
    }
    if (s == ASR_OK) {
        snprintf(tr.res->language, sizeof tr.res->language, "%s", asr_lang_code(tr.lang));
        s = encode_initial_prompt(&tr, err);
    }
    if (s == ASR_OK) s = seek_loop(&tr, err);
    if (s == ASR_OK) {
        s = asr_result_finish(tr.res);
        if (s != ASR_OK) s = asr_fail(err, s, "out of memory");
    }
    free(mel);
    free(tr.all_tokens.v);
    free(tr.dr.tokens);
    if (s != ASR_OK) {
        asr_result_free(tr.res);
        return s;
    }
    *out = tr.res;
    return ASR_OK;
}

asr_status asr_detect_language(asr_state *st, const float *samples, size_t n_samples, int *lang_index, float *probs,
                               asr_error *err)
{
    asr_error_clear(err);
    if (!st || !lang_index || (!samples && n_samples))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_detect_language: NULL argument");
    const asr_model *m = st->model;
    if (!m->multilingual) return asr_fail(err, ASR_ERR_UNSUPPORTED, "model is English-only");
    float *mel = NULL;
    int n_frames = 0;
    asr_status s = asr_log_mel(samples, n_samples, ASR_N_SAMPLES, m->hp.n_mels, m->n_threads, &mel, &n_frames, err);
    if (s != ASR_OK) return s;
    /* like openai's detect_language path: the first 30 s of the padded mel */
    load_window(st, mel, m->hp.n_mels, n_frames, 0, n_frames < ASR_N_FRAMES ? n_frames : ASR_N_FRAMES);
    free(mel);
    s = asr_encode(st, st->mel, err);
    if (s != ASR_OK) return s;
    if (probs)
        for (int i = 0; i < asr_lang_count(); i++) probs[i] = 0.0f;
    return asr_detect_language_encoded(st, probs, lang_index, err);
}
