/* temperature.c — what a temperature means, for `asr transcribe --temperature` and the API's field alike: the fallback ladder's start. */
#include "server/server.h"

#include <math.h>

int srv_temperature_ladder(double start, double increment, float *out, int cap)
{
    /* numpy's arange(start, 1.0 + 1e-6, increment): ceil((stop - start) / step) values start + i * step */
    int n = increment > 0 ? (int)fmin(ceil((1.0 + 1e-6 - start) / increment), (double)cap) : 1;
    if (n < 1) n = 1; /* start above 1: that one temperature (openai's CLI would try none) */
    for (int i = 0; i < n; i++) out[i] = (float)(start + i * (increment > 0 ? increment : 0.0));
    return n;
}
