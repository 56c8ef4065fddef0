/* decoding_batch.c — greedy decoding of several windows at once: every window's sequence advances in one
 * decoder pass per token (weights read once per step for all), each with its own cache and encoder output. */
#include "decoding.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

/* One greedy step of every active window, a task each on the state's pool:
 * the windows' filters and picks are independent (own sequence and logits
 * row, a thread's own scratch), and done one after another they would keep
 * the other threads idle between decoder passes. */
typedef struct step_job {
    const asr_model *m;
    const asr_decode_options *o;
    asr_sequence *seqs;
    const int *slot;
    const float *logits; /* (n_active, n_vocab) */
    float *scratch;      /* the compute's per-thread scratch */
    size_t scratch_floats;
    int n_init, step;
    int *tok;
} step_job;

static void step_task(void *ctx, int a, int thread)
{
    const step_job *j = ctx;
    const int V = j->m->hp.n_vocab;
    asr_sequence *q = &j->seqs[j->slot[a]];
    j->tok[a] = asr_greedy_step(j->m, j->o, q, j->n_init, j->step, (float *)j->logits + (size_t)a * V,
                                j->scratch + (size_t)thread * j->scratch_floats);
}

asr_status asr_decode_batch_greedy(asr_state *st, const asr_decode_options *o, int n, asr_decode_result *r,
                                   asr_error *err)
{
    const asr_model *m = st->model;
    const int V = m->hp.n_vocab, C = m->hp.n_text_ctx, eot = m->tok.eot;
    asr_batch *b = st->batch;
    if (!b || n < 1 || n > b->n_windows || o->temperature != 0.0f)
        return asr_fail(err, ASR_ERR_INTERNAL, "batched greedy decoding of %d windows", n);
    asr_sequence seqs[ASR_MAX_BATCH] = {{0}};
    int slot[ASR_MAX_BATCH], next[ASR_MAX_BATCH];
    int *init = malloc((size_t)(C / 2 + 4) * sizeof(int));
    int *rows = malloc((size_t)n * (size_t)(C / 2 + 4) * sizeof(int));
    float *scratch = malloc((size_t)V * sizeof(float));
    asr_status s = init && rows && scratch ? ASR_OK : asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; s == ASR_OK && i < n; i++)
        if (!(seqs[i].tokens = malloc((size_t)(C + 1) * sizeof(int))))
            s = asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    int sot_index = 0, n_init = 0;
    if (s == ASR_OK) {
        n_init = asr_initial_tokens(m, o, init, &sot_index);
        for (int i = 0; i < n; i++) {
            slot[i] = i;
            memcpy(seqs[i].tokens, init, (size_t)n_init * sizeof(int));
            seqs[i].len = n_init;
            seqs[i].sum_logprob = 0.0f;
        }
        /* up to and including sot: the no-speech probability of each window */
        int k = sot_index + 1;
        for (int i = 0; i < n; i++) memcpy(rows + (size_t)i * k, init, (size_t)k * sizeof(int));
        s = asr_decode_batch(st, rows, slot, n, k, 0, sot_index, err);
        for (int i = 0; s == ASR_OK && i < n; i++) {
            memcpy(scratch, b->logits + (size_t)i * V, (size_t)V * sizeof(float));
            asr_softmax(scratch, V);
            r[i].no_speech_prob = m->tok.no_speech >= 0 ? scratch[m->tok.no_speech] : 0.0f;
        }
        if (s == ASR_OK && n_init > k) { /* the rest of the sot sequence gives the first logits */
            int rest = n_init - k;
            for (int i = 0; i < n; i++) memcpy(rows + (size_t)i * rest, init + k, (size_t)rest * sizeof(int));
            s = asr_decode_batch(st, rows, slot, n, rest, k, rest - 1, err);
        }
    }
    /* slot[0 .. n_active) are the windows still decoding, in the order of b->logits' rows */
    int n_active = n;
    for (int step = 0; s == ASR_OK && step < C / 2; step++) {
        if (o->should_abort && o->should_abort(o->user_data)) {
            s = asr_fail(err, ASR_ERR_CANCELLED, "decoding cancelled");
            break;
        }
        int kept = 0, tok[ASR_MAX_BATCH];
        if (st->compute.scratch_floats >= (size_t)V) {
            step_job j = {m, o, seqs, slot, b->logits, st->compute.scratch, st->compute.scratch_floats, n_init, step,
                          tok};
            asr_pool_run(st->compute.pool, step_task, &j, n_active);
        } else {
            for (int a = 0; a < n_active; a++)
                tok[a] = asr_greedy_step(m, o, &seqs[slot[a]], n_init, step, b->logits + (size_t)a * V, scratch);
        }
        for (int a = 0; a < n_active; a++) {
            if (tok[a] == eot) continue; /* this window is done: it leaves the batch */
            next[kept] = tok[a];
            slot[kept++] = slot[a];
        }
        n_active = kept;
        if (n_active == 0 || seqs[slot[0]].len >= C) break; /* all done, or no room for another position */
        s = asr_decode_batch(st, next, slot, n_active, 1, seqs[slot[0]].len - 1, 0, err);
    }
    for (int i = 0; s == ASR_OK && i < n; i++) {
        const asr_sequence *q = &seqs[i];
        int len = q->len - n_init, end = 0;
        while (end < len && q->tokens[n_init + end] != eot) end++;
        r[i].n_tokens = end;
        memcpy(r[i].tokens, q->tokens + n_init, (size_t)end * sizeof(int));
        r[i].sum_logprob = q->sum_logprob;
        r[i].temperature = 0.0f;
        s = asr_decode_result_stats(m, &r[i], err);
    }
    for (int i = 0; i < n; i++) free(seqs[i].tokens);
    free(init);
    free(rows);
    free(scratch);
    return s;
}
