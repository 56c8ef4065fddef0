/* sha256.c — unit test of the model catalogue's SHA-256 against FIPS 180-4 / NIST vectors,
 * including inputs fed in odd-sized pieces across block boundaries. */
#include "check.h"

/* The catalogue's objects are not part of libasr.a, so the implementation is
 * compiled into this test directly. */
#include "catalog/sha256.c"

#include <stdlib.h>
#include <unistd.h>

static void hex_of(const void *data, size_t len, size_t piece, char hex[ASR_SHA256_HEX_SIZE])
{
    asr_sha256 ctx;
    asr_sha256_init(&ctx);
    const unsigned char *p = data;
    for (size_t off = 0; off < len; off += piece)
        asr_sha256_update(&ctx, p + off, len - off < piece ? len - off : piece);
    uint8_t digest[ASR_SHA256_SIZE];
    asr_sha256_final(&ctx, digest);
    asr_sha256_hex(digest, hex);
}

int main(void)
{
    char hex[ASR_SHA256_HEX_SIZE];
    struct { const char *msg; const char *want; } vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t len = strlen(vectors[i].msg);
        size_t pieces[] = {1, 3, 63, 64, 65, len ? len : 1};
        for (size_t j = 0; j < sizeof pieces / sizeof pieces[0]; j++) {
            hex_of(vectors[i].msg, len, pieces[j], hex);
            CHECK(strcmp(hex, vectors[i].want) == 0, "vector %zu in pieces of %zu: %s", i,
                  pieces[j], hex);
        }
    }

    /* One million 'a' (FIPS 180-2 appendix B.3), crossing many blocks. */
    size_t n = 1000000;
    char *million = malloc(n);
    CHECK(million != NULL, "allocate 1e6 bytes");
    if (!million)
        return 1;
    memset(million, 'a', n);
    hex_of(million, n, 4093, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
          "one million a: %s", hex);

    /* Every length 0..130 around the 55/56/64 padding edges agrees between
     * one-shot and byte-at-a-time feeding. */
    int all_agree = 1;
    for (size_t len = 0; len <= 130; len++) {
        char one[ASR_SHA256_HEX_SIZE];
        hex_of(million, len, len ? len : 1, one);
        hex_of(million, len, 1, hex);
        all_agree &= strcmp(one, hex) == 0;
    }
    CHECK(all_agree, "lengths 0..130 agree across feeding patterns");

    /* The file helper, and its error path. */
    char path[] = "/tmp/asr-sha256-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd >= 0) {
        CHECK(write(fd, million, n) == (ssize_t)n, "write temp file");
        close(fd);
        CHECK(asr_sha256_file(path, hex) == 0 &&
                  strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
              "file hash: %s", hex);
        unlink(path);
        CHECK(asr_sha256_file(path, hex) == -1, "missing file fails");
    }
    free(million);
    return CHECK_DONE();
}
