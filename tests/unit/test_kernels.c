/* test_kernels.c — the thread pool, the linear layers and attention against
 * plain double-precision loops.
 *
 * Shapes cover the kernels' edge cases: one to forty rows (the register
 * kernel below 16 rows, sgemm panels above), output widths that are not a
 * multiple of the 4-column tiles, accumulate/GELU epilogues, causal masks
 * across several sequences and query blocks longer than ASR_ATTN_BLOCK.
 * Each runs with 1 and 3 threads; results must agree with the reference to
 * float32 rounding and be bit-identical between thread counts and between
 * repeated runs (a race shows up as run-to-run differences).
 */
#include "check.h"
#include "kernels.h"
#include "model.h"
#include "cpu/features.h"
#include "cpu/kernels_cpu.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static unsigned rng = 12345u;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

typedef struct compute_box {
    asr_compute c;
} compute_box;

static int make_compute(compute_box *b, int threads, int max_keys, int max_in)
{
    return asr_compute_init(&b->c, threads, asr_cpu_features(), max_keys, max_in, 64, 0, NULL) == ASR_OK;
}

static void free_compute(compute_box *b)
{
    asr_compute_release(&b->c);
}

/* ---- pool ----------------------------------------------------------------------- */

typedef struct count_job {
    atomic_int *hits;
    atomic_int bad_thread;
    int n_threads;
} count_job;

static void count_task(void *ctx, int task, int thread)
{
    count_job *j = ctx;
    atomic_fetch_add(&j->hits[task], 1);
    if (thread < 0 || thread >= j->n_threads) atomic_store(&j->bad_thread, 1);
}

static void test_pool(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        asr_pool *p = asr_pool_new(threads);
        CHECK(p && asr_pool_threads(p) == threads, "pool of %d threads", threads);
        if (!p) continue;
        int ok = 1;
        static atomic_int hits[1000];
        for (int round = 0; round < 300 && ok; round++) {
            int n = 1 + (round * 37) % 1000;
            for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
            count_job j = {hits, 0, threads};
            asr_pool_run(p, count_task, &j, n);
            for (int i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
            ok &= !atomic_load(&j.bad_thread);
        }
        CHECK(ok, "%d threads: 300 jobs of 1..1000 tasks, every task run exactly once, thread ids in range", threads);
        asr_pool_free(p);
    }
}

/* ---- linear layers ------------------------------------------------------------- */

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* y = [acc ? y0 : 0] + x·wᵀ + b, then GELU; w given as float (already rounded to half when half). */
static void linear_ref(const float *x, int n, int in, const float *w, const float *b, const float *y0, int out,
                       int flags, double *y)
{
    for (int r = 0; r < n; r++)
        for (int c = 0; c < out; c++) {
            double s = b ? b[c] : 0.0;
            for (int k = 0; k < in; k++) s += (double)x[(size_t)r * in + k] * w[(size_t)c * in + k];
            if (flags & ASR_LINEAR_ACCUMULATE) s += y0[(size_t)r * out + c];
            if (flags & ASR_LINEAR_GELU) s = gelu_ref(s);
            y[(size_t)r * out + c] = s;
        }
}

static double max_rel_error(const float *got, const double *want, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    return worst;
}

