/* sha1.c — unit test of the catalogue's SHA-1 (FIPS 180-4 vectors) and of
 * the git blob ids the hub publishes for its small files. */
#include "check.h"

/* The catalogue's objects are not part of libasr.a, so the implementation is
 * compiled into this test directly. */
#include "catalog/sha1.c"

static void hex_of(const void *data, size_t n, char hex[ASR_SHA1_HEX_SIZE])
{
    asr_sha1 c;
    asr_sha1_init(&c);
    asr_sha1_update(&c, data, n);
    asr_sha1_final_hex(&c, hex);
}

int main(void)
{
    char hex[ASR_SHA1_HEX_SIZE];
    hex_of("", 0, hex);
    CHECK(strcmp(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0, "empty: %s", hex);
    hex_of("abc", 3, hex);
    CHECK(strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0, "abc: %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    CHECK(strcmp(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") == 0, "448 bits: %s", hex);
    /* A million 'a's, fed in uneven pieces across block boundaries. */
    asr_sha1 c;
    asr_sha1_init(&c);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        asr_sha1_update(&c, a, n);
        left -= n;
    }
    asr_sha1_final_hex(&c, hex);
    CHECK(strcmp(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0, "million a: %s", hex);
    /* `printf 'hello\n' | git hash-object --stdin` */
    hex_of("blob 6\0hello\n", 13, hex);
    CHECK(strcmp(hex, "ce013625030ba8dba906f756967f9e9ca394464a") == 0, "git blob: %s", hex);
    return CHECK_DONE();
}
