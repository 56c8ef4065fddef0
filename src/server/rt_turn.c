/* rt_turn.c — a realtime session's transcription: its decoding state and model, partial decodes of the turn in progress, the final decode at commit. */
#include "server/rt_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned long long rt_turn_start(const rt_session *ss)
{
    unsigned long long pad = rt_ms_to_samples(ss->prefix_padding_ms);
    unsigned long long from = ss->speech_start > pad ? ss->speech_start - pad : 0;
    return from < ss->audio_base ? ss->audio_base : from;
}

static void send_delta(rt_session *ss, const char *item, char *delta)
{
    if (!delta) return;
    rt_send_event(ss, json_pack("{s:s, s:s, s:i, s:s}", "type", "conversation.item.input_audio_transcription.delta",
                             "item_id", item, "content_index", 0, "delta", delta));
    free(delta);
}

/* The decoding state for the session's model, made at the first decode; the
 * model's use count is held while it lives, so an idle unload cannot take it
 * (nor its scheduler). */
static asr_state *session_state(rt_session *ss, asr_error *err)
{
    if (ss->state) return ss->state;
    srv_model_set *set = ss->srv->cfg.models;
    const asr_model *model = ss->srv->model;
    srv_model *m = NULL;
    if (set) {
        if (!(m = srv_model_find(set, ss->model))) { /* checked by session.update: cannot happen */
            err->code = ASR_ERR_INVALID_ARGUMENT;
            snprintf(err->message, sizeof err->message, "model '%s' is not served here", ss->model);
            return NULL;
        }
        if (!(model = srv_model_acquire(m, err))) return NULL;
    }
    /* on the model's scheduler (--decode-batch), so realtime turns share the
     * compute, and the decoder steps, of the HTTP requests */
    ss->state = m ? srv_model_state_new(m, model, err) : asr_state_new(model, err);
    if (!ss->state) {
        if (m) srv_model_release(m);
        return NULL;
    }
    ss->held = m;
    return ss->state;
}

void rt_drop_state(rt_session *ss)
{
    asr_state_free(ss->state);
    ss->state = NULL;
    if (ss->held) srv_model_release(ss->held);
    ss->held = NULL;
}

static int should_abort(void *user)
{
    rt_session *ss = user;
    return atomic_load(&ss->srv->draining) || ss->closing || srv_now() - ss->t_open > ss->lim.max_session_s;
}

static int partial_should_abort(void *user)
{
    rt_session *ss = user;
    return atomic_load(&ss->partial_abort) || should_abort(user);
}

static asr_transcribe_params turn_params(rt_session *ss)
{
    asr_transcribe_params tp = asr_transcribe_default_params();
    tp.language = ss->language[0] ? ss->language : NULL;
    tp.initial_prompt = ss->prompt && ss->prompt[0] ? ss->prompt : NULL;
    tp.n_threads = ss->srv->cfg.threads;
    tp.should_abort = should_abort;
    tp.user_data = ss;
    return tp;
}

/* The partial decode's thread. It reads session fields that only change
 * once it is stopped (stop_partial): state, language, prompt, deltas. */
static void *partial_main(void *arg)
{
    rt_session *ss = arg;
    asr_transcribe_params tp = turn_params(ss);
    tp.should_abort = partial_should_abort;
    asr_result *result = NULL;
    asr_error err = {0};
    double t0 = srv_now();
    asr_status st = asr_transcribe(ss->state, ss->partial_audio, ss->partial_n, &tp, &result, &err);
    int aborted = st == ASR_ERR_CANCELLED || atomic_load(&ss->partial_abort);
    srv_metrics_realtime_partial(ss->srv->metrics, aborted, srv_now() - t0);
    if (st == ASR_OK && !aborted)
        send_delta(ss, ss->partial_item, rt_deltas_partial(&ss->deltas, asr_result_text(result)));
    asr_result_free(result);
    atomic_store(&ss->partial_done, 1);
    return NULL;
}

/* Stop the partial decode, if one runs, and wait for it (it stops at its next
 * decoder step; an encoder pass in progress finishes first). */
void rt_stop_partial(rt_session *ss)
{
    if (!ss->partial_started) return;
    atomic_store(&ss->partial_abort, 1);
    pthread_join(ss->partial_thread, NULL);
    ss->partial_started = 0;
}

/* With server VAD, during a turn: once partial_s more seconds of speech have
 * come, decode the turn so far on another thread, so reading goes on. One at
 * a time: while one runs, new audio waits for the next (never a queue). */