static void test_linear(int half)
{
    static const int rows[] = {1, 2, 3, 4, 5, 7, 15, 16, 17, 40};
    static const struct { int in, out; } shapes[] = {{8, 4}, {64, 37}, {384, 1152}, {96, 130}};
    static const int flag_sets[] = {0, ASR_LINEAR_ACCUMULATE, ASR_LINEAR_GELU};
    int max_in = 384, worst_case = 1;
    double worst = 0.0;
    int identical = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int in = shapes[s].in, out = shapes[s].out;
        float *w = malloc((size_t)out * in * sizeof(float));
        uint16_t *w16 = malloc((size_t)out * in * sizeof(uint16_t));
        float *b = malloc((size_t)out * sizeof(float));
        fill(w, (size_t)out * in);
        fill(b, (size_t)out);
        if (half) { /* the reference uses the weights as the kernel sees them */
            asr_f32_to_f16_n(w, w16, (size_t)out * in);
            asr_f16_to_f32_n(w16, w, (size_t)out * in);
        }
        for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++) {
            int n = rows[ri];
            float *x = malloc((size_t)n * in * sizeof(float));
            float *y0 = malloc((size_t)n * out * sizeof(float));
            float *y1 = malloc((size_t)n * out * sizeof(float));
            float *y3 = malloc((size_t)n * out * sizeof(float));
            double *ref = malloc((size_t)n * out * sizeof(double));
            fill(x, (size_t)n * in);
            fill(y0, (size_t)n * out);
            for (size_t f = 0; f < sizeof flag_sets / sizeof *flag_sets; f++) {
                int flags = flag_sets[f];
                const float *bias = f == 1 ? NULL : b;
                linear_ref(x, n, in, w, bias, y0, out, flags, ref);
                for (int threads = 1; threads <= 3; threads += 2) {
                    compute_box cb;
                    if (!make_compute(&cb, threads, 64, max_in)) {
                        worst_case = 0;
                        continue;
                    }
                    float *y = threads == 1 ? y1 : y3;
                    for (int rep = 0; rep < 2; rep++) {
                        memcpy(y, y0, (size_t)n * out * sizeof(float));
                        asr_tensor wt = half ? asr_tensor_rows(ASR_DTYPE_F16, w16, out, in)
                                             : asr_tensor_rows(ASR_DTYPE_F32, w, out, in);
                        asr_linear(&cb.c, &wt, x, n, bias, y, flags);
                        double e = max_rel_error(y, ref, (size_t)n * out);
                        if (!(e <= worst)) worst = e;
                    }
                    free_compute(&cb);
                }
                identical &= memcmp(y1, y3, (size_t)n * out * sizeof(float)) == 0;
            }
            free(x);
            free(y0);
            free(y1);
            free(y3);
            free(ref);
        }
        free(w);
        free(w16);
        free(b);
    }
    CHECK(worst_case, "%s: scratch and pools allocated", half ? "half weights" : "float32 weights");
    CHECK(worst < 2e-5, "%s: 1-40 rows x 4 shapes x {plain, accumulate, GELU}: max relative error %.2e",
          half ? "half weights" : "float32 weights", worst);
    CHECK(identical, "%s: 1 and 3 threads give bit-identical results", half ? "half weights" : "float32 weights");
}

/* ---- attention ------------------------------------------------------------------- */

static void attention_ref(const asr_attention_args *a, double *out)
{
    double scale = 1.0 / sqrt((double)a->dh);
    double *p = malloc((size_t)a->n_kv * sizeof(double));
    for (int s = 0; s < a->n_seq; s++)
        for (int h = 0; h < a->n_head; h++)
            for (int i = 0; i < a->n_q; i++) {
                const float *q = a->q + s * a->q_seq + (size_t)i * a->ldq + (size_t)h * a->dh;
                int nk = a->causal_past >= 0 && a->causal_past + i + 1 < a->n_kv ? a->causal_past + i + 1 : a->n_kv;
                double mx = -INFINITY, sum = 0.0;
                for (int t = 0; t < nk; t++) {
                    const float *k = a->k + s * a->kv_seq + (size_t)t * a->ldk + (size_t)h * a->dh;
                    double d = 0.0;
                    for (int e = 0; e < a->dh; e++) d += (double)q[e] * k[e];
                    p[t] = d * scale;
                    if (p[t] > mx) mx = p[t];
                }
                for (int t = 0; t < nk; t++) sum += (p[t] = exp(p[t] - mx));
                for (int e = 0; e < a->dh; e++) {
                    double o = 0.0;
                    for (int t = 0; t < nk; t++)
                        o += p[t] / sum * a->v[s * a->kv_seq + (size_t)t * a->ldv + (size_t)h * a->dh + e];
                    out[s * a->out_seq + (size_t)i * a->ldo + (size_t)h * a->dh + e] = o;
                }
            }
    free(p);
}

