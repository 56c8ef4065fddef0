"""`asr serve` with one decode batch across requests (--decode-batch, the default): 8 concurrent
requests get the texts and tokens of 8 requests answered one at a time by a server that does not
batch (float32, and the default compute type); the decoder steps were shared (metrics); a client
that disconnects mid-batch leaves the others' answers unchanged; SIGTERM drains a running batch."""
import glob
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import SLOW, Server, check, data, finish, long_speech_wav, open_abandoned_upload  # noqa: E402

import requests  # noqa: E402

paths = [data("jfk.wav")] + sorted(glob.glob("/usr/share/pocketsphinx/test/data/cards/*.wav"))[:2] + \
    sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))[:5]
clips = [(os.path.basename(p), open(p, "rb").read()) for p in paths]
check(len(clips) == 8, f"8 real clips ({len(clips)}: jfk, 2 cards, 5 librivox)")


def transcribe(url, name, payload):
    r = requests.post(url + "/v1/audio/transcriptions", files={"file": (name, payload)},
                      data={"model": "whisper-1", "response_format": "verbose_json"}, timeout=600 * SLOW)
    if r.status_code != 200:
        return (r.status_code, r.text)
    j = r.json()
    return (200, j["text"], [s["tokens"] for s in j["segments"]])


def concurrently(url, items):
    out = [None] * len(items)

    def go(i):
        out[i] = transcribe(url, *items[i])
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    return threads, out


def sequential_answers(compute_type):
    srv = Server("--compute-type", compute_type, "--decode-batch", "0", "--workers", "1", "--threads", "2",
                 name=f"unbatched {compute_type} server")
    try:
        return [transcribe(srv.url, n, p) for n, p in clips]
    finally:
        srv.stop()


def batch_metrics(srv):
    total = srv.metric('asr_decode_batch_sequences_sum{model="tiny.en"}')
    steps = srv.metric('asr_decode_batch_sequences_count{model="tiny.en"}')
    return total, steps


for compute_type in ("float32", "auto"):
    alone = sequential_answers(compute_type)
    check(all(a[0] == 200 and a[1].strip() for a in alone), f"{compute_type}: 8 clips answered alone")
    srv = Server("--compute-type", compute_type, "--workers", "8", "--threads", "2", "--queue", "16",
                 name=f"batched {compute_type} server")
    try:
        threads, together = concurrently(srv.url, clips)
        for t in threads:
            t.join()
        same = [i for i in range(8) if together[i] == alone[i]]
        check(len(same) == 8, f"{compute_type}: 8 concurrent requests give the texts and tokens of 8 sequential ones "
              f"({len(same)}/8; differing: {[clips[i][0] for i in range(8) if i not in same]})")
        total, steps = batch_metrics(srv)
        check(steps > 0 and total / steps > 1.5,
              f"{compute_type}: decoder steps were shared ({total:.0f} sequences in {steps:.0f} steps)")
        check(srv.metric('asr_decode_sequences_active{model="tiny.en"}') == 0 and
              srv.metric('asr_scheduler_queued{model="tiny.en"}') == 0, f"{compute_type}: nothing left decoding")
    finally:
        srv.stop()

# --- a client that disconnects mid-batch: the others' answers are unchanged ----------------------------
alone = sequential_answers("float32")
srv = Server("--compute-type", "float32", "--workers", "8", "--threads", "2", "--queue", "16",
             name="cancel server")
try:
    s = open_abandoned_upload(srv.port, long_speech_wav())
    deadline = time.monotonic() + 30 * SLOW
    while srv.metric('asr_decode_sequences_active{model="tiny.en"}') < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    threads, together = concurrently(srv.url, clips[1:])
    time.sleep(0.3 * SLOW)
    s.close()
    for t in threads:
        t.join()
    check(together == alone[1:], f"7 requests that shared steps with a cancelled one: answers unchanged "
          f"({sum(a == b for a, b in zip(together, alone[1:]))}/7)")
    deadline = time.monotonic() + 10 * SLOW
    while srv.metric('asr_jobs_total{outcome="cancelled"}') < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    check(srv.metric('asr_jobs_total{outcome="cancelled"}') == 1, "the disconnected client's job was cancelled")
finally:
    srv.stop()

# --- SIGTERM drains a running batch ------------------------------------------------------------------------
srv = Server("--compute-type", "float32", "--workers", "8", "--threads", "2", "--queue", "16", "--grace", "300",
             name="drain server")
try:
    threads, together = concurrently(srv.url, clips)
    deadline = time.monotonic() + 30 * SLOW
    while srv.metric('asr_decode_sequences_active{model="tiny.en"}') < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    active = srv.metric('asr_decode_sequences_active{model="tiny.en"}')
    srv.proc.send_signal(15)
    for t in threads:
        t.join()
    check(active >= 2, f"SIGTERM sent while {active:.0f} sequences were decoding together")
    check(together == alone, f"every request of the batch completes with its answer "
          f"({sum(a == b for a, b in zip(together, alone))}/8: {[a[0] for a in together]})")
    rc = srv.proc.wait(timeout=60 * SLOW)
    check(rc == 0, f"server exits 0 after draining (rc={rc})")
    check(any(e.get("cancelled_requests") == 0 for e in srv.log_events("stopped")), "no request was cancelled")
finally:
    srv.stop()

finish()
