/* asr.h — public API of the asr speech-to-text engine (Whisper models, in C).
 *
 * Usage:
 *
 *     asr_error err;
 *     asr_model *model;
 *     asr_model_params mp = asr_model_default_params();
 *     if (asr_model_load("~/.cache/asr/models/tiny.en", &mp, &model, &err) != ASR_OK)
 *         fprintf(stderr, "%s\n", err.message);
 *
 *     asr_audio audio;
 *     asr_audio_decode_file("talk.mp3", NULL, &audio, &err);
 *
 *     asr_state *state = asr_state_new(model, &err);
 *     asr_transcribe_params tp = asr_transcribe_default_params();
 *     asr_result *result;
 *     asr_transcribe(state, audio.samples, audio.n_samples, &tp, &result, &err);
 *     printf("%s\n", asr_result_text(result));
 *     asr_result_free(result);
 *     asr_state_free(state);
 *     asr_audio_free(&audio);
 *     asr_model_free(model);
 *
 * Thread safety: an asr_model is immutable after asr_model_load() and may be
 * shared by any number of threads. An asr_state holds all the mutable memory
 * of one decode (activations, KV caches, scratch) and must be used by one
 * thread at a time; give each concurrent request its own state. Results are
 * independent objects owned by the caller. The library never prints and
 * never exits: every failure comes back as an asr_status with a message in
 * the caller's asr_error. It keeps no global state of its own; two settings of
 * the libraries it uses are process-wide and are set once, the same way every
 * time: OpenBLAS is told to run one thread per call (asr_state_new; the
 * parallelism is each state's own thread pool), and FFmpeg's log level is set
 * to quiet (the first audio decode) so it does not write to stderr.
 */
#ifndef ASR_H
#define ASR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASR_VERSION "0.1.0"
#define ASR_SAMPLE_RATE 16000

/* ---- errors ---------------------------------------------------------- */

typedef enum asr_status {
    ASR_OK = 0,
    ASR_ERR_INVALID_ARGUMENT, /* a parameter is out of range or malformed   */
    ASR_ERR_IO,               /* a file could not be opened, read or written */
    ASR_ERR_MODEL,            /* model missing, truncated, corrupt or unsupported */
    ASR_ERR_AUDIO,            /* input is not decodable audio, or is empty  */
    ASR_ERR_TOO_LARGE,        /* input exceeds a configured limit           */
    ASR_ERR_NO_MEMORY,        /* an allocation failed                       */
    ASR_ERR_CANCELLED,        /* the abort callback asked to stop           */
    ASR_ERR_TIMEOUT,          /* a deadline passed                          */
    ASR_ERR_UNSUPPORTED,      /* valid request the model cannot serve (e.g. language on .en) */
    ASR_ERR_INTERNAL          /* a bug: an invariant did not hold           */
} asr_status;

/* Filled by every call that can fail; message is always NUL-terminated. */
typedef struct asr_error {
    asr_status code;
    char message[512];
} asr_error;

/* Static, human-readable name of a status code ("model error", ...). */
const char *asr_strerror(asr_status code);

/* ---- model ----------------------------------------------------------- */

typedef struct asr_model asr_model;

/* Number formats the weights are held and multiplied in, named as
 * faster-whisper / CTranslate2 name them. The part before '_' is the format
 * of the linear layers' weights; after it, the format of the rest of the
 * arithmetic (attention products, conv stem, logits). Weights are converted
 * once at load; a model stored in int8 loads into int8 without a round trip. */
typedef enum asr_compute_type {
    ASR_COMPUTE_AUTO = 0,      /* the fastest type that passes the accuracy gate on this CPU */
    ASR_COMPUTE_FLOAT32,       /* float32 products (decoder weights held as IEEE half) */
    ASR_COMPUTE_FLOAT16,
    ASR_COMPUTE_BFLOAT16,
    ASR_COMPUTE_INT8,          /* int8 weights, int8 activations per row; = int8_float32 */
    ASR_COMPUTE_INT8_FLOAT32,
    ASR_COMPUTE_INT8_BFLOAT16,
} asr_compute_type;

