/* rt_session.h — one realtime WebSocket session's state, shared by its protocol (realtime.c) and its transcription (rt_turn.c). */
#ifndef ASR_SERVER_RT_SESSION_H
#define ASR_SERVER_RT_SESSION_H

#include "server/request.h"
#include "server/resample.h"
#include "server/rt_deltas.h"
#include "server/ws.h"

#include <jansson.h>

/* Limits, from the environment when a session opens (realtime.c). */
typedef struct rt_limits {
    int max_sessions;       /* ASR_REALTIME_MAX_SESSIONS: concurrent sessions, 429 past it */
    double idle_s;          /* ASR_REALTIME_IDLE_S: no client frame this long → close    */
    double max_session_s;   /* ASR_REALTIME_MAX_SESSION_S: total session time             */
    double max_buffer_s;    /* ASR_REALTIME_MAX_BUFFER_S: uncommitted audio held          */
    size_t max_message;     /* ASR_REALTIME_MAX_MESSAGE_BYTES: one client message         */
    double partial_s;       /* ASR_REALTIME_PARTIAL_S: new speech between partial decodes, 0 = none */
} rt_limits;

/* One session: the session thread owns it; its partial decode thread reads what
 * rt_turn.c says, and both send under send_mu. */
typedef struct rt_session {
    srv_server *srv;
    rt_limits lim;
    MHD_socket fd;
    struct MHD_UpgradeResponseHandle *urh;
    ws_reader reader;
    uint8_t *in;           /* bytes received, not yet parsed */
    size_t in_len, in_cap;
    double t_open, t_last;
    unsigned long long n_events, n_items;
    char session_id[40];
    atomic_int closing;    /* a close frame was sent, or the peer is gone: stop */
    pthread_mutex_t send_mu; /* one frame at a time: the session thread and its partial decode both send */
    int use_session_names; /* the client spoke "session.update": answer "session.updated" */
    int beta;              /* the handshake asked for the beta API (OpenAI-Beta: realtime=v1) */

    /* configuration (session.update) */
    char model[64];
    char language[16];
    char *prompt;
    int vad_on;
    double threshold;
    int prefix_padding_ms, silence_duration_ms;

    /* audio of the current turn, 16 kHz, absolute sample indexes from the session start */
    rt_resampler rs;
    float *audio;
    size_t audio_len, audio_cap;
    unsigned long long audio_base; /* index of audio[0] */
    unsigned long long vad_pos;    /* next frame the VAD looks at */
    asr_vad_model *vad_model;
    asr_vad_stream *vad;
    int speaking;
    unsigned long long speech_start, silence_samples;
    char pending_item[40];         /* item id announced by speech_started */
    char last_item[40];            /* previous committed item, "" = none */

    /* transcription: one asr_state, used by the partial decode or the final
     * one, never both (a turn's commit stops its partial first) */
    srv_model *held;               /* the served model the state is for (its use count held), NULL = none */
    asr_state *state;              /* created at the first decode */
    rt_deltas deltas;              /* what the turn in progress has sent */
    char *final_text;              /* the final decode's segments so far */
    size_t final_len, final_cap;
    const char *cur_item;

    /* the partial decode of the turn so far (server VAD), on its own thread */
    pthread_t partial_thread;
    int partial_started;           /* partial_thread is to be joined */
    atomic_int partial_done, partial_abort;
    float *partial_audio;
    size_t partial_n, partial_cap;
    char partial_item[40];
    unsigned long long partial_next; /* the audio end (absolute) the next partial waits for */
} rt_session;

static inline unsigned long long rt_ms_to_samples(int ms) { return (unsigned long long)ms * ASR_SAMPLE_RATE / 1000; }
static inline long long rt_samples_to_ms(unsigned long long n) { return (long long)(n * 1000 / ASR_SAMPLE_RATE); }
static inline size_t rt_max_buffer_samples(const rt_session *ss) { return (size_t)(ss->lim.max_buffer_s * ASR_SAMPLE_RATE); }

/* realtime.c: send a server event (takes the reference), numbered in the order events go out. */
void rt_send_event(rt_session *ss, json_t *ev);

/* rt_turn.c: transcription of the turns */
/* Where the turn in progress begins: its first speech frame less the prefix padding. */
unsigned long long rt_turn_start(const rt_session *ss);
/* Free the decoding state and let its model go (another model is picked). */
void rt_drop_state(rt_session *ss);
/* Stop the partial decode, if one runs, and wait for it. */
void rt_stop_partial(rt_session *ss);
/* Start a partial decode of the turn so far, if one is due and none runs (server VAD). */
void rt_maybe_start_partial(rt_session *ss);
/* Commit audio[from .. to) (absolute indexes) as one item and transcribe it. */
void rt_commit_turn(rt_session *ss, unsigned long long from, unsigned long long to, const char *item_id);

#endif /* ASR_SERVER_RT_SESSION_H */
