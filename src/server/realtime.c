/* realtime.c — GET /v1/realtime?intent=transcription: OpenAI-Realtime-style live transcription over a WebSocket (handshake, frames, events, server VAD). */
#include "server/rt_session.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* ---- limits (environment, read when a session opens) ----------------------- */

static double env_double(const char *name, double fallback, double lo, double hi)
{
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    double d = strtod(v, &end);
    return (*end || !(d >= lo && d <= hi)) ? fallback : d;
}

static rt_limits rt_limits_from_env(void)
{
    rt_limits l;
    l.max_sessions = (int)env_double("ASR_REALTIME_MAX_SESSIONS", 8, 1, 10000);
    l.idle_s = env_double("ASR_REALTIME_IDLE_S", 60, 0.1, 86400);
    l.max_session_s = env_double("ASR_REALTIME_MAX_SESSION_S", 1800, 1, 86400 * 7);
    l.max_buffer_s = env_double("ASR_REALTIME_MAX_BUFFER_S", 60, 1, 3600);
    l.max_message = (size_t)env_double("ASR_REALTIME_MAX_MESSAGE_BYTES", 4 << 20, 1024, 64 << 20);
    l.partial_s = env_double("ASR_REALTIME_PARTIAL_S", 1, 0, 3600);
    return l;
}

/* ---- sending (the session's fields are in rt_session.h) ---- */

static int send_all(rt_session *ss, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = send(ss->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { ss->closing = 1; return -1; } /* gone, or not reading for the send timeout */
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_frame(rt_session *ss, int opcode, const void *data, size_t n)
{
    pthread_mutex_lock(&ss->send_mu);
    int r = -1;
    if (!ss->closing) {
        uint8_t head[10];
        size_t hn = ws_frame_header(head, opcode, n);
        r = send_all(ss, head, hn) != 0 ? -1 : n ? send_all(ss, data, n) : 0;
    }
    pthread_mutex_unlock(&ss->send_mu);
    return r;
}

static void send_close(rt_session *ss, int code, const char *reason)
{
    if (ss->closing) return;
    uint8_t payload[125];
    size_t n = 0;
    if (code != 1005) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        n = strlen(reason);
        if (n > 123) n = 123;
        memcpy(payload + 2, reason, n);
        n += 2;
    }
    send_frame(ss, WS_OP_CLOSE, payload, n);
    ss->closing = 1;
}

/* Adds the event's event_id; called from the session thread and its partial decode's. */
void rt_send_event(rt_session *ss, json_t *ev)
{
    if (!ev) return;
    pthread_mutex_lock(&ss->send_mu); /* recursive: send_frame takes it again */
    char id[40];
    snprintf(id, sizeof id, "event_%llu", ++ss->n_events);
    json_object_set_new(ev, "event_id", json_string(id));
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (text) send_frame(ss, WS_OP_TEXT, text, strlen(text));
    pthread_mutex_unlock(&ss->send_mu);
    free(text);
}

/* The error event: {"type":"error","error":{type, code, message, param, event_id}}. */
static void send_error(rt_session *ss, const char *code, const char *param, const char *client_event_id, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
static void send_error(rt_session *ss, const char *code, const char *param, const char *client_event_id, const char *fmt,
                       ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ws_utf8_valid((const uint8_t *)msg, strlen(msg))) snprintf(msg, sizeof msg, "invalid event");
    rt_send_event(ss, json_pack("{s:s, s:{s:s, s:s, s:s, s:s?, s:s?}}", "type", "error", "error", "type",
                             "invalid_request_error", "code", code, "message", msg, "param", param, "event_id",
                             client_event_id));
}

/* The session as OpenAI shows it: the beta shape, or GA's (ga) with the
 * audio settings under audio.input. */
static json_t *session_json(const rt_session *ss, int ga)
{
    json_t *td = json_null();
    if (ss->vad_on)
        td = json_pack("{s:s, s:f, s:i, s:i}", "type", "server_vad", "threshold", ss->threshold, "prefix_padding_ms",
                       ss->prefix_padding_ms, "silence_duration_ms", ss->silence_duration_ms);
    json_t *tr = json_pack("{s:s, s:s?, s:s}", "model", ss->model, "language", ss->language[0] ? ss->language : NULL,
                           "prompt", ss->prompt ? ss->prompt : "");
    if (ga)
        return json_pack("{s:s, s:s, s:s, s:{s:{s:{s:s, s:i}, s:o, s:o, s:n}}, s:[]}", "type", "transcription", "id",
                         ss->session_id, "object", "realtime.transcription_session", "audio", "input", "format", "type",
                         "audio/pcm", "rate", 24000, "transcription", tr, "turn_detection", td, "noise_reduction",
                         "include");
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:[]}", "id", ss->session_id, "object", "realtime.transcription_session",
                     "input_audio_format", "pcm16", "input_audio_transcription", tr, "turn_detection", td, "include");
}

