/* test_cpu_linear.c — asr_linear for every weight format × instruction-set path this CPU has (the scalar path forced
 * too), against double-precision loops.
 *
 * Two references per case:
 *   tight: a double loop over exactly what the kernel multiplies (the
 *          tensor's rounded/quantised weights; bf16-rounded or int8-
 *          quantised activations), so only float32 summation and epilogue
 *          rounding remain: error ≤ 2e-6 of Σ|x·w| (+|bias|, |y| when
 *          accumulating; float32 sums of ≤ 136 terms measure ~2.5e-7);
 *   loose: a double loop over the original float32 weights and inputs: the
 *          format's own error. Bounds, relative to Σ|x·w| per output:
 *          f32 2e-6, f16 5e-4 (11-bit mantissa weights; measured 1.4e-4),
 *          bf16 5e-3 (8-bit mantissas for weights and inputs; 1.7e-3), int8
 *          1.5e-2 (per-row symmetric scales: an element is off by at most
 *          half a step, max|row|/254; 5e-3).
 * Rows n ∈ {1,2,3,5,16,17,300,1500} (decoder column tasks below 16, blocks
 * above, slices when the activation buffer is smaller than the product),
 * odd output counts, inputs not a multiple of 16 (vector tails), plain /
 * accumulate / GELU. 1 and 2 pool threads must give identical bits, and
 * the int8 scalar and VNNI kernels identical bits to each other.
 */
#include "check.h"
#include "cpu/features.h"
#include "cpu/kernels_cpu.h"
#include "kernels.h"
#include "model.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static unsigned rng = 2024u;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static double gelu(double v)
{
    return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
}

/* The activations as the kernel of format dtype sees them. */
static void effective_x(asr_dtype dtype, int bf16_widens, const float *x, int n, int in, double *out)
{
    if (dtype == ASR_DTYPE_BF16 && !bf16_widens) {
        for (size_t i = 0; i < (size_t)n * in; i++) out[i] = asr_bf16_to_f32(asr_f32_to_bf16(x[i]));
    } else if (dtype == ASR_DTYPE_I8) {
        uint8_t *q = malloc((size_t)n * in);
        float *s = malloc((size_t)n * sizeof(float));
        asr_quantise_rows_scalar(x, n, in, q, s);
        for (int r = 0; r < n; r++)
            for (int k = 0; k < in; k++) out[(size_t)r * in + k] = ((double)q[(size_t)r * in + k] - 128.0) * s[r];
        free(q);
        free(s);
    } else {
        for (size_t i = 0; i < (size_t)n * in; i++) out[i] = x[i];
    }
}

/* Largest |y - ref| / scale over the outputs, where ref and scale are
 * computed from weights w (out, in) and inputs x (n, in) in double. */
static double max_error(const float *y, const double *x, const double *w, int n, int in, int out, const float *b,
                        const float *y0, int flags)
{
    double worst = 0.0;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < out; c++) {
            double dot = 0.0, mag = 0.0;
            for (int k = 0; k < in; k++) {
                double p = x[(size_t)r * in + k] * w[(size_t)c * in + k];
                dot += p;
                mag += fabs(p);
            }
            double v = dot + (b ? b[c] : 0.0);
            mag += b ? fabs(b[c]) : 0.0;
            if (flags & ASR_LINEAR_ACCUMULATE) {
                v += y0[(size_t)r * out + c];
                mag += fabs(y0[(size_t)r * out + c]);
            }
            if (flags & ASR_LINEAR_GELU) v = gelu(v);
            double e = fabs(y[(size_t)r * out + c] - v) / (mag > 1e-30 ? mag : 1e-30);
            if (!(e <= worst)) worst = e; /* NaN counts as worst */
        }
    return worst;
}

typedef struct path {
    const char *name;
    unsigned isa;
} path;

static const char *dtype_label(asr_dtype d)
{
    return asr_dtype_name(d);
}

