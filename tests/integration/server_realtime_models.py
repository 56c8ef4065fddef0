"""Realtime sessions on `asr serve --model tiny.en,base`: the session's transcription model (GA
audio.input.transcription.model, beta input_audio_transcription.model) or the handshake's ?model=
picks the served model, switching within a session; each item has the words that model gives the
same clip through POST /v1/audio/transcriptions (a German clip tells them apart: base answers in
German, tiny.en cannot); a model not served is model_not_found, as an error event or a 404 at the
handshake."""
import base64
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import SLOW, Server, check, data, finish  # noqa: E402

import numpy as np  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402  (websocket-client)
from faster_whisper import decode_audio  # noqa: E402  (PyAV: decodes the .ogg clip)

TRANSCRIPTION = "conversation.item.input_audio_transcription"
srv = Server("--model", "tiny.en,base", "--workers", "1", "--threads", "2", name="two-model server")
WS_URL = f"ws://127.0.0.1:{srv.port}/v1/realtime?intent=transcription"


def words(text):
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def to_24k_pcm16(samples16k):
    n = len(samples16k)
    m = n * 3 // 2
    up = np.fft.irfft(np.fft.rfft(samples16k), m) * (m / n)
    return np.clip(np.round(up * 32767), -32768, 32767).astype("<i2").tobytes()


def file_text(model, clip):
    with open(data(clip), "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": (os.path.basename(clip), f.read())},
                          data={"model": model}, timeout=300 * SLOW)
    check(r.status_code == 200, f"POST /v1/audio/transcriptions model={model} {clip}: 200 ({r.status_code})")
    return r.json().get("text", "")


def recv_until(ws, types, limit_s=300):
    deadline = time.time() + limit_s * SLOW
    out = []
    while time.time() < deadline:
        ws.settimeout(max(0.1, deadline - time.time()))
        try:
            ev = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        out.append(ev)
        if ev["type"] in types:
            break
    return out


def transcribe_item(ws, samples):
    """Append the clip at once, commit, and return the completed transcript (None if none came)."""
    pcm = to_24k_pcm16(samples)
    for i in range(0, len(pcm), 4800):
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 4800]).decode()}))
    ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    evs = recv_until(ws, (TRANSCRIPTION + ".completed", TRANSCRIPTION + ".failed", "error"))
    done = [e for e in evs if e["type"] == TRANSCRIPTION + ".completed"]
    return done[0]["transcript"] if done else None


def update(ws, event):
    ws.send(json.dumps(event))
    evs = recv_until(ws, ("session.updated", "transcription_session.updated", "error"), 30)
    return evs[-1] if evs else {}


jfk = decode_audio(data("jfk.wav"), sampling_rate=16000)
german = decode_audio(data("fleurs/de-000.ogg"), sampling_rate=16000)
try:
    want_base_de = file_text("base", "fleurs/de-000.ogg")
    want_tiny_de = file_text("tiny.en", "fleurs/de-000.ogg")
    want_tiny_jfk = file_text("tiny.en", "jfk.wav")
    check("hongkong" in words(want_base_de) and "hongkong" not in words(want_tiny_de),
          f"the file answers tell the models apart: base {want_base_de!r:.80} / tiny.en {want_tiny_de!r:.80}")

    ws = websocket.create_connection(WS_URL, timeout=30)
    first = json.loads(ws.recv())
    check(first["type"] == "session.created" and first["session"]["audio"]["input"]["transcription"]["model"] == "whisper-1",
          "a session starts on whisper-1 (the first model)")
    upd = update(ws, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "transcription": {"model": "base"}, "turn_detection": None}}}})
    check(upd.get("type") == "session.updated" and upd["session"]["audio"]["input"]["transcription"]["model"] == "base",
          f"GA session.update picks base ({upd})")
    got = transcribe_item(ws, german)
    check(got is not None and words(got) == words(want_base_de), f"the item is base's answer, in German: {got!r}")
    upd = update(ws, {"type": "transcription_session.update", "session": {"input_audio_transcription": {"model": "tiny.en"}}})
    check(upd.get("type") == "transcription_session.updated" and upd["session"]["input_audio_transcription"]["model"] == "tiny.en",
          f"beta transcription_session.update switches the same session to tiny.en ({upd})")
    got = transcribe_item(ws, jfk)
    check(got is not None and words(got) == words(want_tiny_jfk), f"the next item is tiny.en's answer: {got!r}")
    ws.send(json.dumps({"type": "session.update", "event_id": "evt_7", "session": {"type": "transcription", "audio": {"input": {
        "transcription": {"model": "large-v3"}}}}}))
    err = recv_until(ws, ("error", "session.updated"), 30)[-1]
    e = err.get("error", {})
    check(err["type"] == "error" and e.get("code") == "model_not_found" and e.get("event_id") == "evt_7"
          and e.get("param") == "session.audio.input.transcription.model"
          and all(f"'{m}'" in e.get("message", "") for m in ("whisper-1", "tiny.en", "base")),
          f"a model not served → error event model_not_found listing the served ones ({err})")
    ws.send(json.dumps({"type": "transcription_session.update", "session": {"input_audio_transcription": {"model": ""}}}))
    err = recv_until(ws, ("error", "transcription_session.updated"), 30)[-1]
    check(err["type"] == "error" and err["error"]["param"] == "session.input_audio_transcription.model",
          f"an empty model name → error on the beta field ({err})")
    got = transcribe_item(ws, german)
    check(got is not None and "hongkong" not in words(got),
          f"after the refused updates the session still uses tiny.en (no 'Hongkong'): {got!r:.100}")
    ws.close()

    ws = websocket.create_connection(WS_URL + "&model=base", timeout=30)
    first = json.loads(ws.recv())
    check(first["session"]["audio"]["input"]["transcription"]["model"] == "base", f"?model=base: the session starts on base ({first})")
    got = transcribe_item(ws, german)
    check(got is not None and words(got) == words(want_base_de), f"?model=base: base's answer ({got!r})")
    ws.close()

    try:
        websocket.create_connection(WS_URL + "&model=large-v3", timeout=30)
        check(False, "?model= not served: the handshake is refused")
    except websocket.WebSocketBadStatusException as ex:
        body = json.loads(ex.resp_body or b"{}")
        check(ex.status_code == 404 and body.get("error", {}).get("code") == "model_not_found",
              f"?model= not served: 404 model_not_found, as the HTTP API answers ({ex.status_code} {body})")
    time.sleep(0.5)
    check(srv.metric("asr_realtime_connections_open") == 0, "no session left open")
finally:
    srv.stop()
finish()
