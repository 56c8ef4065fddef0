"""`asr serve` realtime transcription over WebSocket (GET /v1/realtime?intent=transcription): a clip
streamed in 100 ms chunks gives deltas and the file transcription's words; server VAD splits two
utterances into two items; bad events get `error` events, bad frames close codes; idle sessions
close; auth as the rest of the API; the server stays up throughout."""
import base64
import json
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from server_lib import SLOW, Server, check, data, finish  # noqa: E402
from pcm16 import read_wav  # noqa: E402

import numpy as np  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402  (websocket-client)

KEY = "rt-test-key"
IDLE_S = 3
# header/body timeouts of 2 s: HTTP deadlines must not reach an upgraded connection (sessions below last longer)
srv = Server("--workers", "1", "--api-key", KEY, "--header-timeout", "2", "--body-timeout", "2", name="server",
             env={"ASR_REALTIME_IDLE_S": str(IDLE_S), "ASR_REALTIME_MAX_MESSAGE_BYTES": "1048576"})
WS_URL = f"ws://127.0.0.1:{srv.port}/v1/realtime?intent=transcription"
AUTH = {"Authorization": f"Bearer {KEY}"}


def words(text):
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def to_24k_pcm16(samples16k):
    """16 kHz float → 24 kHz little-endian PCM16 (band-limited: FFT zero-padding)."""
    n = len(samples16k)
    spec = np.fft.rfft(samples16k)
    m = n * 3 // 2
    up = np.fft.irfft(spec, m) * (m / n)
    return np.clip(np.round(up * 32767), -32768, 32767).astype("<i2").tobytes()


def connect(**kw):
    ws = websocket.create_connection(WS_URL, timeout=120 * SLOW, **kw)
    first = json.loads(ws.recv())
    return ws, first


def send(ws, obj):
    ws.send(json.dumps(obj))


def stream(ws, pcm, chunk_ms=100):
    step = 24000 * 2 * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        send(ws, {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + step]).decode()})


def collect(ws, until, limit_s=120):
    """Events until until(event) is true (or the time runs out)."""
    events = []
    deadline = time.time() + limit_s * SLOW
    while time.time() < deadline:
        ws.settimeout(max(0.1, deadline - time.time()))
        try:
            ev = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        events.append(ev)
        if until(ev):
            break
    return events


jfk = read_wav(data("jfk.wav"))
JFK_PCM24 = to_24k_pcm16(jfk)

