"""`asr serve` against mutated requests (seeded, reproducible): flipped, inserted and cut bytes in
multipart bodies and in the audio itself, wrong Content-Length, broken boundaries, bad chunked
encoding, oversized headers. Every answer must be a 4xx/2xx (never 5xx, never a hang), the server
must stay up (under ASan too: the suite's sanitizer build runs this), and exit 0 at the end.
Then well-formed requests (a real client, a served model) whose audio alone is mutated, so the
decoder and the model really run on it: each answer is 200 with a transcript or 400/413 with
the OpenAI error JSON, within a deadline, never 5xx."""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import SLOW, Server, check, data, finish, is_openai_error, multipart, parse_raw_response  # noqa: E402

import requests  # noqa: E402

SEED = int(os.environ.get("ASR_FUZZ_SEED", "20261127"))
CASES = int(os.environ.get("ASR_FUZZ_CASES", "120"))
VALID_CASES = int(os.environ.get("ASR_FUZZ_VALID_CASES", "24"))
rng = random.Random(SEED)
ALLOWED = {200, 400, 404, 408, 413, 414, 415, 422, 431}

audio = {}
for name in ["jfk.wav", "jfk.mp3", "jfk.flac", "fleurs/en-001.ogg"]:
    with open(data(name), "rb") as f:
        audio[name] = f.read()[:60000]  # a few seconds at most: mutations, not transcripts


