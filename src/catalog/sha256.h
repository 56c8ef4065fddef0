/* sha256.h — streaming SHA-256 (FIPS 180-4) for verifying downloaded models. */
#ifndef ASR_CATALOG_SHA256_H
#define ASR_CATALOG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define ASR_SHA256_SIZE 32     /* digest bytes */
#define ASR_SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */

typedef struct asr_sha256 {
    uint32_t h[8];       /* chaining state                       */
    uint64_t n_bytes;    /* message length so far                */
    uint8_t block[64];   /* pending partial block                */
    size_t n_block;      /* bytes used in block, 0..63           */
} asr_sha256;

void asr_sha256_init(asr_sha256 *ctx);
void asr_sha256_update(asr_sha256 *ctx, const void *data, size_t len);
/* Finish and write the digest; ctx must be re-initialised before reuse. */
void asr_sha256_final(asr_sha256 *ctx, uint8_t out[ASR_SHA256_SIZE]);
/* Lower-case hex of a digest into hex (ASR_SHA256_HEX_SIZE bytes). */
void asr_sha256_hex(const uint8_t digest[ASR_SHA256_SIZE], char hex[ASR_SHA256_HEX_SIZE]);
/* Hash a whole file into hex. Returns 0, or -1 with errno set when the file
 * cannot be opened or read. */
int asr_sha256_file(const char *path, char hex[ASR_SHA256_HEX_SIZE]);

#endif
