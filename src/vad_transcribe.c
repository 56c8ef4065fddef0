/* vad_transcribe.c — faster-whisper's vad_filter: transcribe only the speech chunks Silero VAD finds,
 * then put segment and word times back on the input's timeline (restore_speech_timestamps). */
#include "vad.h"

#include <stdlib.h>
#include <string.h>

typedef struct vad_filter_ctx {
    const asr_transcribe_params *outer; /* the caller's callbacks and user_data */
    const asr_vad_segment *chunks;
    size_t n_chunks;
} vad_filter_ctx;

/* Map a segment's times in place; words (may be NULL when it has none) is
 * where the mapped words go, and may be the segment's own array. */
static void restore_times(asr_segment *seg, asr_word *words, const asr_vad_segment *chunks, size_t n)
{
    if (seg->n_words > 0 && words) {
        for (int k = 0; k < seg->n_words; k++) {
            asr_word w = seg->words[k];
            /* both ends of a word resolve to the same chunk: the one its middle is in */
            size_t chunk = asr_vad_chunk_index(chunks, n, (w.start + w.end) / 2, 0);
            w.start = asr_vad_original_time(chunks, n, w.start, (long)chunk, 0);
            w.end = asr_vad_original_time(chunks, n, w.end, (long)chunk, 0);
            words[k] = w;
        }
        seg->words = words;
        seg->start = words[0].start;
        seg->end = words[seg->n_words - 1].end;
    } else {
        seg->start = asr_vad_original_time(chunks, n, seg->start, -1, 0);
        seg->end = asr_vad_original_time(chunks, n, seg->end, -1, 1);
    }
}

static void on_segment_restored(const asr_segment *segment, void *user_data)
{
    vad_filter_ctx *c = user_data;
    asr_segment copy = *segment;
    asr_word *words = copy.n_words > 0 ? malloc((size_t)copy.n_words * sizeof *words) : NULL;
    if (!words) copy.n_words = 0, copy.words = NULL; /* out of memory: report it without words */
    restore_times(&copy, words, c->chunks, c->n_chunks);
    c->outer->on_segment(&copy, c->outer->user_data);
    free(words);
}

static void on_progress_passed(float fraction, void *user_data)
{
    vad_filter_ctx *c = user_data;
    c->outer->on_progress(fraction, c->outer->user_data);
}

static int should_abort_passed(void *user_data)
{
    vad_filter_ctx *c = user_data;
    return c->outer->should_abort(c->outer->user_data);
}

asr_status asr_transcribe_vad(asr_state *st, const float *samples, size_t n_samples,
                              const asr_transcribe_params *params, asr_result **out, asr_error *err)
{
    asr_vad_model *vad = NULL;
    asr_vad_segment *chunks = NULL;
    size_t n_chunks = 0, n_speech = 0;
    float *speech = NULL;
    asr_vad_params vp = params->vad;
    /* batched windows hold at most 30 s: longer speech is split, as faster-whisper's batched pipeline does */
    if (params->batch_size > 0 && !(vp.max_speech_duration_s <= ASR_CHUNK_SECONDS))
        vp.max_speech_duration_s = ASR_CHUNK_SECONDS;
    asr_status s = asr_vad_model_load(NULL, &vad, err); /* the built-in weights: nothing is copied */
    if (s == ASR_OK) s = asr_vad_segments(vad, samples, n_samples, &vp, &chunks, &n_chunks, err);
    asr_vad_model_free(vad);
    if (s == ASR_OK) s = asr_vad_collect(samples, n_samples, chunks, n_chunks, &speech, &n_speech, err);
    if (s != ASR_OK) {
        free(chunks);
        return s;
    }
    static const float none[1] = {0.0f};
    vad_filter_ctx ctx = {.outer = params, .chunks = chunks, .n_chunks = n_chunks};
    asr_transcribe_params inner = *params;
    inner.vad_filter = 0;
    inner.user_data = &ctx;
    inner.on_segment = params->on_segment ? on_segment_restored : NULL;
    inner.on_progress = params->on_progress ? on_progress_passed : NULL;
    inner.should_abort = params->should_abort ? should_abort_passed : NULL;
    asr_result *res = NULL;
    if (params->batch_size > 0)
        s = asr_transcribe_batched(st, speech ? speech : none, n_speech, chunks, n_chunks, &inner, &res, err);
    else
        s = asr_transcribe(st, speech ? speech : none, n_speech, &inner, &res, err);
    free(speech);
    if (s == ASR_OK) {
        for (int i = 0; n_chunks && i < res->n_segments; i++) {
            asr_segment *seg = &res->segments[i];
            restore_times(seg, (asr_word *)seg->words, chunks, n_chunks);
        }
        res->duration = (double)n_samples / ASR_SAMPLE_RATE;
        *out = res;
    }
    free(chunks);
    return s;
}
