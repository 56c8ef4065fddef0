/* rt_deltas.h — append-only transcript deltas from successive hypotheses of one growing realtime turn. */
#ifndef ASR_SERVER_RT_DELTAS_H
#define ASR_SERVER_RT_DELTAS_H

#include <stddef.h>

/* What one turn has sent so far. Texts are compared as words: runs of
 * non-space bytes, joined by single spaces ("normalised"); a word is the
 * same only if its bytes are (punctuation and case included). */
typedef struct rt_deltas {
    char *sent;       /* the normalised words sent so far (the deltas' concatenation) */
    size_t sent_len;
    char *prev;       /* the previous partial hypothesis, normalised; NULL = none */
    int diverged;     /* the final text contradicted what was sent: no more deltas */
} rt_deltas;

/* Forget the turn (frees; the struct may be zeroed memory to begin with). */
void rt_deltas_reset(rt_deltas *d);

/* A partial hypothesis of the whole turn so far (the audio is cut mid-speech).
 * Its words that the previous partial also had, in the same places, are
 * stable; the last word never is. Returns the delta to send now (malloc'd,
 * the caller frees) or NULL: nothing newly stable, the hypothesis contradicts
 * what was sent (the final text decides), or out of memory. */
char *rt_deltas_partial(rt_deltas *d, const char *text);

/* The final decode's text so far (every finished segment): all its words
 * are stable. Returns the delta to send or NULL as above; a contradiction
 * sets diverged. */
char *rt_deltas_final(rt_deltas *d, const char *text);

/* text with runs of white space made single spaces, trimmed (malloc'd, NULL on OOM). */
char *rt_normalise(const char *text);

#endif /* ASR_SERVER_RT_DELTAS_H */
