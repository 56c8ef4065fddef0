"""`asr serve` shutdown under load (issue 11, resource tests): SIGTERM with a job running, jobs queued and a
client in the middle of its upload drains — every client gets an answer (200 or OpenAI error JSON) or a
closed connection within grace + a bound, none is left hanging, and the server exits 0; a second SIGTERM
during a long drain cuts it short (the server is gone within a few seconds, not the 30 s grace), every
time, whichever thread the kernel hands the signal to."""
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import SLOW, Server, check, data, finish, is_openai_error, multipart, transcription_head  # noqa: E402

import requests  # noqa: E402

with open(data("jfk.wav"), "rb") as f:
    JFK = f.read()


def long_wav(repeats):
    """jfk.wav's samples `repeats` times over (11 s each): a job that keeps the only worker busy for seconds."""
    with wave.open(data("jfk.wav"), "rb") as w:
        pcm = w.readframes(w.getnframes())
    pcm = pcm * repeats
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
            + b"data" + struct.pack("<I", len(pcm)) + pcm)


LONG = long_wav(16)  # 176 s of speech
OUTCOME_BOUND = 8.0 * SLOW  # past the grace: the 5 s the drain gives aborted jobs, plus slack


def post_job(url, audio, results, key, timeout):
    t0 = time.monotonic()
    try:
        r = requests.post(url + "/v1/audio/transcriptions", files={"file": ("a.wav", audio)},
                          data={"model": "whisper-1"}, timeout=timeout)
        try:
            body = r.json()
        except ValueError:
            body = None
        results[key] = ("http", r.status_code, body, time.monotonic())
    except requests.exceptions.ConnectionError as e:
        results[key] = ("closed", None, str(e)[:120], time.monotonic())
    except requests.exceptions.Timeout:
        results[key] = ("hung", None, None, time.monotonic())
    _ = t0


def answered_ok(outcome):
    """A response that is a transcription or an OpenAI error JSON, or a connection the server closed."""
    kind, status, body, _ = outcome
    if kind == "closed":
        return True
    if kind != "http":
        return False
    if status == 200:
        return isinstance(body, dict) and isinstance(body.get("text"), str)
    return status >= 400 and is_openai_error(body)


def unblocking_thread(pid):
    """A thread of pid other than the main one that does not block SIGTERM (OpenBLAS starts its
    threads before main blocks the stop signals), or None. kill() of its id is taken by that
    thread's handler, not by the main thread's sigtimedwait: the case a second SIGTERM can fall in."""
    bit = 1 << (signal.SIGTERM - 1)
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        if tid == pid:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                blk = next(int(l.split()[1], 16) for l in f if l.startswith("SigBlk:"))
        except (OSError, StopIteration):
            continue
        if not blk & bit:
            return tid
    return None


