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
    for (int i = 0; i < RT_DELTAS_AGREE - 1; i++) free(d->prev[i]);
    memset(d, 0, sizeof *d);
}

typedef struct word {
    const char *p;
    size_t n;
} word;

/* The words of a normalised text (malloc'd array, *count of them); NULL on OOM. */
static word *split(const char *text, size_t *count)
{
    size_t n = *text ? 1 : 0;
    for (const char *c = text; *c; c++) n += *c == ' ';
    word *w = malloc((n ? n : 1) * sizeof *w);
    if (!w) return NULL;
    size_t k = 0;
    for (const char *c = text; *c;) {
        const char *e = strchr(c, ' ');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        w[k++] = (word){c, len};
        c += len + (e != NULL);
    }
    *count = k;
    return w;
}

/* Letters and digits (ASCII case folded, other UTF-8 bytes as they are) and
 * apostrophes: "Americans," and "americans." are one word. */
static int kept(unsigned char c) { return c >= 0x80 || c == '\'' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }
static unsigned char folded(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c; }

static int same_word(word a, word b)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a.n && !kept((unsigned char)a.p[i])) i++;
        while (j < b.n && !kept((unsigned char)b.p[j])) j++;
        if (i == a.n || j == b.n) return i == a.n && j == b.n;
        if (folded((unsigned char)a.p[i++]) != folded((unsigned char)b.p[j++])) return 0;
    }
}

/* Send words [sent .. stable) of cand if cand agrees with every word sent so
 * far. Returns the delta, or NULL; *contradicts says whether cand disagrees. */
static char *advance(rt_deltas *d, const word *cw, size_t nc, size_t stable, int *contradicts)
{
    *contradicts = 0;
    size_t ns = 0;
    word *sw = split(d->sent ? d->sent : "", &ns);
    if (!sw) return NULL;
    for (size_t i = 0; i < ns && i < nc; i++)
        if (!same_word(sw[i], cw[i])) {
            *contradicts = 1;
            free(sw);
            return NULL;
        }
    free(sw);
    if (stable <= ns) return NULL;
    size_t len = 0;
    for (size_t i = ns; i < stable; i++) len += cw[i].n + 1;
    char *delta = malloc(len + 1);
    char *grown = realloc(d->sent, d->sent_len + len + 1);
    if (!delta || !grown) {
        free(delta);
        if (grown) d->sent = grown;
        return NULL;
    }
    d->sent = grown;
    size_t k = 0;
    for (size_t i = ns; i < stable; i++) {
        if (i) delta[k++] = ' ';
        memcpy(delta + k, cw[i].p, cw[i].n);
        k += cw[i].n;
    }
    delta[k] = 0;
    memcpy(d->sent + d->sent_len, delta, k + 1);
    d->sent_len += k;
    return delta;
}

char *rt_deltas_partial(rt_deltas *d, const char *text)
{
    if (d->diverged) return NULL;
    char *cand = rt_normalise(text);
    size_t nc = 0;
    word *cw = cand ? split(cand, &nc) : NULL;
    if (!cw) {
        free(cand);
        return NULL;
    }
    /* the words this hypothesis and the previous ones agree on, short of this one's last */
    size_t stable = nc ? nc - 1 : 0;
    for (int k = 0; k < RT_DELTAS_AGREE - 1; k++) {
        size_t np = 0, i = 0;
        word *pw = d->prev[k] ? split(d->prev[k], &np) : NULL;
        while (pw && i < np && i < stable && same_word(pw[i], cw[i])) i++;
        free(pw);
        stable = i; /* 0 while there are fewer previous ones (or out of memory) */
    }
    int contradicts;
    char *delta = advance(d, cw, nc, stable, &contradicts);
    free(d->prev[RT_DELTAS_AGREE - 2]);
    memmove(d->prev + 1, d->prev, (RT_DELTAS_AGREE - 2) * sizeof d->prev[0]);
    d->prev[0] = cand;
    free(cw);
    return delta;
}

char *rt_deltas_final(rt_deltas *d, const char *text)
{
    if (d->diverged) return NULL;
    char *cand = rt_normalise(text);
    size_t nc = 0;
    word *cw = cand ? split(cand, &nc) : NULL;
    char *delta = NULL;
    if (cw) {
        int contradicts;
        delta = advance(d, cw, nc, nc, &contradicts);
        if (contradicts) d->diverged = 1;
    }
    free(cw);
    free(cand);
    return delta;
}
