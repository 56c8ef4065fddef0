/* kernels.h — the dense math of the forward passes (float32 activations,
 * weights in the format of their asr_tensor), run on a state's thread pool. */
#ifndef ASR_KERNELS_H
#define ASR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "pool.h"
#include "tensor.h"

/* Where a kernel runs: the state's pool and per-thread scratch memory. */
typedef struct asr_compute {
    asr_pool *pool;
    float *scratch;        /* asr_pool_threads() blocks of scratch_floats */
    size_t scratch_floats; /* per thread; see asr_compute_scratch_floats  */
    unsigned isa;          /* cpu/features.h bits the kernels may use; 0 = scalar */
    /* Activations converted for the int8 and bf16 kernels: u8 or bf16 rows
     * of x, and the per-row scales of the u8 ones. Products with more rows
     * than fit are done in slices. */
    void *act;
    size_t act_bytes;
    float *act_scale;
    int act_rows;
    /* The bf16 attention path's packed K and Vᵀ (asr_attention_pack_bytes
     * of one encoder window), kept so the encoder does not allocate them per
     * layer; larger calls (batched windows) allocate their own. */
    void *attn_pack;
    size_t attn_pack_bytes;
    int attn_pack_borrowed; /* attn_pack is the caller's memory: not freed */
} asr_compute;

/* A compute context of n_threads for attention over up to max_keys keys and
 * linear layers of up to max_in inputs and max_rows rows at a time, whose
 * int8/bf16 activation buffer holds act_values values (0: max_rows·max_in;
 * a product with more rows × inputs is done in slices of rows). */
asr_status asr_compute_init(asr_compute *c, int n_threads, unsigned isa, int max_keys, int max_in, int max_rows,
                            size_t act_values, asr_error *err);
void asr_compute_release(asr_compute *c);
/* Keep room for the bf16 attention's packed operands of `bytes`. */
asr_status asr_compute_reserve_attention(asr_compute *c, size_t bytes, asr_error *err);
/* Or pack them into the caller's mem (64-byte aligned, `bytes` long, left
 * alone by asr_compute_release), memory that is dead whenever c runs
 * attention over that many heads. */
void asr_compute_borrow_attention(asr_compute *c, void *mem, size_t bytes);

/* Queries handled together by one attention task. */
#define ASR_ATTN_BLOCK 128
/* Weight rows converted to float32 at a time for a half-weight GEMM. */
#define ASR_HALF_PANEL 128

/* Scratch per thread the kernels need for attention over up to max_keys
 * positions and linear layers with up to max_in inputs. */
size_t asr_compute_scratch_floats(int max_keys, int max_in);

/* Configure the BLAS library for being called from many threads, each call
 * single-threaded; idempotent, called when a state is created. */
void asr_compute_init_blas(void);

enum {
    ASR_LINEAR_ACCUMULATE = 1, /* y += x·wᵀ + b instead of y = …  */
    ASR_LINEAR_GELU = 2,       /* y = GELU(x·wᵀ + b)              */
    /* Each row's result the same as in a product of fewer rows: the decoder
     * step that several requests share gives each the numbers it would
     * get alone (half weights keep the register kernel at any height). */
    ASR_LINEAR_ROW_INVARIANT = 4,
};

/* y (n, out) = x (n, in) · w (out, in)ᵀ + b (out) with out = w->rows and
 * in = w->cols; b may be NULL. The kernel follows w's format and c->isa:
 * float32 → OpenBLAS sgemm; f16 → F16C register kernel below 16 rows,
 * widened panels + sgemm above; bf16 → vdpbf16ps, or the weights widened
 * onto the FMA pipes (asr_linear_bf16_widens); int8 → vpdpbusd, with x
 * quantised per row. Without the instruction set, the scalar kernels. */
void asr_linear(const asr_compute *c, const asr_tensor *w, const float *x, int n, const float *b, float *y,
                int flags);

/* Whether asr_linear multiplies a bf16 tensor on the float32 FMA pipes
 * (cpu/linear_bf16w_avx512.c, activations not rounded) for an n-row product
 * with these flags, rather than with vdpbf16ps or the scalar kernel. */
int asr_linear_bf16_widens(const asr_compute *c, int n, int flags);

/* Scaled dot-product attention of n_head heads of width dh, for n_seq
 * independent sequences. Sequence s has queries q + s·q_seq (n_q rows, row
 * stride ldq), keys k + s·kv_seq and values v + s·kv_seq (n_kv rows, strides
 * ldk, ldv) and writes out + s·out_seq (n_q rows, stride ldo); head h uses
 * columns h·dh .. h·dh+dh-1 of each. causal_past ≥ 0 lets query i see keys
 * 0 .. causal_past+i only; -1 means no mask. kv_index (may be NULL) makes
 * sequence s read the keys and values at k + kv_index[s]·kv_seq instead
 * (batched decoding: each window's cache and encoder output in its slot). */
typedef struct asr_attention_args {
    const float *q, *k, *v;
    /* When k16 is set, the keys and values are IEEE half at k16 and v16 (same
     * strides, in values) and k, v are unused: one query at a time. */
    const uint16_t *k16, *v16;
    float *out;
    int ldq, ldk, ldv, ldo;
    size_t q_seq, kv_seq, out_seq;
    int n_seq, n_q, n_kv, n_head, dh;
    int causal_past;
    const int *kv_index;
    int bf16; /* blocks of queries form the weighted sum of values in
                 bfloat16 (vdpbf16ps) where the CPU has it; the scores and
                 the softmax stay float32 */
} asr_attention_args;
void asr_attention(const asr_compute *c, const asr_attention_args *a);
/* Bytes the bf16 path packs for n_seq·n_head heads of n_kv keys of width dh. */
size_t asr_attention_pack_bytes(int heads, int n_kv, int dh);

/* scores (n_q, n_kv) = q (n_q, dh; stride ldq) · k (n_kv, dh; stride ldk)ᵀ · scale:
 * one head's attention logits, single-threaded. */
void asr_attention_scores(const float *q, int ldq, const float *k, int ldk, int n_q, int n_kv, int dh, float scale,
                          float *scores);

/* As asr_attention_scores, with half keys (word timing over 16-bit cross
 * K/V): widened into `keys` (n_kv·dh floats of scratch) for one sgemm, or,
 * when keys is NULL, in a plain loop. */
void asr_attention_scores_k16(const float *q, int ldq, const uint16_t *k, int ldk, int n_q, int n_kv, int dh,
                              float scale, float *scores, float *keys);

/* out[i] = x[i] rounded to bfloat16 (nearest even), n values, on c's threads. */
void asr_round_bf16(const asr_compute *c, const float *x, size_t n, uint16_t *out);
/* The same into IEEE half (round to nearest even; the cross K/V's 16-bit form). */
void asr_round_f16(const asr_compute *c, const float *x, size_t n, uint16_t *out);

/* y (n, d) = LayerNorm(x) · g + b with eps 1e-5 (torch.nn.LayerNorm default);
 * y may equal x. */
void asr_layer_norm(const asr_compute *c, const float *x, const float *g, const float *b, float *y, int n, int d);

/* Exact GELU, 0.5·x·(1 + erf(x/√2)), in place over n values. */
void asr_gelu(float *x, size_t n);

/* Softmax of one row of n values in place; -INFINITY entries become 0. */
void asr_softmax(float *x, int n);

/* log Σ exp(x[i]) over n values (-INFINITY entries count as 0; all of them
 * -INFINITY gives -INFINITY). The sum is kept in double precision. */
float asr_logsumexp(const float *x, int n);

#endif