/* "auto", "float32", ... → the type, or -1 for an unknown name. */
int asr_compute_type_parse(const char *name);
const char *asr_compute_type_name(asr_compute_type type);

typedef struct asr_model_params {
    int n_threads; /* threads for matrix work; 0 = number of online CPUs */
    asr_compute_type compute_type; /* ASR_COMPUTE_AUTO */
} asr_model_params;

asr_model_params asr_model_default_params(void);

/* Load a model from `path`: a CTranslate2 Whisper directory (model.bin,
 * config.json, vocabulary.txt / tokenizer.json) or a whisper.cpp ggml file.
 * On error, *out is NULL, err says what is wrong, and nothing leaks. */
asr_status asr_model_load(const char *path, const asr_model_params *params,
                          asr_model **out, asr_error *err);
void asr_model_free(asr_model *model);

/* Read-only facts about a loaded model. */
int asr_model_is_multilingual(const asr_model *model);
int asr_model_n_mels(const asr_model *model);
int asr_model_n_vocab(const asr_model *model);
int asr_model_n_text_ctx(const asr_model *model);
const char *asr_model_type(const asr_model *model); /* "tiny", "base", ... */
/* The compute type the model was loaded in (never ASR_COMPUTE_AUTO). */
asr_compute_type asr_model_compute_type(const asr_model *model);

/* Shapes and storage of a loaded model (openai/whisper's ModelDimensions). */
typedef struct asr_model_info {
    const char *type;          /* as asr_model_type                           */
    const char *format;        /* "ctranslate2" or "ggml": the file it came from */
    asr_compute_type compute_type;
    int multilingual;
    int n_mels, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
    int n_vocab, n_text_ctx, n_text_state, n_text_head, n_text_layer;
    size_t weight_bytes;       /* memory the weights take as loaded           */
} asr_model_info;
void asr_model_get_info(const asr_model *model, asr_model_info *info);

/* Formats of asr_model_write_ggml's weight matrices (vectors are always f32). */
enum { ASR_GGML_F32 = 0, ASR_GGML_F16 = 1, ASR_GGML_Q8_0 = 8 };

/* Write the model as a whisper.cpp ggml file with its matrices in `format`:
 * f32, f16, or q8_0 (ggml's blocks of 32 int8 with a half scale, the format
 * whisper.cpp's int8 CPU kernels read; the conv kernels stay f16). */
asr_status asr_model_write_ggml(const asr_model *model, const char *out_path,
                                int format, asr_error *err);

/* ---- languages -------------------------------------------------------- */

/* Number of languages Whisper knows, their codes ("en") and names ("english"). */
int asr_lang_count(void);
const char *asr_lang_code(int index);
const char *asr_lang_name(int index);
/* Index of a code or English name (case-insensitive), or -1. */
int asr_lang_find(const char *code_or_name);

/* ---- audio ------------------------------------------------------------ */

/* Mono float samples at ASR_SAMPLE_RATE in [-1, 1]. */
typedef struct asr_audio {
    float *samples;
    size_t n_samples;
} asr_audio;

/* Decoded-length limit of asr_audio_default_limits(): 3 hours, as `asr serve`
 * --max-audio-seconds (16 kHz float: 0.69 GB of samples). */
#define ASR_AUDIO_DEFAULT_MAX_DURATION_S 10800.0
/* Whatever the limits, the decoder refuses input that cannot be real audio,
 * with ASR_ERR_AUDIO, before it allocates for it:
 *  - a sample rate outside [ASR_AUDIO_MIN_RATE, ASR_AUDIO_MAX_RATE]: below
 *    1 kHz no codec or container in use carries audio (the lowest real rates
 *    are 4-8 kHz: telephony, AAC's 7.35 kHz, Flash ADPCM's 5.5 kHz), and a
 *    1 Hz WAV would turn each stored byte into 16000 samples; 768 kHz is the
 *    highest rate of real converters and PCM formats;
 *  - more than ASR_AUDIO_MAX_CHANNELS channels (libswresample's limit; 22.2
 *    surround has 24);
 *  - more than ASR_AUDIO_MAX_SECONDS_PER_BYTE seconds of audio per input byte
 *    (but always at least ASR_AUDIO_MIN_SECONDS_ALLOWED s): digital silence,
 *    the densest content there is, takes 0.001-0.011 s per byte from the
 *    FLAC, Opus, Vorbis, AAC and MP3 encoders, so 0.1 s is 10x above any real
 *    file, and a 10 KB upload can never decode to more than 1000 s. For a
 *    pipe, whose size is unknown, the bytes read so far count.
 * Raw s16le input has a fixed 2 bytes per sample and none of these checks. */