/* ---- server VAD ---- */

/* Run the VAD over every whole frame not seen yet; a silence of
 * silence_duration_ms after speech ends the turn. */
static void run_vad(rt_session *ss)
{
    double neg = ss->threshold - 0.15 > 0.01 ? ss->threshold - 0.15 : 0.01;
    while (!ss->closing && ss->vad_pos + ASR_VAD_FRAME_SAMPLES <= ss->audio_base + ss->audio_len) {
        float p = asr_vad_stream_push(ss->vad, ss->audio + (ss->vad_pos - ss->audio_base));
        ss->vad_pos += ASR_VAD_FRAME_SAMPLES;
        if (!ss->speaking) {
            if (p >= ss->threshold) {
                ss->speaking = 1;
                ss->speech_start = ss->vad_pos - ASR_VAD_FRAME_SAMPLES;
                ss->silence_samples = 0;
                snprintf(ss->pending_item, sizeof ss->pending_item, "item_%s_%llu", ss->session_id + 5, ++ss->n_items);
                rt_deltas_reset(&ss->deltas);
                ss->partial_next = ss->speech_start + (unsigned long long)(ss->lim.partial_s * ASR_SAMPLE_RATE);
                rt_send_event(ss, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_started",
                                         "audio_start_ms", (json_int_t)rt_samples_to_ms(rt_turn_start(ss)), "item_id", ss->pending_item));
            } else {
                /* silence outside a turn: keep only what prefix padding may need */
                unsigned long long keep = rt_ms_to_samples(ss->prefix_padding_ms) + ASR_VAD_FRAME_SAMPLES;
                if (ss->vad_pos > ss->audio_base + keep) {
                    size_t drop = (size_t)(ss->vad_pos - keep - ss->audio_base);
                    memmove(ss->audio, ss->audio + drop, (ss->audio_len - drop) * sizeof *ss->audio);
                    ss->audio_len -= drop;
                    ss->audio_base += drop;
                }
            }
            continue;
        }
        if (p < neg) ss->silence_samples += ASR_VAD_FRAME_SAMPLES;
        else if (p >= ss->threshold) ss->silence_samples = 0;
        int too_long = ss->vad_pos - ss->speech_start >= rt_max_buffer_samples(ss) - rt_ms_to_samples(ss->prefix_padding_ms) - 2 * ASR_VAD_FRAME_SAMPLES;
        if (ss->silence_samples >= rt_ms_to_samples(ss->silence_duration_ms) || too_long) {
            unsigned long long end = ss->vad_pos;
            rt_stop_partial(ss); /* its deltas go out before speech_stopped */
            rt_send_event(ss, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_stopped", "audio_end_ms",
                                     (json_int_t)rt_samples_to_ms(end - ss->silence_samples), "item_id", ss->pending_item));
            unsigned long long from = rt_turn_start(ss);
            ss->speaking = 0;
            char item[40];
            snprintf(item, sizeof item, "%s", ss->pending_item);
            ss->pending_item[0] = 0;
            rt_commit_turn(ss, from, end, item);
        }
    }
}

/* ---- client events ---- */

static int append_audio(rt_session *ss, const float *x, size_t n)
{
    if (ss->audio_len + n > ss->audio_cap) {
        size_t cap = ss->audio_cap ? ss->audio_cap : 16384;
        while (cap < ss->audio_len + n) cap *= 2;
        float *grown = realloc(ss->audio, cap * sizeof *grown);
        if (!grown) return -1;
        ss->audio = grown;
        ss->audio_cap = cap;
    }
    memcpy(ss->audio + ss->audio_len, x, n * sizeof *x);
    ss->audio_len += n;
    return 0;
}

