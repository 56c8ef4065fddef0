/* features.h — what this CPU can run: instruction-set bits found by cpuid, and a spin-wait hint. */
#ifndef ASR_CPU_FEATURES_H
#define ASR_CPU_FEATURES_H

/* Bits of asr_cpu_features(). A kernel family runs only when every bit it
 * was compiled for is present; 0 means the portable scalar code only. */
enum {
    ASR_CPU_AVX2 = 1u << 0,
    ASR_CPU_FMA = 1u << 1,
    ASR_CPU_F16C = 1u << 2,
    ASR_CPU_AVX512F = 1u << 3,
    ASR_CPU_AVX512BW = 1u << 4,
    ASR_CPU_AVX512VL = 1u << 5,
    ASR_CPU_AVX512DQ = 1u << 6,
    ASR_CPU_AVX512VNNI = 1u << 7,
    ASR_CPU_AVX512BF16 = 1u << 8,
    /* Not an instruction set but how fast one runs: vdpbf16ps at half the
     * rate of the two 512-bit FMA pipes (Intel's cores; AMD's Zen 4 and 5
     * run it at twice the float32 rate). bfloat16 products then widen the
     * weights and run on the FMA pipes (linear_bf16w_avx512.c). */
    ASR_CPU_BF16_HALF_RATE = 1u << 9,
};

/* What the kernel families need. */
#define ASR_ISA_AVX2 (ASR_CPU_AVX2 | ASR_CPU_FMA | ASR_CPU_F16C)
#define ASR_ISA_AVX512 (ASR_ISA_AVX2 | ASR_CPU_AVX512F | ASR_CPU_AVX512BW | ASR_CPU_AVX512VL | ASR_CPU_AVX512DQ)
#define ASR_ISA_VNNI (ASR_ISA_AVX512 | ASR_CPU_AVX512VNNI)
#define ASR_ISA_BF16 (ASR_ISA_AVX512 | ASR_CPU_AVX512BF16)

/* Detected from cpuid and xgetbv (the OS must save the wide registers);
 * recomputed on each call, so callers store it (the model does, at load). */
unsigned asr_cpu_features(void);

/* "avx2 fma f16c ..." for the bits set, into buf. */
const char *asr_cpu_features_text(unsigned features, char *buf, int cap);

/* Spin-wait hint inside polling loops. */
static inline void asr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
