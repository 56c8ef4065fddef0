/* panel_avx512.h — what the three AVX-512 panel GEMMs share: the walk over register tiles and the masked store.
 *
 * The bf16 (vdpbf16ps), widened bf16 (FMA) and int8 (vpdpbusd) kernels read
 * the same 16-output panels and differ only in their inner tile. Each hands
 * asr_panel_walk a tile function; the walk goes over groups of four panels
 * (the weights of 64 outputs stay in L1/L2 while every row of the block
 * passes over them, so each weight comes from memory once per block) and,
 * inside a group, over tiles of up to mr_max rows. Header-only and inline,
 * so each kernel's walk is compiled with its own tile. */
#ifndef ASR_PANEL_AVX512_H
#define ASR_PANEL_AVX512_H

#if defined(__x86_64__)
#include <immintrin.h>

#include "tensor.h"

/* Output columns [c, c + 16·panels) of rows [r, r + mr): panels is 4 or,
 * for the last group's remainder, 1 (called once per panel). */
typedef void (*asr_panel_tile_fn)(const void *ctx, int r, int mr, int c, int panels);

static inline __attribute__((always_inline)) void asr_panel_walk(int r0, int r1, int c0, int c1, int mr_max,
                                                                 asr_panel_tile_fn tile, const void *ctx)
{
    for (int c = c0; c < c1; c += 4 * ASR_PANEL) {
        int panels = (c1 - c + ASR_PANEL - 1) / ASR_PANEL;
        for (int r = r0; r < r1; r += mr_max) {
            int mr = r1 - r < mr_max ? r1 - r : mr_max;
            if (panels >= 4) tile(ctx, r, mr, c, 4);
            else
                for (int p = 0; p < panels; p++) tile(ctx, r, mr, c + p * ASR_PANEL, 1);
        }
    }
}

/* The lanes of a panel starting `left` columns before the block's end. */
static inline __mmask16 asr_panel_mask(int left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* v into the masked lanes of dst, or added to what is there when acc. */
static inline void asr_panel_store(float *dst, __mmask16 mask, __m512 v, int acc)
{
    if (acc) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), v);
    _mm512_mask_storeu_ps(dst, mask, v);
}
#endif

#endif