static void test_format(asr_dtype dtype, const path *p, double loose_bound)
{
    static const int rows[] = {1, 2, 3, 5, 16, 17, 300, 1500};
    static const struct { int in, out; } shapes[] = {{64, 37}, {136, 83}};
    static const int flag_sets[] = {0, ASR_LINEAR_ACCUMULATE, ASR_LINEAR_GELU};
    asr_compute c1, c2;
    /* 128 activation rows: the 300- and 1500-row products run in slices */
    int ok = asr_compute_init(&c1, 1, p->isa, 64, 136, 128, 0, NULL) == ASR_OK;
    ok &= asr_compute_init(&c2, 2, p->isa, 64, 136, 128, 0, NULL) == ASR_OK;
    CHECK(ok, "%s/%s: compute contexts", dtype_label(dtype), p->name);
    if (!ok) return;
    double tight = 0.0, loose = 0.0;
    int identical = 1, invariant = 1, cases = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int in = shapes[s].in, out = shapes[s].out;
        float *w = malloc((size_t)out * in * sizeof(float)), *b = malloc((size_t)out * sizeof(float));
        double *wq = malloc((size_t)out * in * sizeof(double)), *wf = malloc((size_t)out * in * sizeof(double));
        float *row = malloc((size_t)in * sizeof(float));
        for (size_t i = 0; i < (size_t)out * in; i++) w[i] = frand();
        for (int i = 0; i < out; i++) b[i] = frand();
        asr_tensor t = asr_tensor_rows(ASR_DTYPE_F32, w, out, in);
        if (asr_tensor_convert(&t, dtype, NULL) != ASR_OK) {
            CHECK(0, "%s: convert %dx%d", dtype_label(dtype), out, in);
            continue;
        }
        for (int c = 0; c < out; c++) {
            asr_tensor_row(&t, c, row);
            for (int k = 0; k < in; k++) {
                wq[(size_t)c * in + k] = row[k];
                wf[(size_t)c * in + k] = w[(size_t)c * in + k];
            }
        }
        for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++) {
            int n = rows[ri];
            size_t nx = (size_t)n * in, ny = (size_t)n * out;
            float *x = malloc(nx * sizeof(float)), *y0 = malloc(ny * sizeof(float));
            float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float));
            double *xq = malloc(nx * sizeof(double)), *xf = malloc(nx * sizeof(double));
            for (size_t i = 0; i < nx; i++) x[i] = frand();
            for (size_t i = 0; i < ny; i++) y0[i] = frand();
            /* bf16 on the FMA pipes reads the activations unrounded */
            effective_x(dtype, asr_linear_bf16_widens(&c1, n, 0), x, n, in, xq);
            for (size_t i = 0; i < nx; i++) xf[i] = x[i];
            for (size_t f = 0; f < sizeof flag_sets / sizeof *flag_sets; f++) {
                int flags = flag_sets[f];
                const float *bias = flags == ASR_LINEAR_ACCUMULATE ? NULL : b;
                memcpy(y1, y0, ny * sizeof(float));
                memcpy(y2, y0, ny * sizeof(float));
                asr_linear(&c1, &t, x, n, bias, y1, flags);
                asr_linear(&c2, &t, x, n, bias, y2, flags);
                identical &= memcmp(y1, y2, ny * sizeof(float)) == 0;
                double et = max_error(y1, xq, wq, n, in, out, bias, y0, flags);
                double el = max_error(y1, xf, wf, n, in, out, bias, y0, flags);
                if (!(et <= tight)) tight = et;
                if (!(el <= loose)) loose = el;
                cases++;
            }
            /* the decoder's shared steps: each row as it would be alone
             * (no decoder weight is float32, which OpenBLAS multiplies) */
            asr_linear(&c2, &t, x, n, b, y1, ASR_LINEAR_ROW_INVARIANT);
            for (int r = 0; dtype != ASR_DTYPE_F32 && r < n; r += n > 3 ? n / 3 : 1) {
                asr_linear(&c1, &t, x + (size_t)r * in, 1, b, y2, ASR_LINEAR_ROW_INVARIANT);
                invariant &= memcmp(y1 + (size_t)r * out, y2, (size_t)out * sizeof(float)) == 0;
            }
            free(x);
            free(y0);
            free(y1);
            free(y2);
            free(xq);
            free(xf);
        }
        asr_tensor_free(&t);
        free(w);
        free(b);
        free(wq);
        free(wf);
        free(row);
    }
    CHECK(tight <= 2e-6, "%s/%s: %d cases against the same rounded operands: max error %.2e of sum|x*w|",
          dtype_label(dtype), p->name, cases, tight);
    CHECK(loose <= loose_bound, "%s/%s: against float32 weights and inputs: max error %.2e (bound %.0e)",
          dtype_label(dtype), p->name, loose, loose_bound);
    CHECK(identical, "%s/%s: 1 and 2 threads give identical bits", dtype_label(dtype), p->name);
    CHECK(invariant, "%s/%s: ASR_LINEAR_ROW_INVARIANT rows equal the same row alone", dtype_label(dtype), p->name);
    asr_compute_release(&c1);
    asr_compute_release(&c2);
}

/* int8 sums are exact: the scalar and the VNNI kernel must agree bit for bit. */
static void test_int8_paths_agree(unsigned features)
{
    if ((features & ASR_ISA_VNNI) != ASR_ISA_VNNI) return;
    int n = 37, in = 200, out = 51;
    float *w = malloc((size_t)out * in * sizeof(float)), *x = malloc((size_t)n * in * sizeof(float));
    float *ys = malloc((size_t)n * out * sizeof(float)), *yv = malloc((size_t)n * out * sizeof(float));
    for (int i = 0; i < out * in; i++) w[i] = frand();
    for (int i = 0; i < n * in; i++) x[i] = frand() * 3.0f;
    asr_tensor t = asr_tensor_rows(ASR_DTYPE_F32, w, out, in);
    asr_compute cs, cv;
    int ok = asr_tensor_convert(&t, ASR_DTYPE_I8, NULL) == ASR_OK;
    ok &= asr_compute_init(&cs, 1, 0, 8, in, n, 0, NULL) == ASR_OK;
    ok &= asr_compute_init(&cv, 1, features, 8, in, n, 0, NULL) == ASR_OK;
    if (ok) {
        asr_linear(&cs, &t, x, n, NULL, ys, ASR_LINEAR_GELU);
        asr_linear(&cv, &t, x, n, NULL, yv, ASR_LINEAR_GELU);
        uint8_t *qs = cs.act, *qv = cv.act;
        CHECK(memcmp(qs, qv, (size_t)n * in) == 0 && memcmp(cs.act_scale, cv.act_scale, (size_t)n * 4) == 0,
              "int8: scalar and AVX-512 activation quantisation give the same bytes and scales");
        CHECK(memcmp(ys, yv, (size_t)n * out * sizeof(float)) == 0, "int8: scalar and VNNI products are bit-identical");
        asr_compute_release(&cs);
        asr_compute_release(&cv);
    } else {
        CHECK(0, "int8 agreement: setup");
    }
    asr_tensor_free(&t);
    free(w);
    free(x);
    free(ys);
    free(yv);
}

