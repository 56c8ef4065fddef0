/* decoding.c — one window of openai/whisper's DecodingTask: filters, greedy/sampling, beam search. */
#include "decoding.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: small, good enough for sampling, state owned by the caller */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

void asr_log_softmax(const float *logits, float *out, int n)
{
    float lse = asr_logsumexp(logits, n);
    for (int i = 0; i < n; i++) out[i] = logits[i] - lse;
}

void asr_apply_logit_filters(const asr_model *m, const asr_decode_options *o, float *logits, const int *sampled,
                             int n_sampled)
{
    const asr_special_tokens *t = &m->tok;
    int V = m->hp.n_vocab, tb = t->timestamp_begin;
    if (o->suppress_blank && n_sampled == 0)
        for (int i = 0; i < m->n_suppress_blank; i++) logits[m->suppress_blank[i]] = -INFINITY;
    if (o->suppress_tokens)
        for (int i = 0; i < m->n_suppress_tokens; i++) logits[m->suppress_tokens[i]] = -INFINITY;
    if (o->without_timestamps) return;

    logits[t->no_timestamps] = -INFINITY;
    int last_ts = n_sampled >= 1 && sampled[n_sampled - 1] >= tb;
    int penult_ts = n_sampled < 2 || sampled[n_sampled - 2] >= tb;
    if (last_ts) {
        if (penult_ts) { /* a pair closed: next must be text */
            for (int i = tb; i < V; i++) logits[i] = -INFINITY;
        } else {         /* an opened timestamp must be closed or end */
            for (int i = 0; i < t->eot; i++) logits[i] = -INFINITY;
        }
    }
    int last_timestamp = -1;
    for (int i = n_sampled - 1; i >= 0; i--)
        if (sampled[i] >= tb) { last_timestamp = sampled[i]; break; }
    if (last_timestamp >= 0) {
        /* timestamps never decrease; a segment has non-zero length */
        int limit = (last_ts && !penult_ts) ? last_timestamp : last_timestamp + 1;
        for (int i = tb; i < limit && i < V; i++) logits[i] = -INFINITY;
    }
    if (n_sampled == 0) {
        for (int i = 0; i < tb; i++) logits[i] = -INFINITY;
        if (!isnan(o->max_initial_timestamp)) {
            int last_allowed = tb + (int)lroundf(o->max_initial_timestamp / 0.02f);
            for (int i = last_allowed + 1; i < V; i++) logits[i] = -INFINITY;
        }
    }
    /* If timestamps are jointly more likely than any text token, force one:
     * logsumexp(log_softmax[tb:]) > max(log_softmax[:tb]), both sides
     * shifted by the same log-sum-exp over the whole vocabulary, which
     * therefore cancels. */
    float max_text = -INFINITY;
    for (int i = 0; i < tb; i++) if (logits[i] > max_text) max_text = logits[i];
    float ts_logsum = asr_logsumexp(logits + tb, V - tb);
    if (ts_logsum > -INFINITY && ts_logsum > max_text)
        for (int i = 0; i < tb; i++) logits[i] = -INFINITY;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

static int sample_categorical(const float *logits, int n, float temperature, uint64_t *rng, float *scratch)
{
    for (int i = 0; i < n; i++) scratch[i] = logits[i] / temperature;
    int last = argmax(scratch, n);
    asr_softmax(scratch, n); /* masked tokens get probability 0 */
    double u = rng_uniform(rng), acc = 0.0;
    for (int i = 0; i < n; i++) {
        if (scratch[i] == 0.0f) continue;
        acc += scratch[i];
        if (u < acc) return i;
        last = i;
    }
    return last;
}

/* openai MaximumLikelihoodRanker's score. */
static float rank_score(float sum_logprob, int len, float length_penalty)
{
    float penalty = isnan(length_penalty) ? (float)len : powf((5.0f + len) / 6.0f, length_penalty);
    return sum_logprob / (penalty > 0 ? penalty : 1.0f);
}

/* Top k+1 entries of logprobs (n) by value, into idx (descending). */
static void top_k(const float *x, int n, int k, int *idx)
{
    int filled = 0;
    for (int i = 0; i < n; i++) {
        if (filled == k && x[i] <= x[idx[k - 1]]) continue;
        int j = filled < k ? filled++ : k - 1;
        while (j > 0 && x[idx[j - 1]] < x[i]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}

typedef struct beam_entry {
    int source;    /* beam it extends */
    int token;
    float score;   /* cumulative log-probability */
} beam_entry;

static int cmp_entry_desc(const void *a, const void *b)
{
    const beam_entry *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    /* stable order: earlier beam, then lower token, like Python's sorted over insertion order */
    if (x->source != y->source) return x->source - y->source;
    return x->token - y->token;
}

static int same_sequence(const asr_sequence *seqs, const beam_entry *a, const beam_entry *b)
{
    if (a->token != b->token) return 0;
    const asr_sequence *sa = &seqs[a->source], *sb = &seqs[b->source];
    return sa->len == sb->len && memcmp(sa->tokens, sb->tokens, (size_t)sa->len * sizeof(int)) == 0;
}

int asr_greedy_step(const asr_model *m, const asr_decode_options *o, asr_sequence *q, int sample_begin, int step,
                    float *lg, float *scratch)
{
    const int V = m->hp.n_vocab, eot = m->tok.eot;
    if (q->tokens[q->len - 1] == eot && step > 0) {
        q->tokens[q->len++] = eot;
        return eot;
    }
    asr_apply_logit_filters(m, o, lg, q->tokens + sample_begin, q->len - sample_begin);
    int tok = o->temperature == 0.0f ? argmax(lg, V) : sample_categorical(lg, V, o->temperature, o->rng, scratch);
    q->sum_logprob += lg[tok] - asr_logsumexp(lg, V); /* its log-softmax entry */
    q->tokens[q->len++] = tok;
    return tok;
}

int asr_beam_max_candidates(int beam, float patience)
{
    int n = (int)lroundf((float)beam * (isnan(patience) ? 1.0f : patience));
    return n < 1 || n > 2 * ASR_MAX_BATCH ? beam : n;
}

static void add_candidate(asr_candidate *c, const asr_sequence *q, int sample_begin, float score)
{
    c->len = q->len - sample_begin;
    memcpy(c->tokens, q->tokens + sample_begin, (size_t)c->len * sizeof(int));
    c->score = score;
}

int asr_beam_update(asr_sequence *seqs, int **spare, int beam, const float *logprobs, int n_vocab, int eot,
                    int sample_begin, asr_candidate *cands, int *n_cands, int max_cands, int *src, int *next_tokens)
{
    /* the beam+1 best tokens of every sequence, identical continuations
     * collapsed (openai keys a dict by the token sequence: the later
     * insertion's score wins) */
    beam_entry entries[ASR_MAX_BATCH * (ASR_MAX_BATCH + 1)];
    int n_entries = 0, idx[ASR_MAX_BATCH + 1];
    for (int b = 0; b < beam; b++) {
        const float *lp = logprobs + (size_t)b * n_vocab;
        top_k(lp, n_vocab, beam + 1, idx);
        for (int k = 0; k < beam + 1; k++) {
            beam_entry e = {.source = b, .token = idx[k], .score = seqs[b].sum_logprob + lp[idx[k]]};
            int dup = 0;
            for (int j = 0; j < n_entries && !dup; j++)
                if (same_sequence(seqs, &entries[j], &e)) {
                    entries[j].score = e.score;
                    dup = 1;
                }
            if (!dup) entries[n_entries++] = e;
        }
    }
    qsort(entries, (size_t)n_entries, sizeof *entries, cmp_entry_desc);

    /* best first: eot ends a candidate, anything else continues a beam */
    float new_sum[ASR_MAX_BATCH];
    int saved = 0;
    for (int j = 0; j < n_entries && saved < beam; j++) {
        const beam_entry *e = &entries[j];
        if (e->token == eot) {
            if (*n_cands < max_cands) add_candidate(&cands[(*n_cands)++], &seqs[e->source], sample_begin, e->score);
        } else {
            src[saved] = e->source;
            next_tokens[saved] = e->token;
            new_sum[saved] = e->score;
            saved++;
        }
    }
    /* the next sequences, built in the spare buffers while the sources are intact */
    int new_len[ASR_MAX_BATCH];
    for (int b = 0; b < saved; b++) {
        const asr_sequence *from = &seqs[src[b]];
        memcpy(spare[b], from->tokens, (size_t)from->len * sizeof(int));
        new_len[b] = from->len;
        spare[b][new_len[b]++] = next_tokens[b];
    }
    /* Each sequence offers beam+1 tokens and at most one of them is eot, so
     * `beam` continuations always exist; should they not, the missing
     * beams repeat the first one (or end) with no chance of winning. */
    for (int b = saved; b < beam; b++) {
        const int *from = saved ? spare[0] : seqs[0].tokens;
        int len = saved ? new_len[0] : seqs[0].len;
        memcpy(spare[b], from, (size_t)len * sizeof(int));
        new_len[b] = len;
        src[b] = saved ? src[0] : 0;
        next_tokens[b] = saved ? next_tokens[0] : eot;
        if (!saved) spare[b][new_len[b]++] = eot;
        new_sum[b] = -INFINITY;
    }
    for (int b = 0; b < beam; b++) {
        int *old = seqs[b].tokens;
        seqs[b].tokens = spare[b];
        spare[b] = old;
        seqs[b].len = new_len[b];
        seqs[b].sum_logprob = new_sum[b];
    }
    return *n_cands >= max_cands;
}

void asr_beam_finalize(const asr_sequence *seqs, int beam, int sample_begin, asr_candidate *cands, int *n_cands)
{
    int order[ASR_MAX_BATCH];
    for (int b = 0; b < beam; b++) order[b] = b;
    for (int i = 1; i < beam; i++) /* stable: equal scores keep beam order */
        for (int j = i; j > 0 && seqs[order[j]].sum_logprob > seqs[order[j - 1]].sum_logprob; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    for (int i = 0; i < beam && *n_cands < beam; i++)
        add_candidate(&cands[(*n_cands)++], &seqs[order[i]], sample_begin, seqs[order[i]].sum_logprob);
}

int asr_best_candidate(const asr_candidate *cands, int n, float length_penalty)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (rank_score(cands[i].score, cands[i].len, length_penalty) >
            rank_score(cands[best].score, cands[best].len, length_penalty))
            best = i;
    return best;
}

/* ---- one window ------------------------------------------------------------- */

/* Everything asr_decode_window allocates. */
typedef struct window_buffers {
    int *init;                    /* initial tokens (n_text_ctx)                   */
    float *scratch;               /* n_vocab                                       */
    asr_sequence seqs[ASR_MAX_BATCH];
    int *spare[ASR_MAX_BATCH];    /* beam search: where the next sequences are built */
    asr_candidate cands[ASR_MAX_CANDIDATES];
    int n_cands;
    int next_tokens[ASR_MAX_BATCH];
} window_buffers;

static void window_buffers_free(window_buffers *w)
{
    free(w->init);
    free(w->scratch);
    for (int i = 0; i < ASR_MAX_BATCH; i++) {
        free(w->seqs[i].tokens);
        free(w->spare[i]);
    }
    for (int i = 0; i < ASR_MAX_CANDIDATES; i++) free(w->cands[i].tokens);
}

static asr_status window_buffers_alloc(window_buffers *w, int n_group, int beam, int C, int V, asr_error *err)
{
    const size_t seq_bytes = (size_t)(C + 1) * sizeof(int);
    w->init = malloc((size_t)C * sizeof(int));
    w->scratch = malloc((size_t)V * sizeof(float));
    int ok = w->init && w->scratch;
    for (int i = 0; ok && i < n_group; i++) ok = (w->seqs[i].tokens = malloc(seq_bytes)) != NULL;
    for (int i = 0; ok && i < beam; i++) ok = (w->spare[i] = malloc(seq_bytes)) != NULL;
    for (int i = 0; ok && i < ASR_MAX_CANDIDATES; i++) ok = (w->cands[i].tokens = malloc(seq_bytes)) != NULL;
    return ok ? ASR_OK : asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
}

int asr_initial_tokens(const asr_model *m, const asr_decode_options *o, int *init, int *sot_index)
{
    const asr_special_tokens *t = &m->tok;
    const int C = m->hp.n_text_ctx;
    int n = 0;
    if (o->n_prompt > 0) {
        int keep = o->n_prompt < C / 2 - 1 ? o->n_prompt : C / 2 - 1;
        init[n++] = t->sot_prev;
        memcpy(init + n, o->prompt + o->n_prompt - keep, (size_t)keep * sizeof(int));
        n += keep;
    }
    *sot_index = n;
    init[n++] = t->sot;
    if (m->multilingual) {
        init[n++] = t->first_lang + (o->lang_index >= 0 ? o->lang_index : 0);
        init[n++] = o->task == ASR_TASK_TRANSLATE ? t->translate : t->transcribe;
    }
    if (o->without_timestamps) init[n++] = t->no_timestamps;
    return n;
}

/* Feed the initial tokens: up to and including sot gives the no-speech
 * probability, the rest the first logits, copied to every sequence of the
 * group along with the cache. */
static asr_status prefill(asr_state *st, const int *init, int n_init, int sot_index, int n_group, float *scratch,
                          float *no_speech_prob, asr_error *err)
{
    const asr_model *m = st->model;
    const int V = m->hp.n_vocab;
    asr_status s = asr_decode(st, init, 1, sot_index + 1, 0, sot_index, err);
    if (s != ASR_OK) return s;
    memcpy(scratch, st->logits, (size_t)V * sizeof(float));
    asr_softmax(scratch, V);
    *no_speech_prob = m->tok.no_speech >= 0 ? scratch[m->tok.no_speech] : 0.0f;
    if (n_init > sot_index + 1) {
        s = asr_decode(st, init + sot_index + 1, 1, n_init - sot_index - 1, sot_index + 1, n_init - sot_index - 2,
                       err);
        if (s != ASR_OK) return s;
    }
    for (int i = 1; i < n_group; i++) memcpy(st->logits + (size_t)i * V, st->logits, (size_t)V * sizeof(float));
    int src0[ASR_MAX_BATCH] = {0};
    asr_state_reorder(st, src0, n_group, n_init);
    return ASR_OK;
}

/* Sample until every sequence ended (greedy) or enough candidates finished
 * (beam), or the text context is full. */
static asr_status sample_window(asr_state *st, const asr_decode_options *o, window_buffers *w, int n_group, int beam,
                                int sample_begin, asr_error *err)
{
    const asr_model *m = st->model;
    const int V = m->hp.n_vocab, C = m->hp.n_text_ctx, eot = m->tok.eot;
    const int max_cands = beam ? asr_beam_max_candidates(beam, o->patience) : 0;
    for (int step = 0; step < C / 2; step++) {
        if (o->should_abort && o->should_abort(o->user_data))
            return asr_fail(err, ASR_ERR_CANCELLED, "decoding cancelled");
        int completed = 1;
        if (!beam) {
            for (int b = 0; b < n_group; b++) {
                float *lg = st->logits + (size_t)b * V;
                int tok = asr_greedy_step(m, o, &w->seqs[b], sample_begin, step, lg, w->scratch);
                w->next_tokens[b] = tok;
                if (tok != eot) completed = 0;
            }
        } else {
            for (int b = 0; b < beam; b++) { /* filtered log-probabilities in place of the logits */
                asr_sequence *q = &w->seqs[b];
                float *lg = st->logits + (size_t)b * V;
                asr_apply_logit_filters(m, o, lg, q->tokens + sample_begin, q->len - sample_begin);
                asr_log_softmax(lg, lg, V);
            }
            int src[ASR_MAX_BATCH];
            completed = asr_beam_update(w->seqs, w->spare, beam, st->logits, V, eot, sample_begin, w->cands,
                                        &w->n_cands, max_cands, src, w->next_tokens);
            asr_state_reorder(st, src, beam, w->seqs[0].len - 1);
        }
        if (completed || w->seqs[0].len >= C) break; /* done, or no room for another position */
        asr_status s = asr_decode(st, w->next_tokens, n_group, 1, w->seqs[0].len - 1, 0, err);
        if (s != ASR_OK) return s;
    }
    return ASR_OK;
}

/* The best candidate into r: tokens, log-probabilities, compression ratio. */
static asr_status pick_result(const asr_model *m, const asr_decode_options *o, window_buffers *w, int n_group,
                              int beam, int sample_begin, asr_decode_result *r, asr_error *err)
{
    const int eot = m->tok.eot;
    if (beam) {
        asr_beam_finalize(w->seqs, beam, sample_begin, w->cands, &w->n_cands);
    } else {
        for (int b = 0; b < n_group; b++) { /* each sampled sequence, cut at its eot */
            const asr_sequence *q = &w->seqs[b];
            asr_candidate *c = &w->cands[w->n_cands++];
            int len = q->len - sample_begin, end = 0;
            while (end < len && q->tokens[sample_begin + end] != eot) end++;
            c->len = end;
            memcpy(c->tokens, q->tokens + sample_begin, (size_t)end * sizeof(int));
            c->score = q->sum_logprob;
        }
    }
    const asr_candidate *best = &w->cands[asr_best_candidate(w->cands, w->n_cands, o->length_penalty)];
    r->n_tokens = best->len;
    memcpy(r->tokens, best->tokens, (size_t)r->n_tokens * sizeof(int));
    r->sum_logprob = best->score;
    r->temperature = o->temperature;
    return asr_decode_result_stats(m, r, err);
}

asr_status asr_decode_result_stats(const asr_model *m, asr_decode_result *r, asr_error *err)
{
    const int eot = m->tok.eot;
    r->avg_logprob = r->sum_logprob / (float)(r->n_tokens + 1);
    char *text = asr_tokenizer_decode(m->tokenizer, r->tokens, r->n_tokens, eot);
    if (!text) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    /* compression ratio of the stripped text, like DecodingResult */
    char *b = text, *e = text + strlen(text);
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
    *e = '\0';
    r->compression_ratio = asr_compression_ratio(b);
    free(text);
    return ASR_OK;
}

asr_status asr_decode_window(asr_state *st, const asr_decode_options *o, asr_decode_result *r, asr_error *err)
{
    const asr_model *m = st->model;
    const int V = m->hp.n_vocab, C = m->hp.n_text_ctx;
    const int beam = (o->temperature == 0.0f && o->beam_size > 1) ? o->beam_size : 0;
    const int n_group = beam ? beam : (o->temperature > 0.0f && o->best_of > 1 ? o->best_of : 1);
    if (n_group > ASR_MAX_BATCH)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "beam_size/best_of above %d", ASR_MAX_BATCH);
    asr_status s = asr_state_reserve(st, n_group, err);
    if (s != ASR_OK) return s;
    window_buffers w = {0};
    s = window_buffers_alloc(&w, n_group, beam, C, V, err);
    int sot_index = 0, n_init = 0;
    if (st->sched) asr_sched_decoding(st, n_group); /* its steps are worth waiting for */
    if (s == ASR_OK) {
        n_init = asr_initial_tokens(m, o, w.init, &sot_index);
        s = prefill(st, w.init, n_init, sot_index, n_group, w.scratch, &r->no_speech_prob, err);
    }
    if (s == ASR_OK) {
        for (int i = 0; i < n_group; i++) {
            memcpy(w.seqs[i].tokens, w.init, (size_t)n_init * sizeof(int));
            w.seqs[i].len = n_init;
            w.seqs[i].sum_logprob = 0.0f;
        }
        s = sample_window(st, o, &w, n_group, beam, n_init, err);
    }
    if (st->sched) asr_sched_decoding(st, 0);
    if (s == ASR_OK) s = pick_result(m, o, &w, n_group, beam, n_init, r, err);
    window_buffers_free(&w);
    return s;
}

asr_status asr_detect_language_encoded(asr_state *st, float *probs, int *best, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_special_tokens *t = &m->tok;
    if (!m->multilingual || t->n_langs == 0)
        return asr_fail(err, ASR_ERR_UNSUPPORTED, "this model is English-only and cannot detect languages");
    int sot = t->sot;
    asr_status s = asr_decode(st, &sot, 1, 1, 0, 0, err);
    if (s != ASR_OK) return s;
    const float *lg = st->logits + t->first_lang;
    float max = -INFINITY;
    int arg = 0;
    for (int i = 0; i < t->n_langs; i++)
        if (lg[i] > max) { max = lg[i]; arg = i; }
    double sum = 0.0;
    for (int i = 0; i < t->n_langs; i++) sum += exp((double)lg[i] - max);
    if (probs)
        for (int i = 0; i < t->n_langs; i++) probs[i] = (float)(exp((double)lg[i] - max) / sum);
    *best = arg;
    return ASR_OK;
}
