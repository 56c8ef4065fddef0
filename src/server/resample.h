/* resample.h — streaming 24 kHz → 16 kHz resampler for realtime audio (OpenAI's pcm16 rate to Whisper's). */
#ifndef ASR_SERVER_RESAMPLE_H
#define ASR_SERVER_RESAMPLE_H

#include <stddef.h>

/* Output sample m sits at input time 1.5 m: an integer or a half position,
 * so two windowed-sinc kernels (cut-off 7.2 kHz) cover every output. */
#define RS_HALF 16
typedef struct rt_resampler {
    float kernel[2][2 * RS_HALF];
    float *in;             /* input samples not yet needed by later outputs */
    size_t in_len, in_cap;
    unsigned long long in_base; /* absolute index of in[0] */
    unsigned long long out_next;
} rt_resampler;

void rs_init(rt_resampler *r);
/* Add input samples; appends every output that can now be computed to
 * out (cap: room for n * 2 / 3 + 2 samples). Returns outputs written, -1 on OOM. */
long rs_push(rt_resampler *r, const float *x, size_t n, float *out);
void rs_free(rt_resampler *r);

#endif /* ASR_SERVER_RESAMPLE_H */
