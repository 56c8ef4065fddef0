/* rt_deltas.h — append-only transcript deltas from successive hypotheses of one growing realtime turn. */
#ifndef ASR_SERVER_RT_DELTAS_H
#define ASR_SERVER_RT_DELTAS_H

#include <stddef.h>

/* What one turn has sent so far. Texts are compared as words (runs of
 * non-space bytes); two words are the same when their letters, digits and
 * apostrophes are, ASCII case folded ("Americans," = "americans"): Whisper
 * moves punctuation and case as it hears more, rarely the words. A delta
 * is the words it adds, each after one space (none before the first). */
/* Successive partial decodes that must agree on a word before it is sent.
 * Two is not enough: Whisper flips between readings of an ambiguous word as
 * the audio grows ("And so my" / "And so am I" on jfk.wav, tiny.en, with
 * 2.2-2.3 s and 2.8-3.3 s of audio heard as "am I", the rest as "my"). */
#define RT_DELTAS_AGREE 3

typedef struct rt_deltas {
    char *sent;       /* the deltas' concatenation */
    size_t sent_len;
    char *prev[RT_DELTAS_AGREE - 1]; /* the previous partial hypotheses, newest first, normalised; NULL = none */
    int diverged;     /* the final text contradicted what was sent: no more deltas */
} rt_deltas;

/* Forget the turn (frees; the struct may be zeroed memory to begin with). */
void rt_deltas_reset(rt_deltas *d);

/* A partial hypothesis of the whole turn so far (the audio is cut mid-speech).
 * Its words that the RT_DELTAS_AGREE - 1 previous partials also had, in
 * the same places, are stable; the last word never is. Returns the delta to send now (malloc'd,
 * the caller frees) or NULL: nothing newly stable, the hypothesis contradicts
 * what was sent (the final text decides), or out of memory. */
char *rt_deltas_partial(rt_deltas *d, const char *text);

/* The final decode's text so far (every finished segment): all its words
 * are stable. Returns the delta to send or NULL as above; a word that
 * contradicts one sent sets diverged (the completed transcript, always the
 * final text, then differs from the deltas in words, not only punctuation). */
char *rt_deltas_final(rt_deltas *d, const char *text);

/* text with runs of white space made single spaces, trimmed (malloc'd, NULL on OOM). */
char *rt_normalise(const char *text);

#endif /* ASR_SERVER_RT_DELTAS_H */