static void on_append(rt_session *ss, json_t *ev, const char *eid)
{
    json_t *audio = json_object_get(ev, "audio");
    if (!json_is_string(audio))
        return send_error(ss, "invalid_value", "audio", eid, "input_audio_buffer.append needs \"audio\": base64 PCM16");
    const char *b64 = json_string_value(audio);
    size_t blen = json_string_length(audio);
    uint8_t *pcm = malloc(3 * (blen / 4) + 1);
    float *in = malloc((3 * (blen / 4) / 2 + 1) * sizeof *in);
    float *out = malloc((3 * (blen / 4) / 3 + 4) * sizeof *out);
    long n = pcm && in && out ? ws_base64_decode(b64, blen, pcm) : -2;
    if (n == -2) send_error(ss, "server_error", NULL, eid, "out of memory");
    else if (n < 0) send_error(ss, "invalid_value", "audio", eid, "\"audio\" is not valid base64");
    else if (n % 2) send_error(ss, "invalid_value", "audio", eid, "PCM16 audio must be a whole number of 16-bit samples");
    else {
        size_t ns = (size_t)n / 2;
        for (size_t i = 0; i < ns; i++) in[i] = (float)(int16_t)(pcm[2 * i] | pcm[2 * i + 1] << 8) / 32768.0f;
        long m = rs_push(&ss->rs, in, ns, out);
        if (m < 0) send_error(ss, "server_error", NULL, eid, "out of memory");
        else if (!ss->vad_on && ss->audio_len + (size_t)m > rt_max_buffer_samples(ss))
            send_error(ss, "input_audio_buffer_full", "audio", eid,
                       "the input audio buffer holds at most %.0f s; commit or clear it (audio dropped)",
                       ss->lim.max_buffer_s);
        else {
            /* in VAD mode, feed frame by frame so a long turn is cut before the buffer is full */
            for (long off = 0; off < m && !ss->closing;) {
                long k = m - off < ASR_VAD_FRAME_SAMPLES ? m - off : ASR_VAD_FRAME_SAMPLES;
                if (append_audio(ss, out + off, (size_t)k) != 0) { send_error(ss, "server_error", NULL, eid, "out of memory"); break; }
                off += k;
                if (ss->vad_on) run_vad(ss);
                rt_maybe_start_partial(ss);
            }
        }
    }
    free(pcm), free(in), free(out);
}

