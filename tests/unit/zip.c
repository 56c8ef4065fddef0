/* zip.c — unit test of the model catalogue's ZIP reader on archives built here with zlib:
 * stored and deflated entries, and corrupt, truncated, lying and fuzzed
 * archives that must fail cleanly. */
#include "check.h"

/* The catalogue's objects are not part of libasr.a, so the implementation is
 * compiled into this test directly. */
#include "catalog/sha256.c"
#include "catalog/zip.c"

#include <unistd.h>

typedef struct test_entry {
    const char *name;
    const unsigned char *data;
    size_t size;
    int method; /* 0 stored, 8 deflate */
} test_entry;

typedef struct buffer {
    unsigned char *p;
    size_t len, cap;
} buffer;

static void put(buffer *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}
static void put16(buffer *b, unsigned v) { unsigned char x[2] = {v & 255, v >> 8 & 255}; put(b, x, 2); }
static void put32(buffer *b, uint32_t v)
{
    unsigned char x[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    put(b, x, 4);
}

static size_t raw_deflate(const unsigned char *in, size_t len, unsigned char **out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&zs, (uLong)len);
    *out = malloc(cap);
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = *out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    return n;
}

/* A complete archive of `n` entries, as zip(1) would lay it out. */
static buffer build_zip(const test_entry *entries, int n)
{
    buffer b = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        const test_entry *e = &entries[i];
        unsigned char *packed = NULL;
        size_t packed_len = e->size;
        if (e->method == 8)
            packed_len = raw_deflate(e->data, e->size, &packed);
        uint32_t crc = (uint32_t)crc32(0, e->data, (uInt)e->size);
        uint32_t offset = (uint32_t)b.len;
        size_t name_len = strlen(e->name);
        put32(&b, LOCAL_SIGNATURE); put16(&b, 20); put16(&b, 0); put16(&b, (unsigned)e->method);
        put32(&b, 0); put32(&b, crc); put32(&b, (uint32_t)packed_len); put32(&b, (uint32_t)e->size);
        put16(&b, (unsigned)name_len); put16(&b, 0);
        put(&b, e->name, name_len);
        put(&b, packed ? packed : e->data, packed_len);
        put32(&cd, CENTRAL_SIGNATURE); put16(&cd, 20); put16(&cd, 20); put16(&cd, 0);
        put16(&cd, (unsigned)e->method); put32(&cd, 0); put32(&cd, crc);
        put32(&cd, (uint32_t)packed_len); put32(&cd, (uint32_t)e->size);
        put16(&cd, (unsigned)name_len); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0);
        put32(&cd, 0); put32(&cd, offset);
        put(&cd, e->name, name_len);
        free(packed);
    }
    uint32_t cd_offset = (uint32_t)b.len;
    put(&b, cd.p, cd.len);
    put32(&b, EOCD_SIGNATURE); put16(&b, 0); put16(&b, 0); put16(&b, (unsigned)n);
    put16(&b, (unsigned)n); put32(&b, (uint32_t)cd.len); put32(&b, cd_offset); put16(&b, 0);
    free(cd.p);
    return b;
}

static char tmp_path[64];