#define ASR_AUDIO_MIN_RATE 1000
#define ASR_AUDIO_MAX_RATE 768000
#define ASR_AUDIO_MAX_CHANNELS 64
#define ASR_AUDIO_MAX_SECONDS_PER_BYTE 0.1
#define ASR_AUDIO_MIN_SECONDS_ALLOWED 60.0

typedef struct asr_audio_limits {
    double max_duration_s;  /* 0 = unlimited; longer audio → ASR_ERR_TOO_LARGE
                               (default ASR_AUDIO_DEFAULT_MAX_DURATION_S); checked
                               before the sample buffer grows past it */
    double deadline_s;      /* 0 = none; wall-clock budget for decoding → ASR_ERR_TIMEOUT */
    int raw_pcm_s16le;      /* treat input as headerless 16 kHz mono s16le  */
    /* Polled for every read, packet, frame and resampled chunk, and from
     * FFmpeg's interrupt callback (so a demuxer waiting in a read stops too);
     * non-zero → ASR_ERR_CANCELLED. NULL = never. A server sets it to stop
     * decoding when the client disconnects or the process shuts down. Called
     * on the decoding thread; keep it cheap (an atomic load). */
    int (*should_abort)(void *user_data);
    void *abort_user_data;
} asr_audio_limits;

asr_audio_limits asr_audio_default_limits(void);

/* Decode any supported container/codec (WAV, FLAC, MP3, Ogg Vorbis/Opus,
 * M4A/AAC, WebM, raw s16le with the flag or a .raw/.pcm name) to 16 kHz mono.
 * `limits` may be NULL. */
asr_status asr_audio_decode_file(const char *path, const asr_audio_limits *limits,
                                 asr_audio *out, asr_error *err);
/* Same from bytes in memory (an untrusted upload): custom AVIOContext, format
 * and codec allow-lists, no protocols, bounded probing. */
asr_status asr_audio_decode_memory(const void *data, size_t size,
                                   const asr_audio_limits *limits,
                                   asr_audio *out, asr_error *err);
void asr_audio_free(asr_audio *audio);

/* ---- voice activity detection (Silero VAD v6) -------------------------- */

/* The Silero VAD v6 network, 16 kHz, run on 512-sample frames (32 ms) that
 * each see the 64 samples before them, with the LSTM state carried from frame
 * to frame (as faster-whisper's SileroVADModel runs the ONNX model). The
 * weights are built into the library; a model is immutable once loaded and may
 * be shared by threads (each call keeps its own state). */
typedef struct asr_vad_model asr_vad_model;

#define ASR_VAD_FRAME_SAMPLES 512

/* Load the VAD weights: path NULL = the copy built into the library (cheap:
 * nothing is copied), else a file in the format tools/convert_silero_vad.py
 * writes. A malformed file fails with ASR_ERR_MODEL. */
asr_status asr_vad_model_load(const char *path, asr_vad_model **out, asr_error *err);
/* Same from bytes in memory (copied; the caller keeps its buffer). */
asr_status asr_vad_model_load_memory(const void *data, size_t size, asr_vad_model **out,
                                     asr_error *err);
void asr_vad_model_free(asr_vad_model *model);

/* Speech probability of each frame. Like faster-whisper, the audio is padded
 * with zeros to the next multiple of ASR_VAD_FRAME_SAMPLES, always by at least
 * one sample, so *n_probs = n_samples / 512 + 1. *probs is malloc'd. */
asr_status asr_vad_probs(const asr_vad_model *model, const float *samples, size_t n_samples,
                         float **probs, size_t *n_probs, asr_error *err);

