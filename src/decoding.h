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

/* [sot_prev, prompt...] + sot sequence (+ no_timestamps) into init (room
 * for n_text_ctx/2 + 4); returns the count and the position of sot in *sot_index. */
int asr_initial_tokens(const asr_model *m, const asr_decode_options *o, int *init, int *sot_index);

/* r->avg_logprob and r->compression_ratio from r's tokens and sum_logprob. */
asr_status asr_decode_result_stats(const asr_model *m, asr_decode_result *r, asr_error *err);

/* Greedy decoding (temperature 0) of the n windows of st->batch encoded by
 * asr_encode_batch, all stepped together: one decoder pass per token for
 * every window still going. r[i] (tokens allocated by the caller, n_text_ctx
 * + 1) gets window i's result (decoding_batch.c). */
asr_status asr_decode_batch_greedy(asr_state *st, const asr_decode_options *o, int n, asr_decode_result *r,
                                   asr_error *err);

/* initial_prompt as openai encodes it (" " + prompt.strip()): *ids is
 * malloc'd (NULL when *n is 0). */
asr_status asr_encode_prompt(const asr_model *m, const char *prompt, int **ids, int *n, asr_error *err);

/* Decode the window whose encoder output is already in st (asr_encode). */
asr_status asr_decode_window(asr_state *st, const asr_decode_options *o, asr_decode_result *r, asr_error *err);

/* Language probabilities for the encoded window: probs[n_langs] (softmax over
 * the language tokens of the model); returns the most likely index. */
asr_status asr_detect_language_encoded(asr_state *st, float *probs, int *best, asr_error *err);

/* ---- the pure steps of decoding, on logits alone (tests/unit/test_decoding.c) ---- */

/* A sequence being decoded: the initial tokens, then the sampled ones. */
typedef struct asr_sequence {
    int *tokens;   /* capacity n_text_ctx + 1 */
    int len;
    float sum_logprob;
} asr_sequence;

/* A finished sequence, as openai's DecodingTask ranks them. */
typedef struct asr_candidate {
    int *tokens;   /* sampled tokens only, without eot */
    int len;
    float score;   /* sum of log-probabilities */
} asr_candidate;

/* Most finished candidates a window keeps: beam_size · patience ≤ 2·ASR_MAX_BATCH (checked in
 * transcribe.c), plus the unfinished beams topped up at the end. */
#define ASR_MAX_CANDIDATES (2 * ASR_MAX_BATCH + 2)

/* openai's SuppressBlank, SuppressTokens and ApplyTimestampRules on one
 * sequence's logits (n_vocab), in place; sampled = its tokens after the
 * initial ones. */
void asr_apply_logit_filters(const asr_model *m, const asr_decode_options *o, float *logits, const int *sampled,
                             int n_sampled);

/* log_softmax of logits (n) into out (n); out may be logits. */
void asr_log_softmax(const float *logits, float *out, int n);

/* One step of greedy decoding (temperature 0: the most likely token; above:
 * a sample) for sequence q whose logits are lg: filters, picks, appends the
 * token and adds its log-probability. A sequence that already ended (last
 * token eot, not the first step) gets eot again at no cost. Returns the
 * token. scratch holds n_vocab floats. */
int asr_greedy_step(const asr_model *m, const asr_decode_options *o, asr_sequence *q, int sample_begin, int step,
                    float *lg, float *scratch);

/* Finished candidates beam search collects before it stops: round(beam · patience). */
int asr_beam_max_candidates(int beam, float patience);

/* openai BeamSearchDecoder.update for `beam` sequences whose log-probabilities
 * (after the filters) are logprobs (beam, n_vocab): the beam+1 best tokens of
 * each sequence are ranked together; those ending in eot become candidates
 * (up to max_cands), the best `beam` others the next sequences, written to
 * the spare token buffers, which are then swapped with the sequences' own.
 * src[b] is the sequence the new b-th continues, next_tokens[b] its token.
 * Returns 1 when max_cands candidates are finished. */
int asr_beam_update(asr_sequence *seqs, int **spare, int beam, const float *logprobs, int n_vocab, int eot,
                    int sample_begin, asr_candidate *cands, int *n_cands, int max_cands, int *src, int *next_tokens);

/* Top up the candidates with unfinished sequences, best sum_logprob first, to `beam`. */
void asr_beam_finalize(const asr_sequence *seqs, int beam, int sample_begin, asr_candidate *cands, int *n_cands);

/* The candidate openai's MaximumLikelihoodRanker picks: highest
 * sum_logprob / length (length_penalty NAN) or / ((5+length)/6)^penalty. */
int asr_best_candidate(const asr_candidate *cands, int n, float length_penalty);

/* ---- decode_with_fallback and the silence rule of transcribe() ---- */

/* A result that needs the next temperature: too repetitive (compression
 * ratio above its threshold) or too unlikely (average log-probability below
 * its threshold), unless the window is silence (no-speech probability above
 * its threshold while the log-probability is low). */
int asr_needs_fallback(const asr_transcribe_params *p, const asr_decode_result *r);

/* A window transcribe() skips as silence: no-speech probability above its
 * threshold, unless the text is likely enough (avg log-probability above
 * its threshold). */
int asr_window_is_silent(const asr_transcribe_params *p, const asr_decode_result *r);

#endif
