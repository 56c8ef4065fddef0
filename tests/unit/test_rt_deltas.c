/* test_rt_deltas.c — unit test of the realtime turn's append-only deltas (src/server/rt_deltas.c):
 * words three successive partials agree on (punctuation and case aside), never the last; the
 * final text flushing the rest; a contradicting partial sending nothing; a contradicting final
 * stopping them; the "my" / "am I" flip tiny.en shows on jfk.wav. */
#include "check.h"

/* Server code is not part of libasr.a: compiled into this test directly. */
#include "server/rt_deltas.c"

static int delta_is(char *got, const char *want)
{
    int ok = got ? want && strcmp(got, want) == 0 : want == NULL;
    if (!ok) printf("     got %s%s%s, want %s\n", got ? "'" : "", got ? got : "NULL", got ? "'" : "", want ? want : "NULL");
    free(got);
    return ok;
}

int main(void)
{
    char *n = rt_normalise("  And so,\tmy  fellow\n Americans  ");
    CHECK(n && strcmp(n, "And so, my fellow Americans") == 0, "normalised: '%s'", n);
    free(n);
    CHECK(RT_DELTAS_AGREE == 3, "three partials must agree");

    rt_deltas d = {0};
    CHECK(delta_is(rt_deltas_partial(&d, " And so my"), NULL), "the first partial sends nothing");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow"), NULL), "nor the second");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans"), "And so my"),
          "the words three partials agree on, short of the newest one's last word");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans, ask"), " fellow"),
          "the next delta starts with its space, so the deltas concatenate");
    CHECK(delta_is(rt_deltas_partial(&d, " And so, my fellow Americans. Ask not"), " Americans."),
          "'so,' is 'so', 'Americans.' is 'Americans,' (punctuation and case do not break agreement; the newest one's form is sent); 'ask' only twice yet");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my yellow Americans ask not what"), NULL),
          "a partial with another word where one was sent sends nothing");
    CHECK(!d.diverged, "a partial never marks the turn diverged");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans ask not what"), NULL),
          "agreeing again, but not with the one before: nothing yet");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow"), NULL), "a final text shorter than what was sent: nothing new");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow Americans ask not"), " ask not"),
          "the final segments so far: all their words are stable");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow Americans ask not what your country can do for you."),
                   " what your country can do for you."), "the rest at the end");
    CHECK(strcmp(d.sent, "And so my fellow Americans. ask not what your country can do for you.") == 0,
          "the deltas add up to the final words (punctuation as first sent): '%s'", d.sent);
    CHECK(!d.diverged, "not diverged");
    rt_deltas_reset(&d);

    /* tiny.en on jfk.wav cut at 2.2 s and 3.2 s hears "am I", at 4.2 s "my" (as the whole clip) */
    CHECK(delta_is(rt_deltas_partial(&d, " And so am I fellow America."), NULL), "jfk 2.2 s");
    CHECK(delta_is(rt_deltas_partial(&d, " And so am I fellow Americans."), NULL), "jfk 3.2 s: two agree on 'am I', not enough");
    CHECK(delta_is(rt_deltas_partial(&d, " And so my fellow Americans asked not"), "And so"), "jfk 4.2 s: only 'And so' is agreed");
    CHECK(delta_is(rt_deltas_final(&d, " And so my fellow Americans ask not what your country can do for you"),
                   " my fellow Americans ask not what your country can do for you"), "the final goes on from it");
    CHECK(!d.diverged, "no contradiction");
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, "Hello there world"), NULL), "first");
    CHECK(delta_is(rt_deltas_partial(&d, "Hello there world"), NULL), "second");
    CHECK(delta_is(rt_deltas_partial(&d, "Hello there world again"), "Hello there world"), "stable three words");
    CHECK(delta_is(rt_deltas_final(&d, "Hello, where world again"), NULL), "a final with another word: nothing");
    CHECK(d.diverged, "and the turn is marked diverged");
    CHECK(delta_is(rt_deltas_final(&d, "Hello, where world again and more"), NULL), "no more deltas once diverged");
    CHECK(delta_is(rt_deltas_partial(&d, "Hello, where world again and more"), NULL), "nor from partials");
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, "one"), NULL), "a single word is never stable");
    CHECK(delta_is(rt_deltas_partial(&d, "one"), NULL), "not twice");
    CHECK(delta_is(rt_deltas_partial(&d, "one"), NULL), "not three times");
    CHECK(delta_is(rt_deltas_partial(&d, "onerous two"), NULL), "'one' is not 'onerous'");
    CHECK(delta_is(rt_deltas_partial(&d, ""), NULL), "an empty hypothesis");
    CHECK(delta_is(rt_deltas_final(&d, ""), NULL), "an empty final");
    CHECK(!d.diverged && d.sent_len == 0, "nothing sent, nothing contradicted");
    CHECK(delta_is(rt_deltas_final(&d, " Only the final."), "Only the final."), "a turn without partials: the final whole");
    rt_deltas_reset(&d);

    CHECK(delta_is(rt_deltas_partial(&d, "Grüße aus Köln heute"), NULL), "UTF-8 words");
    CHECK(delta_is(rt_deltas_partial(&d, "Grüße aus Köln heute"), NULL), "twice");
    CHECK(delta_is(rt_deltas_partial(&d, "Grüße aus Köln, heute abend"), "Grüße aus Köln, heute"), "UTF-8 words agree");
    CHECK(delta_is(rt_deltas_final(&d, "grüße aus köln heute abend."), " abend."), "ASCII case folds ('Grüße' = 'grüße')");
    rt_deltas_reset(&d);
    CHECK(delta_is(rt_deltas_partial(&d, "Ärger heute morgen"), NULL), "first");
    CHECK(delta_is(rt_deltas_partial(&d, "Ärger heute morgen"), NULL), "second");
    CHECK(delta_is(rt_deltas_partial(&d, "Ärger heute morgen früh"), "Ärger heute morgen"), "stable");
    CHECK(delta_is(rt_deltas_final(&d, "ärger heute morgen früh"), NULL) && d.diverged,
          "other bytes compare as they are: 'Ärger' is not 'ärger'");
    rt_deltas_reset(&d);
    return check_failures ? 1 : 0;
}
