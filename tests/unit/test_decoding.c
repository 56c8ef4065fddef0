/* test_decoding.c — decoding's pure steps on synthetic logits: logit filters, greedy, sampling, beam search, fallback.
 *
 * A made-up 20-token vocabulary (text 0..9, eot 10, sot 11, sot_prev 12,
 * no_speech 13, no_timestamps 14, timestamps 15..19 for 0.00..0.08 s) lets
 * each rule of openai's decoding be checked by hand: which logits each
 * filter removes, which token greedy picks and at what log-probability,
 * sample frequencies, beam search's ranking, eot handling, duplicate
 * collapse and reordering, candidate ranking with and without a length
 * penalty, and transcribe's temperature-fallback and silence decisions.
 */
#include "check.h"
#include "decoding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { V = 20, EOT = 10, SOT = 11, SOT_PREV = 12, NO_SPEECH = 13, NO_TS = 14, TB = 15, BLANK = 3, SUPPRESSED = 5 };

static asr_model fake;
static int blank_list[] = {BLANK, EOT};
static int suppress_list[] = {SUPPRESSED};

static void make_model(void)
{
    memset(&fake, 0, sizeof fake);
    fake.hp.n_vocab = V;
    fake.hp.n_text_ctx = 16;
    fake.tok = (asr_special_tokens){.eot = EOT, .sot = SOT, .sot_prev = SOT_PREV, .sot_lm = -1, .translate = -1,
                                    .transcribe = -1, .no_speech = NO_SPEECH, .no_timestamps = NO_TS,
                                    .timestamp_begin = TB, .first_lang = -1};
    fake.suppress_blank = blank_list;
    fake.n_suppress_blank = 2;
    fake.suppress_tokens = suppress_list;
    fake.n_suppress_tokens = 1;
}

static asr_decode_options options(int without_timestamps)
{
    return (asr_decode_options){.temperature = 0.0f, .without_timestamps = without_timestamps,
                                .max_initial_timestamp = NAN, .suppress_blank = 1, .suppress_tokens = 1,
                                .length_penalty = NAN, .patience = NAN};
}

static void fill(float *x, float v)
{
    for (int i = 0; i < V; i++) x[i] = v;
}

/* Which of the V logits are -inf, as a bit mask. */
static unsigned banned(const float *x)
{
    unsigned m = 0;
    for (int i = 0; i < V; i++)
        if (x[i] == -INFINITY) m |= 1u << i;
    return m;
}

#define BIT(i) (1u << (i))
#define RANGE(a, b) ((((1u << ((b) - (a))) - 1u)) << (a)) /* bits a .. b-1 */

static void filters(void)
{
    float lg[V];
    asr_decode_options o = options(1);
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, NULL, 0);
    CHECK(banned(lg) == (BIT(BLANK) | BIT(EOT) | BIT(SUPPRESSED)),
          "no timestamps, first step: blank, eot and the suppress list removed (mask %#x)", banned(lg));
    int one[] = {1};
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, one, 1);
    CHECK(banned(lg) == BIT(SUPPRESSED), "later steps: only the suppress list (mask %#x)", banned(lg));
    o.suppress_tokens = 0;
    o.suppress_blank = 0;
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, NULL, 0);
    CHECK(banned(lg) == 0, "both suppressions off: nothing removed (mask %#x)", banned(lg));

    /* timestamp rules */
    o = options(0);
    o.suppress_blank = o.suppress_tokens = 0;
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, NULL, 0);
    CHECK(banned(lg) == (RANGE(0, TB)), "first step: only a timestamp may begin (mask %#x)", banned(lg));
    o.max_initial_timestamp = 0.04f; /* up to <|0.04|> = TB + 2 */
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, NULL, 0);
    CHECK(banned(lg) == (RANGE(0, TB) | RANGE(TB + 3, V)), "max_initial_timestamp 0.04 s: <|0.00|>..<|0.04|> only "
          "(mask %#x)", banned(lg));
    o.max_initial_timestamp = NAN;

    int opened[] = {TB + 1};
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, opened, 1);
    CHECK(banned(lg) == (BIT(NO_TS) | RANGE(TB, V)), "after the initial timestamp: text must follow (mask %#x)",
          banned(lg));
    int text_then_ts[] = {TB + 1, 4, TB + 2};
    fill(lg, 0.0f);
    for (int i = TB; i < V; i++) lg[i] = -3.0f; /* unlikely enough not to force a timestamp */
    asr_apply_logit_filters(&fake, &o, lg, text_then_ts, 3);
    CHECK(banned(lg) == (RANGE(0, EOT) | BIT(NO_TS) | RANGE(TB, TB + 2)),
          "an open timestamp: closed by one ≥ it, or eot (mask %#x)", banned(lg));
    int pair[] = {TB + 1, 4, TB + 3, TB + 3};
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, pair, 4);
    CHECK(banned(lg) == (BIT(NO_TS) | RANGE(TB, V)), "a closed pair: text next (mask %#x)", banned(lg));
    int text_after[] = {TB + 1, 4, TB + 3, TB + 3, 6};
    fill(lg, 0.0f);
    asr_apply_logit_filters(&fake, &o, lg, text_after, 5);
    CHECK(banned(lg) == (BIT(NO_TS) | RANGE(TB, TB + 4)), "timestamps never go back: below <|0.08|> removed "
          "(mask %#x)", banned(lg));

    /* timestamps jointly more likely than the best text token force one */
    int text[] = {TB, 4}; /* <|0.00|> is then below the last timestamp + 1, so 4 remain */
    fill(lg, -5.0f);
    for (int i = TB; i < V; i++) lg[i] = -0.5f; /* 4 left: logsumexp = -0.5 + ln 4 ≈ 0.886 */
    lg[1] = 0.8f;
    asr_apply_logit_filters(&fake, &o, lg, text, 2);
    CHECK(banned(lg) == (RANGE(0, TB) | BIT(TB)), "best text 0.8 vs the timestamps' 0.886: text removed (mask %#x)",
          banned(lg));
    fill(lg, -5.0f);
    for (int i = TB; i < V; i++) lg[i] = -0.5f;
    lg[1] = 1.0f;
    asr_apply_logit_filters(&fake, &o, lg, text, 2);
    CHECK(lg[1] == 1.0f && banned(lg) == (BIT(NO_TS) | BIT(TB)), "best text 1.0 vs 0.886: text stays (mask %#x)",
          banned(lg));
}

