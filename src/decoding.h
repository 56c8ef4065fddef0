/* decoding.h — decoding one 30 s window: logit filters, greedy, sampling, beam search. */
#ifndef ASR_DECODING_H
#define ASR_DECODING_H

#include "engine.h"

/* openai/whisper DecodingOptions for one window. */
typedef struct asr_decode_options {
    asr_task task;
    int lang_index;          /* language of the sot sequence; -1 for .en models */
    float temperature;
    int beam_size;           /* > 1: beam search (only at temperature 0) */
    float patience;
    int best_of;             /* candidates when sampling at temperature > 0 */
    const int *prompt;       /* previous text tokens, may be NULL */
    int n_prompt;
    int without_timestamps;
    float max_initial_timestamp;
    int suppress_blank;
    int suppress_tokens;     /* apply the model's suppress list */
    float length_penalty;    /* NAN: rank by logprob / length */
    uint64_t *rng;           /* sampling state, advanced in place */
    int (*should_abort)(void *user_data);
    void *user_data;
} asr_decode_options;

/* openai/whisper DecodingResult. */
typedef struct asr_decode_result {
    int *tokens;             /* sampled tokens without eot (malloc'd, n_text_ctx) */
    int n_tokens;
    float sum_logprob;
    float avg_logprob;
    float no_speech_prob;
    float temperature;
    float compression_ratio;
} asr_decode_result;

/* Decode the window whose encoder output is already in st (asr_encode). */
asr_status asr_decode_window(asr_state *st, const asr_decode_options *o, asr_decode_result *r, asr_error *err);

/* Language probabilities for the encoded window: probs[n_langs] (softmax over
 * the language tokens of the model); returns the most likely index. */
asr_status asr_detect_language_encoded(asr_state *st, float *probs, int *best, asr_error *err);

#endif
