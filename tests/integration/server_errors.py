"""`asr serve` on bad requests: each gets the right status and OpenAI error JSON, the server
stays up, and the next good request still succeeds. Also auth, 404/405/415, slow clients."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import (JFK_TEXT, SLOW, Server, check, data, finish, is_openai_error,  # noqa: E402
                        multipart, parse_raw_response, raw_request, transcription_head)

import openai  # noqa: E402
import requests  # noqa: E402

KEY = "s3cret-key-for-tests"
srv = Server("--workers", "1", "--queue", "4", "--api-key", KEY, "--max-upload-mb", "1",
             "--min-upload-rate", "2000", "--header-timeout", "2", "--body-timeout", "20", name="server")
AUTH = {"Authorization": f"Bearer {KEY}"}
URL = srv.url + "/v1/audio/transcriptions"
with open(data("jfk.wav"), "rb") as f:
    JFK = f.read()  # 352 KB: under the 1 MB limit


def post(files=None, fields=None, headers=AUTH, url=URL, **kw):
    return requests.post(url, files=files, data=fields, headers=headers, timeout=120 * SLOW, **kw)


def good_request_works(after):
    r = post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1"})
    check(r.status_code == 200 and r.json().get("text") == JFK_TEXT, f"after {after}: a good request still succeeds")


def expect_error(r, status, what, param=None, code=None):
    try:
        body = r.json()
    except ValueError:
        body = None
    ok = r.status_code == status and is_openai_error(body, param) and r.headers.get("content-type") == "application/json"
    if code is not None and ok:
        ok = body["error"]["code"] == code
    check(ok, f"{what}: {status} with OpenAI error JSON (got {r.status_code} {r.text[:160]!r})")
    return body


try:
    # --- auth ----------------------------------------------------------------------------------------
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong-key", max_retries=0, timeout=60 * SLOW)
    try:
        with open(data("jfk.wav"), "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f)
        check(False, "SDK with a wrong API key raises AuthenticationError")
    except openai.AuthenticationError as e:
        check(e.status_code == 401 and e.body.get("code") == "invalid_api_key", "SDK with a wrong API key: 401 invalid_api_key")
    r = post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1"}, headers={})
    expect_error(r, 401, "missing API key")
    check(r.headers.get("www-authenticate") == "Bearer", "401 carries WWW-Authenticate: Bearer")
    r = post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1"},
             headers={"Authorization": f"Bearer {KEY}x"})
    expect_error(r, 401, "API key with an extra character")
    check(requests.get(srv.url + "/healthz", timeout=5).status_code == 200, "/healthz needs no key")
    check(requests.get(srv.url + "/metrics", timeout=5).status_code == 200, "/metrics needs no key")
    expect_error(requests.get(srv.url + "/v1/models", timeout=5), 401, "/v1/models without a key")
    good = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=120 * SLOW)
    with open(data("jfk.wav"), "rb") as f:
        check(good.audio.transcriptions.create(model="whisper-1", file=f).text == JFK_TEXT, "SDK with the right key works")

    # --- bad uploads ---------------------------------------------------------------------------------
    expect_error(post(files={"file": ("notes.txt", b"this is not audio at all, just some text\n" * 20)},
                      fields={"model": "whisper-1"}), 400, "non-audio file", param="file")
    expect_error(post(files={"file": ("random.wav", os.urandom(50000))}, fields={"model": "whisper-1"}),
                 400, "random bytes named .wav", param="file")
    expect_error(post(files={"file": ("jfk.wav", JFK[:44])}, fields={"model": "whisper-1"}),
                 400, "WAV header without samples", param="file")
    expect_error(post(files={"file": ("empty.wav", b"")}, fields={"model": "whisper-1"}), 400, "empty file",
                 param="file", code="empty_file")
    expect_error(post(files={"other": ("jfk.wav", JFK)}, fields={"model": "whisper-1"}), 400, "missing file",
                 param="file", code="missing_file")
    good_request_works("bad uploads")
    expect_error(post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1", "response_format": "xml"}),
                 400, "unknown response_format", param="response_format")
    expect_error(post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1", "language": "klingon"}),
                 400, "unknown language", param="language")
    expect_error(post(files={"file": ("jfk.wav", JFK)}, fields={"model": "gpt-9"}), 404, "unknown model (OpenAI: 404)",
                 code="model_not_found")
    expect_error(post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1", "temperature": "7"}),
                 400, "temperature out of range", param="temperature")
    expect_error(post(files={"file": ("jfk.wav", JFK)},
                      fields={"model": "whisper-1", "timestamp_granularities[]": "word"}),
                 400, "word timestamps outside verbose_json", param="timestamp_granularities")
    expect_error(post(files={"file": ("jfk.wav", JFK)},
                      fields={"model": "whisper-1", "response_format": "verbose_json",
                              "timestamp_granularities[]": "syllable"}),
                 400, "unknown timestamp granularity", param="timestamp_granularities")
    expect_error(post(fields=json.dumps({"file": "jfk.wav"}), headers={**AUTH, "Content-Type": "application/json"}),
                 415, "JSON body instead of multipart")
    expect_error(post(fields=b"--x\r\n", headers={**AUTH, "Content-Type": "multipart/form-data"}),
                 400, "multipart without a boundary")

    # --- oversize uploads: by Content-Length, and chunked (bytes counted) ---------------------------
    big = JFK * 4  # 1.4 MB > 1 MB
    r = post(files={"file": ("big.wav", big)}, fields={"model": "whisper-1"})
    expect_error(r, 413, "oversize upload (Content-Length)", param="file")
    body, ctype = multipart([("model", "whisper-1", None), ("file", big, "big.wav")])

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = requests.post(URL, data=chunks(), headers={**AUTH, "Content-Type": ctype}, timeout=60 * SLOW)
    expect_error(r, 413, "oversize upload (chunked, no Content-Length)", param="file")
    good_request_works("oversize uploads")

    # --- truncated multipart bodies --------------------------------------------------------------------
    body, ctype = multipart([("model", "whisper-1", None), ("file", JFK, "jfk.wav")])
    cut = body[: len(body) // 2]
    head = transcription_head(ctype, len(cut), f"Authorization: Bearer {KEY}\r\nConnection: close\r\n")
    status, _, rbody = parse_raw_response(raw_request(srv.port, head + cut, read_timeout=30 * SLOW))
    check(status == 400 and is_openai_error(json.loads(rbody or b"{}")),
          f"multipart body cut in half (consistent Content-Length): 400 ({status} {rbody[:120]!r})")
    # A client that promises more bytes than it sends and hangs up: no answer possible, no harm done.
    head_long = head.replace(f"Content-Length: {len(cut)}".encode(), f"Content-Length: {len(body)}".encode())
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(head_long + cut)
    s.close()
    good_request_works("truncated multipart bodies")

    # Invalid UTF-8 in a field and in the path still gets a well-formed error JSON (and a log line).
    body, ctype = multipart([("model", b"\xff\xfe\xc3", None), ("file", JFK, "jfk.wav")])
    r = requests.post(URL, data=body, headers={**AUTH, "Content-Type": ctype}, timeout=60 * SLOW)
    expect_error(r, 404, "model name in invalid UTF-8", code="model_not_found")
    status, _, rbody = parse_raw_response(raw_request(srv.port, b"GET /\xff\xc3( HTTP/1.1\r\nHost: x\r\n"
                                                                 b"Connection: close\r\n\r\n"))
    check(status == 404 and is_openai_error(json.loads(rbody or b"{}")), f"path in invalid UTF-8: 404 JSON ({status})")

    # --- unknown routes and methods ------------------------------------------------------------------
    expect_error(requests.get(srv.url + "/v1/nothing", headers=AUTH, timeout=5), 404, "unknown route")
    r = requests.get(URL, headers=AUTH, timeout=5)
    expect_error(r, 405, "GET on the transcription route")
    check(r.headers.get("allow") == "POST", "405 carries Allow: POST")

    # --- slow clients --------------------------------------------------------------------------------
    # Headers at one byte a second: answered 408 once --header-timeout (2 s) passes.
    t0 = time.monotonic()
    raw = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n",
                      read_timeout=20, delay_between=1.0)
    status, _, rbody = parse_raw_response(raw)
    took = time.monotonic() - t0
    check(status == 408 and is_openai_error(json.loads(rbody or b"{}")) and took < 8,
          f"headers at one byte a second: 408 after {took:.1f}s ({raw[:60]!r})")
    # A body at one byte a second: 408 once it falls under --min-upload-rate after the grace period.
    t0 = time.monotonic()
    head = transcription_head(ctype, len(body), f"Authorization: Bearer {KEY}\r\n")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    s.sendall(head)
    raw = b""
    try:
        for i in range(60):
            s.sendall(body[i:i + 1])
            time.sleep(1.0)
    except OSError:
        pass
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
    except OSError:
        pass
    s.close()
    took = time.monotonic() - t0
    status, _, rbody = parse_raw_response(raw)
    check(status == 408 and is_openai_error(json.loads(rbody or b"{}")) and took < 10,
          f"body at one byte a second: 408 after {took:.1f}s ({raw[:60]!r})")
    good_request_works("slow clients")

    # --- garbage on the wire ---------------------------------------------------------------------------
    raw = raw_request(srv.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200) + b"\r\n\r\n",
                      read_timeout=10)
    check(raw == b"" or raw.startswith(b"HTTP/1.1 400"), f"binary garbage as a request: 400 or closed ({raw[:30]!r})")
    t0 = time.monotonic()
    raw = raw_request(srv.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", read_timeout=20)
    check(raw.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 8,
          f"a request line that never ends: 408 after the header timeout ({raw[:30]!r})")
    good_request_works("garbage on the wire")

    check(any(e.get("path", "").startswith("/?") for e in srv.log_events("request")),
          "the invalid-UTF-8 path is logged, sanitised")

    # --- metrics counted all of it --------------------------------------------------------------------
    m = requests.get(srv.url + "/metrics", timeout=5).text
    for status in ("400", "401", "413", "415", "408"):
        check(f'status="{status}"' in m, f"/metrics counts status {status}")
    check(requests.get(srv.url + "/healthz", timeout=5).json() == {"status": "ok"}, "/healthz still ok")
finally:
    srv.stop()

# --- a realistic oversize upload: 26 MB against the default 25 MB limit, from Python clients ---------------
# Far more than socket buffers hold, so the client is still sending when the server decides: the
# 413 must still reach it as the OpenAI error JSON (the server reads and drops the rest of the
# body up to a bound), not as a broken pipe or a connection reset.
srv = Server("--workers", "1", name="default-limit server")
try:
    big = (JFK * (26 * 1024 * 1024 // len(JFK) + 1))[: 26 * 1024 * 1024]
    started = time.monotonic()
    try:
        r = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": ("big.wav", big)},
                          data={"model": "whisper-1"}, timeout=120 * SLOW)
        expect_error(r, 413, "26 MB upload (Content-Length) with requests", param="file")
    except requests.RequestException as e:
        check(False, f"26 MB upload (Content-Length) with requests: 413 JSON, not {type(e).__name__}: {e}")
    body, ctype = multipart([("model", "whisper-1", None), ("file", big, "big.wav")])

    def big_chunks():
        for i in range(0, len(body), 1 << 20):
            yield body[i:i + (1 << 20)]

    try:
        r = requests.post(srv.url + "/v1/audio/transcriptions", data=big_chunks(),
                          headers={"Content-Type": ctype}, timeout=120 * SLOW)
        expect_error(r, 413, "26 MB upload (chunked) with requests", param="file")
    except requests.RequestException as e:
        check(False, f"26 MB upload (chunked) with requests: 413 JSON, not {type(e).__name__}: {e}")
    sdk = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=120 * SLOW)
    try:
        sdk.audio.transcriptions.create(model="whisper-1", file=("big.wav", big))
        check(False, "26 MB upload with the openai SDK raises a 413 APIStatusError")
    except openai.APIStatusError as e:
        check(e.status_code == 413 and isinstance(e.body, dict) and e.body.get("param") == "file",
              f"26 MB upload with the openai SDK: 413 with param file ({e.status_code} {e.body})")
    except openai.APIError as e:
        check(False, f"26 MB upload with the openai SDK: 413, not {type(e).__name__}: {e}")
    took = time.monotonic() - started
    check(took < 60 * SLOW, f"three 26 MB refusals took {took:.1f} s (< {60 * SLOW:.0f} s)")
    r = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": ("jfk.wav", JFK)},
                      data={"model": "whisper-1"}, timeout=120 * SLOW)
    check(r.status_code == 200 and r.json().get("text") == JFK_TEXT, "after 26 MB uploads: a good request succeeds")
finally:
    srv.stop()

# --- limits from the environment: audio duration, per-request deadline ---------------------------------
srv = Server(env={"ASR_API_KEY": "env-key", "ASR_MAX_AUDIO_SECONDS": "12", "ASR_REQUEST_TIMEOUT": "0.05",
                  "ASR_MAX_CONNECTIONS": "3"}, name="env-configured server")
try:
    # ASR_MAX_CONNECTIONS=3: a fourth simultaneous connection is closed unanswered; others go on.
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(3)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(100)
    except OSError:
        got = b""
    extra.close()
    check(got == b"", f"a 4th connection over ASR_MAX_CONNECTIONS=3 is closed ({got[:30]!r})")
    for c in idle:
        c.close()
    time.sleep(0.2)
    check(requests.get(srv.url + "/healthz", timeout=5).status_code == 200, "connections free again: /healthz answers")
    env_auth = {"Authorization": "Bearer env-key"}
    env_url = srv.url + "/v1/audio/transcriptions"
    expect_error(post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1"}, headers={}, url=env_url),
                 401, "ASR_API_KEY from the environment")
    with open(data("multilingual.mp3"), "rb") as f:
        long_mp3 = f.read()
    expect_error(post(files={"file": ("multilingual.mp3", long_mp3)}, fields={"model": "whisper-1"}, headers=env_auth,
                      url=env_url), 413, "60 s of audio over ASR_MAX_AUDIO_SECONDS=12", param="file", code="audio_too_long")
    r = post(files={"file": ("jfk.wav", JFK)}, fields={"model": "whisper-1"}, headers=env_auth, url=env_url)
    expect_error(r, 504, "jfk past ASR_REQUEST_TIMEOUT=0.05 s", code="request_timeout")
    check(requests.get(srv.url + "/healthz", timeout=5).status_code == 200, "healthy after a timed-out job")
finally:
    srv.stop()
finish()
