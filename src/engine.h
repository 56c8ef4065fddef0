/* engine.h — per-request state and the encoder/decoder forward passes. */
#ifndef ASR_ENGINE_H
#define ASR_ENGINE_H

#include "kernels.h"
#include "model.h"

/* Most sequences decoded together (beam size, best_of). */
#define ASR_MAX_BATCH 16

/* When a state has one, asr_decode also writes the scaled cross-attention
 * scores (before the softmax) of these (layer, head) pairs against the first
 * n_keys encoder positions: out is (n_heads, R, n_keys). Word timing uses it. */
typedef struct asr_cross_capture {
    const int (*heads)[2];
    int n_heads;
    int n_keys;
    float *out;
} asr_cross_capture;

/* All mutable memory of one decode. Allocated once in asr_state_new (the
 * decoder caches grow with the batch size); forward passes never allocate. */
struct asr_state {
    const asr_model *model;
    asr_compute compute; /* this state's thread pool and per-thread scratch */

    /* encoder, one 30 s window; T = 2·n_audio_ctx input frames, A = n_audio_ctx.
     * Two allocations: enc_x (2·A·d, enc_xn its second half) and enc_qkv. */
    float *enc_cols;   /* im2col scratch: (T, n_mels·3) then (A, d·3); = enc_qkv */
    float *enc_conv;   /* (T, d) conv1 output; = enc_x (and enc_xn after it)  */
    float *enc_x;      /* (A, d) residual stream, then the encoder output     */
    float *enc_xn;     /* (A, d) normalised input of a block; = enc_x + A·d   */
    float *enc_qkv;    /* (A, 3d)                                            */
    float *enc_attn;   /* (A, d) attention output before projection; = enc_xn */
    float *enc_mlp;    /* (ASR_MLP_ROWS, 4d) MLP hidden rows; = enc_qkv       */
    void *cross_kv;    /* [n_text_layer] (A, 2·td): keys then values per row,
                          float32, or IEEE half under the bfloat16 compute type (asr_cross_bf16) */

    /* decoder; R = rows in flight (batch · new tokens), C = n_text_ctx */
    int batch_cap;     /* sequences the self-attention cache holds           */
    float *self_k;     /* [n_text_layer][batch_cap] (C, td)                  */
    float *self_v;     /* [n_text_layer][batch_cap] (C, td)                  */
    float *spare_k;    /* same shape: target of beam reordering, then swapped */
    float *spare_v;
    int rows_cap;      /* R capacity of the scratch below                    */
    float *dec_x;      /* (R, td) residual stream                            */
    float *dec_xn;     /* (R, td)                                            */
    float *dec_qkv;    /* (R, 3td)                                           */
    float *dec_attn;   /* (R, td)                                            */
    float *dec_mlp;    /* (R, 4td)                                           */
    float *logits;     /* (ASR_MAX_BATCH, n_vocab)                           */

    float *mel;        /* (n_mels, ASR_N_FRAMES) the current window           */
    const asr_cross_capture *capture; /* NULL except during word alignment    */
    struct asr_batch *batch; /* batched long-form buffers, NULL until first used */

    /* Set for asr_state_new_scheduled: encoder and decoder passes run on
     * the scheduler's compute (scheduler.c); no enc_* buffers then. */
    asr_scheduler *sched;
    int sched_sequences; /* sequences of this state in a decode loop, 0 outside */
};

/* Whether a state of m keeps the cross-attention K/V in 16 bits (under the
 * bfloat16 compute type: half the memory, and half the bytes each decoder
 * step reads), else float32. The 16-bit form is IEEE half, not bfloat16:
 * its 11-bit mantissa keeps the cross-attention's alignment, which
 * timestamps follow (bfloat16 K/V lost whole passages of a long-form base
 * transcript that float32 and half keep), and the values are bounded
 * activations well inside half's range (openai runs Whisper in fp16). */
static inline int asr_cross_bf16(const asr_model *m) { return m->compute_type == ASR_COMPUTE_BFLOAT16; }
static inline size_t asr_cross_elem(const asr_model *m) { return asr_cross_bf16(m) ? 2 : 4; }

/* Rows of the encoder's MLP computed at a time: its (rows, 4d) hidden
 * activations are the largest buffer of the encoder, and one slice of them
 * fits where q/k/v were (dead by then). A multiple of the float32 path's
 * 256-row sgemm slices (so float32 results stay the same bits) and of the
 * 96-row blocks of the int8/bf16 kernels. */
#define ASR_MLP_ROWS 768

/* Buffers of batched transcription (batch.c): up to `cap` windows encoded in
 * one pass (rows = windows × n_audio_ctx) and decoded together, each window
 * in its own slot of the self-attention cache and of the cross K/V. */