static void greedy(void)
{
    make_model();
    asr_decode_options o = options(1);
    int tokens[32] = {SOT};
    asr_sequence q = {.tokens = tokens, .len = 1, .sum_logprob = 0.0f};
    float lg[V], scratch[V];
    fill(lg, 0.0f);
    lg[SUPPRESSED] = 9.0f; /* best, but suppressed */
    lg[BLANK] = 8.0f;      /* suppressed at the first step */
    lg[7] = 2.0f;
    int tok = asr_greedy_step(&fake, &o, &q, 1, 0, lg, scratch);
    /* what remains: token 7 at 2, 16 others at 0 (20 - blank, eot, suppressed) */
    double want = 2.0 - log(exp(2.0) + 16.0);
    CHECK(tok == 7 && q.len == 2 && tokens[1] == 7, "greedy picks the best allowed token (%d)", tok);
    CHECK(fabs(q.sum_logprob - want) < 1e-5, "its log-probability over the filtered logits: %.6f (want %.6f)",
          q.sum_logprob, want);
    fill(lg, 0.0f);
    lg[EOT] = 3.0f;
    tok = asr_greedy_step(&fake, &o, &q, 1, 1, lg, scratch);
    CHECK(tok == EOT && q.len == 3, "eot allowed after the first step");
    float before = q.sum_logprob;
    fill(lg, 0.0f);
    lg[2] = 5.0f;
    tok = asr_greedy_step(&fake, &o, &q, 1, 2, lg, scratch);
    CHECK(tok == EOT && q.len == 4 && q.sum_logprob == before, "an ended sequence repeats eot at no cost");

    /* sampling at temperature 1: P(8) = 3 / (3 + 1) among the two allowed tokens */
    uint64_t rng = 12345;
    o.temperature = 1.0f;
    o.rng = &rng;
    int n8 = 0, other = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
        q.len = 2;
        fill(lg, -INFINITY);
        lg[8] = logf(3.0f);
        lg[9] = 0.0f;
        lg[SUPPRESSED] = 10.0f;
        tok = asr_greedy_step(&fake, &o, &q, 1, 1, lg, scratch);
        if (tok == 8) n8++;
        else if (tok != 9) other++;
    }
    double f = (double)n8 / n; /* sd of the estimate: sqrt(.75·.25/4000) ≈ 0.007 */
    CHECK(other == 0 && fabs(f - 0.75) < 0.03, "temperature 1 samples 8 with frequency %.3f (want 0.75), never a "
          "removed token (%d)", f, other);
    o.temperature = 0.25f; /* sharper: P(8) = 3^4 / (3^4 + 1) = 0.988 */
    n8 = 0;
    for (int i = 0; i < n; i++) {
        q.len = 2;
        fill(lg, -INFINITY);
        lg[8] = logf(3.0f);
        lg[9] = 0.0f;
        if (asr_greedy_step(&fake, &o, &q, 1, 1, lg, scratch) == 8) n8++;
    }
    f = (double)n8 / n;
    CHECK(fabs(f - 81.0 / 82.0) < 0.01, "temperature 0.25 samples 8 with frequency %.3f (want 0.988)", f);
}