static void write_file(const unsigned char *data, size_t len)
{
    FILE *f = fopen(tmp_path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Open tmp_path and extract every entry into a scratch file; returns the
 * first failure or ASR_OK. */
static asr_status open_and_extract_all(asr_error *err)
{
    asr_zip *zip;
    asr_status s = asr_zip_open(tmp_path, &zip, err);
    if (s != ASR_OK)
        return s;
    FILE *sink = tmpfile();
    for (int i = 0; s == ASR_OK && i < asr_zip_count(zip); i++)
        s = asr_zip_extract(zip, asr_zip_entry_at(zip, i), sink, NULL, NULL, NULL, err);
    fclose(sink);
    asr_zip_close(zip);
    return s;
}

static uint64_t last_progress;
static void note_progress(uint64_t done, uint64_t total, void *user_data)
{
    (void)total;
    (void)user_data;
    last_progress = done;
}

int main(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/asr-zip-test-%d.zip", (int)getpid());
    asr_error err;

    /* Real-ish contents: compressible text and incompressible pseudo-random bytes. */
    size_t big_len = 3 * 1000 * 1000 + 7;
    unsigned char *big = malloc(big_len);
    uint32_t lcg = 12345;
    for (size_t i = 0; i < big_len; i++) {
        lcg = lcg * 1103515245u + 12345u;
        big[i] = (unsigned char)(lcg >> 24);
    }
    char text[20000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "ask not what your country can do for you\n"[i % 41];
    test_entry entries[] = {
        {"pkg/__init__.py", (const unsigned char *)"", 0, 0},
        {"pkg/data/text.txt", (const unsigned char *)text, sizeof text, 8},
        {"pkg/data/random.bin", big, big_len, 8},
        {"pkg/data/stored.bin", big, 70000, 0},
    };
    buffer zip_bytes = build_zip(entries, 4);
    write_file(zip_bytes.p, zip_bytes.len);

    asr_zip *zip = NULL;
    CHECK(asr_zip_open(tmp_path, &zip, &err) == ASR_OK, "open valid archive: %s", err.message);
    if (!zip)
        return 1;
    CHECK(asr_zip_count(zip) == 4, "4 entries");
    CHECK(asr_zip_find(zip, "pkg/data/missing") == NULL, "find of a missing name is NULL");
    CHECK(asr_zip_entry_at(zip, 4) == NULL && asr_zip_entry_at(zip, -1) == NULL,
          "entry_at out of range is NULL");
    for (int i = 0; i < 4; i++) {
        const asr_zip_entry *e = asr_zip_find(zip, entries[i].name);
        CHECK(e && e->size == entries[i].size && e->method == entries[i].method, "entry %s listed",
              entries[i].name);
        if (!e)
            continue;
        FILE *out = tmpfile();
        asr_sha256 hash;
        asr_sha256_init(&hash);
        last_progress = 0;
        asr_status s = asr_zip_extract(zip, e, out, &hash, note_progress, NULL, &err);
        CHECK(s == ASR_OK, "extract %s: %s", e->name, err.message);
        CHECK(last_progress == entries[i].size, "progress reached %llu",
              (unsigned long long)last_progress);
        long len = ftell(out);
        unsigned char *back = malloc(entries[i].size + 1);
        rewind(out);
        size_t got = fread(back, 1, entries[i].size + 1, out);
        CHECK(len == (long)entries[i].size && got == entries[i].size &&
                  memcmp(back, entries[i].data, got) == 0,
              "%s round-trips byte for byte", e->name);
        uint8_t digest[ASR_SHA256_SIZE], want[ASR_SHA256_SIZE];
        asr_sha256_final(&hash, digest);
        asr_sha256 direct;
        asr_sha256_init(&direct);
        asr_sha256_update(&direct, entries[i].data, entries[i].size);
        asr_sha256_final(&direct, want);
        CHECK(memcmp(digest, want, sizeof want) == 0, "hash fed during extraction of %s", e->name);
        free(back);
        fclose(out);
    }
    asr_zip_close(zip);

    /* A wrong CRC in both headers: extraction must notice. */
    buffer bad = build_zip(entries, 4);
    uint32_t text_crc = (uint32_t)crc32(0, (const unsigned char *)text, sizeof text);
    for (size_t i = 0; i + 4 <= bad.len; i++)
        if (le32(bad.p + i) == text_crc)
            bad.p[i] ^= 1;
    write_file(bad.p, bad.len);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "CRC-32 mismatch"),
          "CRC mismatch detected: %s", err.message);
    free(bad.p);

    /* Declared size smaller than the data: refused, not overrun. */
    test_entry liar = {"liar.txt", (const unsigned char *)text, sizeof text, 8};
    bad = build_zip(&liar, 1);
    for (size_t i = 0; i + 4 <= bad.len; i++)
        if (le32(bad.p + i) == sizeof text)
            memcpy(bad.p + i, "\x64\0\0\0", 4); /* 100, in local and central headers */
    write_file(bad.p, bad.len);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "more than its declared"),
          "over-long inflate refused: %s", err.message);
    free(bad.p);

    /* Truncated in the middle: no end-of-central-directory record. */
    write_file(zip_bytes.p, zip_bytes.len / 2);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "no end of central directory"),
          "truncated archive refused: %s", err.message);

    /* Central directory offset pointing past the file. */
    bad = build_zip(entries, 2);
    bad.p[bad.len - 6] = 0xff;
    bad.p[bad.len - 5] = 0xff;
    bad.p[bad.len - 4] = 0xff;
    bad.p[bad.len - 3] = 0x7f;
    write_file(bad.p, bad.len);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "outside the file"),
          "bad directory offset refused: %s", err.message);
    free(bad.p);

    /* Encrypted entry (flag bit 0 in the central directory). */
    bad = build_zip(entries, 2);
    size_t cd_at = le32(bad.p + bad.len - 6);
    bad.p[cd_at + 8] |= 1;
    write_file(bad.p, bad.len);
    CHECK(open_and_extract_all(&err) == ASR_ERR_UNSUPPORTED && strstr(err.message, "encrypted"),
          "encrypted entry refused: %s", err.message);
    free(bad.p);

    /* Not a zip at all, empty, and missing. */
    write_file((const unsigned char *)text, 1000);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT, "text file refused: %s",
          err.message);
    write_file((const unsigned char *)"", 0);
    CHECK(open_and_extract_all(&err) == ASR_ERR_INVALID_ARGUMENT && strstr(err.message, "too short"),
          "empty file refused: %s", err.message);
    unlink(tmp_path);
    CHECK(open_and_extract_all(&err) == ASR_ERR_IO && strstr(err.message, "cannot open"),
          "missing file refused: %s", err.message);

    /* Fuzz: flip bytes of a small valid archive; every outcome must be a
     * clean success or a clean error (the sanitizer build checks memory). */
    buffer small = build_zip(entries, 2);
    int clean = 1;
    lcg = 99;
    for (int iter = 0; iter < 3000; iter++) {
        buffer f = {malloc(small.len), small.len, small.len};
        memcpy(f.p, small.p, small.len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            lcg = lcg * 1103515245u + 12345u;
            size_t at = (lcg >> 8) % f.len;
            lcg = lcg * 1103515245u + 12345u;
            f.p[at] = (unsigned char)(lcg >> 24);
        }
        write_file(f.p, f.len);
        err.message[0] = '\0';
        asr_status s = open_and_extract_all(&err);
        if (s != ASR_OK && err.message[0] == '\0')
            clean = 0;
        free(f.p);
    }
    CHECK(clean, "3000 corrupted archives all ended with a status and a message");
    unlink(tmp_path);
    free(small.p);
    free(zip_bytes.p);
    free(big);
    return CHECK_DONE();
}