void rt_maybe_start_partial(rt_session *ss)
{
    unsigned long long end = ss->audio_base + ss->audio_len;
    if (ss->lim.partial_s <= 0 || !ss->vad_on || !ss->speaking || ss->closing || end < ss->partial_next) return;
    if (ss->partial_started) {
        if (!atomic_load(&ss->partial_done)) return;
        pthread_join(ss->partial_thread, NULL);
        ss->partial_started = 0;
    }
    asr_error err = {0};
    if (!session_state(ss, &err)) return; /* the turn's final decode reports it */
    unsigned long long from = rt_turn_start(ss);
    size_t n = (size_t)(end - from);
    if (n > ss->partial_cap) {
        float *grown = realloc(ss->partial_audio, n * sizeof *grown);
        if (!grown) return;
        ss->partial_audio = grown;
        ss->partial_cap = n;
    }
    memcpy(ss->partial_audio, ss->audio + (from - ss->audio_base), n * sizeof *ss->partial_audio);
    ss->partial_n = n;
    snprintf(ss->partial_item, sizeof ss->partial_item, "%s", ss->pending_item);
    ss->partial_next = end + (unsigned long long)(ss->lim.partial_s * ASR_SAMPLE_RATE);
    atomic_store(&ss->partial_done, 0);
    atomic_store(&ss->partial_abort, 0);
    if (pthread_create(&ss->partial_thread, NULL, partial_main, ss) == 0) ss->partial_started = 1;
}

/* The final decode's segments stream as deltas too, past what the partials sent. */
static void on_segment(const asr_segment *seg, void *user)
{
    rt_session *ss = user;
    const char *text = seg->text ? seg->text : "";
    size_t n = strlen(text);
    if (ss->final_len + n + 1 > ss->final_cap) {
        size_t cap = (ss->final_len + n + 1) * 2;
        char *grown = realloc(ss->final_text, cap);
        if (!grown) return; /* the completed event still carries the text */
        ss->final_text = grown;
        ss->final_cap = cap;
    }
    memcpy(ss->final_text + ss->final_len, text, n + 1);
    ss->final_len += n;
    send_delta(ss, ss->cur_item, rt_deltas_final(&ss->deltas, ss->final_text));
}

/* The whole turn, after its partial decode stops: committed, then its final decode, whose
 * segments stream as deltas past what the partials sent, then completed (or failed). */
void rt_commit_turn(rt_session *ss, unsigned long long from, unsigned long long to, const char *item_id)
{
    rt_stop_partial(ss);
    if (from < ss->audio_base) from = ss->audio_base;
    if (to > ss->audio_base + ss->audio_len) to = ss->audio_base + ss->audio_len;
    const float *samples = ss->audio + (from - ss->audio_base);
    size_t n = to > from ? (size_t)(to - from) : 0;
    char item[40];
    if (item_id && *item_id) snprintf(item, sizeof item, "%s", item_id);
    else snprintf(item, sizeof item, "item_%s_%llu", ss->session_id + 5, ++ss->n_items);
    rt_send_event(ss, json_pack("{s:s, s:s?, s:s}", "type", "input_audio_buffer.committed", "previous_item_id",
                             ss->last_item[0] ? ss->last_item : NULL, "item_id", item));
    snprintf(ss->last_item, sizeof ss->last_item, "%s", item);
    srv_metrics_realtime_turn(ss->srv->metrics);

    asr_error err = {0};
    asr_status st = ASR_OK;
    if (!session_state(ss, &err)) st = err.code ? err.code : ASR_ERR_NO_MEMORY;
    asr_result *result = NULL;
    if (st == ASR_OK) {
        asr_transcribe_params tp = turn_params(ss);
        tp.on_segment = on_segment;
        ss->final_len = 0;
        ss->cur_item = item;
        double t0 = srv_now();
        st = asr_transcribe(ss->state, samples, n, &tp, &result, &err);
        srv_metrics_job(ss->srv->metrics, st == ASR_OK ? "ok" : st == ASR_ERR_CANCELLED ? "cancelled" : "error",
                        (double)n / ASR_SAMPLE_RATE, srv_now() - t0);
    }
    char *transcript = st == ASR_OK ? rt_normalise(asr_result_text(result)) : NULL;
    if (transcript) {
        send_delta(ss, item, rt_deltas_final(&ss->deltas, transcript));
        rt_send_event(ss, json_pack("{s:s, s:s, s:i, s:s}", "type", "conversation.item.input_audio_transcription.completed",
                                 "item_id", item, "content_index", 0, "transcript", transcript));
    } else if (!ss->closing) {
        rt_send_event(ss, json_pack("{s:s, s:s, s:i, s:{s:s, s:s, s:s}}", "type",
                                 "conversation.item.input_audio_transcription.failed", "item_id", item, "content_index", 0,
                                 "error", "type", "server_error", "code", "transcription_failed", "message",
                                 st == ASR_OK ? "out of memory" : err.message[0] ? err.message : "transcription failed"));
    }
    free(transcript);
    asr_result_free(result);
    rt_deltas_reset(&ss->deltas);

    /* the committed audio (and anything before it) leaves the buffer */
    size_t drop = (size_t)(to - ss->audio_base);
    if (drop > ss->audio_len) drop = ss->audio_len;
    memmove(ss->audio, ss->audio + drop, (ss->audio_len - drop) * sizeof *ss->audio);
    ss->audio_len -= drop;
    ss->audio_base += drop;
    if (ss->vad_pos < ss->audio_base) ss->vad_pos = ss->audio_base;
}