/* Incremental VAD for live audio: one 512-sample frame at a time, the LSTM
 * state and the 64-sample context carried between calls exactly as
 * asr_vad_probs does over a whole buffer. A stream belongs to one thread. */
typedef struct asr_vad_stream asr_vad_stream;

asr_status asr_vad_stream_new(const asr_vad_model *model, asr_vad_stream **out, asr_error *err);
/* Speech probability of the next ASR_VAD_FRAME_SAMPLES samples (16 kHz). */
float asr_vad_stream_push(asr_vad_stream *stream, const float *frame);
void asr_vad_stream_reset(asr_vad_stream *stream); /* as if new: zero state */
void asr_vad_stream_free(asr_vad_stream *stream);

/* Options of faster-whisper's VadOptions, with its defaults. */
typedef struct asr_vad_params {
    double threshold;             /* 0.5: a frame at or above is speech           */
    double neg_threshold;         /* NAN = max(threshold - 0.15, 0.01): below it a
                                     frame is silence; in between, it continues the
                                     state it is in                                */
    int min_speech_duration_ms;   /* 0: shorter speech is dropped                  */
    double max_speech_duration_s; /* INFINITY: longer speech is split, at a silence
                                     of > 98 ms if there was one                   */
    int min_silence_duration_ms;  /* 2000: silence that ends a speech chunk        */
    int speech_pad_ms;            /* 400: added to each side of a chunk            */
} asr_vad_params;

asr_vad_params asr_vad_default_params(void);

/* A speech chunk in samples of the input: [start, end). */
typedef struct asr_vad_segment {
    size_t start, end;
} asr_vad_segment;

/* Speech chunks from frame probabilities, exactly as faster-whisper's
 * get_speech_timestamps() makes them (n_samples is the unpadded length).
 * *segments is malloc'd (NULL when *n_segments is 0). */
asr_status asr_vad_segments_from_probs(const float *probs, size_t n_probs, size_t n_samples,
                                       const asr_vad_params *params, asr_vad_segment **segments,
                                       size_t *n_segments, asr_error *err);
/* asr_vad_probs() then asr_vad_segments_from_probs(); params may be NULL. */
asr_status asr_vad_segments(const asr_vad_model *model, const float *samples, size_t n_samples,
                            const asr_vad_params *params, asr_vad_segment **segments,
                            size_t *n_segments, asr_error *err);

/* faster-whisper's collect_chunks(): the chunks' samples one after another,
 * in a malloc'd buffer (NULL for no chunks). */
asr_status asr_vad_collect(const float *samples, size_t n_samples, const asr_vad_segment *segments,
                           size_t n_segments, float **out, size_t *n_out, asr_error *err);

/* faster-whisper's SpeechTimestampsMap: the time in the original audio of a
 * time t (seconds) in the collected audio, rounded to 10 ms.
 * asr_vad_chunk_index() is the chunk a time falls in (is_end: a time exactly
 * at a chunk's end belongs to that chunk); asr_vad_original_time() with
 * chunk < 0 finds it itself. */
size_t asr_vad_chunk_index(const asr_vad_segment *segments, size_t n_segments, double t, int is_end);
double asr_vad_original_time(const asr_vad_segment *segments, size_t n_segments, double t, long chunk,
                             int is_end);

/* ---- transcription ---------------------------------------------------- */

typedef struct asr_state asr_state;

typedef enum asr_task { ASR_TASK_TRANSCRIBE = 0, ASR_TASK_TRANSLATE = 1 } asr_task;

/* A word with its time, from the cross-attention alignment (openai's
 * word_timestamps): the text keeps its leading space and has punctuation
 * merged into it as openai does. */
typedef struct asr_word {
    const char *word;
    double start, end;      /* seconds from the start of the audio          */
    float probability;      /* mean probability of the word's tokens        */
} asr_word;

typedef struct asr_segment {
    int id;
    int seek;               /* window start, in mel frames (10 ms)          */
    double start, end;      /* seconds from the start of the audio          */
    const char *text;       /* UTF-8, leading space as Whisper emits it     */
    const int *tokens;      /* text and timestamp tokens of the segment     */
    int n_tokens;
    float temperature;
    float avg_logprob;
    float compression_ratio;
    float no_speech_prob;
    const asr_word *words;  /* with word_timestamps, else NULL              */
    int n_words;
} asr_segment;

