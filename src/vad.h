/* vad.h — internals of the Silero VAD (vad.c) that the unit tests check on their own. */
#ifndef ASR_VAD_H
#define ASR_VAD_H

#include "internal.h"

/* The weight file built into the library (vad_weights.c). */
extern const unsigned char asr_vad_builtin_data[];
extern const unsigned char asr_vad_builtin_end[];

/* out[0 .. n + 2*pad) = x reflected by pad samples at each end, without
 * repeating the edge sample (ONNX Pad mode "reflect"); needs pad < n. */
void asr_vad_reflect_pad(const float *x, int n, int pad, float *out);

/* One 1-D convolution, kernel 3, zero padding 1, then ReLU (c_in <= 256):
 * in (c_in, l_in), w (c_out, c_in, 3), b (c_out) → out (c_out, l_out) with
 * l_out = (l_in - 1) / stride + 1. Returns l_out. */
int asr_vad_conv3_relu(const float *in, int c_in, int l_in, const float *w, const float *b, int c_out,
                       int stride, float *out);

/* One step of an ONNX LSTM (gates i, o, f, c; sigmoid, tanh, tanh):
 * w (4*n_hidden, n_in), r (4*n_hidden, n_hidden), b (8*n_hidden: input
 * biases, then recurrent biases); h and c are updated in place; gates is
 * scratch of 4*n_hidden floats. */
void asr_vad_lstm_step(const float *x, int n_in, const float *w, const float *r, const float *b, int n_hidden,
                       float *h, float *c, float *gates);

/* asr_transcribe() with params->vad_filter set (vad_transcribe.c): the
 * speech chunks of the input are joined, transcribed without the filter, and
 * segment and word times mapped back to the input's timeline. */
asr_status asr_transcribe_vad(asr_state *st, const float *samples, size_t n_samples,
                              const asr_transcribe_params *params, asr_result **out, asr_error *err);

/* The batched pipeline (transcribe_batch.c) on the collected speech: the
 * chunks (in the input's samples; their lengths lay them out one after
 * another in speech) packed into windows of at most 30 s, batch_size at a
 * time. Segment and word times are in speech's timeline, as asr_transcribe
 * gives them; params->batch_size >= 1. */
asr_status asr_transcribe_batched(asr_state *st, const float *speech, size_t n_speech,
                                  const asr_vad_segment *chunks, size_t n_chunks,
                                  const asr_transcribe_params *params, asr_result **out, asr_error *err);

#endif /* ASR_VAD_H */
