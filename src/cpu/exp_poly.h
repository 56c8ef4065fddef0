/* exp_poly.h — the constants of the vector exp both SIMD widths use (exp8 in vec_avx2.c, exp16 in attention_bf16.c).
 *
 * x is clamped to [EXP_LO, EXP_HI] (the float range of e^x), reduced as
 * x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in a high and a low part so
 * that n·ln2 is exact enough), and e^r is 1 + r + r²·p(r) with p of degree
 * 5: max relative error ~2e-7, like expf. One set of numbers, so the two
 * widths give the same bits lane for lane. */
#ifndef ASR_EXP_POLY_H
#define ASR_EXP_POLY_H

#define ASR_EXP_HI 88.3762626647949f
#define ASR_EXP_LO (-87.3365478515625f)
#define ASR_EXP_LOG2E 1.44269504088896341f
#define ASR_EXP_LN2_HI 0.693359375f
#define ASR_EXP_LN2_LO (-2.12194440e-4f)
/* p(r) = P0·r⁵ + P1·r⁴ + … + P5, evaluated by Horner from P0 */
#define ASR_EXP_P0 1.9875691500e-4f
#define ASR_EXP_P1 1.3981999507e-3f
#define ASR_EXP_P2 8.3334519073e-3f
#define ASR_EXP_P3 4.1665795894e-2f
#define ASR_EXP_P4 1.6666665459e-1f
#define ASR_EXP_P5 5.0000001201e-1f

#endif
