/* features.c — cpuid/xgetbv detection of the instruction sets the kernels use. */
#include "cpu/features.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

unsigned asr_cpu_features(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = read_xcr0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;            /* SSE and AVX state   */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (!ymm_ok) return 0;
    if (fma) f |= ASR_CPU_FMA;
    if (f16c) f |= ASR_CPU_F16C;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if ((b >> 5) & 1) f |= ASR_CPU_AVX2;
    if (zmm_ok) {
        if ((b >> 16) & 1) f |= ASR_CPU_AVX512F;
        if ((b >> 17) & 1) f |= ASR_CPU_AVX512DQ;
        if ((b >> 30) & 1) f |= ASR_CPU_AVX512BW;
        if ((b >> 31) & 1) f |= ASR_CPU_AVX512VL;
        if ((c >> 11) & 1) f |= ASR_CPU_AVX512VNNI;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        if ((a1 >> 5) & 1) f |= ASR_CPU_AVX512BF16;
    }
    /* vendor string in ebx, edx, ecx of leaf 0 */
    unsigned vendor[3];
    __cpuid(0, a, vendor[0], vendor[2], vendor[1]);
    if ((f & ASR_CPU_AVX512BF16) && memcmp(vendor, "GenuineIntel", 12) == 0) f |= ASR_CPU_BF16_HALF_RATE;
    return f;
}
#else
unsigned asr_cpu_features(void)
{
    return 0;
}
#endif

const char *asr_cpu_features_text(unsigned features, char *buf, int cap)
{
    static const char *const names[] = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                                        "avx512_vnni", "avx512_bf16", "bf16_half_rate"};
    int used = 0;
    if (cap > 0) buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        if ((features >> i) & 1 && used < cap)
            used += snprintf(buf + used, (size_t)(cap - used), "%s%s", used ? " " : "", names[i]);
    return buf;
}
