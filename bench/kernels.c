/* kernels.c — GFLOP/s of asr_linear per weight format on Whisper shapes, one thread, against measured peaks.
 * usage: kernels [SECONDS_PER_CASE]  (make bench-kernels; needs AVX-512 VNNI and BF16 for the peak loops) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/features.h"
#include "kernels.h"
#include "model.h"

/* This thread's CPU time, not the wall clock: on a machine shared with other
 * jobs the thread is descheduled at times, which the wall clock would count.
 * (Everything below runs on one thread: a pool of one runs its tasks on the caller.) */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The core clock the kernel reports (/proc/cpuinfo "cpu MHz"); 0 if unknown.
 * Timing a chain of dependent adds would be the direct way, but on a
 * shared virtual machine other tenants' load makes it read low. */
static double cpuinfo_ghz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0.0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1) break;
    if (f) fclose(f);
    return mhz / 1000.0;
}

/* Throughput of one instruction over 12 independent accumulators: ops per
 * instruction × instructions per second. */
#define PEAK_LOOP(name, type, zero, op, ops_per_insn)                                                           \
    static double name(void)                                                                                     \
    {                                                                                                            \
        type a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero, a8 = zero, \
             a9 = zero, a10 = zero, a11 = zero;                                                                  \
        const long n = 20000000;                                                                                 \
        double t0 = now_s();                                                                                     \
        for (long i = 0; i < n; i++) {                                                                           \
            op(a0); op(a1); op(a2); op(a3); op(a4); op(a5); op(a6); op(a7); op(a8); op(a9); op(a10); op(a11);    \
            __asm__ __volatile__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));              \
        }                                                                                                        \
        double t = now_s() - t0;                                                                                 \
        volatile type sink = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                       \
        (void)sink;                                                                                              \
        return 12.0 * (double)n * (ops_per_insn) / t / 1e9;                                                      \
    }

static __m512 fb, fc;
static __m512i ib, ic;
#define FMA_OP(a) a = _mm512_fmadd_ps(a, fb, fc)
#define BF16_OP(a) a = _mm512_dpbf16_ps(a, (__m512bh)ib, (__m512bh)ic)
#define VNNI_OP(a) a = _mm512_dpbusd_epi32(a, ib, ic)
PEAK_LOOP(peak_fma, __m512, _mm512_setzero_ps(), FMA_OP, 32.0)
PEAK_LOOP(peak_bf16, __m512, _mm512_setzero_ps(), BF16_OP, 64.0)
PEAK_LOOP(peak_vnni, __m512i, _mm512_setzero_si512(), VNNI_OP, 128.0)

