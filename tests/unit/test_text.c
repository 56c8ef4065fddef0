/* test_text.c — asr_text_strip against Python's str.strip() and asr_utf8_valid against Python's strict UTF-8 decoder.
 *
 * The expectations are what Python 3.11 gives: s.strip() for the strip cases,
 * and whether b.decode("utf-8") raises for the validity cases. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void check_strip(void)
{
    static const struct { const char *in, *want; } cases[] = {
        {"", ""},
        {"   ", ""},
        {" And so my fellow Americans.", "And so my fellow Americans."},
        {"\t\n\v\f\r x \r\n", "x"},
        {"\x1c\x1d\x1e\x1f x \x1f", "x"},                              /* str.isspace() of the separators */
        {"\xc2\xa0x\xc2\xa0", "x"},                                   /* U+00A0 no-break space */
        {"\xc2\x85 x", "x"},                                          /* U+0085 next line */
        {"\xe3\x80\x80\xe6\x97\xa5\xe6\x9c\xac\xe3\x80\x80", "\xe6\x97\xa5\xe6\x9c\xac"}, /* U+3000 ideographic */
        {"\xe2\x80\x83x\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f\xe1\x9a\x80", "x"}, /* em space .. U+1680 */
        {"\xe2\x80\x8bx\xe2\x80\x8b", "\xe2\x80\x8bx\xe2\x80\x8b"},  /* U+200B zero-width space is not whitespace */
        {" a  b ", "a  b"},
        {"\x01 x \x01", "\x01 x \x01"},                               /* control characters stay */
        {" \xe6\x97\xa5", "\xe6\x97\xa5"},                            /* a 3-byte letter is not taken for a space */
        {"x \xe3\x80", "x \xe3\x80"},                                  /* a cut character at the end stays */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = asr_text_strip(cases[i].in);
        CHECK(got && strcmp(got, cases[i].want) == 0, "strip case %zu: \"%s\" (want \"%s\")", i, got ? got : "(null)",
              cases[i].want);
        free(got);
    }
    char *empty = asr_text_strip(NULL);
    CHECK(empty && !*empty, "strip(NULL) is \"\"");
    free(empty);
    size_t a, b;
    asr_strip_bounds("  ab  cd", 5, &a, &b); /* only the first 5 bytes: "  ab " */
    CHECK(a == 2 && b == 4, "strip bounds within a length: [%zu, %zu)", a, b);
}

static void check_utf8(void)
{
    static const struct { const char *s; size_t n; int valid; } cases[] = {
        {"", 0, 1},
        {"plain ascii", 11, 1},
        {"\xc3\xbc" "ber", 5, 1},
        {"\xe6\x97\xa5", 3, 1},
        {"\xf0\x9f\x98\x80", 4, 1},
        {"\xf4\x8f\xbf\xbf", 4, 1},  /* U+10FFFF */
        {"a\0b", 3, 1},              /* NUL is valid UTF-8 */
        {"\xff", 1, 0},
        {"\xc3", 1, 0},              /* cut */
        {"\xe6\x97", 2, 0},
        {"\xc0\xaf", 2, 0},          /* overlong '/' */
        {"\xe0\x80\xaf", 3, 0},      /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3, 0},      /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, 0},  /* past U+10FFFF */
        {"\xf8\x88\x80\x80\x80", 5, 0},
        {"\x80", 1, 0},              /* lone continuation byte */
        {"\xc3(", 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(asr_utf8_valid(cases[i].s, cases[i].n) == cases[i].valid, "utf8 case %zu: %s", i,
              cases[i].valid ? "valid" : "invalid");
}

int main(void)
{
    check_strip();
    check_utf8();
    return CHECK_DONE();
}
