/* tensor.c — typed weight tensors: conversion between number formats and packing into kernel panels. */
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

asr_tensor asr_tensor_rows(asr_dtype dtype, void *data, int rows, int cols)
{
    return (asr_tensor){.dtype = dtype, .layout = ASR_LAYOUT_ROWS, .rows = rows, .cols = cols, .data = data};
}

const char *asr_dtype_name(asr_dtype dtype)
{
    switch (dtype) {
    case ASR_DTYPE_F32: return "float32";
    case ASR_DTYPE_F16: return "float16";
    case ASR_DTYPE_BF16: return "bfloat16";
    case ASR_DTYPE_I8: return "int8";
    }
    return "?";
}

uint16_t asr_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void asr_tensor_free(asr_tensor *t)
{
    free(t->owned);
    t->owned = NULL;
    t->data = NULL;
    t->scale = NULL;
    t->comp = NULL;
}

static int padded_rows(int rows)
{
    return (rows + ASR_PANEL - 1) / ASR_PANEL * ASR_PANEL;
}

/* Byte offset of int8 element (r, k) in a P16K4 tensor with `cols` inputs. */
static size_t p16k4_at(int r, int k, int cols)
{
    return (((size_t)(r / ASR_PANEL) * (size_t)(cols / 4) + (size_t)(k / 4)) * ASR_PANEL + (size_t)(r % ASR_PANEL)) *
               4 + (size_t)(k % 4);
}

/* Element index of bf16 element (r, k) in a P16K2 tensor. */
static size_t p16k2_at(int r, int k, int cols)
{
    return (((size_t)(r / ASR_PANEL) * (size_t)(cols / 2) + (size_t)(k / 2)) * ASR_PANEL + (size_t)(r % ASR_PANEL)) *
               2 + (size_t)(k % 2);
}

void asr_tensor_row(const asr_tensor *t, int r, float *out)
{
    int n = t->cols;
    switch (t->dtype) {
    case ASR_DTYPE_F32:
        memcpy(out, (const float *)t->data + (size_t)r * n, (size_t)n * sizeof(float));
        return;
    case ASR_DTYPE_F16:
        asr_f16_to_f32_n((const uint16_t *)t->data + (size_t)r * n, out, (size_t)n);
        return;
    case ASR_DTYPE_BF16: {
        const uint16_t *d = t->data;
        for (int k = 0; k < n; k++)
            out[k] = asr_bf16_to_f32(t->layout == ASR_LAYOUT_P16K2 ? d[p16k2_at(r, k, n)] : d[(size_t)r * n + k]);
        return;
    }
    case ASR_DTYPE_I8: {
        const int8_t *d = t->data;
        float s = t->scale[r];
        for (int k = 0; k < n; k++)
            out[k] = (float)(t->layout == ASR_LAYOUT_P16K4 ? d[p16k4_at(r, k, n)] : d[(size_t)r * n + k]) * s;
        return;
    }
    }
}

size_t asr_tensor_bytes(const asr_tensor *t)
{
    size_t per = t->dtype == ASR_DTYPE_F32 ? 4 : t->dtype == ASR_DTYPE_I8 ? 1 : 2;
    return per * (size_t)t->rows * (size_t)t->cols;
}

asr_status asr_tensor_from_i8(asr_tensor *t, const int8_t *q, const float *scale, int rows, int cols,
                              asr_error *err)
{
    size_t n = (size_t)rows * (size_t)cols;
    char *mem = malloc(n + (size_t)rows * sizeof(float));
    if (!mem) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory for a %dx%d int8 tensor", rows, cols);
    float *s = (float *)mem; /* scales first, so they are aligned */
    int8_t *d = (int8_t *)(mem + (size_t)rows * sizeof(float));
    memcpy(s, scale, (size_t)rows * sizeof(float));
    memcpy(d, q, n);
    *t = (asr_tensor){.dtype = ASR_DTYPE_I8, .layout = ASR_LAYOUT_ROWS, .rows = rows, .cols = cols,
                      .data = d, .scale = s, .owned = mem};
    return ASR_OK;
}

/* Quantise one float row to int8 with its own scale max|w| / 127. */
static float quantise_row(const float *w, int n, int8_t *q)
{
    float amax = 0.0f;
    for (int k = 0; k < n; k++) amax = fabsf(w[k]) > amax ? fabsf(w[k]) : amax;
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int k = 0; k < n; k++) {
        float v = nearbyintf(w[k] * inv);
        q[k] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    }
    return amax / 127.0f;
}