static void test_attention(void)
{
    /* (sequences, queries, keys, causal past): decoding steps, a prompt, the encoder-like
     * case with more queries than one block, one query over 1500 keys */
    static const struct { int n_seq, n_q, n_kv, past; } cases[] = {
        {1, 1, 1, 0}, {5, 1, 37, 36}, {2, 2, 50, -1}, {3, 9, 20, 11}, {1, 300, 300, -1}, {1, 150, 150, 0},
        {2, 1, 1500, -1} /* cross-attention over a whole window */};
    const int n_head = 3, dh = 64, d = n_head * dh;
    double worst = 0.0;
    int identical = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int S = cases[ci].n_seq, Q = cases[ci].n_q, K = cases[ci].n_kv;
        size_t q_seq = (size_t)Q * 3 * d, kv_seq = (size_t)K * 2 * d, out_seq = (size_t)Q * d;
        float *q = malloc(S * q_seq * sizeof(float)), *kv = malloc(S * kv_seq * sizeof(float));
        float *o1 = calloc(S * out_seq, sizeof(float)), *o3 = calloc(S * out_seq, sizeof(float));
        double *ref = malloc(S * out_seq * sizeof(double));
        fill(q, S * q_seq);
        fill(kv, S * kv_seq);
        asr_attention_args a = {.q = q, .ldq = 3 * d, .q_seq = q_seq, .k = kv, .v = kv + d, .ldk = 2 * d,
                                .ldv = 2 * d, .kv_seq = kv_seq, .ldo = d, .out_seq = out_seq, .n_seq = S,
                                .n_q = Q, .n_kv = K, .n_head = n_head, .dh = dh, .causal_past = cases[ci].past};
        attention_ref(&a, ref);
        for (int threads = 1; threads <= 3; threads += 2) {
            compute_box cb;
            if (!make_compute(&cb, threads, 1500, 64)) continue;
            a.out = threads == 1 ? o1 : o3;
            for (int rep = 0; rep < 3; rep++) {
                asr_attention(&cb.c, &a);
                double e = max_rel_error(a.out, ref, S * out_seq);
                if (!(e <= worst)) worst = e;
            }
            free_compute(&cb);
        }
        identical &= memcmp(o1, o3, S * out_seq * sizeof(float)) == 0;
        free(q);
        free(kv);
        free(o1);
        free(o3);
        free(ref);
    }
    CHECK(worst < 1e-5, "attention: 7 cases (batches, causal masks, 300 queries), max relative error %.2e", worst);
    CHECK(identical, "attention: 1 and 3 threads give bit-identical results");
}

/* The bfloat16 path (blocks of queries, AVX512_BF16: the weighted sum of
 * values in bf16): against the double loop with bf16's precision (8
 * significant bits in V and the probabilities), relative to the largest
 * output; it must differ from the float32 path, or it did not run. Both
 * forms of the weighted sum: vdpbf16ps over bf16 probabilities, and (where
 * vdpbf16ps runs at half the FMA rate) float32 probabilities times Vᵀ
 * widened on the FMA pipes. */
