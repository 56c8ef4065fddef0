/* text.c — text helpers shared by the formats, word timing, the server and the CLI: Python's str.strip(), UTF-8 validity. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Byte length of the whitespace character at s[0..n) by Python's
 * str.isspace(), or 0. */
static size_t space_len(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    if ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20)) return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n >= 3) {
        unsigned cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
             cp == 0x202F || cp == 0x205F || cp == 0x3000))
            return 3;
    }
    return 0;
}

void asr_strip_bounds(const char *text, size_t n, size_t *start, size_t *end)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t a = 0, b = n;
    for (size_t len; a < n && (len = space_len(s + a, n - a)) > 0;) a += len;
    /* From the right, step back over whole characters (1 to 3 bytes). */
    while (b > a) {
        size_t len = 0;
        for (size_t k = 1; k <= 3 && k <= b - a; k++) {
            if (space_len(s + b - k, k) == k) {
                len = k;
                break;
            }
        }
        if (!len) break;
        b -= len;
    }
    *start = a;
    *end = b;
}

char *asr_text_strip(const char *text)
{
    if (!text) text = "";
    size_t a, b;
    asr_strip_bounds(text, strlen(text), &a, &b);
    char *out = malloc(b - a + 1);
    if (!out) return NULL;
    memcpy(out, text + a, b - a);
    out[b - a] = '\0';
    return out;
}

int asr_utf8_valid(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], cp, min;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1Fu, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0Fu, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07u, min = 0x10000;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}