static void on_commit(rt_session *ss, const char *eid)
{
    if (ss->audio_len < ASR_SAMPLE_RATE / 10)
        return send_error(ss, "input_audio_buffer_commit_empty", NULL, eid,
                          "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                          "but buffer only has %.2fms of audio.", ss->audio_len * 1000.0 / ASR_SAMPLE_RATE);
    char item[40];
    snprintf(item, sizeof item, "%s", ss->pending_item);
    ss->pending_item[0] = 0;
    ss->speaking = 0;
    unsigned long long end = ss->audio_base + ss->audio_len;
    rt_commit_turn(ss, ss->audio_base, end, item);
    ss->vad_pos = ss->audio_base;
}

static void on_clear(rt_session *ss)
{
    rt_stop_partial(ss);
    rt_deltas_reset(&ss->deltas);
    ss->audio_base += ss->audio_len;
    ss->audio_len = 0;
    ss->vad_pos = ss->audio_base;
    ss->speaking = 0;
    ss->pending_item[0] = 0;
    if (ss->vad) asr_vad_stream_reset(ss->vad);
    rt_send_event(ss, json_pack("{s:s}", "type", "input_audio_buffer.cleared"));
}

/* The name of a session field as the client wrote it: the beta shape's
 * (session.input_audio_transcription.model) or GA's under audio.input
 * (session.audio.input.transcription.model). key: format, transcription, turn_detection. */
static const char *field_name(char *buf, size_t n, int ga, const char *key, const char *suffix)
{
    const char *beta = strcmp(key, "format") == 0 ? "input_audio_format"
                       : strcmp(key, "transcription") == 0 ? "input_audio_transcription" : key;
    snprintf(buf, n, "session.%s%s%s", ga ? "audio.input." : "", ga ? key : beta, suffix);
    return buf;
}

/* session.update / transcription_session.update: checked as a whole, applied only if all of it is valid.
 * Two shapes of session: the beta one (input_audio_format, input_audio_transcription, turn_detection)
 * and GA's ({"type": "transcription", "audio": {"input": {format, transcription, turn_detection}}}),
 * which the official SDK's types describe; the answer has the shape the update had. */
static void on_update(rt_session *ss, json_t *ev, const char *type, const char *eid)
{
    char pn[96];
#define FIELD(key, suffix) field_name(pn, sizeof pn, ga, key, suffix)
    json_t *sess = json_object_get(ev, "session");
    if (!json_is_object(sess)) return send_error(ss, "invalid_value", "session", eid, "%s needs a \"session\" object", type);
    json_t *stype = json_object_get(sess, "type");
    if (stype && !(json_is_string(stype) && strcmp(json_string_value(stype), "transcription") == 0))
        return send_error(ss, "invalid_value", "session.type", eid,
                          "this endpoint serves transcription sessions: session.type must be \"transcription\"");
    int ga = stype || json_object_get(sess, "audio");
    json_t *fmt, *tr, *td, *input = NULL;
    if (ga) {
        json_t *audio = json_object_get(sess, "audio");
        if (audio && !json_is_object(audio)) return send_error(ss, "invalid_value", "session.audio", eid, "must be an object");
        input = json_object_get(audio, "input");
        if (input && !json_is_object(input))
            return send_error(ss, "invalid_value", "session.audio.input", eid, "must be an object");
        fmt = json_object_get(input, "format");
        tr = json_object_get(input, "transcription");
        td = json_object_get(input, "turn_detection");
        json_t *nr = json_object_get(input, "noise_reduction");
        if (nr && !json_is_null(nr))
            return send_error(ss, "invalid_value", "session.audio.input.noise_reduction", eid,
                              "noise reduction is not supported here: leave it out or set it to null");
        if (fmt) {
            json_t *ft = json_object_get(fmt, "type"), *rate = json_object_get(fmt, "rate");
            if (!json_is_object(fmt) || (ft && !(json_is_string(ft) && strcmp(json_string_value(ft), "audio/pcm") == 0)) ||
                (rate && !(json_is_integer(rate) && json_integer_value(rate) == 24000)))
                return send_error(ss, "invalid_value", "session.audio.input.format", eid,
                                  "format must be {\"type\": \"audio/pcm\", \"rate\": 24000} (mono 16-bit little-endian)");
        }
    } else {
        fmt = json_object_get(sess, "input_audio_format");
        tr = json_object_get(sess, "input_audio_transcription");
        td = json_object_get(sess, "turn_detection");
        if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "pcm16") == 0))
            return send_error(ss, "invalid_value", "session.input_audio_format", eid,
                              "input_audio_format must be \"pcm16\" (24 kHz mono little-endian)");
    }
    char model[64], language[16];
    snprintf(model, sizeof model, "%s", ss->model);
    snprintf(language, sizeof language, "%s", ss->language);
    const char *prompt = NULL;
    if (tr && !json_is_null(tr)) {
        if (!json_is_object(tr)) return send_error(ss, "invalid_value", FIELD("transcription", ""), eid, "must be an object");
        json_t *v;
        if ((v = json_object_get(tr, "model"))) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof model)
                return send_error(ss, "invalid_value", FIELD("transcription", ".model"), eid, "must be a short string");
            snprintf(model, sizeof model, "%s", json_string_value(v));
        }
        if ((v = json_object_get(tr, "language")) && !json_is_null(v)) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof language)
                return send_error(ss, "invalid_value", FIELD("transcription", ".language"), eid,
                                  "must be a language code such as \"en\"");
            snprintf(language, sizeof language, "%s", json_string_value(v));
        }
        if ((v = json_object_get(tr, "prompt")) && !json_is_null(v)) {
            if (!json_is_string(v) || json_string_length(v) > SRV_PROMPT_MAX)
                return send_error(ss, "invalid_value", FIELD("transcription", ".prompt"), eid,
                                  "must be a string of at most %d bytes", SRV_PROMPT_MAX);
            prompt = json_string_value(v);
        }
    }
    srv_model_set *set = ss->srv->cfg.models;
    srv_model *picked = set ? srv_model_find(set, model) : NULL;
    if (set && !picked) {
        char names[1024];
        srv_models_names(set, names, sizeof names);
        return send_error(ss, "model_not_found", FIELD("transcription", ".model"), eid,
                          "The model `%.100s` does not exist or you do not have access to it. This server has %.400s.",
                          model, names);
    }
    int vad_on = ss->vad_on, prefix = ss->prefix_padding_ms, silence = ss->silence_duration_ms;
    double threshold = ss->threshold;
    if (td && json_is_null(td)) vad_on = 0;
    else if (td) {
        json_t *t = json_object_get(td, "type");
        if (!json_is_object(td) || !json_is_string(t) || strcmp(json_string_value(t), "server_vad") != 0)
            return send_error(ss, "invalid_value", FIELD("turn_detection", ".type"), eid,
                              "turn_detection must be null or {\"type\": \"server_vad\", ...}");
        vad_on = 1;
        json_t *v;
        if ((v = json_object_get(td, "threshold"))) {
            if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
                return send_error(ss, "invalid_value", FIELD("turn_detection", ".threshold"), eid, "must be a number in [0, 1]");
            threshold = json_number_value(v);
        }
        if ((v = json_object_get(td, "prefix_padding_ms"))) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000)
                return send_error(ss, "invalid_value", FIELD("turn_detection", ".prefix_padding_ms"), eid,
                                  "must be an integer in [0, 10000]");
            prefix = (int)json_integer_value(v);
        }
        if ((v = json_object_get(td, "silence_duration_ms"))) {
            if (!json_is_integer(v) || json_integer_value(v) < 32 || json_integer_value(v) > 10000)
                return send_error(ss, "invalid_value", FIELD("turn_detection", ".silence_duration_ms"), eid,
                                  "must be an integer in [32, 10000]");
            silence = (int)json_integer_value(v);
        }
        if (rt_ms_to_samples(prefix) + 4 * ASR_VAD_FRAME_SAMPLES >= rt_max_buffer_samples(ss))
            return send_error(ss, "invalid_value", FIELD("turn_detection", ".prefix_padding_ms"), eid,
                              "prefix padding must be well under the %.0f s buffer limit", ss->lim.max_buffer_s);
    }