def wait_metric(srv, name, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred(srv.metric(name)):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False


# --- 1. SIGTERM with one job running, three queued and one client mid-upload --------------------------------
GRACE = 2.0
srv = Server("--workers", "1", "--threads", "1", "--queue", "8", "--grace", str(GRACE), name="drain server")
results = {}
threads = [threading.Thread(target=post_job, args=(srv.url, LONG, results, "running", 120 * SLOW))]
threads[0].start()
check(wait_metric(srv, "asr_workers_busy", lambda v: v >= 1, 20 * SLOW), "the long job is running")
for i in range(3):
    t = threading.Thread(target=post_job, args=(srv.url, JFK, results, f"queued{i}", 120 * SLOW))
    t.start()
    threads.append(t)
check(wait_metric(srv, "asr_queue_depth", lambda v: v >= 3, 20 * SLOW), "three jobs wait in the queue")

# A client that sends its headers and half its body, then stalls.
body, ctype = multipart([("model", "whisper-1", None), ("file", JFK, "jfk.wav")])
mid = socket.create_connection(("127.0.0.1", srv.port), timeout=30 * SLOW)
mid.sendall(transcription_head(ctype, len(body)) + body[:len(body) // 2])
time.sleep(0.3)

t_term = time.monotonic()
srv.proc.send_signal(signal.SIGTERM)
mid_outcome = None
mid.settimeout(GRACE + OUTCOME_BOUND)
try:
    got = b""
    while True:
        b = mid.recv(65536)
        if not b:
            break
        got += b
    mid_outcome = ("answer " + got[:12].decode("latin-1")) if got else "closed"
except ConnectionResetError:
    mid_outcome = "closed"
except socket.timeout:
    mid_outcome = "hung"
mid_at = time.monotonic() - t_term
mid.close()
check(mid_outcome != "hung" and mid_at <= GRACE + OUTCOME_BOUND,
      f"the client stalled mid-upload gets an answer or a closed connection ({mid_outcome}) {mid_at:.1f} s after SIGTERM "
      f"(bound {GRACE + OUTCOME_BOUND:.0f} s)")
for t in threads:
    t.join(GRACE + OUTCOME_BOUND + 5)
try:
    rc = srv.proc.wait(timeout=GRACE + OUTCOME_BOUND + 5)
except Exception:
    rc = "hung"
exit_at = time.monotonic() - t_term
check(rc == 0, f"the server exits 0 after the drain (got {rc})")
check(exit_at <= GRACE + OUTCOME_BOUND, f"it exits {exit_at:.1f} s after SIGTERM, within grace {GRACE:.0f} s + "
      f"{OUTCOME_BOUND:.0f} s")
for key in ["running", "queued0", "queued1", "queued2"]:
    o = results.get(key)
    ok = o is not None and answered_ok(o) and o[3] - t_term <= GRACE + OUTCOME_BOUND
    detail = (o[0], o[1], (o[2].get("error", {}).get("code") if isinstance(o[2], dict) and o[2].get("error") else
                          "text" if isinstance(o[2], dict) else o[2]), round(o[3] - t_term, 1)) if o else None
    check(ok, f"{key} client: an answer or a closed connection within the bound {detail}")
# the long job (176 s of audio) cannot finish inside a 2 s grace: it is cancelled with an error, not a hang
o = results.get("running")
check(o is not None and o[0] == "http" and o[1] == 503 and is_openai_error(o[2]),
      f"the running job cut at the grace's end answers 503 with error JSON ({o and o[:2]})")
stopped = srv.log_events("stopped")
check(len(stopped) == 1 and stopped[0].get("cancelled_requests", 0) >= 1,
      f"the log's stopped event counts the cancelled requests ({stopped})")
srv.stop()  # already exited: checks the log is all JSON


# --- 2. A second SIGTERM during a 30 s drain cuts it short, every time ---------------------------------------
GRACE2 = 30 * SLOW  # well past the bound below, so a second signal that is not seen fails the check
for attempt in range(4):
    srv = Server("--workers", "1", "--threads", "1", "--queue", "8", "--grace", str(GRACE2),
                 name=f"second-signal server {attempt}")
    results = {}
    threads = [threading.Thread(target=post_job, args=(srv.url, LONG, results, "running", 120 * SLOW))]
    threads += [threading.Thread(target=post_job, args=(srv.url, JFK, results, f"queued{i}", 120 * SLOW)) for i in range(2)]
    threads[0].start()
    wait_metric(srv, "asr_workers_busy", lambda v: v >= 1, 20 * SLOW)
    for t in threads[1:]:
        t.start()
    wait_metric(srv, "asr_queue_depth", lambda v: v >= 2, 20 * SLOW)
    t_term = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    draining = any(e.get("event") == "draining" for e in srv.log_events("draining"))
    # even attempts: to the process; odd ones: to a thread that does not block the signal
    target = srv.proc.pid if attempt % 2 == 0 else unblocking_thread(srv.proc.pid)
    check(target is not None, f"attempt {attempt}: a thread that does not block SIGTERM exists (OpenBLAS's)")
    os.kill(target or srv.proc.pid, signal.SIGTERM)
    try:
        rc = srv.proc.wait(timeout=GRACE2 + 10 * SLOW)
    except Exception:
        srv.proc.kill()
        rc = "hung"
    took = time.monotonic() - t_term
    for t in threads:
        t.join(10)
    check(draining and rc == 0 and took <= 0.5 + OUTCOME_BOUND,
          f"attempt {attempt}: a second SIGTERM ({'process' if target == srv.proc.pid else 'a worker thread'}) 0.5 s into a {GRACE2:.0f} s drain: exit {rc} after {took:.1f} s "
          f"(bound {0.5 + OUTCOME_BOUND:.0f} s)")
    bad = {k: o[:2] for k, o in results.items() if not answered_ok(o)}
    check(len(results) == 3 and not bad, f"attempt {attempt}: every client answered or closed ({bad or len(results)})")
    srv.stop()

finish()
