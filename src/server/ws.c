/* ws.c — a small RFC 6455 WebSocket framer: handshake key, frame parser and message assembler, frame writer. */
#include "server/ws.h"

#include <stdlib.h>
#include <string.h>

/* ---- SHA-1 (FIPS 180-4), for the handshake's accept key only --------------- */

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol32(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void ws_sha1(const void *data, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    const uint8_t *p = data;
    size_t left = n;
    for (; left >= 64; left -= 64, p += 64) sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tail_len == 128) sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

/* ---- base64 ------------------------------------------------------------------ */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long ws_base64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = in[i + j];
            if (c == '=' && i + 4 == n && j >= 2) { v[j] = 0; pad++; continue; }
            if (pad) return -1; /* data after padding */
            v[j] = b64_value(c);
            if (v[j] < 0) return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (pad < 2) out[o++] = (uint8_t)(x >> 8);
        if (pad < 1) out[o++] = (uint8_t)x;
    }
    return (long)o;
}

int ws_accept_key(const char *client_key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    size_t n = client_key ? strlen(client_key) : 0;
    uint8_t raw[18];
    if (n != 24 || ws_base64_decode(client_key, n, raw) != 16) return -1;
    char joined[24 + sizeof guid];
    memcpy(joined, client_key, 24);
    memcpy(joined + 24, guid, sizeof guid);
    uint8_t digest[20];
    ws_sha1(joined, 24 + sizeof guid - 1, digest);
    ws_base64_encode(digest, 20, out);
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------- */

int ws_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (size_t j = 1; j < len; j++)
            if ((p[i + j] & 0xC0) != 0x80) return 0;
        if (len == 2 && c < 0xC2) return 0;                                      /* overlong */
        if (len == 3 && c == 0xE0 && p[i + 1] < 0xA0) return 0;                  /* overlong */
        if (len == 3 && c == 0xED && p[i + 1] >= 0xA0) return 0;                 /* surrogate */
        if (len == 4 && c == 0xF0 && p[i + 1] < 0x90) return 0;                  /* overlong */
        if (len == 4 && (c > 0xF4 || (c == 0xF4 && p[i + 1] >= 0x90))) return 0; /* > U+10FFFF */
        i += len;
    }
    return 1;
}

/* ---- reading client frames --------------------------------------------------- */

void ws_reader_init(ws_reader *r, size_t max_message)
{
    memset(r, 0, sizeof *r);
    r->max_message = max_message;
}

void ws_reader_free(ws_reader *r)
{
    free(r->msg);
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
}

static ws_event fail(ws_reader *r, int code, const char *reason)
{
    ws_event ev = {.kind = WS_EV_ERROR, .code = code, .reason = reason};
    r->failed = 1;
    r->last = ev;
    return ev;
}