#undef FIELD
    if (vad_on && !ss->vad) {
        asr_error err = {0};
        if (!ss->vad_model && asr_vad_model_load(NULL, &ss->vad_model, &err) != ASR_OK)
            return send_error(ss, "server_error", NULL, eid, "VAD unavailable: %s", err.message);
        if (asr_vad_stream_new(ss->vad_model, &ss->vad, &err) != ASR_OK)
            return send_error(ss, "server_error", NULL, eid, "VAD unavailable: %s", err.message);
    }
    char *copy = prompt ? strdup(prompt) : NULL;
    if (prompt && !copy) return send_error(ss, "server_error", NULL, eid, "out of memory");
    rt_stop_partial(ss); /* it reads the prompt, language and state changed below */
    if (copy) {
        free(ss->prompt);
        ss->prompt = copy;
    }
    if (ss->held && picked != ss->held) rt_drop_state(ss); /* another model: a state for it at the next decode */
    snprintf(ss->model, sizeof ss->model, "%s", model);
    snprintf(ss->language, sizeof ss->language, "%s", language);
    if (vad_on && !ss->vad_on) { ss->speaking = 0; ss->vad_pos = ss->audio_base + ss->audio_len; asr_vad_stream_reset(ss->vad); }
    ss->vad_on = vad_on;
    ss->threshold = threshold;
    ss->prefix_padding_ms = prefix;
    ss->silence_duration_ms = silence;
    ss->use_session_names = strcmp(type, "session.update") == 0;
    rt_send_event(ss, json_pack("{s:s, s:o}", "type", ss->use_session_names ? "session.updated" : "transcription_session.updated",
                             "session", session_json(ss, ga)));
}