try:
    with open(data("jfk.wav"), "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers=AUTH, files={"file": ("jfk.wav", f.read())},
                          data={"model": "whisper-1"}, timeout=120 * SLOW)
    FILE_TEXT = r.json().get("text", "")
    check(r.status_code == 200 and len(words(FILE_TEXT)) > 10, f"file transcription as reference: {FILE_TEXT!r}")

    # --- auth --------------------------------------------------------------------------------------
    try:
        websocket.create_connection(WS_URL, timeout=10)
        check(False, "no API key: the handshake is refused")
    except websocket.WebSocketBadStatusException as e:
        check(e.status_code == 401 and b"invalid_api_key" in (e.resp_body or b""), f"no API key: 401 invalid_api_key ({e.status_code})")
    try:
        websocket.create_connection(WS_URL, timeout=10, header=["Authorization: Bearer wrong"])
        check(False, "wrong API key: the handshake is refused")
    except websocket.WebSocketBadStatusException as e:
        check(e.status_code == 401, f"wrong API key: 401 ({e.status_code})")
    ws, first = connect(subprotocols=["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"])
    check(first.get("type") == "transcription_session.created" and first["session"]["input_audio_format"] == "pcm16",
          f"key as the browser subprotocol: session created ({first.get('type')})")
    ws.close()
    r = requests.get(WS_URL.replace("ws://", "http://"), headers=AUTH, timeout=10)
    check(r.status_code == 426 and r.json()["error"]["code"] == "upgrade_required", f"plain GET: 426 upgrade_required ({r.status_code})")

    # --- the clip in 100 ms chunks, manual commit (a beta client: OpenAI-Beta: realtime=v1) ----------
    ws, first = connect(header=["Authorization: Bearer " + KEY, "OpenAI-Beta: realtime=v1"])
    check(first.get("type") == "transcription_session.created" and first["session"].get("input_audio_format") == "pcm16",
          f"OpenAI-Beta: realtime=v1 → the beta transcription_session.created, beta session shape ({first.get('type')})")
    send(ws, {"type": "transcription_session.update", "session": {
        "input_audio_format": "pcm16", "input_audio_transcription": {"model": "whisper-1", "language": "en"},
        "turn_detection": None}})
    upd = collect(ws, lambda e: e["type"] in ("transcription_session.updated", "error"))
    check(upd and upd[-1]["type"] == "transcription_session.updated" and upd[-1]["session"]["turn_detection"] is None,
          f"session updated: no turn detection ({upd[-1] if upd else None})")
    t0 = time.time()
    stream(ws, JFK_PCM24)
    send(ws, {"type": "input_audio_buffer.commit"})
    evs = collect(ws, lambda e: e["type"] in ("conversation.item.input_audio_transcription.completed", "error"))
    types = [e["type"] for e in evs]
    deltas = [e for e in evs if e["type"] == "conversation.item.input_audio_transcription.delta"]
    done = [e for e in evs if e["type"] == "conversation.item.input_audio_transcription.completed"]
    committed = [e for e in evs if e["type"] == "input_audio_buffer.committed"]
    check(committed and done and committed[0]["item_id"] == done[0]["item_id"], f"committed, then completed, same item ({types})")
    check(len(deltas) >= 1 and all(d["item_id"] == done[0]["item_id"] and d["content_index"] == 0 for d in deltas),
          f"{len(deltas)} delta event(s) for the item before it completed")
    transcript = done[0]["transcript"] if done else ""
    check(words(transcript) == words(FILE_TEXT), f"completed transcript has the file transcription's words: {transcript!r}")
    check("".join(d["delta"] for d in deltas) == transcript, "the deltas add up to the transcript, byte for byte")
    print(f"     streamed 11 s clip → completed in {time.time() - t0:.2f} s")

    # --- bad events on the same session: error events, session continues ---------------------------
    ws.send("{not json")
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["type"] == "error" and e[0]["error"]["code"] == "invalid_json", f"malformed JSON → error event ({e})")
    send(ws, {"type": "response.create", "event_id": "evt_42"})
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["type"] == "error" and e[0]["error"]["code"] == "unknown_event" and e[0]["error"]["event_id"] == "evt_42",
          f"unknown event type → error event naming the client's event_id ({e})")
    send(ws, {"type": "input_audio_buffer.append", "audio": "***"})
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["type"] == "error" and e[0]["error"]["param"] == "audio", f"bad base64 → error event ({e})")
    send(ws, {"type": "input_audio_buffer.commit"})
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["error"]["code"] == "input_audio_buffer_commit_empty", f"commit of an empty buffer → error ({e})")
    send(ws, {"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}})
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["type"] == "error" and e[0]["error"]["param"] == "session.turn_detection.type", f"unsupported turn detection → error ({e})")
    stream(ws, JFK_PCM24[:48000])
    send(ws, {"type": "input_audio_buffer.clear"})
    e = collect(ws, lambda e: True, 10)
    check(e and e[0]["type"] == "input_audio_buffer.cleared", "clear → cleared")
    ws.close()

    # --- server VAD: two utterances 2 s apart → two items (a GA client: no beta header) --------------
    ws, first = connect(header=["Authorization: Bearer " + KEY])
    check(first.get("type") == "session.created" and first["session"].get("type") == "transcription"
          and first["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000},
          f"no beta header → GA's session.created with a transcription session ({first})")
    send(ws, {"type": "session.update", "session": {"input_audio_transcription": {"language": "en"},
              "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 1200}}})
    upd = collect(ws, lambda e: e["type"] in ("session.updated", "error"))
    check(upd and upd[-1]["type"] == "session.updated" and upd[-1]["session"]["turn_detection"]["type"] == "server_vad",
          "session.update → session.updated with server_vad")
    first_part, second_part = jfk[:int(3.2 * 16000)], jfk[int(5.0 * 16000):]
    silence = np.zeros(2 * 16000, dtype=np.float32)
    stream(ws, to_24k_pcm16(np.concatenate([silence[:8000], first_part, silence, second_part, silence])))
    n_done = [0]

    def two_done(e):
        n_done[0] += e["type"] == "conversation.item.input_audio_transcription.completed"
        return n_done[0] == 2 or e["type"] == "error"
    evs = collect(ws, two_done)
    started = [e for e in evs if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e for e in evs if e["type"] == "input_audio_buffer.speech_stopped"]
    done = [e for e in evs if e["type"] == "conversation.item.input_audio_transcription.completed"]
    check(len(started) == 2 and len(stopped) == 2 and len(done) == 2,
          f"two speech_started / speech_stopped / completed ({[e['type'] for e in evs]})")
    if len(done) == 2:
        check(done[0]["item_id"] != done[1]["item_id"] and started[0]["item_id"] == done[0]["item_id"],
              "two distinct items, announced by speech_started")
        check(started[0]["audio_start_ms"] < 1000 and 4000 < started[1]["audio_start_ms"] < 6500,
              f"speech starts where the utterances are ({started[0]['audio_start_ms']} ms, {started[1]['audio_start_ms']} ms)")
        w0, w1 = words(done[0]["transcript"]), words(done[1]["transcript"])
        check("americans" in w0 and "country" not in w0 and "country" in w1 and "americans" not in w1,
              f"each item has its own utterance: {done[0]['transcript']!r} / {done[1]['transcript']!r}")
    ws.close()

    # --- partial decodes: a turn in progress is changed and abandoned under them -------------------
    # jfk at the pace of speech with server VAD: partial decodes run on the session's second thread;
    # a session.update mid-turn stops one, then the client vanishes (no close frame) while the next runs
    partials_before = srv.metric("asr_realtime_partials_total")
    ws, first = connect(header=["Authorization: Bearer " + KEY])
    send(ws, {"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 1500}}})
    collect(ws, lambda e: e["type"] in ("session.updated", "error"))
    step = 4800
    t0 = time.time()
    for k, i in enumerate(range(0, 24000 * 2 * 6, step)):
        send(ws, {"type": "input_audio_buffer.append", "audio": base64.b64encode(JFK_PCM24[i:i + step]).decode()})
        if k == 30:
            send(ws, {"type": "session.update", "session": {"input_audio_transcription": {"prompt": "Kennedy."}}})
        time.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.time()))
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline and srv.metric("asr_realtime_connections_open") > 0:
        time.sleep(0.2)
    check(srv.metric("asr_realtime_connections_open") == 0 and srv.metric("asr_realtime_partials_total") - partials_before >= 2,
          f"a session updated mid-turn and dropped during partial decodes ends cleanly "
          f"({srv.metric('asr_realtime_partials_total') - partials_before:.0f} partial decodes)")
    check(requests.get(srv.url + "/healthz", timeout=10).status_code == 200, "server alive after it")

    # --- malformed frames: close codes, server alive -------------------------------------------------
    def raw_session():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall((f"GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Authorization: Bearer {KEY}\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        return s, head.decode(), rest

    def read_frames(s, rest, limit_s=10):
        """Server frames until a close frame: list of (opcode, payload)."""
        frames, buf, end = [], rest, time.time() + limit_s
        while time.time() < end:
            while len(buf) >= 2:
                n = buf[1] & 127
                h = 2
                if n == 126:
                    n, h = struct.unpack(">H", buf[2:4])[0], 4
                elif n == 127:
                    n, h = struct.unpack(">Q", buf[2:10])[0], 10
                if len(buf) < h + n:
                    break
                frames.append((buf[0] & 15, buf[h:h + n]))
                buf = buf[h + n:]
                if frames[-1][0] == 8:
                    return frames
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
        return frames

    def frame(op, payload, fin=True, masked=True, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | op
        m = 0x80 if masked else 0
        h = bytes([b0, m | n]) if n < 126 else bytes([b0, m | 126]) + struct.pack(">H", n) if n < 65536 else \
            bytes([b0, m | 127]) + struct.pack(">Q", n)
        if not masked:
            return h + payload
        key = b"\x11\x22\x33\x44"
        return h + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))

    def close_code(frames):
        return struct.unpack(">H", frames[-1][1][:2])[0] if frames and frames[-1][0] == 8 and len(frames[-1][1]) >= 2 else None

    s, head, rest = raw_session()
    check(head.startswith("HTTP/1.1 101") and "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head,
          f"raw handshake: 101 with the RFC 6455 sample accept key ({head.splitlines()[0]})")
    s.sendall(frame(9, b"hello"))
    upd = frame(1, b'{"type":"transcription_session.update",', fin=False) + frame(9, b"mid") + \
        frame(0, b'"session":{"turn_detection":null}}')
    s.sendall(upd)
    s.sendall(frame(8, struct.pack(">H", 1000) + b"bye"))
    fr = read_frames(s, rest)
    ops = [o for o, _ in fr]
    texts = [json.loads(p) for o, p in fr if o == 1]
    check((10, b"hello") in fr and (10, b"mid") in fr, f"pings answered with pongs, also between fragments ({ops})")
    check(any(t["type"] == "transcription_session.updated" for t in texts), "a fragmented text message is reassembled and handled")
    check(close_code(fr) == 1000, f"client close 1000 echoed ({close_code(fr)})")
    s.close()
    for what, payload, code in [
            ("unmasked client frame", frame(1, b'{"type":"x"}', masked=False), 1002),
            ("reserved opcode 3", frame(3, b"abc"), 1002),
            ("frame announcing 2 GiB", frame(2, b"", length=1 << 31), 1009),
            ("text message of 1.5 MiB (limit 1 MiB)", frame(1, b"a" * (3 << 19)), 1009),
            ("invalid UTF-8 text", frame(1, b'{"type":"\xc0\xaf"}'), 1007),
            ("continuation without a message", frame(0, b"abc"), 1002),
            ("ping of 126 bytes", frame(9, b"p" * 126), 1002),
            ("binary message", frame(2, b"\x00\x01"), 1003)]:
        s, head, rest = raw_session()
        try:
            s.sendall(payload)
        except OSError:
            pass
        code_got = close_code(read_frames(s, rest))
        check(code_got == code, f"{what} → close {code} (got {code_got})")
        s.close()
    check(requests.get(srv.url + "/healthz", timeout=10).status_code == 200, "server alive after malformed frames")

    # --- idle sessions are closed ------------------------------------------------------------------
    s, head, rest = raw_session()
    t0 = time.time()
    fr = read_frames(s, rest, IDLE_S + 5)
    took = time.time() - t0
    errs = [json.loads(p) for o, p in fr if o == 1 and json.loads(p)["type"] == "error"]
    check(close_code(fr) == 1008 and errs and errs[-1]["error"]["code"] == "idle_timeout" and IDLE_S - 0.5 < took < IDLE_S + 3,
          f"an idle session gets an idle_timeout error and close 1008 after {took:.1f} s (limit {IDLE_S} s)")
    s.close()

    # --- metrics --------------------------------------------------------------------------------------
    time.sleep(0.5)
    check(srv.metric("asr_realtime_connections_total") >= 12, f"connections counted ({srv.metric('asr_realtime_connections_total')})")
    check(srv.metric("asr_realtime_connections_open") == 0, "no session left open")
    check(srv.metric("asr_realtime_turns_total") >= 3, f"turns counted ({srv.metric('asr_realtime_turns_total')})")
    r = requests.post(srv.url + "/v1/audio/transcriptions", headers=AUTH, files={"file": ("jfk.wav", open(data("jfk.wav"), "rb").read())},
                      data={"model": "whisper-1"}, timeout=120 * SLOW)
    check(r.status_code == 200 and r.json()["text"] == FILE_TEXT, "file transcription still works afterwards")
finally:
    srv.stop()

# --- a second server: session count and session time limits, shutdown with a session open -----------
srv = Server("--workers", "1", "--grace", "10", name="limited server",
             env={"ASR_REALTIME_MAX_SESSIONS": "1", "ASR_REALTIME_MAX_SESSION_S": "2"})
WS_URL = f"ws://127.0.0.1:{srv.port}/v1/realtime?intent=transcription"
try:
    ws, first = connect()
    check(first.get("type") == "session.created", "no key configured: a session opens without one")
    try:
        websocket.create_connection(WS_URL, timeout=10)
        check(False, "a second session past ASR_REALTIME_MAX_SESSIONS=1 is refused")
    except websocket.WebSocketBadStatusException as e:
        check(e.status_code == 429 and b"too_many_sessions" in (e.resp_body or b""),
              f"a second session past ASR_REALTIME_MAX_SESSIONS=1: 429 too_many_sessions ({e.status_code})")
    t0 = time.time()
    evs = collect(ws, lambda e: e["type"] == "error", 10)
    check(evs and evs[-1]["error"]["code"] == "session_expired" and 1.5 < time.time() - t0 < 5,
          f"the session ends at ASR_REALTIME_MAX_SESSION_S=2 with session_expired ({time.time() - t0:.1f} s)")
    ws.close()
    time.sleep(0.5)
    ws, first = connect()
    check(first.get("type") == "session.created", "after it closed, a new session fits again")
    ws.settimeout(15)
    t0 = time.time()
    srv.proc.send_signal(__import__("signal").SIGTERM)
    got = None
    try:
        while True:
            op, payload = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                got = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                break
    except Exception as e:  # noqa: BLE001
        got = repr(e)
    check(got == 1001 and time.time() - t0 < 5, f"SIGTERM: the open session gets close 1001 going away ({got})")
finally:
    srv.stop()
finish()