def send(port, head, body, read=True, timeout=15.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        s.sendall(head + body)
        if not read:
            return b""
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
        return out
    except OSError:
        return b""
    finally:
        s.close()


def request_head(path, ctype, length, extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
            + (f"Content-Length: {length}\r\n" if length is not None else "") + extra + "\r\n").encode()


def mutate(b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["flip", "insert", "delete", "cut", "dup"])
        if not b:
            break
        i = rng.randrange(len(b))
        if op == "flip":
            for _ in range(rng.randint(1, 16)):
                j = rng.randrange(len(b))
                b[j] = rng.randrange(256)
        elif op == "insert":
            b[i:i] = os.urandom(rng.randint(1, 64)) if rng.random() < 0.5 else rng.choice(
                [b"\r\n", b"--", b"\r\n\r\n", b"--asrtestboundary", b"\x00" * 8, b"\xff" * 8])
        elif op == "delete":
            del b[i:i + rng.randint(1, 64)]
        elif op == "cut":
            del b[i:]
        elif op == "dup":
            b[i:i] = b[i:i + rng.randint(1, 4096)]
    return bytes(b)


srv = Server("--workers", "1", "--queue", "8", "--max-upload-mb", "2", "--header-timeout", "3",
             "--body-timeout", "2", "--idle-timeout", "2", "--min-upload-rate", "0", name="fuzz server")
bad = []
answered = 0
try:
    t0 = time.monotonic()
    for case in range(CASES):
        kind = rng.choice(["body", "audio", "audio", "length", "boundary", "chunked", "headers"])
        name = rng.choice(list(audio))
        # /detect-language decodes the audio but, on an English-only model, runs no network: cheap.
        path = rng.choice(["/detect-language", "/detect-language", "/v1/audio/transcriptions"])
        field = "audio_file" if path == "/detect-language" else "file"
        model = "fuzz-model" if path != "/detect-language" else "whisper-1"  # 400 after parsing: cheap
        payload = audio[name]
        if kind == "audio":
            payload = mutate(payload)
        body, ctype = multipart([("model", model, None), (field, payload, name)])
        head_extra = ""
        length = len(body)
        read = True
        if kind == "body":
            body = mutate(body)
            length = len(body)
        elif kind == "length":
            delta = rng.choice([-1, 1]) * rng.randint(1, 5000)
            length = max(0, len(body) + delta)
            read = delta < 0  # promised more than sent: the server waits, we leave
        elif kind == "boundary":
            ctype = rng.choice(["multipart/form-data; boundary=", "multipart/form-data; boundary=\"unterminated",
                                "multipart/form-data; boundary=" + "x" * 300, "multipart/form-data;boundary=asrtestboundary",
                                "multipart/form-data; charset=utf-8", "multipart/mixed; boundary=asrtestboundary",
                                "multipart/form-data; boundary=other"])
        elif kind == "chunked":
            length = None
            head_extra = "Transfer-Encoding: chunked\r\n"
            pieces, i = [], 0
            while i < len(body):
                n = rng.randint(1, 20000)
                size = f"{n:x}" if rng.random() > 0.1 else rng.choice(["zz", "-1", "ffffffffffffffffff", ""])
                pieces.append(size.encode() + b"\r\n" + body[i:i + n] + b"\r\n")
                i += n
            if rng.random() > 0.2:
                pieces.append(b"0\r\n\r\n")
            body = b"".join(pieces)
        elif kind == "headers":
            head_extra = rng.choice(["X-Big: " + "a" * 200000 + "\r\n", "Content-Length: 5\r\n",
                                     "X-Null: \x00\r\n", "Bad Header Line\r\n", "Authorization: Bearer \r\n"])
        head = request_head(path, ctype, length, head_extra)
        t_case = time.monotonic()
        raw = send(srv.port, head, body, read=read)
        if os.environ.get("ASR_FUZZ_VERBOSE"):
            print(f"case {case} {kind} {path} {time.monotonic() - t_case:.2f}s {raw[:12]!r}", flush=True)
        if not read:
            continue
        status, _, rbody = parse_raw_response(raw)
        if status is None and raw == b"":
            continue  # closed without an answer (e.g. header too large, broken chunking): allowed
        answered += 1
        if status not in ALLOWED:
            bad.append((case, kind, path, status, raw[:200]))
        if srv.proc.poll() is not None:
            bad.append((case, kind, path, "server died", srv.proc.returncode))
            break
    took = time.monotonic() - t0
    check(not bad, f"{CASES} mutated requests (seed {SEED}): {answered} answered, all with 2xx/4xx ({took:.1f}s); bad: {bad[:3]}")
    check(srv.proc.poll() is None, "server still running")

    # --- valid requests, mutated audio: the decoder and the model run on it ----------------------------
    classes = {}
    bad, slowest = [], 0.0
    for case in range(VALID_CASES):
        name = rng.choice(list(audio))
        payload = mutate(audio[name])
        route = rng.choice(["/v1/audio/transcriptions", "/detect-language"])
        t_case = time.monotonic()
        try:
            if route == "/detect-language":
                r = requests.post(srv.url + route, files={"audio_file": (name, payload)}, timeout=60 * SLOW)
            else:
                r = requests.post(srv.url + route, files={"file": (name, payload)},
                                  data={"model": "whisper-1", "response_format": "json"}, timeout=60 * SLOW)
        except requests.RequestException as e:
            bad.append((case, name, route, f"no answer: {type(e).__name__}"))
            continue
        slowest = max(slowest, time.monotonic() - t_case)
        try:
            j = r.json()
        except ValueError:
            j = None
        if r.status_code == 200:
            key = "language_code" if route == "/detect-language" else "text"
            ok = isinstance(j, dict) and isinstance(j.get(key), str) and r.headers.get("content-type") == "application/json"
        elif r.status_code in (400, 413):
            ok = is_openai_error(j, "file" if route != "/detect-language" else None)
        else:
            ok = False
        classes[r.status_code] = classes.get(r.status_code, 0) + 1
        if not ok:
            bad.append((case, name, route, r.status_code, r.text[:160]))
        if srv.proc.poll() is not None:
            bad.append((case, name, route, "server died", srv.proc.returncode))
            break
    check(not bad, f"{VALID_CASES} valid requests with mutated audio: answers {classes}, each 200 with a result "
                   f"or 400/413 with the OpenAI error JSON; slowest {slowest:.1f} s; bad: {bad[:3]}")
    check(classes.get(200, 0) > 0, f"some mutated audio still decodes and is transcribed ({classes})")
    with open(data("jfk.wav"), "rb") as f:
        r = requests.post(srv.url + "/detect-language", files={"audio_file": ("jfk.wav", f)}, timeout=60 * SLOW)
    check(r.status_code == 200 and r.json().get("language_code") == "en", "a good request succeeds afterwards")
    for route in ("/detect-language", "/v1/audio/transcriptions"):
        five = sum(srv.metric(f'asr_http_requests_total{{route="{route}",status="{st}"}}') for st in (500, 502, 503, 504))
        check(five == 0, f"no 5xx counted on {route}")
finally:
    srv.stop()
finish()