static int valid_close_code(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

ws_event ws_reader_next(ws_reader *r, uint8_t *buf, size_t n, size_t *consumed)
{
    *consumed = 0;
    ws_event ev = {.kind = WS_EV_NEED_MORE};
    if (r->failed) return r->last;
    if (n < 2) return ev;
    int fin = buf[0] >> 7, rsv = buf[0] >> 4 & 7, opcode = buf[0] & 15;
    int masked = buf[1] >> 7;
    uint64_t len = buf[1] & 127;
    size_t head = 2;
    /* Checks that need only the first two bytes come first, so a bad frame is
     * refused before the client sends (or we wait for) the rest. */
    if (rsv) return fail(r, WS_CLOSE_PROTOCOL, "reserved bits set (no extension was negotiated)");
    int control = opcode >= 8;
    if (!(opcode <= 2 || (opcode >= 8 && opcode <= 10))) return fail(r, WS_CLOSE_PROTOCOL, "unknown opcode");
    if (!masked) return fail(r, WS_CLOSE_PROTOCOL, "client frames must be masked");
    if (control && (!fin || len > 125)) return fail(r, WS_CLOSE_PROTOCOL, "control frame fragmented or longer than 125 bytes");
    if (opcode == WS_OP_CONT && !r->msg_opcode) return fail(r, WS_CLOSE_PROTOCOL, "continuation frame without a message");
    if ((opcode == WS_OP_TEXT || opcode == WS_OP_BINARY) && r->msg_opcode)
        return fail(r, WS_CLOSE_PROTOCOL, "new message before the previous one's last fragment");
    if (len == 126) {
        if (n < 4) return ev;
        len = (uint64_t)buf[2] << 8 | buf[3];
        if (len < 126) return fail(r, WS_CLOSE_PROTOCOL, "payload length not minimally encoded");
        head = 4;
    } else if (len == 127) {
        if (n < 10) return ev;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | buf[2 + i];
        if (len >> 63) return fail(r, WS_CLOSE_PROTOCOL, "payload length has its top bit set");
        if (len <= 0xFFFF) return fail(r, WS_CLOSE_PROTOCOL, "payload length not minimally encoded");
        head = 10;
    }
    if (!control && len > r->max_message - (r->msg_opcode ? r->msg_len : 0) && len > 0)
        return fail(r, WS_CLOSE_TOO_BIG, "message too big");
    if (n - head < 4) return ev;
    const uint8_t *mask = buf + head;
    head += 4;
    if ((uint64_t)(n - head) < len) return ev;
    uint8_t *payload = buf + head;
    for (size_t i = 0; i < (size_t)len; i++) payload[i] ^= mask[i & 3];
    *consumed = head + (size_t)len;

    if (control) {
        if (opcode == WS_OP_PING || opcode == WS_OP_PONG) {
            ev.kind = opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
            ev.data = payload;
            ev.len = (size_t)len;
            return ev;
        }
        /* close: optional 2-byte code, then a UTF-8 reason */
        if (len == 1) return fail(r, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
        ev.kind = WS_EV_CLOSE;
        ev.code = 1005;
        if (len >= 2) {
            ev.code = payload[0] << 8 | payload[1];
            if (!valid_close_code(ev.code)) return fail(r, WS_CLOSE_PROTOCOL, "invalid close code");
            if (!ws_utf8_valid(payload + 2, (size_t)len - 2)) return fail(r, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
            ev.data = payload + 2;
            ev.len = (size_t)len - 2;
        }
        r->failed = 1;
        r->last = ev;
        r->last.data = NULL;
        r->last.len = 0;
        return ev;
    }

    /* data frame: append to the message being assembled */
    if (opcode != WS_OP_CONT) { r->msg_opcode = opcode; r->msg_len = 0; }
    if (r->msg_len + (size_t)len > r->msg_cap) {
        size_t cap = r->msg_cap ? r->msg_cap : 4096;
        while (cap < r->msg_len + (size_t)len) cap *= 2;
        if (cap > r->max_message) cap = r->max_message;
        uint8_t *grown = realloc(r->msg, cap ? cap : 1);
        if (!grown) return fail(r, WS_CLOSE_INTERNAL, "out of memory");
        r->msg = grown;
        r->msg_cap = cap;
    }
    if (len) memcpy(r->msg + r->msg_len, payload, (size_t)len);
    r->msg_len += (size_t)len;
    if (!fin) return ev; /* a fragment: consumed, nothing to report yet */
    int op = r->msg_opcode;
    r->msg_opcode = 0;
    if (op == WS_OP_TEXT && !ws_utf8_valid(r->msg, r->msg_len)) return fail(r, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
    ev.kind = WS_EV_MESSAGE;
    ev.opcode = op;
    ev.data = r->msg;
    ev.len = r->msg_len;
    return ev;
}

size_t ws_frame_header(uint8_t out[10], int opcode, size_t len)
{
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) { out[1] = (uint8_t)len; return 2; }
    if (len <= 0xFFFF) { out[1] = 126; out[2] = (uint8_t)(len >> 8); out[3] = (uint8_t)len; return 4; }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}
