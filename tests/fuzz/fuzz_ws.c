/* fuzz_ws.c — libFuzzer harness for the WebSocket frame parser and message assembler (src/server/ws.c).
 *
 * The input is the byte stream a client sends after the handshake, fed to
 * ws_reader_next in pieces whose sizes come from the first byte (so partial
 * headers and payloads are exercised). The reader must never crash, read out
 * of bounds or hand out a message larger than its limit or a text message
 * that is not UTF-8; after an error or a close it must keep reporting it.
 * Built by `make fuzz`; run by tests/integration/fuzz_smoke.sh.
 */
#include "server/ws.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)(data[0] % 16) + 1; /* bytes that "arrive" per read */
    data++, size--;
    uint8_t *buf = malloc(size + 1);
    if (!buf) return 0;
    ws_reader r;
    ws_reader_init(&r, MAX_MESSAGE);
    size_t have = 0, fed = 0;
    int stopped = 0;
    while (!stopped) {
        size_t add = size - fed < step ? size - fed : step;
        memcpy(buf + have, data + fed, add);
        have += add, fed += add;
        for (;;) {
            size_t used;
            ws_event ev = ws_reader_next(&r, buf, have, &used);
            if (used > have) abort();
            memmove(buf, buf + used, have - used);
            have -= used;
            if (ev.kind == WS_EV_MESSAGE) {
                if (ev.len > MAX_MESSAGE) abort();
                if (ev.opcode == WS_OP_TEXT && !ws_utf8_valid(ev.data, ev.len)) abort();
                if (ev.opcode != WS_OP_TEXT && ev.opcode != WS_OP_BINARY) abort();
            } else if (ev.kind == WS_EV_PING || ev.kind == WS_EV_PONG) {
                if (ev.len > 125) abort();
            } else if (ev.kind == WS_EV_ERROR || ev.kind == WS_EV_CLOSE) {
                size_t again_used;
                ws_event again = ws_reader_next(&r, buf, have, &again_used);
                if (again.kind != ev.kind || again.code != ev.code || again_used != 0) abort();
                if (ev.kind == WS_EV_ERROR && (ev.code < 1000 || !ev.reason)) abort();
                stopped = 1;
                break;
            } else if (used == 0) {
                break; /* need more bytes */
            }
        }
        if (fed == size) break;
    }
    ws_reader_free(&r);
    free(buf);

    /* the handshake helpers on the same bytes */
    char key[25], accept[29];
    if (size >= 24) {
        memcpy(key, data, 24);
        key[24] = 0;
        (void)ws_accept_key(key, accept);
    }
    uint8_t *decoded = malloc(3 * (size / 4) + 1);
    if (decoded) {
        long n = ws_base64_decode((const char *)data, size, decoded);
        if (n > (long)(3 * (size / 4))) abort();
        free(decoded);
    }
    return 0;
}
