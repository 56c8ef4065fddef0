/* zip.h — a small read-only ZIP reader (stored and deflate entries) used to
 * unpack model wheels without Python. */
#ifndef ASR_CATALOG_ZIP_H
#define ASR_CATALOG_ZIP_H

#include "asr.h"
#include "catalog/sha256.h"

#include <stdint.h>
#include <stdio.h>

typedef struct asr_zip asr_zip;

typedef struct asr_zip_entry {
    char *name;             /* as stored in the central directory, NUL-terminated */
    uint16_t method;        /* 0 = stored, 8 = deflate; others are refused on extract */
    uint16_t flags;         /* general purpose bits; bit 0 (encrypted) is refused  */
    uint32_t crc32;         /* CRC-32 of the uncompressed data                    */
    uint64_t comp_size;     /* bytes of (compressed) data in the archive          */
    uint64_t size;          /* uncompressed bytes                                 */
    uint64_t local_offset;  /* offset of the entry's local file header            */
} asr_zip_entry;

/* Called during extraction with the bytes written so far and the entry's size. */
typedef void (*asr_zip_progress_fn)(uint64_t done, uint64_t total, void *user_data);

/* Open `path` and read its central directory. Every offset and size is
 * checked against the file; ZIP64, multi-disk and malformed archives are
 * refused with ASR_ERR_IO/ASR_ERR_INVALID_ARGUMENT and a message. */
asr_status asr_zip_open(const char *path, asr_zip **out, asr_error *err);
void asr_zip_close(asr_zip *zip);

int asr_zip_count(const asr_zip *zip);
const asr_zip_entry *asr_zip_entry_at(const asr_zip *zip, int index);
/* The entry named exactly `name`, or NULL. */
const asr_zip_entry *asr_zip_find(const asr_zip *zip, const char *name);

/* Append the uncompressed data of `entry` to `out`, feeding it to `hash`
 * too when not NULL. Fails (and says why) on a bad local header, data that
 * inflates to more or fewer bytes than declared, a CRC-32 mismatch, or a
 * write error. `progress` may be NULL. On failure `out` holds a prefix. */
asr_status asr_zip_extract(asr_zip *zip, const asr_zip_entry *entry, FILE *out,
                           asr_sha256 *hash, asr_zip_progress_fn progress,
                           void *user_data, asr_error *err);

#endif
