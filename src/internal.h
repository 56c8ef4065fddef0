/* internal.h — declarations shared by the engine's source files; not installed. */
#ifndef ASR_INTERNAL_H
#define ASR_INTERNAL_H

#include "asr.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define ASR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ASR_PRINTF(a, b)
#endif

/* Fill err (may be NULL) and return code, so callers can `return asr_fail(...)`. */
asr_status asr_fail(asr_error *err, asr_status code, const char *fmt, ...) ASR_PRINTF(3, 4);
/* Clear err to ASR_OK with an empty message. */
void asr_error_clear(asr_error *err);

/* ---- whisper audio constants (openai/whisper audio.py) ---------------- */
#define ASR_N_FFT 400
#define ASR_HOP_LENGTH 160
#define ASR_CHUNK_SECONDS 30
#define ASR_N_SAMPLES (ASR_CHUNK_SECONDS * ASR_SAMPLE_RATE) /* 480000 */
#define ASR_N_FRAMES (ASR_N_SAMPLES / ASR_HOP_LENGTH)       /* 3000 mel frames per window */
#define ASR_N_FREQ (ASR_N_FFT / 2 + 1)                      /* 201 */

/* ---- mel.c: log-mel spectrogram ----------------------------------------- */

/* Slaney-style mel filterbank as librosa.filters.mel(sr=16000, n_fft=400,
 * n_mels) builds it: out is (n_mels, ASR_N_FREQ), row-major. */
asr_status asr_mel_filters(int n_mels, float *out, asr_error *err);

/* Whisper's log_mel_spectrogram(audio, n_mels, padding=pad_samples):
 * appends pad_samples zeros, centred STFT (reflect pad), periodic Hann,
 * power, mel, log10(max(x,1e-10)), clamp to max-8, (x+4)/4.
 * *out is malloc'd (n_mels, *n_frames) row-major; *n_frames =
 * (n_samples + pad_samples) / ASR_HOP_LENGTH. n_threads splits the frames. */
asr_status asr_log_mel(const float *samples, size_t n_samples, size_t pad_samples,
                       int n_mels, int n_threads, float **out, int *n_frames,
                       asr_error *err);

/* ---- tokenizer.c: byte-level BPE ---------------------------------------- */

typedef struct asr_tokenizer asr_tokenizer;

/* From a CTranslate2 model directory: vocabulary.txt (one token per line, in
 * GPT-2's byte-to-unicode form, id = line number) or, when absent,
 * vocabulary.json / tokenizer.json. */
asr_status asr_tokenizer_load_dir(const char *dir, asr_tokenizer **out, asr_error *err);
/* From raw token byte strings (ggml files store them so); the table is copied. */
asr_status asr_tokenizer_from_bytes(const char *const *tokens, const size_t *lens, int n,
                                    asr_tokenizer **out, asr_error *err);
void asr_tokenizer_free(asr_tokenizer *tok);

int asr_tokenizer_size(const asr_tokenizer *tok);
/* Id of a token given as its text ("<|en|>", "<|0.00|>"), or -1. The old
 * Hugging Face names <|nocaptions|> and <|iw|> and Whisper's <|nospeech|>
 * and <|he|> find each other. */
int asr_tokenizer_find(const asr_tokenizer *tok, const char *text);
/* Raw bytes of a token (not NUL-terminated); NULL for an invalid id. */
const char *asr_tokenizer_bytes(const asr_tokenizer *tok, int id, size_t *len);
/* Concatenate the bytes of ids[0..n) into a malloc'd, NUL-terminated
 * string, skipping ids >= skip_from (special and timestamp tokens) and
 * replacing invalid UTF-8 with U+FFFD, as tiktoken's decode does. */
char *asr_tokenizer_decode(const asr_tokenizer *tok, const int *ids, int n, int skip_from);
/* Encode UTF-8 text to ids with GPT-2 pre-tokenisation and byte-pair merges
 * ranked by token id (tiktoken's rule). Returns the count written (up to
 * cap) or -1 on error; with ids == NULL returns the count needed. */
int asr_tokenizer_encode(const asr_tokenizer *tok, const char *text, int *ids, int cap);
/* Copy s[0..n) to a malloc'd NUL-terminated string, replacing each invalid
 * UTF-8 sequence with U+FFFD exactly as Python's
 * bytes.decode('utf-8', errors='replace') does, and dropping NUL bytes.
 * *out_len (may be NULL) gets the length. NULL on OOM. */
char *asr_utf8_repair(const char *s, size_t n, size_t *out_len);

/* ---- text.c ---------------------------------------------------------------- */
/* Bounds [*start, *end) of s[0..n) with Python's str.strip() applied (the
 * whitespace of str.isspace(): ASCII 9-13 and 28-32, U+0085, U+00A0, U+1680,
 * U+2000-200A, U+2028/9, U+202F, U+205F, U+3000). asr_text_strip and
 * asr_utf8_valid are public (asr.h). */
void asr_strip_bounds(const char *s, size_t n, size_t *start, size_t *end);

/* ---- lang.c -------------------------------------------------------------- */
/* (public asr_lang_* functions only) */

/* ---- compress.c ---------------------------------------------------------- */
/* zlib compression ratio of text, as openai/whisper's compression_ratio(). */
float asr_compression_ratio(const char *text);



/* ---- result.c: the transcription result --------------------------------- */

struct asr_result {
    asr_segment *segments; /* text and tokens point into storage owned here */
    int n_segments;
    int cap_segments;
    char *text;            /* all segment texts concatenated               */
    char language[16];
    asr_task task;
    double duration;       /* seconds of input audio                       */
};

/* Append a segment, copying text and tokens; returns ASR_ERR_NO_MEMORY on OOM. */
asr_status asr_result_add_segment(asr_result *r, const asr_segment *seg);
/* Attach copies of n words to segment i (replacing any it had). */
asr_status asr_result_set_words(asr_result *r, int i, const asr_word *words, int n);
/* Build r->text from the segments (called once decoding ends). */
asr_status asr_result_finish(asr_result *r);
asr_result *asr_result_new(void);
#endif /* ASR_INTERNAL_H */
