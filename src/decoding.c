/* decoding.c — one window of openai/whisper's DecodingTask: filters, greedy/sampling, beam search. */
#include "decoding.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sequence {
    int *tokens;   /* whole sequence including the initial tokens (n_text_ctx) */
    int len;
    float sum_logprob;
} sequence;

/* A finished beam-search candidate. */
typedef struct candidate {
    int *tokens;   /* sampled tokens only, without eot */
    int len;
    float score;   /* sum of log-probabilities */
} candidate;

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

/* log_softmax of logits (n) into out (n). */
static void log_softmax(const float *logits, float *out, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max);
    float lse = max + (float)log(sum);
    for (int i = 0; i < n; i++) out[i] = logits[i] - lse;
}

/* SuppressBlank, SuppressTokens and ApplyTimestampRules of openai/whisper,
 * applied to one sequence's logits; sampled = tokens after sample_begin. */
static void apply_filters(const asr_model *m, const asr_decode_options *o, float *logits, const int *sampled,
                          int n_sampled, float *scratch)
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
    /* If timestamps are jointly more likely than any text token, force one. */
    log_softmax(logits, scratch, V);
    float max_text = -INFINITY;
    for (int i = 0; i < tb; i++) if (scratch[i] > max_text) max_text = scratch[i];
    float ts_max = -INFINITY;
    for (int i = tb; i < V; i++) if (scratch[i] > ts_max) ts_max = scratch[i];
    if (ts_max > -INFINITY) {
        double s = 0.0;
        for (int i = tb; i < V; i++) s += exp((double)scratch[i] - ts_max);
        float ts_logprob = ts_max + (float)log(s);
        if (ts_logprob > max_text)
            for (int i = 0; i < tb; i++) logits[i] = -INFINITY;
    }
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
    float max = -INFINITY;
    for (int i = 0; i < n; i++) if (scratch[i] > max) max = scratch[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)scratch[i] - max);
    double u = rng_uniform(rng) * sum, acc = 0.0;
    int last = argmax(scratch, n);
    for (int i = 0; i < n; i++) {
        if (scratch[i] == -INFINITY) continue;
        acc += exp((double)scratch[i] - max);
        if (u < acc) return i;
        last = i;
    }
    return last;
}

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

static int same_sequence(const sequence *seqs, const beam_entry *a, const beam_entry *b)
{
    if (a->token != b->token) return 0;
    const sequence *sa = &seqs[a->source], *sb = &seqs[b->source];
    return sa->len == sb->len && memcmp(sa->tokens, sb->tokens, (size_t)sa->len * sizeof(int)) == 0;
}