static asr_status to_i8(asr_tensor *t, asr_tensor *out, asr_error *err)
{
    int rows = t->rows, cols = t->cols, rp = padded_rows(rows);
    if (cols % 4) return asr_fail(err, ASR_ERR_MODEL, "int8 weights need a multiple of 4 inputs, not %d", cols);
    size_t data = (size_t)rp * (size_t)cols;
    size_t bytes = (data + 63) / 64 * 64 + (size_t)rp * (sizeof(float) + sizeof(int32_t));
    char *mem = aligned_alloc(64, (bytes + 63) / 64 * 64);
    float *row = malloc((size_t)cols * sizeof(float));
    int8_t *q = malloc((size_t)cols);
    if (!mem || !row || !q) {
        free(mem);
        free(row);
        free(q);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory converting a %dx%d tensor to int8", rows, cols);
    }
    memset(mem, 0, bytes);
    int8_t *d = (int8_t *)mem;
    float *scale = (float *)(mem + (data + 63) / 64 * 64);
    int32_t *comp = (int32_t *)(scale + rp);
    for (int r = 0; r < rows; r++) {
        if (t->dtype == ASR_DTYPE_I8) { /* keep the file's quantisation */
            for (int k = 0; k < cols; k++)
                q[k] = t->layout == ASR_LAYOUT_P16K4 ? ((const int8_t *)t->data)[p16k4_at(r, k, cols)]
                                                     : ((const int8_t *)t->data)[(size_t)r * cols + k];
            scale[r] = t->scale[r];
        } else {
            asr_tensor_row(t, r, row);
            scale[r] = quantise_row(row, cols, q);
        }
        int32_t sum = 0;
        for (int k = 0; k < cols; k++) sum += q[k];
        comp[r] = 128 * sum;
        int8_t *dst = d + p16k4_at(r, 0, cols); /* then every 64 bytes, 4 inputs */
        for (int g = 0; g < cols / 4; g++) memcpy(dst + (size_t)g * 4 * ASR_PANEL, q + 4 * g, 4);
    }
    free(row);
    free(q);
    *out = (asr_tensor){.dtype = ASR_DTYPE_I8, .layout = ASR_LAYOUT_P16K4, .rows = rows, .cols = cols,
                        .data = d, .scale = scale, .comp = comp, .owned = mem};
    return ASR_OK;
}

/* Rows converted between two hand-backs of a consumed source's pages. */
#define CONSUME_ROWS 256

static asr_status to_rows(asr_tensor *t, asr_dtype dtype, int consume, asr_tensor *out, asr_error *err)
{
    int rows = t->rows, cols = t->cols, rp = dtype == ASR_DTYPE_BF16 ? padded_rows(rows) : rows;
    if (dtype == ASR_DTYPE_BF16 && cols % 2)
        return asr_fail(err, ASR_ERR_MODEL, "bfloat16 weights need an even number of inputs, not %d", cols);
    size_t per = dtype == ASR_DTYPE_F32 ? 4 : 2, bytes = per * (size_t)rp * (size_t)cols;
    char *mem = aligned_alloc(64, (bytes + 63) / 64 * 64);
    float *row = malloc((size_t)cols * sizeof(float));
    if (!mem || !row) {
        free(mem);
        free(row);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory converting a %dx%d tensor to %s", rows, cols,
                        asr_dtype_name(dtype));
    }
    /* Only the padding rows need zeros first (the whole last 16-row panel);
     * the rest is written once, so a page of the copy becomes resident only
     * when its values arrive, as the source's pages leave (consume). */
    if (rp > rows) {
        size_t panel = (size_t)ASR_PANEL * (size_t)cols;
        memset((uint16_t *)mem + (size_t)(rp - ASR_PANEL) * cols, 0, panel * sizeof(uint16_t));
    }
    const char *src = t->data;
    size_t src_row = (t->dtype == ASR_DTYPE_F32 ? 4 : 2) * (size_t)cols;
    consume = consume && t->layout == ASR_LAYOUT_ROWS && !t->owned &&
              (t->dtype == ASR_DTYPE_F32 || t->dtype == ASR_DTYPE_F16 || t->dtype == ASR_DTYPE_BF16);
    for (int r = 0; r < rows; r++) {
        if (consume && r > 0 && r % CONSUME_ROWS == 0) asr_release_pages(src, (size_t)r * src_row);
        asr_tensor_row(t, r, row);
        if (dtype == ASR_DTYPE_F32) {
            memcpy((float *)mem + (size_t)r * cols, row, (size_t)cols * sizeof(float));
        } else if (dtype == ASR_DTYPE_F16) {
            asr_f32_to_f16_n(row, (uint16_t *)mem + (size_t)r * cols, (size_t)cols);
        } else {
            uint16_t *d = (uint16_t *)mem + p16k2_at(r, 0, cols); /* then every 32 halves, 2 inputs */
            for (int k = 0; k < cols; k += 2) {
                d[(size_t)k * ASR_PANEL] = asr_f32_to_bf16(row[k]);
                d[(size_t)k * ASR_PANEL + 1] = asr_f32_to_bf16(row[k + 1]);
            }
        }
    }
    free(row);
    *out = (asr_tensor){.dtype = dtype, .layout = dtype == ASR_DTYPE_BF16 ? ASR_LAYOUT_P16K2 : ASR_LAYOUT_ROWS,
                        .rows = rows, .cols = cols, .data = mem, .owned = mem};
    return ASR_OK;
}

static asr_status convert(asr_tensor *t, asr_dtype dtype, int consume, asr_error *err)
{
    asr_layout want = dtype == ASR_DTYPE_I8 ? ASR_LAYOUT_P16K4 : dtype == ASR_DTYPE_BF16 ? ASR_LAYOUT_P16K2
                                                                                         : ASR_LAYOUT_ROWS;
    if (t->dtype == dtype && t->layout == want) return ASR_OK;
    asr_tensor out;
    asr_status s = dtype == ASR_DTYPE_I8 ? to_i8(t, &out, err) : to_rows(t, dtype, consume, &out, err);
    if (s != ASR_OK) return s;
    asr_tensor_free(t);
    *t = out;
    return ASR_OK;
}

asr_status asr_tensor_convert(asr_tensor *t, asr_dtype dtype, asr_error *err)
{
    return convert(t, dtype, 0, err);
}

asr_status asr_tensor_convert_consuming(asr_tensor *t, asr_dtype dtype, asr_error *err)
{
    return convert(t, dtype, 1, err);
}