/* logprobs rows: everything -10 except the given (token, value) pairs */
static void row(float *r, int n_pairs, const int *tok, const float *val)
{
    for (int i = 0; i < V; i++) r[i] = -10.0f;
    for (int i = 0; i < n_pairs; i++) r[tok[i]] = val[i];
}

static void beam_search(void)
{
    int b0[32] = {SOT, 1}, b1[32] = {SOT, 2}, s0[32], s1[32], c0[32], c1[32];
    asr_sequence seqs[2] = {{b0, 2, -1.0f}, {b1, 2, -1.5f}};
    int *spare[2] = {s0, s1};
    asr_candidate cands[2] = {{c0, 0, 0}, {c1, 0, 0}};
    int n_cands = 0, src[2], next[2];
    float lp[2 * V];
    row(lp, 3, (int[]){4, EOT, 5}, (float[]){-0.1f, -0.2f, -2.0f});
    row(lp + V, 3, (int[]){6, 7, EOT}, (float[]){-0.05f, -0.3f, -3.0f});
    /* ranked: (0,4) -1.1, (0,eot) -1.2, (1,6) -1.55, (1,7) -1.8, ... */
    int done = asr_beam_update(seqs, spare, 2, lp, V, EOT, 1, cands, &n_cands, 2, src, next);
    CHECK(!done && n_cands == 1 && cands[0].len == 1 && cands[0].tokens[0] == 1 && fabsf(cands[0].score + 1.2f) < 1e-6,
          "eot among the best finishes a candidate [1] at -1.2 (%d candidates)", n_cands);
    CHECK(src[0] == 0 && next[0] == 4 && src[1] == 1 && next[1] == 6, "next beams (0,4) and (1,6): got (%d,%d) (%d,%d)",
          src[0], next[0], src[1], next[1]);
    CHECK(seqs[0].len == 3 && seqs[0].tokens[1] == 1 && seqs[0].tokens[2] == 4 && fabsf(seqs[0].sum_logprob + 1.1f) < 1e-6 &&
          seqs[1].len == 3 && seqs[1].tokens[1] == 2 && seqs[1].tokens[2] == 6 && fabsf(seqs[1].sum_logprob + 1.55f) < 1e-6,
          "sequences rebuilt with their scores");
    CHECK(seqs[0].tokens == s0 && seqs[1].tokens == s1 && spare[0] == b0 && spare[1] == b1,
          "built in the spare buffers, which then hold the old ones");

    /* both next beams continue beam 1: the cache must be reordered from it */
    row(lp, 1, (int[]){4}, (float[]){-5.0f});
    row(lp + V, 3, (int[]){8, 9, 7}, (float[]){-0.1f, -0.2f, -0.3f});
    done = asr_beam_update(seqs, spare, 2, lp, V, EOT, 1, cands, &n_cands, 2, src, next);
    CHECK(!done && src[0] == 1 && src[1] == 1 && next[0] == 8 && next[1] == 9 && seqs[0].tokens[2] == 6 &&
          seqs[1].tokens[2] == 6 && seqs[0].tokens[3] == 8 && seqs[1].tokens[3] == 9,
          "both beams from sequence 1: src (%d,%d), tokens (%d,%d)", src[0], src[1], next[0], next[1]);
    /* the second finished candidate completes the search */
    row(lp, 1, (int[]){EOT}, (float[]){-0.01f});
    row(lp + V, 1, (int[]){3}, (float[]){-1.0f});
    done = asr_beam_update(seqs, spare, 2, lp, V, EOT, 1, cands, &n_cands, 2, src, next);
    CHECK(done && n_cands == 2 && cands[1].len == 3 && cands[1].tokens[2] == 8, "max candidates reached: done");

    /* identical sequences in two beams give one continuation, not two */
    int d0[32] = {SOT, 1}, d1[32] = {SOT, 1}, e0[32], e1[32];
    asr_sequence same[2] = {{d0, 2, -1.0f}, {d1, 2, -1.0f}};
    int *spare2[2] = {e0, e1};
    n_cands = 0;
    row(lp, 2, (int[]){4, 5}, (float[]){-0.1f, -0.5f});
    row(lp + V, 2, (int[]){4, 5}, (float[]){-0.1f, -0.5f});
    asr_beam_update(same, spare2, 2, lp, V, EOT, 1, cands, &n_cands, 2, src, next);
    CHECK(next[0] == 4 && next[1] == 5, "duplicate continuations collapse: next tokens %d, %d (want 4, 5)", next[0],
          next[1]);

    /* finalize tops up with unfinished beams, best first */
    int f0[8] = {SOT, 1}, f1[8] = {SOT, 2}, f2[8] = {SOT, 3}, k0[8], k1[8], k2[8];
    asr_sequence fs[3] = {{f0, 2, -3.0f}, {f1, 2, -1.0f}, {f2, 2, -2.0f}};
    asr_candidate fc[3] = {{k0, 1, -0.5f}, {k1, 0, 0}, {k2, 0, 0}};
    k0[0] = 9;
    n_cands = 1;
    asr_beam_finalize(fs, 3, 1, fc, &n_cands);
    CHECK(n_cands == 3 && fc[1].tokens[0] == 2 && fc[1].score == -1.0f && fc[2].tokens[0] == 3,
          "finalize adds sequences 1 then 2 (%d candidates)", n_cands);

    CHECK(asr_beam_max_candidates(5, 1.0f) == 5 && asr_beam_max_candidates(5, 2.0f) == 10 &&
          asr_beam_max_candidates(5, NAN) == 5 && asr_beam_max_candidates(5, 0.01f) == 5 &&
          asr_beam_max_candidates(16, 3.0f) == 16,
          "patience: round(beam · patience), falling back to beam outside 1..%d", 2 * ASR_MAX_BATCH);
}