typedef struct asr_batch {
    int cap;           /* windows                                            */
    float *mel;        /* [cap] (n_mels, ASR_N_FRAMES)                        */
    float *enc_cols, *enc_conv, *enc_x, *enc_xn, *enc_qkv, *enc_attn; /* as in asr_state, × cap */
    float *enc_mlp;    /* (ASR_MLP_ROWS, 4d), as in asr_state                 */
    int n_windows;     /* windows the last asr_encode_batch encoded           */
    void *cross_kv;    /* [n_text_layer][n_windows] (A, 2·td), as st->cross_kv */
    float *self_k, *self_v; /* [n_text_layer][cap] (C, td)                    */
    int rows_cap;      /* decoder rows in flight: cap × (prompt of up to C/2+4) */
    float *dec_x, *dec_xn, *dec_qkv, *dec_attn, *dec_mlp;
    float *logits;     /* (cap, n_vocab)                                     */
} asr_batch;

/* Make st->batch hold at least `windows` windows (allocated on first use,
 * grown when a larger batch is asked for). */
asr_status asr_batch_reserve(asr_state *st, int windows, asr_error *err);
void asr_batch_free(asr_batch *b);

/* Encoder on n windows st->batch->mel[0..n) in one pass; their cross K/V go
 * to slots 0..n-1 of st->batch->cross_kv. */
asr_status asr_encode_batch(asr_state *st, int n, asr_error *err);

/* One decoder step for n sequences of the batch: sequence i is window
 * slot[i] (its own cache and encoder output), fed n_new tokens
 * tokens[i·n_new ..] at positions n_past..; the logits of row logit_row of
 * each go to st->batch->logits (n, n_vocab). */
asr_status asr_decode_batch(asr_state *st, const int *tokens, const int *slot, int n, int n_new, int n_past,
                            int logit_row, asr_error *err);

/* Copy window slot's cross K/V into st->cross_kv, so the one-window paths
 * (asr_decode, word alignment) see that window as the encoded one. */
void asr_batch_load_window(asr_state *st, int slot);

/* ---- the scheduler's side (scheduler.c) ---- */

/* Most states one scheduled decoder step takes. */
#define ASR_SCHED_MAX_STATES 256

/* Compute a scheduled state hands to its scheduler: run on the scheduler's
 * thread with ws, its workspace state (thread pool and encoder buffers). */
typedef asr_status (*asr_sched_job_fn)(void *ctx, asr_state *ws, asr_error *err);

/* Run fn on st's scheduler and wait for it. */
asr_status asr_sched_run(asr_state *st, asr_sched_job_fn fn, void *ctx, asr_error *err);

/* Feed one token to each of st's `batch` sequences at position n_past, in
 * the scheduler's next step with the other states' tokens; the logits go to
 * st->logits (batch, n_vocab) as asr_decode's. */
asr_status asr_sched_step(asr_state *st, const int *tokens, int batch, int n_past, asr_error *err);

/* st enters (sequences > 0) or leaves (0) a decode loop: the scheduler
 * waits briefly for the next token of every state inside one. */
void asr_sched_decoding(asr_state *st, int sequences);

const asr_model *asr_sched_model(const asr_scheduler *s);
void asr_sched_attach(asr_scheduler *s, asr_state *st);
void asr_sched_detach(asr_state *st);

/* One state's part of a scheduled step (asr_decode_steps fills status). */
typedef struct asr_step {
    asr_state *st;
    const int *tokens;
    int batch, n_past;
    asr_status status;
    asr_error *err;
} asr_step;

/* One decoder step over the states of steps[0..n) on ws's compute and rows
 * (logits: ws->rows_cap × n_vocab scratch); each state's logits are copied
 * to its own st->logits. A state whose arguments are wrong gets its error
 * and is left out. */
void asr_decode_steps(asr_state *ws, float *logits, asr_step *steps, int n);

/* Run the encoder on one window mel (n_mels, ASR_N_FRAMES) and compute the
 * cross-attention keys/values of every decoder layer into st->cross_kv. */
asr_status asr_encode(asr_state *st, const float *mel, asr_error *err);

/* Use n_threads threads (≥ 1) for matrix work from now on. */
asr_status asr_state_set_threads(asr_state *st, int n_threads, asr_error *err);

/* Make room for `batch` sequences in the decoder caches. */
asr_status asr_state_reserve(asr_state *st, int batch, asr_error *err);

/* Feed n_new tokens to each of `batch` sequences (tokens is (batch, n_new)),
 * all at positions n_past .. n_past+n_new-1, and write the logits of row
 * `logit_row` (0 ≤ logit_row < n_new) of each sequence to
 * st->logits (batch, n_vocab). */
asr_status asr_decode(asr_state *st, const int *tokens, int batch, int n_new, int n_past,
                      int logit_row, asr_error *err);

/* After asr_decode of one sequence: the logits of rows first .. first+n-1
 * (n <= ASR_MAX_BATCH) into st->logits (n, n_vocab). */
void asr_decode_logits_rows(asr_state *st, int first, int n);

/* Copy self-attention caches so sequence i continues from sequence src[i]
 * (beam search reordering); positions [0, n_past) are copied. */
void asr_state_reorder(asr_state *st, const int *src, int batch, int n_past);

#endif
