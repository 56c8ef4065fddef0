"""Shared helpers for the `asr serve` integration tests (tests/integration/server_*.py).

Starts a real server on 127.0.0.1 with --port 0, learns the port from its
"listening" log line, keeps every stderr line for log assertions, and stops
it with SIGTERM, checking that it exits 0.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from checks import check, failures, finish  # noqa: E402,F401  (re-exported to the server tests)

ASR_BIN = os.environ.get("ASR_BIN", "build/asr")
SHARED = os.environ.get("ASR_SHARED", os.path.join(os.path.dirname(__file__), "../../../../shared"))
TESTDATA = os.path.join(SHARED, "testdata")
MODEL = os.environ.get("ASR_TEST_MODEL", os.path.expanduser("~/.cache/asr/models/tiny.en"))
# ASan builds decode several times slower: scale waits, not expectations.
SLOW = 4.0 if "san" in os.environ.get("BUILD", "") else 1.0

# The oracle for jfk.wav: faster-whisper's greedy output on the same tiny.en
# weights (tests/golden/tiny.en.json). tiny.en leaves out the commas of the
# ground-truth sentence in ../shared/testdata/README.md; the words all match.
def _golden_jfk():
    import json
    path = os.path.join(os.path.dirname(__file__), "../../golden/tiny.en.json")
    with open(path) as f:
        clips = json.load(f)["clips"]
    return next(c["greedy"]["text"] for c in clips if c["id"].endswith("jfk.wav"))


JFK_TEXT = _golden_jfk()

def data(name):
    return os.path.join(TESTDATA, name)


class Server:
    def __init__(self, *args, env=None, name="server"):
        self.args = [ASR_BIN, "serve", "--port", "0", "--host", "127.0.0.1", "--model", MODEL, *args]
        self.lines = []
        self.name = name
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("ASR_") and k not in ("ASR_MODELS_DIR",):
                full_env.pop(k)  # options come from args only, unless a test sets env
        full_env.update(env or {})
        self.proc = subprocess.Popen(self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=full_env)
        self.port = None
        ready = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                if self.port is None:
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if obj.get("event") == "listening":
                        self.port = obj["port"]
                        ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        ready.wait(60 * SLOW)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError(f"{name} did not start: " + "\n".join(self.lines[-20:]))
        self.url = f"http://127.0.0.1:{self.port}"

    def log_events(self, event="request"):
        out = []
        for line in list(self.lines):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("event") == event:
                out.append(obj)
        return out

    def metric(self, name_with_labels):
        import requests
        text = requests.get(self.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name_with_labels + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self, expect_rc=0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "hung"
        self.pump.join(5)
        check(rc == expect_rc, f"{self.name} exits {expect_rc} on SIGTERM (got {rc})")
        nonjson = [l for l in self.lines if not l.startswith("{")]
        check(not nonjson, f"{self.name}: every stderr line is JSON (stray: {nonjson[:3]})")
        return rc


def raw_request(port, payload, read_timeout=10.0, delay_between=None):
    """Send raw bytes (optionally one byte at a time with a delay) and return what comes back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        if delay_between is None:
            s.sendall(payload)
        else:
            for i in range(len(payload)):
                try:
                    s.sendall(payload[i:i + 1])
                except OSError:
                    break
                time.sleep(delay_between)
        return recv_all(s)
    finally:
        s.close()


def recv_all(s):
    """Everything the server sends on socket s until it closes, resets or the socket's timeout passes."""
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def _crc8(b):
    c = 0
    for x in b:
        c ^= x
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def _crc16(b):
    c = 0
    for x in b:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def dense_flac(n_frames, size=None):
    """Valid FLAC: n_frames CONSTANT (silent) frames of 65535 samples at 8 kHz, 8.2 s of audio per 14
    bytes (real encoders write digital silence at ~0.005 s per byte); STREAMINFO leaves the length
    unknown. With size, a PADDING block pads the file to size bytes."""
    # last-block flag, type 0, length 34; min/max block size; frame sizes 0; rate; mono; 16 bits
    last = 0 if size else 1
    bits = (last << 1023) | (34 << 992) | (65535 << 976) | (65535 << 960) | (8000 << 892) | (15 << 884)
    info = (bits >> (1024 - 8 * 38)).to_bytes(38, "big")  # header (4 bytes) + STREAMINFO (34)
    frames = []
    for i in range(n_frames):
        num = bytes([i]) if i < 0x80 else bytes([0xC0 | i >> 6, 0x80 | (i & 0x3F)])
        head = b"\xff\xf8\x74\x08" + num + b"\xff\xfe"
        frame = head + bytes([_crc8(head)]) + b"\x00\x10\x00"
        frames.append(frame + struct.pack(">H", _crc16(frame)))
    frames = b"".join(frames)
    if not size:
        return b"fLaC" + info + frames
    pad = size - 4 - 38 - 4 - len(frames)
    return b"fLaC" + info + bytes([0x81]) + pad.to_bytes(3, "big") + bytes(pad) + frames


def parse_raw_response(raw):
    """(status, headers dict lower-case, body bytes) of one HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, raw
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def multipart(fields, boundary="asrtestboundary"):
    """Build a multipart/form-data body; fields: list of (name, value bytes|str, filename or None)."""
    out = []
    for name, value, filename in fields:
        if isinstance(value, str):
            value = value.encode()
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode())
        if filename:
            out.append(b"Content-Type: application/octet-stream\r\n")
        out.append(b"\r\n" + value + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def long_speech_wav(repeats=30):
    """jfk.wav's speech `repeats` times over (11 s each; 30: 330 s) as one WAV's bytes: audio
    longer than one 30 s window, or a job that runs for seconds, long past the detection of a
    disconnect or a signal (the 60 s multilingual clip takes tiny.en under one second and could
    finish first)."""
    import io
    import wave
    with wave.open(data("jfk.wav"), "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setparams(params)
        out.writeframes(frames * repeats)
    return buf.getvalue()


def transcription_head(ctype, length, extra=""):
    """The head of a raw POST /v1/audio/transcriptions with a body of `length` bytes of type
    `ctype`; `extra` holds further header lines, each ending in CRLF."""
    return (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def open_abandoned_upload(port, payload, name="long.wav"):
    """Send a whole transcription request on a raw socket and return the socket unread: the
    caller closes it to play a client that disconnects while its job runs."""
    body, ctype = multipart([("model", "whisper-1", None), ("file", payload, name)])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(transcription_head(ctype, len(body)) + body)
    return s


def is_openai_error(resp_json, param=None):
    e = resp_json.get("error") if isinstance(resp_json, dict) else None
    if not isinstance(e, dict):
        return False
    if set(e) != {"message", "type", "param", "code"} or not e["message"]:
        return False
    return param is None or e["param"] == param