static void test_attention_bf16_isa(unsigned isa, const char *name)
{
    static const struct { int n_seq, n_q, n_kv, past; } cases[] = {
        {1, 300, 300, -1}, {2, 40, 33, -1} /* odd key count */, {3, 9, 20, 11}, {1, 1500, 1500, -1}};
    const int n_head = 2, dh = 64, d = n_head * dh;
    double worst = 0.0;
    int identical = 1, differs = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int S = cases[ci].n_seq, Q = cases[ci].n_q, K = cases[ci].n_kv;
        size_t q_seq = (size_t)Q * 3 * d, kv_seq = (size_t)K * 2 * d, out_seq = (size_t)Q * d, n_out = S * out_seq;
        float *q = malloc(S * q_seq * sizeof(float)), *kv = malloc(S * kv_seq * sizeof(float));
        float *o[3] = {calloc(n_out, sizeof(float)), calloc(n_out, sizeof(float)), calloc(n_out, sizeof(float))};
        double *ref = malloc(n_out * sizeof(double));
        fill(q, S * q_seq);
        fill(kv, S * kv_seq);
        asr_attention_args a = {.q = q, .ldq = 3 * d, .q_seq = q_seq, .k = kv, .v = kv + d, .ldk = 2 * d,
                                .ldv = 2 * d, .kv_seq = kv_seq, .ldo = d, .out_seq = out_seq, .n_seq = S,
                                .n_q = Q, .n_kv = K, .n_head = n_head, .dh = dh, .causal_past = cases[ci].past};
        attention_ref(&a, ref);
        double peak = 0.0, err = 0.0;
        for (size_t i = 0; i < n_out; i++) if (fabs(ref[i]) > peak) peak = fabs(ref[i]);
        for (int run = 0; run < 3; run++) { /* bf16 on 1 and 3 threads, then float32 */
            compute_box cb;
            if (asr_compute_init(&cb.c, run == 1 ? 3 : 1, isa, 1500, 64, 64, 0, NULL) != ASR_OK) continue;
            a.out = o[run];
            a.bf16 = run < 2;
            asr_attention(&cb.c, &a);
            free_compute(&cb);
        }
        for (size_t i = 0; i < n_out; i++) if (fabs(o[0][i] - ref[i]) > err) err = fabs(o[0][i] - ref[i]);
        if (!(err / peak <= worst)) worst = err / peak;
        identical &= memcmp(o[0], o[1], n_out * sizeof(float)) == 0;
        differs &= memcmp(o[0], o[2], n_out * sizeof(float)) != 0;
        free(q);
        free(kv);
        for (int r = 0; r < 3; r++) free(o[r]);
        free(ref);
    }
    CHECK(worst < 2e-2, "bfloat16 attention, %s: 4 cases (odd keys, causal, 1500x1500), max error %.2e of the "
          "largest output", name, worst);
    CHECK(identical, "bfloat16 attention, %s: 1 and 3 threads give bit-identical results", name);
    CHECK(differs, "bfloat16 attention, %s: results differ from the float32 path's (the bf16 kernel ran)", name);
}

static void test_attention_bf16(void)
{
    unsigned f = asr_cpu_features();
    if ((f & ASR_ISA_BF16) != ASR_ISA_BF16) {
        printf("skip bfloat16 attention: this CPU has no AVX512_BF16 (the float32 path serves)\n");
        return;
    }
    test_attention_bf16_isa(f & ~(unsigned)ASR_CPU_BF16_HALF_RATE, "vdpbf16ps");
    test_attention_bf16_isa(f | ASR_CPU_BF16_HALF_RATE, "widened onto FMA");
}

/* Cross-attention over bfloat16 keys and values (the decoder under the
 * bfloat16 compute type): every query count (one, a beam of five, a prompt
 * longer than a query block), key counts off the 8-key step, the dh = 64
 * kernel and the general width, on the AVX2 path and the scalar one, against
 * the double loop over the same values widened (exact): float32 rounding
 * only. Also the word-timing scores over bf16 keys, and asr_round_bf16. */
