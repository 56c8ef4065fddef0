/* rt_deltas.c — append-only transcript deltas from successive hypotheses of one growing realtime turn. */
#include "server/rt_deltas.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *rt_normalise(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_space(text[i])) {
            if (k && out[k - 1] != ' ') out[k++] = ' ';
        } else out[k++] = text[i];
    }
    if (k && out[k - 1] == ' ') k--;
    out[k] = 0;
    return out;
}

void rt_deltas_reset(rt_deltas *d)
{
    free(d->sent);
    free(d->prev);
    memset(d, 0, sizeof *d);
}

/* Is a (normalised) a word prefix of b: b starts with a, at a word boundary? */
static int word_prefix(const char *a, size_t na, const char *b)
{
    return strncmp(a, b, na) == 0 && (b[na] == ' ' || b[na] == 0 || na == 0);
}

/* Send cand[sent_len .. stable_len) if cand extends what was sent; cand and
 * stable_len are normalised and at a word boundary. Returns the delta, NULL
 * if there is none; *contradicts says whether cand disagrees with sent. */
static char *advance(rt_deltas *d, const char *cand, size_t stable_len, int *contradicts)
{
    *contradicts = 0;
    if (!word_prefix(d->sent ? d->sent : "", d->sent_len, cand)) {
        /* cand may be shorter than what was sent and still agree */
        *contradicts = !(d->sent && word_prefix(cand, strlen(cand), d->sent));
        return NULL;
    }
    if (stable_len <= d->sent_len) return NULL;
    size_t n = stable_len - d->sent_len;
    char *delta = malloc(n + 1);
    char *grown = realloc(d->sent, stable_len + 1);
    if (!delta || !grown) {
        free(delta);
        if (grown) d->sent = grown;
        return NULL;
    }
    memcpy(delta, cand + d->sent_len, n);
    delta[n] = 0;
    d->sent = grown;
    memcpy(d->sent, cand, stable_len);
    d->sent[stable_len] = 0;
    d->sent_len = stable_len;
    return delta;
}

char *rt_deltas_partial(rt_deltas *d, const char *text)
{
    if (d->diverged) return NULL;
    char *cand = rt_normalise(text);
    if (!cand) return NULL;
    /* the longest common word prefix of the previous hypothesis and this one,
     * short of this one's last word */
    size_t stable = 0, last_word_start = 0;
    for (size_t i = 0; cand[i]; i++)
        if (cand[i] == ' ') last_word_start = i;
    if (d->prev) {
        const char *p = d->prev;
        size_t i = 0;
        while (cand[i] && cand[i] == p[i]) {
            i++;
            if ((cand[i] == ' ' || cand[i] == 0) && (p[i] == ' ' || p[i] == 0)) stable = i;
        }
    }
    if (stable > last_word_start) stable = last_word_start;
    int contradicts;
    char *delta = advance(d, cand, stable, &contradicts);
    free(d->prev);
    d->prev = cand;
    return delta;
}

char *rt_deltas_final(rt_deltas *d, const char *text)
{
    if (d->diverged) return NULL;
    char *cand = rt_normalise(text);
    if (!cand) return NULL;
    int contradicts;
    char *delta = advance(d, cand, strlen(cand), &contradicts);
    if (contradicts) d->diverged = 1;
    free(cand);
    return delta;
}
