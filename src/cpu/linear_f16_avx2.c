/* linear_f16_avx2.c — the decoder's half-weight register kernel (F16C, FMA): each weight read once for all rows. */
#include "cpu/kernels_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m256 load_half8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* [Σa0, Σa1, Σa2, Σa3] of four 8-lane accumulators. */
static inline __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

static inline float sum8(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline void store4(float *y, __m128 v, int accumulate)
{
    if (accumulate) v = _mm_add_ps(v, _mm_loadu_ps(y));
    _mm_storeu_ps(y, v);
}

/* Two rows of x against four weight rows: y[r][j..j+3] for r = 0, 1. */
static void tile_2x4(const float *x0, const float *x1, const uint16_t *w, int in, float *y0, float *y1,
                     int accumulate)
{
    const uint16_t *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 u = _mm256_loadu_ps(x0 + k), v = _mm256_loadu_ps(x1 + k);
        __m256 h = load_half8(w0 + k);
        a0 = _mm256_fmadd_ps(u, h, a0);
        b0 = _mm256_fmadd_ps(v, h, b0);
        h = load_half8(w1 + k);
        a1 = _mm256_fmadd_ps(u, h, a1);
        b1 = _mm256_fmadd_ps(v, h, b1);
        h = load_half8(w2 + k);
        a2 = _mm256_fmadd_ps(u, h, a2);
        b2 = _mm256_fmadd_ps(v, h, b2);
        h = load_half8(w3 + k);
        a3 = _mm256_fmadd_ps(u, h, a3);
        b3 = _mm256_fmadd_ps(v, h, b3);
    }
    store4(y0, sum4(a0, a1, a2, a3), accumulate);
    store4(y1, sum4(b0, b1, b2, b3), accumulate);
}

/* Four rows of x against two weight rows: each widened weight vector feeds
 * four FMAs, because widening (vcvtph2ps) rather than FMA limits beams. */
static void tile_4x2(const float *x, const uint16_t *w, int in, float *y, int ldy, int accumulate)
{
    const float *x0 = x, *x1 = x + in, *x2 = x + 2 * (size_t)in, *x3 = x + 3 * (size_t)in;
    const uint16_t *w0 = w, *w1 = w + in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 h = load_half8(w0 + k), g = load_half8(w1 + k);
        __m256 u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(u, h, a0);
        b0 = _mm256_fmadd_ps(u, g, b0);
        u = _mm256_loadu_ps(x1 + k);
        a1 = _mm256_fmadd_ps(u, h, a1);
        b1 = _mm256_fmadd_ps(u, g, b1);
        u = _mm256_loadu_ps(x2 + k);
        a2 = _mm256_fmadd_ps(u, h, a2);
        b2 = _mm256_fmadd_ps(u, g, b2);
        u = _mm256_loadu_ps(x3 + k);
        a3 = _mm256_fmadd_ps(u, h, a3);
        b3 = _mm256_fmadd_ps(u, g, b3);
    }
    /* sum4 gives row sums per weight row: [r0 r1 r2 r3] of column 0, then 1 */
    float c0[4], c1[4];
    _mm_storeu_ps(c0, sum4(a0, a1, a2, a3));
    _mm_storeu_ps(c1, sum4(b0, b1, b2, b3));
    for (int r = 0; r < 4; r++) {
        float *dst = y + (size_t)r * ldy;
        dst[0] = accumulate ? dst[0] + c0[r] : c0[r];
        dst[1] = accumulate ? dst[1] + c1[r] : c1[r];
    }
}

static void tile_1x4(const float *x0, const uint16_t *w, int in, float *y0, int accumulate)
{
    const uint16_t *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < in; k += 8) {
        __m256 u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(u, load_half8(w0 + k), a0);
        a1 = _mm256_fmadd_ps(u, load_half8(w1 + k), a1);
        a2 = _mm256_fmadd_ps(u, load_half8(w2 + k), a2);
        a3 = _mm256_fmadd_ps(u, load_half8(w3 + k), a3);
    }
    store4(y0, sum4(a0, a1, a2, a3), accumulate);
}

static float dot_half(const float *x, const uint16_t *w, int in)
{
    __m256 a = _mm256_setzero_ps();
    for (int k = 0; k < in; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), load_half8(w + k), a);
    return sum8(a);
}

void asr_f16_cols_avx2(const float *x, int n, int in, const uint16_t *w, float *y, int out, int c0, int c1, int acc)
{
    int c = c0;
    for (; c + 4 <= c1; c += 4) {
        const uint16_t *wc = w + (size_t)c * in;
        /* The weights stream from memory once: ask for the tile after next
         * now, so its lines arrive while this one is computed. */
        if (c + 12 <= c1) {
            const char *ahead = (const char *)(wc + 8 * (size_t)in);
            for (size_t off = 0; off < 4 * (size_t)in * 2; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
        }
        int r = 0;
        for (; r + 4 <= n; r += 4) {
            tile_4x2(x + (size_t)r * in, wc, in, y + (size_t)r * out + c, out, acc);
            tile_4x2(x + (size_t)r * in, wc + 2 * (size_t)in, in, y + (size_t)r * out + c + 2, out, acc);
        }
        for (; r + 2 <= n; r += 2)
            tile_2x4(x + (size_t)r * in, x + (size_t)(r + 1) * in, wc, in, y + (size_t)r * out + c,
                     y + (size_t)(r + 1) * out + c, acc);
        if (r < n) tile_1x4(x + (size_t)r * in, wc, in, y + (size_t)r * out + c, acc);
    }
    for (; c < c1; c++)
        for (int r = 0; r < n; r++) {
            float v = dot_half(x + (size_t)r * in, w + (size_t)c * in, in);
            float *dst = y + (size_t)r * out + c;
            *dst = acc ? *dst + v : v;
        }
}
#else
typedef int asr_linear_f16_avx2_unused; /* not an x86 target */
#endif