/* A file's int8 weights keep their values: packing does not requantise. */
static void test_int8_kept(void)
{
    int rows = 19, cols = 24;
    int8_t q[19 * 24];
    float scale[19];
    for (int i = 0; i < rows * cols; i++) q[i] = (int8_t)((i * 37) % 255 - 127);
    for (int r = 0; r < rows; r++) scale[r] = 0.001f * (float)(r + 1) / 3.0f;
    asr_tensor t;
    int ok = asr_tensor_from_i8(&t, q, scale, rows, cols, NULL) == ASR_OK;
    ok = ok && asr_tensor_convert(&t, ASR_DTYPE_I8, NULL) == ASR_OK && t.layout == ASR_LAYOUT_P16K4;
    float row[24];
    int same = ok;
    for (int r = 0; ok && r < rows; r++) {
        asr_tensor_row(&t, r, row);
        for (int k = 0; k < cols; k++) same &= row[k] == (float)q[r * cols + k] * scale[r];
    }
    CHECK(same, "int8 weights packed from int8 keep every value and scale (no round trip)");
    if (ok) asr_tensor_free(&t);
}

static void test_compute_type_names(void)
{
    static const char *const names[] = {"auto", "float32", "float16", "bfloat16", "int8", "int8_float32",
                                        "int8_bfloat16"};
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        int t = asr_compute_type_parse(names[i]);
        ok &= t == i && strcmp(asr_compute_type_name((asr_compute_type)t), names[i]) == 0;
    }
    CHECK(ok, "compute type names parse and print back");
    CHECK(asr_compute_type_parse("int4") == -1 && asr_compute_type_parse("") == -1 && asr_compute_type_parse(NULL) == -1,
          "unknown compute type names are rejected");
    CHECK(asr_compute_type_auto(0) == ASR_COMPUTE_FLOAT32 && asr_compute_type_auto(ASR_ISA_VNNI) == ASR_COMPUTE_FLOAT32 &&
              asr_compute_type_auto(ASR_ISA_BF16) == ASR_COMPUTE_BFLOAT16 &&
              asr_compute_type_auto(ASR_ISA_VNNI | ASR_ISA_BF16) == ASR_COMPUTE_BFLOAT16,
          "auto: bfloat16 with AVX512_BF16, else float32 (int8 fails the accuracy gate)");
}

int main(void)
{
    unsigned f = asr_cpu_features();
    char buf[256];
    printf("cpu features: %s\n", asr_cpu_features_text(f, buf, sizeof buf));
    path scalar = {"scalar", 0}, native = {"native", f};
    static const asr_dtype dtypes[] = {ASR_DTYPE_F32, ASR_DTYPE_F16, ASR_DTYPE_BF16, ASR_DTYPE_I8};
    static const double bounds[] = {2e-6, 5e-4, 5e-3, 1.5e-2};
    for (int d = 0; d < 4; d++) {
        test_format(dtypes[d], &scalar, bounds[d]);
        if (f) test_format(dtypes[d], &native, bounds[d]);
    }
    /* bf16's other paths on this machine: vdpbf16ps at any height, the FMA
     * pipes for the encoder's heights (Intel's cores), and the FMA pipes at
     * every height (AVX-512 without AVX512_BF16) */
    if ((f & ASR_ISA_BF16) == ASR_ISA_BF16) {
        path dp = {"vdpbf16ps", f & ~(unsigned)ASR_CPU_BF16_HALF_RATE};
        path half = {"half-rate vdpbf16ps", f | ASR_CPU_BF16_HALF_RATE};
        test_format(ASR_DTYPE_BF16, &dp, bounds[2]);
        test_format(ASR_DTYPE_BF16, &half, bounds[2]);
    }
    if ((f & ASR_ISA_AVX512) == ASR_ISA_AVX512) {
        path fma = {"avx512 without bf16", f & ~(unsigned)(ASR_CPU_AVX512BF16 | ASR_CPU_BF16_HALF_RATE)};
        test_format(ASR_DTYPE_BF16, &fma, bounds[2]);
    }
    test_int8_paths_agree(f);
    test_int8_kept();
    test_compute_type_names();
    return CHECK_DONE();
}
