"""`asr serve` soak (issue 11, resource tests): a few thousand mixed requests against one server — valid
transcriptions of a 1 s clip, undecodable audio, bad parameters, clients that hang up mid-upload or right
after submitting, plain GETs — at 8 at a time. Every answer is the one expected (200 with text, or a 4xx
OpenAI error JSON), the queue and upload budget are empty at the end, resident memory grows by less than
5 % between the warm-up point and the end, and the open file descriptor count comes back to where it was."""
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import (JFK_TEXT, SLOW, Server, check, data, finish, is_openai_error, multipart,  # noqa: E402
                        transcription_head)

with open(data("jfk.wav"), "rb") as f:
    JFK = f.read()
with wave.open(data("jfk.wav"), "rb") as w:
    _pcm = w.readframes(16000)  # the first second: "And so..."
CLIP = (b"RIFF" + struct.pack("<I", 36 + len(_pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data" + struct.pack("<I", len(_pcm)) + _pcm)

# The sanitizer build decodes about 4x slower: fewer requests keep it near a minute there too.
TOTAL = int(os.environ.get("ASR_SOAK_REQUESTS", "3000" if SLOW == 1.0 else "1000"))
WARMUP = TOTAL // 5
CONCURRENCY = 8
rng = random.Random(11)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def post(port, fields, timeout=60 * SLOW):
    body, ctype = multipart(fields)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/audio/transcriptions", body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, None
    finally:
        c.close()


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SLOW)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def hang_up(port, audio, after_submit):
    """Send the headers and half the body (or the whole request) and close without reading."""
    body, ctype = multipart([("model", "whisper-1", None), ("file", audio, "clip.wav")])
    head = transcription_head(ctype, len(body))
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    try:
        s.sendall(head + (body if after_submit else body[:len(body) // 2]))
        if after_submit:
            time.sleep(0.02)  # long enough for the server to take the job
    finally:
        s.close()


BAD_PARAMS = [
    [("model", "whisper-1", None), ("file", CLIP, "clip.wav"), ("temperature", "hot", None)],
    [("model", "whisper-1", None), ("file", CLIP, "clip.wav"), ("response_format", "docx", None)],
    [("model", "whisper-1", None), ("file", CLIP, "clip.wav"), ("language", "fr", None)],
    [("model", "whisper-1", None), ("file", CLIP, "clip.wav"), ("timestamp_granularities[]", "paragraph", None)],
    [("model", "whisper-1", None)],  # no file
]


def one(i, kind):
    """Runs request i of `kind`; returns None when the outcome is the expected one, else a description."""
    port = srv.port
    if kind == "valid":
        status, body = post(port, [("model", "whisper-1", None), ("file", CLIP, "clip.wav")])
        ok = status == 200 and isinstance(body, dict) and "so" in body.get("text", "").lower()
    elif kind == "bad_audio":
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(16, 4096)))
        status, body = post(port, [("model", "whisper-1", None), ("file", junk, "junk.wav")])
        ok = status == 400 and is_openai_error(body)
    elif kind == "bad_params":
        status, body = post(port, BAD_PARAMS[i % len(BAD_PARAMS)])
        ok = status == 400 and is_openai_error(body)
    elif kind == "mid_upload":
        hang_up(port, CLIP, after_submit=False)
        return None
    elif kind == "after_submit":
        hang_up(port, CLIP, after_submit=True)
        return None
    else:
        status, body = get(port, rng.choice(["/healthz", "/v1/models", "/nope", "/readyz"])), None
        ok = status in (200, 404)
    return None if ok else f"{kind}: {status} {str(body)[:160]}"


# The mix: transcriptions are the only expensive kind (one 30 s encoder window each on 1 thread).
# About 0.7 s each here, so 1 in 80; a hang-up after submit costs up to one too if the worker has begun it.
KINDS = ["valid"] * 2 + ["bad_audio"] * 16 + ["bad_params"] * 60 + ["mid_upload"] * 30 + ["after_submit"] * 4 + ["get"] * 48
plan = [rng.choice(KINDS) for _ in range(TOTAL)]

# Under ASan, freed blocks sit in a quarantine (256 MiB) that would read as growth; with it off, freed
# memory is reused as in the plain build, and LeakSanitizer still checks the exit (srv.stop: exit 0).
asan = os.environ.get("ASAN_OPTIONS", "")
srv = Server("--workers", "1", "--threads", "1", "--queue", "16", name="soak server",
             env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})
try:
    pid = srv.proc.pid
    status, body = post(srv.port, [("model", "whisper-1", None), ("file", JFK, "jfk.wav")])
    check(status == 200 and body.get("text") == JFK_TEXT, "before: jfk.wav transcribes to the golden text")
    failures_seen, lock = [], threading.Lock()
    marks = {}

    def run(i):
        try:
            bad = one(i, plan[i])
        except (OSError, http.client.HTTPException) as e:
            bad = f"{plan[i]}: {type(e).__name__} {e}"
        if bad:
            with lock:
                failures_seen.append(bad)

    def settle():
        """Waits for the server to be idle: no request in flight, no job queued or running."""
        end = time.monotonic() + 30 * SLOW
        while time.monotonic() < end:
            if (srv.metric("asr_http_requests_in_flight") <= 1 and srv.metric("asr_queue_depth") == 0
                    and srv.metric("asr_workers_busy") == 0):
                return True
            time.sleep(0.05)
        return False

    t0 = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(run, range(WARMUP)))
    check(settle(), "idle after the warm-up")
    time.sleep(0.3)
    marks["warm"] = (rss_kib(pid), fd_count(pid))
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(run, range(WARMUP, TOTAL)))
    took = time.monotonic() - t0
    check(settle(), "idle at the end")
    # connections the clients closed may take the server a moment to notice
    end = time.monotonic() + 5 * SLOW
    while fd_count(pid) > marks["warm"][1] and time.monotonic() < end:
        time.sleep(0.1)
    marks["end"] = (rss_kib(pid), fd_count(pid))
    counts = {k: plan.count(k) for k in set(plan)}
    print(f"     {TOTAL} requests in {took:.1f} s: {counts}")
    check(not failures_seen, f"every answer is the expected one ({len(failures_seen)} not: {failures_seen[:5]})")
    (rss0, fd0), (rss1, fd1) = marks["warm"], marks["end"]
    growth = (rss1 - rss0) / rss0 * 100
    check(growth < 5.0, f"resident memory grows {growth:+.2f} % from the warm-up point ({rss0 / 1024:.1f} MiB) to the end "
          f"({rss1 / 1024:.1f} MiB), under 5 %")
    check(fd1 <= fd0, f"open file descriptors: {fd0} after the warm-up, {fd1} at the end")
    check(srv.metric("asr_queue_depth") == 0 and srv.metric("asr_upload_bytes_in_flight") == 0,
          "the queue and the upload budget are empty")
    status, body = post(srv.port, [("model", "whisper-1", None), ("file", JFK, "jfk.wav")])
    check(status == 200 and body.get("text") == JFK_TEXT, "after: jfk.wav still transcribes to the golden text")
    n200 = srv.metric('asr_http_requests_total{route="/v1/audio/transcriptions",status="200"}')
    check(n200 >= counts.get("valid", 0), f"/metrics counts the transcriptions ({n200:.0f})")
finally:
    srv.stop()
finish()