static void ranking(void)
{
    int a[2] = {1, 2}, b[5] = {1, 2, 3, 4, 5};
    asr_candidate c[2] = {{a, 2, -2.0f}, {b, 5, -4.0f}};
    CHECK(asr_best_candidate(c, 2, NAN) == 1, "no length penalty: by average log-probability (-0.8 beats -1.0)");
    CHECK(asr_best_candidate(c, 2, 0.0f) == 0, "length_penalty 0: by the sum (-2 beats -4)");
    CHECK(asr_best_candidate(c, 2, 1.0f) == 0, "length_penalty 1: -2/(7/6) beats -4/(10/6)");
    asr_candidate tie[2] = {{a, 2, -2.0f}, {b, 2, -2.0f}};
    CHECK(asr_best_candidate(tie, 2, NAN) == 0, "a tie keeps the first");
}

static void fallback(void)
{
    asr_transcribe_params p = asr_transcribe_default_params(); /* 2.4, -1.0, 0.6 */
    struct { float cr, lp, nsp; int fallback, silent; const char *what; } cases[] = {
        {1.5f, -0.5f, 0.1f, 0, 0, "ordinary speech"},
        {2.5f, -0.5f, 0.1f, 1, 0, "too repetitive"},
        {1.5f, -1.2f, 0.1f, 1, 0, "too unlikely"},
        {1.5f, -1.2f, 0.7f, 0, 1, "silence: unlikely and no speech"},
        {2.5f, -1.2f, 0.7f, 0, 1, "silence overrides repetition"},
        {2.5f, -0.5f, 0.7f, 1, 0, "likely text despite no-speech: repetition still counts"},
        {1.5f, -0.5f, 0.7f, 0, 0, "no-speech probability alone is not silence"},
        {2.4f, -1.0f, 0.6f, 0, 0, "thresholds themselves pass"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        asr_decode_result r = {.compression_ratio = cases[i].cr, .avg_logprob = cases[i].lp,
                               .no_speech_prob = cases[i].nsp};
        CHECK(asr_needs_fallback(&p, &r) == cases[i].fallback && asr_window_is_silent(&p, &r) == cases[i].silent,
              "%s: fallback %d silent %d", cases[i].what, cases[i].fallback, cases[i].silent);
    }
    asr_decode_result r = {.compression_ratio = 9.0f, .avg_logprob = -9.0f, .no_speech_prob = 0.9f};
    p.no_speech_threshold = NAN;
    CHECK(asr_needs_fallback(&p, &r) && !asr_window_is_silent(&p, &r), "no no_speech_threshold: never silence");
    p = asr_transcribe_default_params();
    p.compression_ratio_threshold = 0.0f;
    p.logprob_threshold = NAN;
    CHECK(!asr_needs_fallback(&p, &r) && asr_window_is_silent(&p, &r),
          "thresholds off: no fallback; no-speech alone then is silence");
}

int main(void)
{
    make_model();
    filters();
    greedy();
    beam_search();
    ranking();
    fallback();
    return CHECK_DONE();
}
