/* test_vad_transcribe.c — asr_transcribe() with vad_filter: the caller's callbacks see the segments
 * on the input's timeline with its own user_data, and should_abort still cancels. Needs the tiny.en
 * model ($ASR_TEST_MODEL, else ~/.cache/asr/models/tiny.en) and jfk.wav ($ASR_SHARED/testdata). */
#include "asr.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    int n_segments, n_progress, n_abort_polls, abort_after, bad_user_data, mismatch, n_words;
    double seg_start[64], seg_end[64], first_word_start[64];
} seen;

static seen *expected_user;

static void on_segment(const asr_segment *s, void *user_data)
{
    seen *c = user_data;
    if (c != expected_user) c->bad_user_data = 1;
    if (c->n_segments < 64) {
        c->seg_start[c->n_segments] = s->start;
        c->seg_end[c->n_segments] = s->end;
        c->first_word_start[c->n_segments] = s->n_words ? s->words[0].start : -1;
    }
    c->n_words += s->n_words;
    c->n_segments++;
}

static void on_progress(float f, void *user_data)
{
    seen *c = user_data;
    if (c != expected_user || !(f >= 0 && f <= 1)) c->bad_user_data = 1;
    c->n_progress++;
}

static int should_abort(void *user_data)
{
    seen *c = user_data;
    if (c != expected_user) c->bad_user_data = 1;
    return ++c->n_abort_polls > c->abort_after;
}

int main(void)
{
    char dir[4096], wav[4096];
    const char *env = getenv("ASR_TEST_MODEL"), *shared = getenv("ASR_SHARED");
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else snprintf(dir, sizeof dir, "%s/.cache/asr/models/tiny.en", getenv("HOME") ? getenv("HOME") : "");
    snprintf(wav, sizeof wav, "%s/testdata/jfk.wav", shared && *shared ? shared : "../shared");
    asr_error err;
    asr_model *model = NULL;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = 2;
    CHECK(asr_model_load(dir, &mp, &model, &err) == ASR_OK, "load %s: %s", dir, err.message);
    asr_audio jfk = {0};
    CHECK(asr_audio_decode_file(wav, NULL, &jfk, &err) == ASR_OK, "decode %s: %s", wav, err.message);
    if (!model || !jfk.samples) return CHECK_DONE();

    /* 4 s of silence, then the speech: everything moves by the silence less the padding */
    size_t lead = 4 * ASR_SAMPLE_RATE, n = lead + jfk.n_samples;
    float *audio = calloc(n, sizeof *audio);
    memcpy(audio + lead, jfk.samples, jfk.n_samples * sizeof *audio);
    asr_state *st = asr_state_new(model, &err);

    for (int words = 0; words <= 1; words++) {
        seen c = {.abort_after = 1 << 30};
        expected_user = &c;
        asr_transcribe_params tp = asr_transcribe_default_params();
        tp.vad_filter = 1;
        tp.word_timestamps = words;
        tp.on_segment = on_segment;
        tp.on_progress = on_progress;
        tp.should_abort = should_abort;
        tp.user_data = &c;
        asr_result *r = NULL;
        asr_status s = asr_transcribe(st, audio, n, &tp, &r, &err);
        CHECK(s == ASR_OK, "transcribe with vad_filter (words %d): %s", words, err.message);
        if (s != ASR_OK) continue;
        int ns = asr_result_n_segments(r), same = ns == c.n_segments && ns > 0 && ns <= 64;
        for (int i = 0; same && i < ns; i++) {
            const asr_segment *g = asr_result_segment(r, i);
            if (g->start != c.seg_start[i] || g->end != c.seg_end[i]) same = 0;
            if (words && (g->n_words == 0 || g->words[0].start != c.first_word_start[i])) same = 0;
        }
        CHECK(same, "on_segment saw the %d segments with the result's (restored) times", ns);
        CHECK(!c.bad_user_data && c.n_progress > 0 && c.n_abort_polls > 0,
              "callbacks got the caller's user_data (%d progress calls, %d abort polls)", c.n_progress,
              c.n_abort_polls);
        CHECK(ns > 0 && asr_result_segment(r, 0)->start >= 3.5 && asr_result_segment(r, 0)->start < 5.0,
              "first segment starts at %.2f s, after the 4 s of silence less the 0.4 s padding",
              ns ? asr_result_segment(r, 0)->start : -1.0);
        CHECK(asr_result_duration(r) == (double)n / ASR_SAMPLE_RATE, "duration is the input's (%.2f s)",
              asr_result_duration(r));
        if (words) CHECK(c.n_words > 15, "on_segment saw %d words", c.n_words);
        asr_result_free(r);
    }

    seen c = {.abort_after = 3};
    expected_user = &c;
    asr_transcribe_params tp = asr_transcribe_default_params();
    tp.vad_filter = 1;
    tp.should_abort = should_abort;
    tp.user_data = &c;
    asr_result *r = NULL;
    CHECK(asr_transcribe(st, audio, n, &tp, &r, &err) == ASR_ERR_CANCELLED && !r, "should_abort cancels: %s",
          err.message);

    tp = asr_transcribe_default_params();
    tp.vad_filter = 1;
    tp.vad.threshold = 7;
    CHECK(asr_transcribe(st, audio, n, &tp, &r, &err) == ASR_ERR_INVALID_ARGUMENT && !r, "bad VAD threshold: %s",
          err.message);

    asr_state_free(st);
    free(audio);
    asr_audio_free(&jfk);
    asr_model_free(model);
    return CHECK_DONE();
}
