/* kernels_cpu.h — the CPU backend's kernel families, one set per instruction set, behind asr_linear's dispatch. */
#ifndef ASR_KERNELS_CPU_H
#define ASR_KERNELS_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* Every block kernel computes y[r][c] for rows r0 ≤ r < r1 and output
 * columns c0 ≤ c < c1 (c0 a multiple of ASR_PANEL for panel layouts), and
 * stores it, or adds it to y when acc. Bias and GELU come after, from the
 * dispatcher. The scalar and the SIMD form of a family give the same bits
 * for int8 (exact integer sums, the same float epilogue); bf16 and f16 sum
 * in a different order, so they agree to float32 rounding. */

/* ---- int8: activations quantised per row, u8 = round(x / xs) + 128 ---------- */
void asr_quantise_rows_scalar(const float *x, int n, int in, uint8_t *xq, float *xs);
void asr_i8_block_scalar(const uint8_t *xq, const float *xs, const asr_tensor *w, int r0, int r1, int c0, int c1,
                         float *y, int ldy, int acc);
#if defined(__x86_64__)
void asr_quantise_rows_vnni(const float *x, int n, int in, uint8_t *xq, float *xs);
void asr_i8_block_vnni(const uint8_t *xq, const float *xs, const asr_tensor *w, int r0, int r1, int c0, int c1,
                       float *y, int ldy, int acc);
#endif

/* ---- bf16: activations rounded to bfloat16 --------------------------------- */
void asr_round_bf16_scalar(const float *x, size_t n, uint16_t *out);
void asr_bf16_block_scalar(const uint16_t *xb, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y,
                           int ldy, int acc);
#if defined(__x86_64__)
void asr_round_bf16_avx512(const float *x, size_t n, uint16_t *out);
void asr_bf16_block_avx512(const uint16_t *xb, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y,
                           int ldy, int acc);
/* The same product from float32 activations on the FMA pipes: each bf16
 * weight widened exactly, x not rounded (linear_bf16w_avx512.c). */
void asr_bf16w_block_avx512(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                            int acc);
#endif

/* ---- f16 and f32 row-major weights ------------------------------------------- */
void asr_f16_block_scalar(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                          int acc);
void asr_f32_block_scalar(const float *x, const asr_tensor *w, int r0, int r1, int c0, int c1, float *y, int ldy,
                          int acc);
#if defined(__x86_64__)
/* The decoder's register kernel: all n rows (n < 16) against columns
 * [c0, c1), each weight read once; in a multiple of 8. */
void asr_f16_cols_avx2(const float *x, int n, int in, const uint16_t *w, float *y, int out, int c0, int c1, int acc);
#endif

/* ---- element-wise and attention helpers ------------------------------------------ */
/* One query against nk float32 keys and values (strides ldk, ldv):
 * scores (nk floats of scratch), softmax, weighted sum into out (dh); and
 * the same over IEEE half keys and values. */
void asr_attend_one_scalar(const float *q, const float *k, int ldk, const float *v, int ldv, int nk, int dh,
                           float scale, float *scores, float *out);
void asr_attend_one_k16_scalar(const float *q, const uint16_t *k, int ldk, const uint16_t *v, int ldv, int nk, int dh,
                               float scale, float *scores, float *out);
/* Portable forms of asr_gelu and asr_softmax (kernels.c). */
void asr_gelu_scalar(float *x, size_t n);
void asr_softmax_scalar(float *x, int n);
float asr_logsumexp_scalar(const float *x, int n);
#if defined(__x86_64__)
void asr_gelu_avx2(float *x, size_t n);
void asr_softmax_avx2(float *x, int n);
float asr_logsumexp_avx2(const float *x, int n);
/* One query against nk keys: scores, softmax, weighted sum of values into out (dh). */
void asr_attend_one_avx2(const float *q, const float *k, int ldk, const float *v, int ldv, int nk, int dh,
                         float scale, float *scores, float *out);
void asr_attend_one_k16_avx2(const float *q, const uint16_t *k, int ldk, const uint16_t *v, int ldv, int nk, int dh,
                             float scale, float *scores, float *out);
void asr_f16_to_f32_avx2(const uint16_t *in, float *out, size_t n);
/* Keys k (n_kv rows, stride ldk, dh columns) into panels of 16 keys, [dh][16]
 * floats each, zero past n_kv (attention_bf16.c). */
void asr_attn_pack_keys_bf16(const float *k, int ldk, int n_kv, int dh, float *dst);
/* Values v (n_kv rows, stride ldv, dh columns) as Vᵀ, a (dh, cols) P16K2
 * bf16 tensor (cols even ≥ n_kv, zeros past n_kv; dh a multiple of 16). */
void asr_attn_pack_values_bf16(const float *v, int ldv, int n_kv, int dh, int cols, uint16_t *dst);
/* scores (rows, n_kv) = scale · q (rows, dh; stride ldq) · kᵀ, from the packed keys kp. */
void asr_attn_scores_bf16(const float *q, int ldq, int rows, const float *kp, int n_kv, int dh, float scale,
                           float *scores);
/* One row of scores x (first nk live) into e^(x - max) as bf16, zeros from nk
 * to cols; returns 1 / Σ e (0 when every score is -inf): the caller scales
 * the weighted sum, so the probabilities are never written in float32. */
float asr_attn_softmax_bf16(const float *x, int nk, int cols, uint16_t *out);
void asr_f16_bytes_to_f32_avx2(const unsigned char *in, float *out, size_t n);
void asr_f32_to_f16_avx2(const float *in, uint16_t *out, size_t n);
#endif

/* Whether the running CPU has AVX2+FMA+F16C, for the element-wise helpers
 * that have no compute context (asked of the compiler runtime, which reads
 * cpuid once before main). */
int asr_cpu_has_avx2(void);

#endif
