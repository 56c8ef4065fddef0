/* test_rt_deltas.c — unit test of the realtime turn's append-only deltas (src/server/rt_deltas.c):
 * stable words across two partials, never the last word, the final text flushing the rest,
 * a contradicting partial sending nothing, a contradicting final stopping the deltas. */
#include "check.h"

/* Server code is not part of libasr.a: compiled into this test directly. */
#include "server/rt_deltas.c"

static int delta_is(char *got, const char *want)
{
    int ok = got ? strcmp(got, want) == 0 : want == NULL;
    if (!ok) printf("     got %s%s%s, want %s\n", got ? "'" : "", got ? got : "NULL", got ? "'" : "", want ? want : "NULL");
    free(got);
    return ok;
}

int main(void)
{
    char *n = rt_normalise("  And so,\tmy  fellow\n Americans  ");
    CHECK(n && strcmp(n, "And so, my fellow Americans") == 0, "normalised: '%s'", n);
    free(n);

    rt_deltas d = {0};
    CHECK(delta_is(rt_deltas_partial(&d, " And so my"), NULL), "the first partial sends nothing (no second opinion yet)");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans."), "And so my"),
          "two partials agree on 'And so my'; 'my' was the older one's last word, still stable: the newer has more");
    CHECK(strcmp(d.sent, "And so my") == 0, "what was sent: '%s'", d.sent);
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, " And so my"), NULL), "first partial");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow"), "And so my"), "the agreed words up to the newer one's last word");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans, ask"), " fellow"),
          "the next delta starts with its space, so the deltas concatenate");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans. Ask not"), NULL),
          "'Americans,' vs 'Americans.': not stable, nothing sent");
    CHECK(delta_is(rt_deltas_partial(&d, " And so, my fellow Americans"), NULL),
          "a partial contradicting the sent words sends nothing");
    CHECK(!d.diverged, "a partial never marks the turn diverged");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow"), NULL), "a final prefix of what was sent: nothing new");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow Americans, ask not"), " Americans, ask not"),
          "the final segments so far: all their words are stable");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow Americans, ask not what your country can do for you."),
                   " what your country can do for you."), "the rest at the end");
    CHECK(strcmp(d.sent, "And so my fellow Americans, ask not what your country can do for you.") == 0,
          "the deltas add up to the final text: '%s'", d.sent);
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, "Hello there world"), NULL), "first");
    CHECK(delta_is(rt_deltas_partial(&d, "Hello there world again"), "Hello there world"), "stable three words");
    CHECK(delta_is(rt_deltas_final(&d, "Hello, there world again"), NULL), "a final contradicting the sent words: nothing");
    CHECK(d.diverged, "and the turn is marked diverged");
    CHECK(delta_is(rt_deltas_final(&d, "Hello, there world again and more"), NULL), "no more deltas once diverged");
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, "one"), NULL), "a single word is never stable");
    CHECK(delta_is(rt_deltas_partial(&d, "one"), NULL), "not even twice");
    CHECK(delta_is(rt_deltas_partial(&d, "onerous two"), NULL), "'one' is not a word prefix of 'onerous'");
    CHECK(delta_is(rt_deltas_partial(&d, ""), NULL), "an empty hypothesis");
    CHECK(delta_is(rt_deltas_final(&d, ""), NULL), "an empty final");
    CHECK(!d.diverged && d.sent_len == 0, "nothing sent, nothing contradicted");
    CHECK(delta_is(rt_deltas_final(&d, " Only the final."), "Only the final."), "a turn without partials: the final whole");
    rt_deltas_reset(&d);
    return check_failures ? 1 : 0;
}