static void test_attention_k16(void)
{
    static const struct { int n_seq, n_q, n_kv, dh; } cases[] = {
        {1, 1, 1500, 64}, {1, 5, 1500, 64}, {2, 1, 37, 64}, {1, 140, 203, 64}, {1, 2, 45, 32}, {1, 3, 9, 40}};
    const int n_head = 3;
    double worst[2] = {0.0, 0.0}, worst_scores = 0.0;
    int identical = 1, ran[2] = {0, 0}, rounded = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int S = cases[ci].n_seq, Q = cases[ci].n_q, K = cases[ci].n_kv, dh = cases[ci].dh, d = n_head * dh;
        size_t q_seq = (size_t)Q * d, kv_seq = (size_t)K * 2 * d, out_seq = (size_t)Q * d, n_out = S * out_seq;
        float *q = malloc(S * q_seq * sizeof(float)), *kv = malloc(S * kv_seq * sizeof(float));
        uint16_t *kv16 = malloc(S * kv_seq * sizeof(uint16_t)), *kv16b = malloc(S * kv_seq * sizeof(uint16_t));
        float *o1 = calloc(n_out, sizeof(float)), *o3 = calloc(n_out, sizeof(float));
        double *ref = malloc(n_out * sizeof(double));
        fill(q, S * q_seq);
        fill(kv, S * kv_seq);
        for (size_t i = 0; i < S * kv_seq; i++) {
            kv16[i] = asr_f32_to_f16(kv[i]);
            kv[i] = asr_f16_to_f32(kv16[i]); /* the reference sees exactly the stored values */
        }
        asr_attention_args a = {.q = q, .ldq = d, .q_seq = q_seq, .k = kv, .v = kv + d, .ldk = 2 * d, .ldv = 2 * d,
                                .kv_seq = kv_seq, .ldo = d, .out_seq = out_seq, .n_seq = S, .n_q = Q, .n_kv = K,
                                .n_head = n_head, .dh = dh, .causal_past = -1};
        attention_ref(&a, ref);
        a.k = a.v = NULL;
        a.k16 = kv16;
        a.v16 = kv16 + d;
        for (int form = 0; form < 2; form++) { /* 0: scalar, 1: the CPU's (AVX2) */
            unsigned isa = form ? asr_cpu_features() : 0;
            if (form && (isa & ASR_ISA_AVX2) != ASR_ISA_AVX2) continue;
            for (int threads = 1; threads <= 3; threads += 2) {
                asr_compute c;
                if (asr_compute_init(&c, threads, isa, 1500, 64, 64, 0, NULL) != ASR_OK) continue;
                a.out = threads == 1 ? o1 : o3;
                asr_attention(&c, &a);
                if (threads == 1) {
                    /* the same rounding on the pool as one value at a time */
                    asr_round_f16(&c, kv, S * kv_seq, kv16b);
                    rounded &= memcmp(kv16, kv16b, S * kv_seq * sizeof(uint16_t)) == 0;
                }
                asr_compute_release(&c);
                double e = max_rel_error(a.out, ref, n_out);
                if (!(e <= worst[form])) worst[form] = e;
                ran[form] = 1;
            }
            identical &= memcmp(o1, o3, n_out * sizeof(float)) == 0;
        }
        /* scores of head 1, every query, against the first keys (word timing) */
        int nk = K < 30 ? K : 30;
        float *sc = malloc((size_t)Q * nk * sizeof(float)), *keys = malloc((size_t)nk * dh * sizeof(float));
        for (int form = 0; form < 2; form++) { /* the loop, then widened keys and sgemm */
        asr_attention_scores_k16(q + dh, d, kv16 + dh, 2 * d, Q, nk, dh, 0.125f, sc, form ? keys : NULL);
        for (int i = 0; i < Q; i++)
            for (int t = 0; t < nk; t++) {
                double r = 0.0;
                for (int e = 0; e < dh; e++) r += (double)q[(size_t)i * d + dh + e] * kv[(size_t)t * 2 * d + dh + e];
                double err = fabs(sc[(size_t)i * nk + t] - r * 0.125) / (1.0 + fabs(r * 0.125));
                if (!(err <= worst_scores)) worst_scores = err;
            }
        }
        free(keys);
        free(sc);
        free(q);
        free(kv);
        free(kv16);
        free(kv16b);
        free(o1);
        free(o3);
        free(ref);
    }
    CHECK(ran[0] && worst[0] < 1e-5, "half K/V attention, scalar: 6 cases, max relative error %.2e", worst[0]);
    if (ran[1]) CHECK(worst[1] < 1e-5, "half K/V attention, AVX2: 6 cases, max relative error %.2e", worst[1]);
    else printf("skip half K/V attention AVX2 form: this CPU has no AVX2\n");
    CHECK(identical, "half K/V attention: 1 and 3 threads give bit-identical results");
    CHECK(worst_scores < 1e-5, "word-timing scores over half keys (loop and sgemm): max relative error %.2e", worst_scores);
    CHECK(rounded, "asr_round_f16 on the pool = asr_f32_to_f16 per value");
}

/* GELU and softmax, the AVX2 forms (polynomial exp/erf) and the portable
 * ones (libm), against double: GELU to 1e-6 absolute over [-8, 8],
 * softmax to 1e-6 relative per probability, masked (-inf) entries exactly 0
 * (the AVX2 form gave them e^-87 once: its exp clamps the input). */
