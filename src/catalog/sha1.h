/* sha1.h — streaming SHA-1 (FIPS 180-4), only to check the git blob ids
 * the hub publishes for its small (non-LFS) files; never for anything secret. */
#ifndef ASR_CATALOG_SHA1_H
#define ASR_CATALOG_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define ASR_SHA1_SIZE 20
#define ASR_SHA1_HEX_SIZE 41

typedef struct asr_sha1 {
    uint32_t h[5];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t n_block;
} asr_sha1;

void asr_sha1_init(asr_sha1 *ctx);
void asr_sha1_update(asr_sha1 *ctx, const void *data, size_t len);
/* Finish and write the lower-case hex digest; ctx must be re-initialised before reuse. */
void asr_sha1_final_hex(asr_sha1 *ctx, char hex[ASR_SHA1_HEX_SIZE]);

#endif