#define ASR_MAX_TEMPERATURES 16

/* Mirrors openai/whisper transcribe() and DecodingOptions. */
typedef struct asr_transcribe_params {
    asr_task task;
    const char *language;        /* NULL or "auto" = detect (multilingual) */
    int beam_size;               /* <= 1: greedy / sampling                */
    float patience;              /* beam search patience, default 1.0      */
    int best_of;                 /* candidates when sampling at T > 0      */
    float temperatures[ASR_MAX_TEMPERATURES]; /* fallback ladder           */
    int n_temperatures;
    float compression_ratio_threshold; /* 2.4; <= 0 disables               */
    float logprob_threshold;     /* -1.0; set to -INFINITY... use NAN to disable */
    float no_speech_threshold;   /* 0.6; NAN disables                      */
    int condition_on_previous_text; /* 1                                   */
    float prompt_reset_on_temperature; /* 0.5                              */
    const char *initial_prompt;  /* NULL = none                            */
    int without_timestamps;      /* 0                                      */
    float max_initial_timestamp; /* 1.0 s                                  */
    int suppress_blank;          /* 1                                      */
    int suppress_tokens_default; /* 1: the model's suppress list ("-1")    */
    float length_penalty;        /* NAN: simple length normalisation       */
    uint64_t seed;               /* sampling RNG seed (per call, no globals) */
    int word_timestamps;         /* 0; 1 aligns words (and, like openai, lets
                                    the next window start after the last word) */
    int n_threads;               /* 0 = model default                      */
    int vad_filter;              /* 0; 1 transcribes only the speech Silero VAD
                                    finds, as faster-whisper's vad_filter: the
                                    chunks are joined, transcribed, and segment
                                    and word times mapped back to the input   */
    asr_vad_params vad;          /* options of the VAD filter              */
    int batch_size;              /* 0: the sequential window loop above. 1..16:
                                    faster-whisper's BatchedInferencePipeline:
                                    implies vad_filter (speech longer than 30 s
                                    is split), the speech chunks are packed into
                                    windows of at most 30 s, and batch_size
                                    windows at a time are encoded in one pass and
                                    decoded together, each from the same prompt
                                    (initial_prompt only: no previous-text
                                    conditioning across windows). Greedy at
                                    temperature 0; a window that needs the
                                    fallback (thresholds above) is redone alone
                                    with the rest of the ladder; beam_size > 1
                                    decodes the windows one by one.          */

    /* Called for each finished segment, in order. */
    void (*on_segment)(const asr_segment *segment, void *user_data);
    /* Called with progress in [0, 1] after each window. */
    void (*on_progress)(float fraction, void *user_data);
    /* Polled between decoder steps; non-zero → ASR_ERR_CANCELLED. */
    int (*should_abort)(void *user_data);
    void *user_data;
} asr_transcribe_params;

asr_transcribe_params asr_transcribe_default_params(void);

typedef struct asr_result asr_result;

/* Per-request state: all buffers one decode needs. */
asr_state *asr_state_new(const asr_model *model, asr_error *err);
void asr_state_free(asr_state *state);

asr_status asr_transcribe(asr_state *state, const float *samples, size_t n_samples,
                          const asr_transcribe_params *params, asr_result **out,
                          asr_error *err);

/* ---- scheduler: one compute for many concurrent requests ------------------
 *
 * A decoder step of one request reads every decoder weight for a single
 * token; a step over the tokens of all requests in flight costs little more.
 * A scheduler owns the compute of every state made with
 * asr_state_new_scheduled(): one thread pool, one set of encoder buffers,
 * and a thread that runs the states' encoder windows one at a time and steps
 * the decoder once over the current token of every state that is decoding
 * (greedy, beam and sampling alike). Each state still runs its own
 * transcription loop (prompts, fallback, timestamps) in the caller's thread
 * and blocks while its compute runs. A request's tokens are the same as it
 * would get alone: each row goes through the same kernels in the same order
 * whichever rows share its step (float32 exactly; the reduced types too, as
 * tests/integration/server_batching.py checks).
 *
 * Free the scheduler after every state made from it. */
