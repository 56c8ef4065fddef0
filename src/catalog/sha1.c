/* sha1.c — streaming SHA-1 (FIPS 180-4) for the hub's git blob ids. */
#include "catalog/sha1.h"

#include <stdio.h>
#include <string.h>

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void compress(asr_sha1 *c, const uint8_t *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], bb = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & cc) | (~bb & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = bb ^ cc ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (bb & cc) | (bb & d) | (cc & d);
            k = 0x8f1bbcdc;
        } else {
            f = bb ^ cc ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol(bb, 30);
        bb = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += bb;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

void asr_sha1_init(asr_sha1 *c)
{
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, h0, sizeof h0);
    c->n_bytes = 0;
    c->n_block = 0;
}

void asr_sha1_update(asr_sha1 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->n_bytes += len;
    while (len > 0) {
        size_t take = 64 - c->n_block;
        if (take > len)
            take = len;
        memcpy(c->block + c->n_block, p, take);
        c->n_block += take;
        p += take;
        len -= take;
        if (c->n_block == 64) {
            compress(c, c->block);
            c->n_block = 0;
        }
    }
}

void asr_sha1_final_hex(asr_sha1 *c, char hex[ASR_SHA1_HEX_SIZE])
{
    uint64_t bits = c->n_bytes * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    asr_sha1_update(c, &pad, 1);
    while (c->n_block != 56)
        asr_sha1_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    asr_sha1_update(c, len, 8);
    for (int i = 0; i < 5; i++)
        snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}