static unsigned rng = 1u;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(int argc, char **argv)
{
    /* --peaks: only the three peaks, as one JSON line (bench/engine_shapes.py reads it) */
    int peaks_only = argc > 1 && strcmp(argv[1], "--peaks") == 0;
    double seconds = argc > 1 && !peaks_only ? atof(argv[1]) : 0.3;
    unsigned f = asr_cpu_features();
    char feat[256];
    if (!peaks_only) printf("cpu features: %s\n", asr_cpu_features_text(f, feat, sizeof feat));
    if ((f & ASR_ISA_VNNI) != ASR_ISA_VNNI || (f & ASR_ISA_BF16) != ASR_ISA_BF16) {
        fprintf(peaks_only ? stderr : stdout, "this program measures AVX-512 VNNI and BF16 peaks; the CPU lacks one\n");
        return 1;
    }
    fb = _mm512_set1_ps(1.0f);
    fc = _mm512_set1_ps(1e-7f);
    ib = _mm512_set1_epi32(0x01010101);
    ic = _mm512_set1_epi32(0x3f803f80);
    double ghz = cpuinfo_ghz();
    /* best of three: other processes may share the core */
    double p_f32 = 0, p_bf16 = 0, p_i8 = 0;
    for (int i = 0; i < 3; i++) {
        double a = peak_fma(), b = peak_bf16(), c = peak_vnni();
        p_f32 = a > p_f32 ? a : p_f32;
        p_bf16 = b > p_bf16 ? b : p_bf16;
        p_i8 = c > p_i8 ? c : p_i8;
    }
    if (peaks_only) {
        printf("{\"f32\": %.1f, \"bf16\": %.1f, \"int8\": %.1f}\n", p_f32, p_bf16, p_i8);
        return 0;
    }
    printf("clock %.2f GHz (/proc/cpuinfo); measured single-core peaks (12 independent zmm accumulators):\n"
           "  fp32 vfmadd %.1f GFLOP/s = %.1f flop/cycle; vdpbf16ps %.1f GFLOP/s = %.1f/cycle; "
           "vpdpbusd %.1f GOP/s = %.1f/cycle\n",
           ghz, p_f32, p_f32 / ghz, p_bf16, p_bf16 / ghz, p_i8, p_i8 / ghz);
    printf("  (%% columns below are of these measured peaks)\n");

    static const struct { const char *name; int n, in, out; } shapes[] = {
        {"tiny qkv", 1500, 384, 1152},  {"tiny out", 1500, 384, 384},   {"tiny fc1", 1500, 384, 1536},
        {"tiny fc2", 1500, 1536, 384},  {"tiny crosskv", 1500, 384, 768}, {"base qkv", 1500, 512, 1536},
        {"base out", 1500, 512, 512},   {"base fc1", 1500, 512, 2048},  {"base fc2", 1500, 2048, 512},
        {"tiny dec fc1 n=1", 1, 384, 1536}, {"tiny dec fc1 n=5", 5, 384, 1536},
        {"tiny logits n=1", 1, 384, 51864}, {"base logits n=5", 5, 512, 51864},
    };
    /* bf16 twice: vdpbf16ps, and as CPUs with ASR_CPU_BF16_HALF_RATE run it
     * (weights widened onto the FMA pipes from 16 rows up; vdpbf16ps below) */
    enum { PEAK_F32, PEAK_BF16, PEAK_I8 };
    static const struct { const char *title; asr_dtype dtype; int half_rate, peak; } columns[] = {
        {"f32 GFLOP/s (%peak)", ASR_DTYPE_F32, 0, PEAK_F32},  {"f16 (%fp32 peak)", ASR_DTYPE_F16, 0, PEAK_F32},
        {"bf16 (%bf16 peak)", ASR_DTYPE_BF16, 0, PEAK_BF16},  {"bf16 on FMA (%fp32)", ASR_DTYPE_BF16, 1, PEAK_F32},
        {"int8 GOP/s (%vnni)", ASR_DTYPE_I8, 0, PEAK_I8},
    };
    const double peaks[] = {[PEAK_F32] = p_f32, [PEAK_BF16] = p_bf16, [PEAK_I8] = p_i8};
    asr_compute c;
    if (asr_compute_init(&c, 1, f, 64, 2048, 1500, 0, NULL) != ASR_OK) return 1;
    printf("%-18s %6s %6s %6s |", "shape", "n", "in", "out");
    for (size_t d = 0; d < sizeof columns / sizeof *columns; d++) printf(" %22s", columns[d].title);
    printf("\n");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int n = shapes[s].n, in = shapes[s].in, out = shapes[s].out;
        float *w = malloc((size_t)out * in * sizeof(float)), *x = malloc((size_t)n * in * sizeof(float));
        float *y = malloc((size_t)n * out * sizeof(float));
        for (size_t i = 0; i < (size_t)out * in; i++) w[i] = frand();
        for (size_t i = 0; i < (size_t)n * in; i++) x[i] = frand();
        printf("%-18s %6d %6d %6d |", shapes[s].name, n, in, out);
        for (size_t d = 0; d < sizeof columns / sizeof *columns; d++) {
            c.isa = columns[d].half_rate ? f | ASR_CPU_BF16_HALF_RATE : f & ~(unsigned)ASR_CPU_BF16_HALF_RATE;
            asr_tensor t = asr_tensor_rows(ASR_DTYPE_F32, w, out, in);
            if (asr_tensor_convert(&t, columns[d].dtype, NULL) != ASR_OK) return 1;
            asr_linear(&c, &t, x, n, NULL, y, 0); /* warm */
            /* the best of five timings: other processes share this machine */
            double g = 0.0;
            for (int run = 0; run < 5; run++) {
                long reps = 0;
                double t0 = now_s(), el;
                do {
                    asr_linear(&c, &t, x, n, NULL, y, 0);
                    reps++;
                    el = now_s() - t0;
                } while (el < seconds / 5);
                double rate = 2.0 * n * in * (double)out * (double)reps / el / 1e9;
                g = rate > g ? rate : g;
            }
            double peak = peaks[columns[d].peak];
            printf(" %12.1f (%5.1f%%)", g, 100.0 * g / peak);
            if (t.owned) asr_tensor_free(&t);
        }
        printf("\n");
        free(w);
        free(x);
        free(y);
    }
    asr_compute_release(&c);
    return 0;
}