static void on_message(rt_session *ss, const uint8_t *data, size_t len)
{
    json_error_t jerr;
    json_t *ev = json_loadb((const char *)data, len, 0, &jerr);
    if (!ev) return send_error(ss, "invalid_json", NULL, NULL, "the event is not valid JSON: %s", jerr.text);
    const char *eid = json_string_value(json_object_get(ev, "event_id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || !type) send_error(ss, "invalid_event", "type", eid, "an event is a JSON object with a string \"type\"");
    else if (strcmp(type, "input_audio_buffer.append") == 0) on_append(ss, ev, eid);
    else if (strcmp(type, "input_audio_buffer.commit") == 0) on_commit(ss, eid);
    else if (strcmp(type, "input_audio_buffer.clear") == 0) on_clear(ss);
    else if (strcmp(type, "transcription_session.update") == 0 || strcmp(type, "session.update") == 0)
        on_update(ss, ev, type, eid);
    else send_error(ss, "unknown_event", "type", eid, "unknown event type '%.100s'", type);
    json_decref(ev);
}

/* ---- the session thread ---- */

static void session_free(rt_session *ss)
{
    rt_stop_partial(ss);
    rt_deltas_reset(&ss->deltas);
    free(ss->partial_audio);
    free(ss->final_text);
    ws_reader_free(&ss->reader);
    free(ss->in);
    rs_free(&ss->rs);
    free(ss->audio);
    free(ss->prompt);
    asr_vad_stream_free(ss->vad);
    asr_vad_model_free(ss->vad_model);
    rt_drop_state(ss);
    pthread_mutex_destroy(&ss->send_mu);
    free(ss);
}

/* Parse and handle everything complete in the input buffer. */
static void drain_input(rt_session *ss)
{
    size_t off = 0;
    while (!ss->closing) {
        size_t used;
        ws_event ev = ws_reader_next(&ss->reader, ss->in + off, ss->in_len - off, &used);
        off += used;
        if (ev.kind == WS_EV_NEED_MORE) {
            if (!used) break;
            continue;
        }
        ss->t_last = srv_now();
        switch (ev.kind) {
        case WS_EV_MESSAGE:
            if (ev.opcode == WS_OP_TEXT) {
                on_message(ss, ev.data, ev.len);
                ss->t_last = srv_now(); /* time spent transcribing is not the client's idleness */
            } else send_close(ss, WS_CLOSE_UNSUPPORTED, "binary messages are not supported; send JSON text events");
            break;
        case WS_EV_PING: send_frame(ss, WS_OP_PONG, ev.data, ev.len); break;
        case WS_EV_PONG: break;
        case WS_EV_CLOSE: send_close(ss, ev.code == 1005 ? WS_CLOSE_NORMAL : ev.code, ""); break;
        case WS_EV_ERROR: send_close(ss, ev.code, ev.reason); break;
        default: break;
        }
    }
    memmove(ss->in, ss->in + off, ss->in_len - off);
    ss->in_len -= off;
}

static void *session_main(void *arg)
{
    rt_session *ss = arg;
    srv_server *s = ss->srv;
    /* MHD's socket is non-blocking: sends block (up to 10 s for a client that
     * does not read), reads go through poll. */
    int fl = fcntl(ss->fd, F_GETFL);
    if (fl >= 0) fcntl(ss->fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {10, 0};
    setsockopt(ss->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    rt_send_event(ss, json_pack("{s:s, s:o}", "type", ss->beta ? "transcription_session.created" : "session.created",
                             "session", session_json(ss, !ss->beta)));
    drain_input(ss); /* bytes MHD read past the handshake */
    while (!ss->closing) {
        double now = srv_now();
        if (atomic_load(&s->draining)) { send_close(ss, WS_CLOSE_GOING_AWAY, "server shutting down"); break; }
        if (now - ss->t_open > ss->lim.max_session_s) {
            send_error(ss, "session_expired", NULL, NULL, "the session reached its %.0f s time limit", ss->lim.max_session_s);
            send_close(ss, WS_CLOSE_POLICY, "session time limit");
            break;
        }
        if (now - ss->t_last > ss->lim.idle_s) {
            send_error(ss, "idle_timeout", NULL, NULL, "no event for %.0f s: closing", ss->lim.idle_s);
            send_close(ss, WS_CLOSE_POLICY, "idle timeout");
            break;
        }
        struct pollfd pfd = {.fd = ss->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 200);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (ss->in_cap - ss->in_len == 0) break; /* cannot happen: the reader refuses frames over the limit */
        ssize_t k = recv(ss->fd, ss->in + ss->in_len, ss->in_cap - ss->in_len, MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k <= 0) break; /* peer gone */
        ss->in_len += (size_t)k;
        drain_input(ss);
    }
    /* A moment for the peer to read our close frame before the socket goes. */
    shutdown(ss->fd, SHUT_WR);
    MHD_upgrade_action(ss->urh, MHD_UPGRADE_ACTION_CLOSE);
    srv_metrics_realtime_session(s->metrics, -1);
    atomic_fetch_sub(&s->realtime_sessions, 1);
    session_free(ss);
    return NULL;
}

static int header_has_token(const char *value, const char *token);

static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in, size_t extra_in_size,
                       MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)con_cls;
    srv_server *s = cls;
    rt_session *ss = calloc(1, sizeof *ss);
    rt_limits lim = rt_limits_from_env();
    size_t cap = lim.max_message + 14;
    if (ss) ss->in = malloc(cap > extra_in_size ? cap : extra_in_size);
    if (!ss || !ss->in) {
        free(ss);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    ss->srv = s;
    ss->lim = lim;
    ss->fd = sock;
    ss->urh = urh;
    ss->in_cap = cap > extra_in_size ? cap : extra_in_size;
    memcpy(ss->in, extra_in, extra_in_size);
    ss->in_len = extra_in_size;
    ws_reader_init(&ss->reader, lim.max_message);
    ss->t_open = ss->t_last = srv_now();
    snprintf(ss->session_id, sizeof ss->session_id, "sess_%llx%04x", (unsigned long long)time(NULL),
             (unsigned)(atomic_fetch_add(&s->next_request_id, 1) & 0xffff));
    /* the handshake's ?model= (checked there) picks the first model, as the session's may later */
    const char *qmodel = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    snprintf(ss->model, sizeof ss->model, "%s", qmodel && *qmodel ? qmodel : "whisper-1");
    /* beta clients say so (a header, or a subprotocol from browsers); GA is the default, as at OpenAI */
    const char *beta = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "OpenAI-Beta");
    const char *protocols = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    ss->beta = (beta && strstr(beta, "realtime=v1")) || (protocols && header_has_token(protocols, "openai-beta.realtime-v1"));
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ss->send_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    ss->threshold = 0.5;
    ss->prefix_padding_ms = 300;
    ss->silence_duration_ms = 500;
    rs_init(&ss->rs);
    srv_metrics_realtime_session(s->metrics, +1);
    atomic_fetch_add(&s->realtime_sessions, 1);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, session_main, ss) != 0) {
        srv_metrics_realtime_session(s->metrics, -1);
        atomic_fetch_sub(&s->realtime_sessions, 1);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        session_free(ss);
    }
    pthread_attr_destroy(&attr);
}

