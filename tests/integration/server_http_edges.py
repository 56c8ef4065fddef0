"""`asr serve` on HTTP edge cases (issue 11, findings 5 and 6): a Python client sending a 26 MB body
reads an early 401/413 instead of a broken pipe; repeated Content-Length and Content-Length with
Transfer-Encoding are 400; a client that half-closes after its request still gets its answer; errors
libmicrohttpd answers itself are counted in /metrics; language=fr on an English-only model is 400;
hex, inf and nan temperatures are 400; a reader that does not take its answer is cut off at the
write deadline."""
import re
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import (recv_all, JFK_TEXT, SLOW, Server, check, data, finish, is_openai_error,  # noqa: E402
                        multipart, parse_raw_response, raw_request)

import requests  # noqa: E402

KEY = "edge-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
with open(data("jfk.wav"), "rb") as f:
    JFK = f.read()


def expect_error(r, status, what, param=None, code=None):
    try:
        body = r.json()
    except ValueError:
        body = None
    ok = r.status_code == status and is_openai_error(body, param)
    if ok and code is not None:
        ok = body["error"]["code"] == code
    check(ok, f"{what}: {status} with OpenAI error JSON (got {r.status_code} {r.text[:160]!r})")


def final_response(raw):
    """Skip interim 1xx responses, as every HTTP/1.1 client does."""
    while raw.startswith(b"HTTP/1.1 1"):
        raw = raw.partition(b"\r\n\r\n")[2]
    return parse_raw_response(raw)


srv = Server("--workers", "1", "--queue", "4", "--api-key", KEY, "--write-timeout", "1", "--idle-timeout", "30",
             name="server")
URL = srv.url + "/v1/audio/transcriptions"
try:
    # --- early errors with a 26 MB body, sent by a client that reads only when it has sent it all -----
    big = os.urandom(26 * 1024 * 1024)
    for headers, status, what in (({"Authorization": "Bearer wrong"}, 401, "wrong key"),
                                  (AUTH, 413, "upload over the 25 MB limit")):
        try:
            r = requests.post(URL, files={"file": ("big.wav", big)}, data={"model": "whisper-1"}, headers=headers,
                              timeout=60 * SLOW)
            expect_error(r, status, f"26 MB body, {what} (python requests)")
        except requests.exceptions.ConnectionError as e:
            check(False, f"26 MB body, {what}: the client read {status}, not a broken pipe ({e!r:.120})")

    # --- request framing --------------------------------------------------------------------------------
    body, ctype = multipart([("model", "whisper-1", None), ("file", JFK, "jfk.wav")])
    base = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: {ctype}\r\n").encode()
    for extra, what in ((f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\n", "repeated Content-Length"),
                        (f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n",
                         "Content-Length with Transfer-Encoding")):
        raw = raw_request(srv.port, base + extra.encode() + b"\r\n" + body, read_timeout=10)
        status, headers, rbody = parse_raw_response(raw)
        check(status == 400 and is_openai_error(json.loads(rbody or b"{}")) and headers.get("connection") == "close"
              and raw.count(b"HTTP/1.1") == 1, f"{what}: one 400 JSON answer, connection closed ({raw[:60]!r})")

    # --- half-close after the whole request -----------------------------------------------------------------
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60 * SLOW)
    s.sendall(base + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    s.shutdown(socket.SHUT_WR)
    status, _, rbody = final_response(recv_all(s))
    s.close()
    check(status == 200 and json.loads(rbody or b"{}").get("text") == JFK_TEXT,
          f"transcription from a client that half-closed after its request: 200 ({status} {rbody[:80]!r})")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    status, _, rbody = final_response(recv_all(s))
    s.close()
    check(status == 200, f"/healthz from a half-closed client: 200 ({status})")

    # --- form values that are not what a client meant --------------------------------------------------------
    for t in ("0x1p-1", "inf", "nan", "-nan", "infinity"):
        r = requests.post(URL, files={"file": ("jfk.wav", JFK)}, data={"model": "whisper-1", "temperature": t},
                          headers=AUTH, timeout=60 * SLOW)
        expect_error(r, 400, f"temperature={t}", param="temperature")
    r = requests.post(URL, files={"file": ("jfk.wav", JFK)}, data={"model": "whisper-1", "temperature": "0.4"},
                      headers=AUTH, timeout=60 * SLOW)
    # a sampled decode: the words are jfk's, the punctuation is the draw's
    words = lambda t: re.sub(r"[^a-z ]", "", t.lower()).split()
    check(r.status_code == 200 and words(r.json().get("text", "")) == words(JFK_TEXT), "temperature=0.4 still works")
    r = requests.post(URL, files={"file": ("jfk.wav", JFK)}, data={"model": "whisper-1", "language": "fr"},
                      headers=AUTH, timeout=60 * SLOW)
    expect_error(r, 400, "language=fr on the English-only model", param="language", code="unsupported_language")

    # --- errors libmicrohttpd answers itself are counted ------------------------------------------------------
    before_400 = srv.metric('asr_http_requests_total{route="/v1/audio/transcriptions",status="400"}')
    before_431 = srv.metric('asr_http_requests_total{route="/healthz",status="431"}')
    raw = raw_request(srv.port, b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n")
    check(raw.startswith(b"HTTP/1.1 400"), f"a malformed Content-Length: 400 ({raw[:40]!r})")
    raw = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    check(raw.startswith(b"HTTP/1.1 431"), f"200 KB of headers: 431 ({raw[:40]!r})")
    time.sleep(0.2)
    check(srv.metric('asr_http_requests_total{route="/v1/audio/transcriptions",status="400"}') == before_400 + 1,
          "/metrics counts the library's 400")
    check(srv.metric('asr_http_requests_total{route="/healthz",status="431"}') == before_431 + 1,
          "/metrics counts the library's 431")

    # --- the write deadline: a client that never reads its answers ------------------------------------------------
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    n_asked = 200
    s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * n_asked)
    time.sleep(4.0)  # the write deadline is 1 s; MHD's idle timeout (30 s) would not have fired yet
    s.settimeout(10)
    got = recv_all(s)
    s.close()
    answers = got.count(b"HTTP/1.1 200")
    check(0 < answers < n_asked, f"a reader that stalls is cut off at the write deadline ({answers} of {n_asked} answers)")
    r = requests.get(srv.url + "/healthz", timeout=5)
    check(r.status_code == 200, "the server still answers after cutting a stalled reader")
finally:
    srv.stop()
finish()