typedef struct asr_scheduler asr_scheduler;

typedef struct asr_scheduler_params {
    int n_threads;       /* compute threads; 0 = the model's n_threads         */
    int max_sequences;   /* most sequences (rows) in one decoder step, 16..256;
                            default 64                                        */
    int max_wait_us;     /* how long a step waits for the other decoding states
                            to bring their next token before it runs without
                            them; default 2000                                */
} asr_scheduler_params;

asr_scheduler_params asr_scheduler_default_params(void);

asr_status asr_scheduler_new(const asr_model *model, const asr_scheduler_params *params,
                             asr_scheduler **out, asr_error *err);
void asr_scheduler_free(asr_scheduler *scheduler);

/* A state whose encoder and decoder run on the scheduler's compute. It
 * keeps no encoder buffers or threads of its own (tiny: about 15 MB less than
 * asr_state_new's). Use it like any state: one thread at a time. */
asr_state *asr_state_new_scheduled(asr_scheduler *scheduler, asr_error *err);

/* Counters since the scheduler started, and what runs now. */
typedef struct asr_scheduler_stats {
    uint64_t steps;            /* batched decoder steps run                   */
    uint64_t step_sequences;   /* sequences over all steps (÷ steps: mean batch) */
    uint64_t step_states;      /* states over all steps                       */
    uint64_t jobs;             /* other compute: encoder windows, prompts     */
    uint64_t steps_by_size[9]; /* steps of 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64,
                                  65-128, 129+ sequences                      */
    double wait_seconds;       /* submission to start, summed over all work   */
    double busy_seconds;       /* time the compute ran                        */
    int states;                /* states attached now                         */
    int decoding_sequences;    /* sequences of the states in a decode loop now */
    int queued;                /* submissions waiting now                     */
} asr_scheduler_stats;

void asr_scheduler_get_stats(asr_scheduler *scheduler, asr_scheduler_stats *out);

/* Language identification on the first 30 s. probs (may be NULL) receives
 * asr_lang_count() probabilities indexed like asr_lang_code(). */
asr_status asr_detect_language(asr_state *state, const float *samples, size_t n_samples,
                               int *lang_index, float *probs, asr_error *err);

int asr_result_n_segments(const asr_result *result);
const asr_segment *asr_result_segment(const asr_result *result, int i);
const char *asr_result_text(const asr_result *result);     /* all segments joined */
const char *asr_result_language(const asr_result *result); /* code, e.g. "en"     */
const char *asr_result_task(const asr_result *result);     /* "transcribe"/"translate" */
double asr_result_duration(const asr_result *result);      /* seconds of audio    */
void asr_result_free(asr_result *result);

/* ---- output formats ----------------------------------------------------- */

typedef enum asr_format {
    ASR_FORMAT_TXT,          /* text, stripped, one line                  */
    ASR_FORMAT_JSON,         /* {"text": ...}                             */
    ASR_FORMAT_VERBOSE_JSON, /* OpenAI verbose_json                       */
    ASR_FORMAT_SRT,
    ASR_FORMAT_VTT,
    ASR_FORMAT_TSV           /* start\tend\ttext in integer milliseconds  */
} asr_format;

/* Parse "txt"/"text", "json", "verbose_json", "srt", "vtt", "tsv"; -1 if unknown. */
int asr_format_parse(const char *name);
/* Render a result; returns a malloc'd NUL-terminated string or NULL on OOM. */
char *asr_result_format(const asr_result *result, asr_format format);

/* ---- text ---------------------------------------------------------------- */

/* Python's str.strip() of UTF-8 text (the whitespace of str.isspace(), not
 * only ASCII), as the formats strip the text: a malloc'd copy (free() it);
 * NULL text gives ""; NULL on OOM. A client that shows a result's text
 * (the server's streamed transcript.text.done) strips it with this, so it
 * equals the text of the json format. */
char *asr_text_strip(const char *text);
/* 1 when s[0..n) is valid UTF-8 by Python's rules (no overlong forms,
 * surrogates or code points past U+10FFFF), else 0. */
int asr_utf8_valid(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ASR_H */
