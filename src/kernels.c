/* kernels.c — dense math: GEMM through OpenBLAS, layer norm, GELU, softmax. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>

void asr_gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
}

void asr_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

void asr_linear(const float *x, const float *w, const float *b, float *y, int n, int in, int out)
{
    if (n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
    } else {
        asr_gemm_nt(n, out, in, 1.0f, x, in, w, in, y, out);
    }
    if (b) {
        for (int i = 0; i < n; i++) {
            float *row = y + (size_t)i * out;
            for (int j = 0; j < out; j++) row[j] += b[j];
        }
    }
}

void asr_layer_norm(const float *x, const float *g, const float *b, float *y, int n, int d)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < d; j++) mean += xi[j];
        mean /= d;
        for (int j = 0; j < d; j++) {
            double t = xi[j] - mean;
            var += t * t;
        }
        var /= d;
        float inv = (float)(1.0 / sqrt(var + 1e-5));
        float mu = (float)mean;
        for (int j = 0; j < d; j++) yi[j] = (xi[j] - mu) * inv * g[j] + b[j];
    }
}

void asr_gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void asr_softmax(float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) {
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void asr_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}
