/* kernels.h — dense math used by the encoder and decoder (float32, row-major). */
#ifndef ASR_KERNELS_H
#define ASR_KERNELS_H

#include <stddef.h>

/* y (n, out) = x (n, in) · w (out, in)^T + b (out); b may be NULL. */
void asr_linear(const float *x, const float *w, const float *b, float *y, int n, int in, int out);

/* C (m, n) = alpha · A (m, k) · B^T where B is (n, k); leading dims given. */
void asr_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float *c, int ldc);
/* C (m, n) = A (m, k) · B (k, n); leading dims given. */
void asr_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

/* y (n, d) = LayerNorm(x) · g + b with eps 1e-5 (torch.nn.LayerNorm default). */
void asr_layer_norm(const float *x, const float *g, const float *b, float *y, int n, int d);

/* Exact GELU, 0.5·x·(1 + erf(x/√2)), in place over n values. */
void asr_gelu(float *x, size_t n);

/* Softmax of one row of n values in place; -INFINITY entries become 0. */
void asr_softmax(float *x, int n);

/* x += y over n values. */
void asr_add(float *x, const float *y, size_t n);

#endif
