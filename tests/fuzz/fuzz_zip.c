/* fuzz_zip.c — libFuzzer harness for the ZIP reader that unpacks model wheels (zip.h).
 *
 * The input is an archive. asr_zip_open must accept it or fail with a
 * message; when it opens, every entry is looked up by name and extracted
 * (to a stream that counts bytes, with the SHA-256 fed): each extraction succeeds or fails
 * with a message, and a success wrote exactly the entry's declared size.
 * The reader is CLI code, outside libasr.a, so its sources are compiled in
 * here from the directory the Makefile names (FUZZ_ZIP_DIR). Built by
 * `make fuzz`; run by tests/integration/fuzz_smoke.sh.
 */
#include "sha256.c"
#include "zip.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t count_write(void *cookie, const char *buf, size_t n)
{
    (void)buf;
    *(uint64_t *)cookie += n;
    return (ssize_t)n;
}

static void count_bytes(uint64_t done, uint64_t total, void *user_data)
{
    uint64_t *last = user_data;
    if (done < *last || done > total) abort(); /* progress only moves forward, never past the size */
    *last = done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/asr-fuzz-zip-%ld.zip", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || w != size) return 0;
    asr_zip *zip = NULL;
    asr_error err = {0};
    asr_status s = asr_zip_open(path, &zip, &err);
    if (s != ASR_OK) {
        if (s != err.code || !err.message[0] || zip) abort();
        return 0;
    }
    uint64_t written = 0;
    FILE *sink = fopencookie(&written, "w", (cookie_io_functions_t){.write = count_write});
    for (int i = 0; sink && i < asr_zip_count(zip); i++) {
        const asr_zip_entry *e = asr_zip_entry_at(zip, i);
        if (!e || !e->name) abort();
        if (!asr_zip_find(zip, e->name)) abort();
        if (e->size > (64u << 20)) continue; /* a declared 4 GB entry is legal; not worth the time */
        asr_sha256 h;
        asr_sha256_init(&h);
        uint64_t last = 0;
        fflush(sink);
        uint64_t before = written;
        s = asr_zip_extract(zip, e, sink, &h, count_bytes, &last, &err);
        fflush(sink);
        if (s != ASR_OK && (s != err.code || !err.message[0])) abort();
        if (s == ASR_OK && written - before != e->size) abort(); /* exactly the declared bytes */
    }
    if (asr_zip_entry_at(zip, -1) || asr_zip_entry_at(zip, asr_zip_count(zip))) abort();
    if (sink) fclose(sink);
    asr_zip_close(zip);
    return 0;
}