void srv_realtime_stop(srv_server *s)
{
    atomic_store(&s->draining, 1);
    while (atomic_load(&s->realtime_sessions) > 0) {
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* ---- the handshake ---- */

static int header_has_token(const char *value, const char *token)
{
    size_t tn = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == tn && strncasecmp(p, token, tn) == 0) return 1;
        p = end;
    }
    return 0;
}

/* Constant-time comparison (time depends only on the key's length). */
static int key_matches(const char *given, size_t ng, const char *expected)
{
    size_t ne = strlen(expected);
    unsigned char diff = (unsigned char)(ng != ne);
    for (size_t i = 0; i < ne; i++) diff |= (unsigned char)((i < ng ? (unsigned char)given[i] : 0) ^ (unsigned char)expected[i]);
    return diff == 0;
}

/* Authorization: Bearer KEY, or the subprotocol openai-insecure-api-key.KEY
 * (browsers cannot set headers on a WebSocket). */
static int realtime_authorized(srv_request *rq, const char *protocols)
{
    const char *key = rq->srv->cfg.api_key;
    if (!key[0]) return 1;
    const char *h = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') h++;
        if (key_matches(h, strlen(h), key)) return 1;
    }
    static const char prefix[] = "openai-insecure-api-key.";
    for (const char *p = protocols; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ') end++;
        if ((size_t)(end - p) > sizeof prefix - 1 && strncmp(p, prefix, sizeof prefix - 1) == 0 &&
            key_matches(p + sizeof prefix - 1, (size_t)(end - p) - (sizeof prefix - 1), key))
            return 1;
        p = end;
    }
    return 0;
}

