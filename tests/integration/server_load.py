"""`asr serve` under load: 16 concurrent clients x 4 requests all answered correctly; a full
queue answers 429 + Retry-After at once; a disconnecting client cancels its job; SIGTERM with
4 requests in flight lets all 4 finish with 200 and exits 0."""
import glob
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import JFK_TEXT, SLOW, Server, check, data, finish, long_speech_wav, open_abandoned_upload  # noqa: E402

import requests  # noqa: E402


def transcribe(url, name, payload, session=None):
    t0 = time.monotonic()
    r = (session or requests).post(url + "/v1/audio/transcriptions", files={"file": (name, payload)},
                                   data={"model": "whisper-1"}, timeout=600 * SLOW)
    return r, time.monotonic() - t0


with open(data("jfk.wav"), "rb") as f:
    JFK = f.read()
clips = {"jfk.wav": JFK}
for path in sorted(glob.glob("/usr/share/pocketsphinx/test/data/cards/*.wav"))[:3]:
    with open(path, "rb") as f:
        clips[os.path.basename(path)] = f.read()

# --- 16 concurrent clients x 4 requests ---------------------------------------------------------
srv = Server("--workers", "2", "--threads", "1", "--queue", "64", name="load server")
try:
    # Oracle: each clip answered alone first; under load every answer must be identical.
    expected = {}
    for name, payload in clips.items():
        r, _ = transcribe(srv.url, name, payload)
        expected[name] = r.json().get("text") if r.status_code == 200 else None
    check(expected["jfk.wav"] == JFK_TEXT, "alone: exact jfk text")
    names = list(clips)
    jobs = [(c, k, names[(c + k) % len(names)]) for c in range(16) for k in range(4)]
    results = {}

    def client(c):
        with requests.Session() as s:
            for k in range(4):
                name = names[(c + k) % len(names)]
                r, _ = transcribe(srv.url, name, clips[name], s)
                results[(c, k)] = (name, r.status_code, r.json().get("text") if r.status_code == 200 else r.text)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    # While the load runs, probes and metrics are answered at once (HTTP threads never decode).
    time.sleep(0.5)
    probe_t = time.monotonic()
    hz = requests.get(srv.url + "/healthz", timeout=5)
    mt = requests.get(srv.url + "/metrics", timeout=5)
    probe_s = time.monotonic() - probe_t
    check(hz.status_code == 200 and mt.status_code == 200 and probe_s < 1.0,
          f"under load, /healthz and /metrics answer in {probe_s:.3f}s")
    busy = srv.metric("asr_workers_busy")
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    ok = [v for v in results.values() if v[1] == 200 and v[2] == expected[v[0]]]
    check(len(results) == 64 and len(ok) == 64,
          f"16 clients x 4 requests: {len(ok)}/64 answered 200 with the same text as alone ({wall:.1f}s); "
          f"wrong: {[v for v in results.values() if v not in ok][:2]}")
    check(busy == 2, f"both workers busy under load (asr_workers_busy={busy})")
    check(srv.metric('asr_http_requests_total{route="/v1/audio/transcriptions",status="200"}') == 64 + len(clips),
          "metrics count every transcription")
finally:
    srv.stop()

