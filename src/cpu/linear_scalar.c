/* linear_scalar.c — portable plain-C kernels for every weight format (the reference the SIMD forms are held to). */
#include <math.h>
#include <string.h>

#include "cpu/kernels_cpu.h"
#include "model.h"

void asr_quantise_rows_scalar(const float *x, int n, int in, uint8_t *xq, float *xs)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * in;
        uint8_t *q = xq + (size_t)r * in;
        float amax = 0.0f;
        for (int k = 0; k < in; k++) amax = fabsf(xr[k]) > amax ? fabsf(xr[k]) : amax;
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        xs[r] = amax / 127.0f;
        for (int k = 0; k < in; k++) {
            float v = nearbyintf(xr[k] * inv);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[k] = (uint8_t)((int)v + 128);
        }
    }
}

void asr_i8_block_scalar(const uint8_t *xq, const float *xs, const asr_tensor *w, int r0, int r1, int c0, int c1,
                         float *y, int ldy, int acc)
{
    const int in = w->cols, k4 = in / 4;
    const int8_t *d = w->data;
    for (int c = c0; c < c1; c++) {
        const int8_t *panel = d + (size_t)(c / ASR_PANEL) * (size_t)in * ASR_PANEL + (size_t)(c % ASR_PANEL) * 4;
        for (int r = r0; r < r1; r++) {
            const uint8_t *x = xq + (size_t)r * in;
            int32_t sum = 0;
            for (int g = 0; g < k4; g++) {
                const int8_t *wg = panel + (size_t)g * ASR_PANEL * 4;
                for (int i = 0; i < 4; i++) sum += (int32_t)x[4 * g + i] * (int32_t)wg[i];
            }
            float v = (float)(sum - w->comp[c]) * (xs[r] * w->scale[c]);
            float *dst = y + (size_t)r * ldy + c;
            *dst = acc ? *dst + v : v;
        }
    }
}

void asr_round_bf16_scalar(const float *x, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = asr_f32_to_bf16(x[i]);
}

void asr_bf16_block_scalar(const uint16_t *xb, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y,
                           int ldy, int acc)
{
    const int in = w->cols, k2 = in / 2;
    const uint16_t *d = w->data;
    for (int c = c0; c < c1; c++) {
        const uint16_t *panel = d + (size_t)(c / ASR_PANEL) * (size_t)in * ASR_PANEL + (size_t)(c % ASR_PANEL) * 2;
        for (int r = r0; r < r1; r++) {
            const uint16_t *x = xb + (size_t)r * in;
            float sum = 0.0f;
            for (int g = 0; g < k2; g++) {
                const uint16_t *wg = panel + (size_t)g * ASR_PANEL * 2;
                sum += asr_bf16_to_f32(x[2 * g]) * asr_bf16_to_f32(wg[0]);
                sum += asr_bf16_to_f32(x[2 * g + 1]) * asr_bf16_to_f32(wg[1]);
            }
            float *dst = y + (size_t)r * ldy + c;
            *dst = acc ? *dst + sum : sum;
        }
    }
}

void asr_f16_block_scalar(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                          int acc)
{
    const int in = w->cols;
    const uint16_t *d = w->data;
    for (int c = c0; c < c1; c++) {
        const uint16_t *wc = d + (size_t)c * in;
        for (int r = r0; r < r1; r++) {
            const float *xr = x + (size_t)r * in;
            float sum = 0.0f;
            for (int k = 0; k < in; k++) sum += xr[k] * asr_f16_to_f32(wc[k]);
            float *dst = y + (size_t)r * ldy + c;
            *dst = acc ? *dst + sum : sum;
        }
    }
}

void asr_f32_block_scalar(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                          int acc)
{
    const int in = w->cols;
    const float *d = w->data;
    for (int c = c0; c < c1; c++) {
        const float *wc = d + (size_t)c * in;
        for (int r = r0; r < r1; r++) {
            const float *xr = x + (size_t)r * in;
            float sum = 0.0f;
            for (int k = 0; k < in; k++) sum += xr[k] * wc[k];
            float *dst = y + (size_t)r * ldy + c;
            *dst = acc ? *dst + sum : sum;
        }
    }
}