enum MHD_Result srv_realtime_begin(srv_request *rq)
{
    srv_server *s = rq->srv;
    if (strcmp(rq->method, "GET") != 0)
        return srv_reply_error(rq, 405, NULL, "method_not_allowed", "method %s is not allowed on %s", rq->method, rq->path);
    const char *protocols = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    if (!realtime_authorized(rq, protocols))
        return srv_reply_error(rq, 401, NULL, "invalid_api_key",
                               "missing or incorrect API key (use Authorization: Bearer KEY or the "
                               "openai-insecure-api-key.KEY subprotocol)");
    const char *intent = MHD_lookup_connection_value(rq->mhd, MHD_GET_ARGUMENT_KIND, "intent");
    if (intent && strcmp(intent, "transcription") != 0)
        return srv_reply_error(rq, 400, "intent", "invalid_value",
                               "only intent=transcription is served here (got '%.64s')", intent);
    /* ?model= picks the session's first model; one not served is refused as the HTTP API refuses it */
    const char *qmodel = MHD_lookup_connection_value(rq->mhd, MHD_GET_ARGUMENT_KIND, "model");
    if (qmodel && *qmodel && s->cfg.models && (strlen(qmodel) >= 64 || !srv_model_find(s->cfg.models, qmodel))) {
        char names[1024];
        srv_models_names(s->cfg.models, names, sizeof names);
        return srv_reply_error(rq, 404, NULL, "model_not_found",
                               "The model `%.100s` does not exist or you do not have access to it. This server has %.400s.",
                               qmodel, names);
    }
    const char *upgrade = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
    const char *connection = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
    const char *version = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *key = MHD_lookup_connection_value(rq->mhd, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    if (!upgrade || !header_has_token(upgrade, "websocket") || !connection || !header_has_token(connection, "upgrade"))
        return srv_reply_error(rq, 426, NULL, "upgrade_required",
                               "/v1/realtime is a WebSocket endpoint (Upgrade: websocket, Connection: Upgrade)");
    if (!version || strcmp(version, "13") != 0)
        return srv_reply_error(rq, 426, NULL, "upgrade_required", "Sec-WebSocket-Version must be 13");
    char accept[29];
    if (ws_accept_key(key, accept) != 0)
        return srv_reply_error(rq, 400, NULL, "invalid_handshake", "Sec-WebSocket-Key must be 16 bytes in base64");
    if (atomic_load(&s->draining))
        return srv_reply_error(rq, 503, NULL, "shutting_down", "the server is shutting down");
    rt_limits lim = rt_limits_from_env();
    if (atomic_load(&s->realtime_sessions) >= lim.max_sessions)
        return srv_reply_error(rq, 429, NULL, "too_many_sessions", "%d realtime sessions are open, the limit",
                               lim.max_sessions);

    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, s);
    if (!resp) return srv_reply_error(rq, 500, NULL, "internal_error", "out of memory");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    /* a browser that offered subprotocols fails the connection unless one is
     * chosen: "realtime" as OpenAI answers, else the first that is not a key */
    if (protocols && *protocols) {
        const char *chosen = header_has_token(protocols, "realtime") ? "realtime" : NULL;
        char first[64] = "";
        if (!chosen) {
            const char *p = protocols;
            while (*p == ' ') p++;
            size_t n = strcspn(p, ", ");
            if (n && n < sizeof first && strncmp(p, "openai-insecure-api-key.", 24) != 0) {
                memcpy(first, p, n);
                first[n] = 0;
                chosen = first;
            }
        }
        if (chosen) MHD_add_response_header(resp, "Sec-WebSocket-Protocol", chosen);
    }
    if (rq->conn) { /* HTTP's header and body deadlines end here */
        pthread_mutex_lock(&s->conn_mu);
        rq->conn->upgraded = 1;
        pthread_mutex_unlock(&s->conn_mu);
    }
    rq->status = 101;
    enum MHD_Result r = MHD_queue_response(rq->mhd, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return r;
}