# --- --queue 2: excess requests get 429 at once, all others succeed -------------------------------
srv = Server("--workers", "1", "--queue", "2", name="queue-2 server")
try:
    outcomes = []

    def one(i):
        r, took = transcribe(srv.url, "jfk.wav", JFK)
        outcomes.append((r.status_code, took, r.headers.get("retry-after"),
                         r.json() if r.headers.get("content-type") == "application/json" else r.text))

    with ThreadPoolExecutor(10) as ex:
        list(ex.map(one, range(10)))
    ok = [o for o in outcomes if o[0] == 200]
    busy = [o for o in outcomes if o[0] == 429]
    check(len(ok) + len(busy) == 10, f"queue 2: every request is 200 or 429 ({[o[0] for o in outcomes]})")
    check(len(ok) >= 3 and all(o[3].get("text") == JFK_TEXT for o in ok), f"queue 2: {len(ok)} succeed with the jfk text")
    check(len(busy) >= 1, f"queue 2: {len(busy)} get 429")
    check(all(o[1] < 1.0 * SLOW for o in busy), f"429s answered promptly ({[round(o[1], 3) for o in busy]})")
    check(all(o[2] and o[2].isdigit() and 1 <= int(o[2]) <= 120 for o in busy),
          f"429s carry Retry-After in 1..120 ({[o[2] for o in busy]})")
    check(all(o[3]["error"]["code"] == "queue_full" for o in busy), "429 body is OpenAI error JSON, code queue_full")

    # Queue policy: the smallest upload goes first, so a short clip queued behind a long file
    # overtakes it (A runs; B, 33 s of WAV, waits; C, a 4 s MP3, arrives later and runs before B).
    with open(data("hotwords.mp3"), "rb") as f:
        short_mp3 = f.read()
    finished = {}

    def timed(tag, name, payload):
        r, _ = transcribe(srv.url, name, payload)
        finished[tag] = (time.monotonic(), r.status_code)

    order = [("A", "jfk.wav", JFK, "asr_workers_busy"), ("B", "jfk3.wav", long_speech_wav(3), "asr_queue_depth"),
             ("C", "hotwords.mp3", short_mp3, "asr_queue_depth")]
    threads = []
    for i, (tag, name, payload, gauge) in enumerate(order):
        threads.append(threading.Thread(target=timed, args=(tag, name, payload)))
        threads[-1].start()
        want = 1 if tag in ("A", "B") else 2
        deadline = time.monotonic() + 30 * SLOW
        while srv.metric(gauge) < want and time.monotonic() < deadline:
            time.sleep(0.02)
    for t in threads:
        t.join()
    check(all(finished.get(k, (0, 0))[1] == 200 for k in "ABC"), f"queue order: all three answered 200 ({finished})")
    check("B" in finished and "C" in finished and finished["C"][0] < finished["B"][0],
          "queue order: the 4 s clip queued after 33 s of audio is answered first")

    # A client that disconnects cancels its job; the worker is free again at once.
    s = open_abandoned_upload(srv.port, long_speech_wav())
    deadline = time.monotonic() + 30 * SLOW
    while srv.metric("asr_workers_busy") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    s.close()
    t0 = time.monotonic()
    while srv.metric('asr_jobs_total{outcome="cancelled"}') < 1 and time.monotonic() - t0 < 10 * SLOW:
        time.sleep(0.05)
    took = time.monotonic() - t0
    check(srv.metric('asr_jobs_total{outcome="cancelled"}') == 1, f"disconnected client's job cancelled after {took:.2f}s")
    check(srv.metric("asr_workers_busy") == 0, "worker free after the cancel")
    r, _ = transcribe(srv.url, "jfk.wav", JFK)
    check(r.status_code == 200 and r.json()["text"] == JFK_TEXT, "next request after the cancel succeeds")
finally:
    srv.stop()

# --- SIGTERM with 4 requests in flight --------------------------------------------------------------
srv = Server("--workers", "2", "--threads", "1", "--queue", "8", "--grace", "300", name="drain server")
try:
    probe = requests.Session()
    check(probe.get(srv.url + "/readyz", timeout=5).status_code == 200, "ready before SIGTERM")
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(transcribe(srv.url, "jfk.wav", JFK)[0]))
               for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30 * SLOW
    while srv.metric("asr_http_requests_in_flight") < 5 and time.monotonic() < deadline:  # 4 + this scrape
        time.sleep(0.02)
    check(srv.metric("asr_http_requests_in_flight") >= 5, "4 requests in flight")
    srv.proc.send_signal(15)
    time.sleep(0.2)
    r = probe.get(srv.url + "/readyz", timeout=5)  # the kept-alive connection still answers
    check(r.status_code == 503 and r.json().get("status") == "draining", f"/readyz 503 while draining ({r.status_code})")
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        check(False, "new connections are refused while draining")
    except OSError:
        check(True, "new connections are refused while draining")
    for t in threads:
        t.join()
    check(len(answers) == 4 and all(a.status_code == 200 and a.json()["text"] == JFK_TEXT for a in answers),
          f"all 4 in-flight requests complete with 200 and the jfk text ({[a.status_code for a in answers]})")
    rc = srv.proc.wait(timeout=60 * SLOW)
    check(rc == 0, f"server exits 0 after draining (rc={rc})")
    check(any(e.get("cancelled_requests") == 0 for e in srv.log_events("stopped")), "no request was cancelled")
finally:
    srv.stop()

# --- a second signal during the drain cancels what is left and exits 0 at once ---------------------
srv = Server("--workers", "1", "--grace", "600", name="impatient server")
try:
    answers = []
    t = threading.Thread(target=lambda: answers.append(transcribe(srv.url, "long.wav", long_speech_wav())[0]))
    t.start()
    deadline = time.monotonic() + 30 * SLOW
    while srv.metric("asr_workers_busy") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.proc.send_signal(15)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(2)
    rc = srv.proc.wait(timeout=60 * SLOW)
    took = time.monotonic() - t0
    t.join()
    check(rc == 0 and took < 10 * SLOW, f"SIGTERM then SIGINT: exits 0 after {took:.1f}s without waiting the 600 s grace")
    check(answers and answers[0].status_code == 503 and answers[0].json()["error"]["code"] == "cancelled",
          f"the cancelled request is answered 503 ({answers[0].status_code if answers else None})")
    check(any(e.get("cancelled_requests") == 1 for e in srv.log_events("stopped")), "the stop log counts 1 cancelled")
finally:
    srv.stop()
finish()