asr_status asr_decode_window(asr_state *st, const asr_decode_options *o, asr_decode_result *r, asr_error *err)
{
    const asr_model *m = st->model;
    const asr_special_tokens *t = &m->tok;
    const int V = m->hp.n_vocab, C = m->hp.n_text_ctx;
    const int sample_len = C / 2;
    int beam = (o->temperature == 0.0f && o->beam_size > 1) ? o->beam_size : 0;
    int n_group = beam ? beam : (o->temperature > 0.0f && o->best_of > 1 ? o->best_of : 1);
    if (n_group > ASR_MAX_BATCH) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "beam_size/best_of above %d", ASR_MAX_BATCH);
    asr_status s = asr_state_reserve(st, n_group, err);
    if (s != ASR_OK) return s;

    /* initial tokens: [sot_prev, prompt...] + sot sequence (+ no_timestamps) */
    int *init = malloc((size_t)C * sizeof(int));
    float *scratch = malloc((size_t)V * sizeof(float));
    float *logprobs = malloc((size_t)V * sizeof(float));
    sequence seqs[ASR_MAX_BATCH] = {{0}};
    candidate cands[2 * ASR_MAX_BATCH + 2] = {{0}};
    int n_cands = 0;
    int *next_tokens = malloc((size_t)ASR_MAX_BATCH * sizeof(int));
    int ok = init && scratch && logprobs && next_tokens;
    for (int i = 0; ok && i < n_group; i++) ok = (seqs[i].tokens = malloc((size_t)(C + 1) * sizeof(int))) != NULL;
    for (int i = 0; ok && i < (int)(sizeof cands / sizeof *cands); i++)
        ok = (cands[i].tokens = malloc((size_t)(C + 1) * sizeof(int))) != NULL;
    if (!ok) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    int n_init = 0;
    if (o->n_prompt > 0) {
        int keep = o->n_prompt < C / 2 - 1 ? o->n_prompt : C / 2 - 1;
        init[n_init++] = t->sot_prev;
        memcpy(init + n_init, o->prompt + o->n_prompt - keep, (size_t)keep * sizeof(int));
        n_init += keep;
    }
    int sot_index = n_init;
    init[n_init++] = t->sot;
    if (m->multilingual) {
        init[n_init++] = t->first_lang + (o->lang_index >= 0 ? o->lang_index : 0);
        init[n_init++] = o->task == ASR_TASK_TRANSLATE ? t->translate : t->transcribe;
    }
    if (o->without_timestamps) init[n_init++] = t->no_timestamps;
    const int sample_begin = n_init;

    /* First pass: up to and including sot gives the no-speech probability. */
    s = asr_decode(st, init, 1, sot_index + 1, 0, sot_index, err);
    if (s != ASR_OK) goto done;
    memcpy(scratch, st->logits, (size_t)V * sizeof(float));
    asr_softmax(scratch, V);
    r->no_speech_prob = t->no_speech >= 0 ? scratch[t->no_speech] : 0.0f;
    if (sample_begin > sot_index + 1) {
        s = asr_decode(st, init + sot_index + 1, 1, sample_begin - sot_index - 1, sot_index + 1,
                       sample_begin - sot_index - 2, err);
        if (s != ASR_OK) goto done;
    }
    for (int i = 1; i < n_group; i++)
        memcpy(st->logits + (size_t)i * V, st->logits, (size_t)V * sizeof(float));
    int src0[ASR_MAX_BATCH] = {0};
    asr_state_reorder(st, src0, n_group, sample_begin);
    for (int i = 0; i < n_group; i++) {
        memcpy(seqs[i].tokens, init, (size_t)n_init * sizeof(int));
        seqs[i].len = n_init;
        seqs[i].sum_logprob = 0.0f;
    }
    int max_cands = beam ? (int)lroundf((float)beam * (isnan(o->patience) ? 1.0f : o->patience)) : 0;
    if (beam && (max_cands < 1 || max_cands > 2 * ASR_MAX_BATCH)) max_cands = beam;

    for (int step = 0; step < sample_len; step++) {
        if (o->should_abort && o->should_abort(o->user_data)) {
            s = asr_fail(err, ASR_ERR_CANCELLED, "decoding cancelled");
            goto done;
        }
        int completed = 1;
        if (!beam) {
            for (int b = 0; b < n_group; b++) {
                sequence *q = &seqs[b];
                float *lg = st->logits + (size_t)b * V;
                int last = q->tokens[q->len - 1];
                if (last == t->eot && step > 0) {
                    next_tokens[b] = t->eot;
                    q->tokens[q->len++] = t->eot;
                    continue;
                }
                apply_filters(m, o, lg, q->tokens + sample_begin, q->len - sample_begin, scratch);
                int tok = o->temperature == 0.0f ? argmax(lg, V) : sample_categorical(lg, V, o->temperature, o->rng, scratch);
                log_softmax(lg, logprobs, V);
                q->sum_logprob += logprobs[tok];
                q->tokens[q->len++] = tok;
                next_tokens[b] = tok;
                if (tok != t->eot) completed = 0;
            }
        } else {
            /* openai BeamSearchDecoder.update */
            beam_entry entries[ASR_MAX_BATCH * (ASR_MAX_BATCH + 1)];
            int n_entries = 0, idx[ASR_MAX_BATCH + 1];
            for (int b = 0; b < beam; b++) {
                sequence *q = &seqs[b];
                float *lg = st->logits + (size_t)b * V;
                apply_filters(m, o, lg, q->tokens + sample_begin, q->len - sample_begin, scratch);
                log_softmax(lg, logprobs, V);
                top_k(logprobs, V, beam + 1, idx);
                for (int k = 0; k < beam + 1; k++) {
                    beam_entry e = {.source = b, .token = idx[k], .score = q->sum_logprob + logprobs[idx[k]]};
                    /* identical sequences from identical beams collapse (a dict in openai) */
                    int dup = 0;
                    for (int j = 0; j < n_entries && !dup; j++)
                        if (same_sequence(seqs, &entries[j], &e)) {
                            entries[j].score = e.score; /* later insertion overwrites the value */
                            dup = 1;
                        }
                    if (!dup) entries[n_entries++] = e;
                }
            }
            qsort(entries, (size_t)n_entries, sizeof *entries, cmp_entry_desc);
            sequence next[ASR_MAX_BATCH];
            int src[ASR_MAX_BATCH], saved = 0;
            beam_entry finished[ASR_MAX_BATCH * (ASR_MAX_BATCH + 1)];
            int n_finished = 0;
            for (int j = 0; j < n_entries && saved < beam; j++) {
                if (entries[j].token == t->eot) {
                    finished[n_finished++] = entries[j];
                } else {
                    src[saved] = entries[j].source;
                    next_tokens[saved] = entries[j].token;
                    next[saved].sum_logprob = entries[j].score;
                    saved++;
                }
            }
            for (int j = 0; j < n_finished && n_cands < max_cands; j++) {
                const sequence *q = &seqs[finished[j].source];
                candidate *c = &cands[n_cands++];
                c->len = q->len - sample_begin;
                memcpy(c->tokens, q->tokens + sample_begin, (size_t)c->len * sizeof(int));
                c->score = finished[j].score;
            }
            /* rebuild sequences from their sources (copy through the spare slots) */
            int *tmp_tokens[ASR_MAX_BATCH];
            for (int b = 0; b < beam; b++) tmp_tokens[b] = seqs[b].tokens;
            int *new_tokens[ASR_MAX_BATCH];
            for (int b = 0; b < saved; b++) {
                new_tokens[b] = malloc((size_t)(C + 1) * sizeof(int));
                if (!new_tokens[b]) {
                    for (int j = 0; j < b; j++) free(new_tokens[j]);
                    s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
                    goto done;
                }
                memcpy(new_tokens[b], tmp_tokens[src[b]], (size_t)seqs[src[b]].len * sizeof(int));
                next[b].len = seqs[src[b]].len;
                new_tokens[b][next[b].len++] = next_tokens[b];
            }
            for (int b = 0; b < beam; b++) free(seqs[b].tokens);
            for (int b = 0; b < saved; b++) {
                seqs[b].tokens = new_tokens[b];
                seqs[b].len = next[b].len;
                seqs[b].sum_logprob = next[b].sum_logprob;
            }
            for (int b = saved; b < beam; b++) { /* cannot happen with beam+1 candidates per beam; keep valid */
                seqs[b].tokens = malloc((size_t)(C + 1) * sizeof(int));
                if (!seqs[b].tokens) {
                    s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
                    goto done;
                }
                memcpy(seqs[b].tokens, seqs[0].tokens, (size_t)seqs[0].len * sizeof(int));
                seqs[b].len = seqs[0].len;
                seqs[b].sum_logprob = -INFINITY;
                src[b] = src[0];
                next_tokens[b] = next_tokens[0];
            }
            asr_state_reorder(st, src, beam, seqs[0].len - 1);
            completed = n_cands >= max_cands;
        }
        if (completed || seqs[0].len > C) break;
        if (seqs[0].len >= C) break; /* no room for another position */
        s = asr_decode(st, next_tokens, n_group, 1, seqs[0].len - 1, 0, err);
        if (s != ASR_OK) goto done;
    }

    /* pick the result */
    if (beam) {
        /* finalize: top up with unfinished beams, best first */
        int order[ASR_MAX_BATCH];
        for (int b = 0; b < beam; b++) order[b] = b;
        for (int i = 1; i < beam; i++)
            for (int j = i; j > 0 && seqs[order[j]].sum_logprob > seqs[order[j - 1]].sum_logprob; j--) {
                int x = order[j]; order[j] = order[j - 1]; order[j - 1] = x;
            }
        for (int i = 0; i < beam && n_cands < beam; i++) {
            const sequence *q = &seqs[order[i]];
            candidate *c = &cands[n_cands++];
            c->len = q->len - sample_begin;
            memcpy(c->tokens, q->tokens + sample_begin, (size_t)c->len * sizeof(int));
            c->score = q->sum_logprob;
        }
    } else {
        for (int b = 0; b < n_group; b++) {
            const sequence *q = &seqs[b];
            candidate *c = &cands[n_cands++];
            int len = q->len - sample_begin;
            int end = 0;
            while (end < len && q->tokens[sample_begin + end] != t->eot) end++;
            c->len = end;
            memcpy(c->tokens, q->tokens + sample_begin, (size_t)end * sizeof(int));
            c->score = q->sum_logprob;
        }
    }
    int best = 0;
    for (int i = 1; i < n_cands; i++)
        if (rank_score(cands[i].score, cands[i].len, o->length_penalty) >
            rank_score(cands[best].score, cands[best].len, o->length_penalty))
            best = i;
    r->n_tokens = cands[best].len;
    memcpy(r->tokens, cands[best].tokens, (size_t)r->n_tokens * sizeof(int));
    r->sum_logprob = cands[best].score;
    r->avg_logprob = cands[best].score / (float)(r->n_tokens + 1);
    r->temperature = o->temperature;
    char *text = asr_tokenizer_decode(m->tokenizer, r->tokens, r->n_tokens, t->eot);
    if (!text) {
        s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    /* compression ratio of the stripped text, like DecodingResult */
    char *b = text, *e = text + strlen(text);
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
    *e = '\0';
    r->compression_ratio = asr_compression_ratio(b);
    free(text);
    s = ASR_OK;
done:
    free(init);
    free(scratch);
    free(logprobs);
    free(next_tokens);
    for (int i = 0; i < ASR_MAX_BATCH; i++) free(seqs[i].tokens);
    for (int i = 0; i < (int)(sizeof cands / sizeof *cands); i++) free(cands[i].tokens);
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
