/* tensor.h — a linear layer's weight matrix in the number format it is multiplied in. */
#ifndef ASR_TENSOR_H
#define ASR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef enum asr_dtype {
    ASR_DTYPE_F32,
    ASR_DTYPE_F16,  /* IEEE half                                  */
    ASR_DTYPE_BF16, /* bfloat16, rounded to nearest even           */
    ASR_DTYPE_I8,   /* symmetric per row: w ≈ q · scale[row]       */
} asr_dtype;

/* How data is laid out; private to the CPU backend (src/cpu/), which packs
 * weights once at load for the kernel family that multiplies them.
 *   ROWS   row-major (rows, cols), as in the model files;
 *   P16K4  int8 panels of 16 rows: [rows/16][cols/4][16][4] bytes, so one
 *          64-byte load gives vpdpbusd four inputs of sixteen outputs;
 *   P16K2  bf16 panels of 16 rows: [rows/16][cols/2][16][2] halves, the
 *          operand order of vdpbf16ps.
 * Panels are padded to whole 16-row panels with zeros. */
typedef enum asr_layout {
    ASR_LAYOUT_ROWS,
    ASR_LAYOUT_P16K4,
    ASR_LAYOUT_P16K2,
} asr_layout;

#define ASR_PANEL 16

/* y = x · wᵀ uses the (rows = out, cols = in) matrix w. */
typedef struct asr_tensor {
    asr_dtype dtype;
    asr_layout layout;
    int rows, cols;
    void *data;
    float *scale;  /* I8: per-row scale, max|row| / 127 (CTranslate2's scheme) */
    int32_t *comp; /* I8: 128 · Σ_k q[row][k], the offset the kernels subtract
                      because activations enter vpdpbusd as u8 = q + 128        */
    void *owned;   /* allocation holding data/scale/comp, freed with the tensor;
                      NULL when data points into a model arena                  */
} asr_tensor;

/* A row-major tensor over existing memory (not owned). */
asr_tensor asr_tensor_rows(asr_dtype dtype, void *data, int rows, int cols);

/* A row-major int8 tensor copied from q (rows, cols) and the per-row scales
 * w = q · scale (owned). */
asr_status asr_tensor_from_i8(asr_tensor *t, const int8_t *q, const float *scale, int rows, int cols,
                              asr_error *err);

/* Convert t in place to dtype, in the layout its kernels read (ROWS for F32
 * and F16, P16K2 for BF16, P16K4 for I8). I8 from I8 keeps the quantised
 * values (no round trip through float); from float it quantises per row.
 * Frees what t owned before. */
asr_status asr_tensor_convert(asr_tensor *t, asr_dtype dtype, asr_error *err);

/* As asr_tensor_convert, and while converting to a row or bf16 panel layout
 * (not int8), give the whole pages of t's source rows back to the system as
 * they are read (asr_release_pages), so the source and the copy are never
 * both resident. Only for a row-major source that t does not own and that
 * nothing reads afterwards (a model arena's matrix, replaced by its copy). */
asr_status asr_tensor_convert_consuming(asr_tensor *t, asr_dtype dtype, asr_error *err);

/* Row r of t as float32 (dequantised), cols values into out. */
void asr_tensor_row(const asr_tensor *t, int r, float *out);

/* Bytes of weight data the tensor's kernels read per product. */
size_t asr_tensor_bytes(const asr_tensor *t);

void asr_tensor_free(asr_tensor *t);

const char *asr_dtype_name(asr_dtype dtype);

/* Scalar conversions shared by the packers, the kernels and the tests. */
uint16_t asr_f32_to_bf16(float f); /* round to nearest even; NaN stays NaN */

#endif