static void test_elementwise_forms(void)
{
    enum { N = 1003 };
    float x[N], g0[N], s0[N];
    for (int i = 0; i < N; i++) x[i] = 8.0f * frand();
    for (int form = 0; form < 2; form++) {
#if defined(__x86_64__)
        if (form == 1 && !asr_cpu_has_avx2()) continue;
#else
        if (form == 1) continue;
#endif
        memcpy(g0, x, sizeof x);
        memcpy(s0, x, sizeof x);
        s0[7] = s0[500] = -INFINITY;
#if defined(__x86_64__)
        if (form == 1) {
            asr_gelu_avx2(g0, N);
            asr_softmax_avx2(s0, N);
        }
#endif
        if (form == 0) {
            asr_gelu_scalar(g0, N);
            asr_softmax_scalar(s0, N);
        }
        double ge = 0.0, se = 0.0, mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < N; i++) {
            double v = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
            if (!(fabs(g0[i] - v) <= ge)) ge = fabs(g0[i] - v);
            if (i != 7 && i != 500 && x[i] > mx) mx = x[i];
        }
        for (int i = 0; i < N; i++) sum += i == 7 || i == 500 ? 0.0 : exp(x[i] - mx);
        for (int i = 0; i < N; i++) {
            double p = i == 7 || i == 500 ? 0.0 : exp(x[i] - mx) / sum;
            double e = p > 0 ? fabs(s0[i] - p) / p : fabs(s0[i]);
            if (!(e <= se)) se = e;
        }
        /* log-sum-exp over a vocabulary-sized row with masked entries, and an all-masked row */
        enum { V = 51865 };
        static float row[V];
        for (int i = 0; i < V; i++) row[i] = i % 97 == 3 ? -INFINITY : 30.0f * frand();
        double rmax = -INFINITY, rsum = 0.0;
        for (int i = 0; i < V; i++) if (row[i] > rmax) rmax = row[i];
        for (int i = 0; i < V; i++) if (row[i] != -INFINITY) rsum += exp((double)row[i] - rmax);
        double lse_ref = rmax + log(rsum);
        float lse = 0.0f, none = 0.0f;
        static const float masked[11] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                                         -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
#if defined(__x86_64__)
        if (form == 1) {
            lse = asr_logsumexp_avx2(row, V);
            none = asr_logsumexp_avx2(masked, 11);
        }
#endif
        if (form == 0) {
            lse = asr_logsumexp_scalar(row, V);
            none = asr_logsumexp_scalar(masked, 11);
        }
        CHECK(fabs(lse - lse_ref) <= 1e-6 * fabs(lse_ref) && none == -INFINITY,
              "%s log-sum-exp of %d values, some masked: %.7f against %.7f; all masked: %g", form ? "AVX2" : "scalar",
              V, lse, lse_ref, none);
        CHECK(ge <= 1e-6, "%s GELU over [-8, 8]: max error %.2e", form ? "AVX2" : "scalar", ge);
        CHECK(se <= 1e-6 && s0[7] == 0.0f && s0[500] == 0.0f, "%s softmax of %d values with 2 masked: max relative "
              "error %.2e", form ? "AVX2" : "scalar", N, se);
    }
}

static void test_layer_norm(void)
{
    const int n = 200, d = 96;
    float *x = malloc((size_t)n * d * sizeof(float)), *g = malloc(d * sizeof(float)), *b = malloc(d * sizeof(float));
    float *y = malloc((size_t)n * d * sizeof(float));
    fill(x, (size_t)n * d);
    fill(g, d);
    fill(b, d);
    compute_box cb;
    int ok = make_compute(&cb, 2, 8, 8);
    if (ok) asr_layer_norm(&cb.c, x, g, b, y, n, d);
    double worst = 0.0;
    for (int r = 0; ok && r < n; r++) {
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < d; j++) mean += x[r * d + j];
        mean /= d;
        for (int j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
        var /= d;
        for (int j = 0; j < d; j++) {
            double want = (x[r * d + j] - mean) / sqrt(var + 1e-5) * g[j] + b[j];
            double e = fabs(y[r * d + j] - want);
            if (e > worst) worst = e;
        }
    }
    CHECK(ok && worst < 1e-5, "layer norm over 200 rows on 2 threads: max error %.2e", worst);
    if (ok) free_compute(&cb);
    free(x);
    free(g);
    free(b);
    free(y);
}

int main(void)
{
    test_pool();
    test_linear(0);
    test_linear(1);
    test_attention();
    test_attention_bf16();
    test_attention_k16();
    test_layer_norm();
    test_elementwise_forms();
    return CHECK_DONE();
}
