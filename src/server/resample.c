/* resample.c — streaming 24 kHz → 16 kHz resampler for realtime audio (OpenAI's pcm16 rate to Whisper's). */
#include "server/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rs_init(rt_resampler *r)
{
    memset(r, 0, sizeof *r);
    const double fc = 2.0 * 7200.0 / 24000.0; /* cut-off as a fraction of the input Nyquist rate */
    for (int phase = 0; phase < 2; phase++) {
        double frac = phase * 0.5, sum = 0;
        for (int k = 0; k < 2 * RS_HALF; k++) {
            double d = (double)(k - RS_HALF + 1) - frac; /* tap k is input sample floor(t) - HALF + 1 + k */
            double x = M_PI * fc * d;
            double sinc = fabs(d) < 1e-9 ? 1.0 : sin(x) / x;
            double w = 0.5 + 0.5 * cos(M_PI * d / RS_HALF);
            r->kernel[phase][k] = (float)(fc * sinc * w);
            sum += fc * sinc * w;
        }
        for (int k = 0; k < 2 * RS_HALF; k++) r->kernel[phase][k] = (float)(r->kernel[phase][k] / sum);
    }
}

long rs_push(rt_resampler *r, const float *x, size_t n, float *out)
{
    if (r->in_len + n > r->in_cap) {
        size_t cap = r->in_cap ? r->in_cap : 4096;
        while (cap < r->in_len + n) cap *= 2;
        float *grown = realloc(r->in, cap * sizeof *grown);
        if (!grown) return -1;
        r->in = grown;
        r->in_cap = cap;
    }
    memcpy(r->in + r->in_len, x, n * sizeof *x);
    r->in_len += n;
    long produced = 0;
    for (;;) {
        unsigned long long c = r->out_next * 3 / 2; /* floor(1.5 m) */
        if (c + RS_HALF >= r->in_base + r->in_len) break;
        int phase = (int)(r->out_next & 1);
        float acc = 0;
        for (int k = 0; k < 2 * RS_HALF; k++) {
            long long idx = (long long)c - RS_HALF + 1 + k;
            if (idx < (long long)r->in_base) continue; /* before the stream: zeros */
            acc += r->kernel[phase][k] * r->in[idx - (long long)r->in_base];
        }
        out[produced++] = acc;
        r->out_next++;
    }
    /* keep only what later outputs still read */
    unsigned long long keep_from = r->out_next * 3 / 2;
    keep_from = keep_from > RS_HALF ? keep_from - RS_HALF : 0;
    if (keep_from > r->in_base) {
        size_t drop = (size_t)(keep_from - r->in_base);
        if (drop > r->in_len) drop = r->in_len;
        memmove(r->in, r->in + drop, (r->in_len - drop) * sizeof *r->in);
        r->in_len -= drop;
        r->in_base += drop;
    }
    return produced;
}

void rs_free(rt_resampler *r)
{
    free(r->in);
    r->in = NULL;
    r->in_len = r->in_cap = 0;
}
