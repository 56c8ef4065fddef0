/* ws.h — a small RFC 6455 WebSocket framer: handshake key, frame parser and message assembler, frame writer. */
#ifndef ASR_SERVER_WS_H
#define ASR_SERVER_WS_H

#include <stddef.h>
#include <stdint.h>

/* Close codes (RFC 6455 section 7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_INVALID_DATA = 1007, /* text that is not UTF-8 */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011
};

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10 };

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out needs 29 bytes. Returns 0, or -1 if the key is not 16 bytes in base64. */
int ws_accept_key(const char *client_key, char out[29]);

/* SHA-1 of data (20 bytes out); only the handshake needs it. */
void ws_sha1(const void *data, size_t n, uint8_t out[20]);

/* Standard base64 (with padding). encode: out needs 4*((n+2)/3)+1 bytes.
 * decode: out needs 3*(n/4) bytes; returns the decoded length, or -1 if the
 * input is not base64 (whitespace is not accepted). */
size_t ws_base64_encode(const uint8_t *in, size_t n, char *out);
long ws_base64_decode(const char *in, size_t n, uint8_t *out);

/* 1 if the bytes are valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ws_utf8_valid(const uint8_t *p, size_t n);

/* What ws_reader_next found. */
typedef enum ws_event_kind {
    WS_EV_NEED_MORE, /* no complete frame in the buffer yet             */
    WS_EV_MESSAGE,   /* a whole text or binary message (data, len, opcode) */
    WS_EV_PING,      /* answer with a pong carrying data, len            */
    WS_EV_PONG,
    WS_EV_CLOSE,     /* peer's close: code (1005 if none), reason in data */
    WS_EV_ERROR      /* protocol violation: close with code, reason text  */
} ws_event_kind;

typedef struct ws_event {
    ws_event_kind kind;
    int opcode;          /* WS_OP_TEXT / WS_OP_BINARY for messages */
    const uint8_t *data; /* valid until the next ws_reader_next call */
    size_t len;
    int code;            /* close code for WS_EV_CLOSE / WS_EV_ERROR */
    const char *reason;  /* static text for WS_EV_ERROR */
} ws_event;

/* Reassembles messages from client frames. Client frames must be masked;
 * a message (all its fragments together) may be at most max_message bytes. */
typedef struct ws_reader {
    size_t max_message;
    uint8_t *msg;        /* fragments of the message being assembled */
    size_t msg_len, msg_cap;
    int msg_opcode;      /* 0 = no message in progress */
    int failed;          /* after WS_EV_ERROR or WS_EV_CLOSE every call repeats it */
    ws_event last;
} ws_reader;

void ws_reader_init(ws_reader *r, size_t max_message);
void ws_reader_free(ws_reader *r);

/* Parse the next event from buf[0..n) (bytes the client sent, unmasked in
 * place); *consumed is how many bytes of buf were used up. Call again with
 * the rest until WS_EV_NEED_MORE with *consumed == 0 (a non-final fragment
 * is consumed with WS_EV_NEED_MORE too). A frame header announcing more than
 * max_message bytes is refused before its payload arrives. */
ws_event ws_reader_next(ws_reader *r, uint8_t *buf, size_t n, size_t *consumed);

/* Server frame header (unmasked) for a payload of len bytes; returns its size (2..10). */
size_t ws_frame_header(uint8_t out[10], int opcode, size_t len);

#endif /* ASR_SERVER_WS_H */
