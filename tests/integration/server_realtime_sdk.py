"""`asr serve` realtime transcription driven by the official `openai` SDK's realtime client
(`client.realtime.connect(extra_query={"intent": "transcription"})`, which runs on the `websockets`
package): GA events and session shape (session.created / session.update with
{"type": "transcription", "audio": {"input": ...}}) parsed into the SDK's own types; jfk.wav (11 s,
one long utterance) streamed at the pace of speech in 100 ms chunks with server VAD gives partial
deltas before speech_stopped and a completed transcript with the words of the file transcription
(POST /v1/audio/transcriptions through the same SDK); the deltas only append and add up to it; a
manual commit without VAD; errors as the SDK's RealtimeErrorEvent; ?model= that is not served is
refused at the handshake."""
import base64
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from server_lib import SLOW, Server, check, data, finish  # noqa: E402
from pcm16 import read_wav  # noqa: E402

import numpy as np  # noqa: E402
import openai  # noqa: E402
from openai.types.realtime import (  # noqa: E402
    ConversationItemInputAudioTranscriptionCompletedEvent, ConversationItemInputAudioTranscriptionDeltaEvent,
    RealtimeErrorEvent, SessionCreatedEvent, SessionUpdatedEvent)

KEY = "rt-sdk-key"
srv = Server("--workers", "1", "--api-key", KEY, name="server")
client = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0)
TRANSCRIPTION = "conversation.item.input_audio_transcription"


def words(text):
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def to_24k_pcm16(samples16k):
    """16 kHz float → 24 kHz little-endian PCM16 (band-limited: FFT zero-padding)."""
    n = len(samples16k)
    m = n * 3 // 2
    up = np.fft.irfft(np.fft.rfft(samples16k), m) * (m / n)
    return np.clip(np.round(up * 32767), -32768, 32767).astype("<i2").tobytes()


def session(turn_detection, model="whisper-1"):
    return {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": {"model": model, "language": "en"},
        "turn_detection": turn_detection}}}


def feed(conn, pcm, pace):
    """Append pcm in 100 ms chunks; pace 1.0 = as fast as it is spoken, 0 = at once."""
    step = 24000 * 2 // 10
    t0 = time.time()
    for k, i in enumerate(range(0, len(pcm), step)):
        conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i:i + step]).decode())
        if pace:
            time.sleep(max(0.0, t0 + (k + 1) * 0.1 * pace - time.time()))


def events_until(conn, done, limit_s):
    """(seconds, event) pairs until done(event); the connection is closed if limit_s passes first."""
    t0 = time.time()
    watchdog = threading.Timer(limit_s * SLOW, conn.close)
    watchdog.start()
    out = []
    try:
        while True:
            ev = conn.recv()
            out.append((time.time() - t0, ev))
            if done(ev):
                break
    except Exception as e:  # noqa: BLE001  (closed by the watchdog: the checks below say what is missing)
        print(f"     receiving stopped: {e!r}")
    finally:
        watchdog.cancel()
    return out


jfk = read_wav(data("jfk.wav"))
try:
    with open(data("jfk.wav"), "rb") as f:
        FILE_TEXT = client.audio.transcriptions.create(model="whisper-1", file=f).text
    check(len(words(FILE_TEXT)) > 15, f"the SDK's file transcription as the reference: {FILE_TEXT!r}")

    with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        first = conn.recv()
        check(isinstance(first, SessionCreatedEvent) and first.session.type == "transcription",
              f"SDK connects: session.created parsed as SessionCreatedEvent, a transcription session ({first!r:.200})")

        # --- server VAD, jfk at the pace of speech: partial deltas while it is spoken -----------
        conn.session.update(session=session({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                             "silence_duration_ms": 1500}))
        upd = conn.recv()
        td = upd.session.audio.input.turn_detection if isinstance(upd, SessionUpdatedEvent) else None
        check(td is not None and td.type == "server_vad" and td.silence_duration_ms == 1500
              and upd.session.audio.input.transcription.language == "en",
              f"session.update (GA shape) → SessionUpdatedEvent with the settings ({upd!r:.300})")
        pcm = to_24k_pcm16(np.concatenate([jfk, np.zeros(2 * 16000, dtype=np.float32)]))
        feeder = threading.Thread(target=feed, args=(conn, pcm, 1.0), daemon=True)
        feeder.start()
        evs = events_until(conn, lambda e: e.type in (TRANSCRIPTION + ".completed", "error"), 60)
        feeder.join(30)
        types = [e.type for _, e in evs]
        stopped_at = types.index("input_audio_buffer.speech_stopped") if "input_audio_buffer.speech_stopped" in types else len(types)
        deltas = [(t, e) for t, e in evs if e.type == TRANSCRIPTION + ".delta"]
        early = [(t, e) for t, e in deltas if evs.index((t, e)) < stopped_at]
        done = [e for _, e in evs if e.type == TRANSCRIPTION + ".completed"]
        check(types.count("input_audio_buffer.speech_started") == 1 and types.count("input_audio_buffer.speech_stopped") == 1,
              f"the 11 s utterance is one turn ({types})")
        check(len(early) >= 1, f"{len(early)} delta(s) before speech_stopped, while the clip was spoken "
              f"(first at {early[0][0] if early else float('nan'):.1f} s of 11 s)")
        check(all(isinstance(e, ConversationItemInputAudioTranscriptionDeltaEvent) for _, e in deltas),
              "deltas parsed as ConversationItemInputAudioTranscriptionDeltaEvent")
        check(len(done) == 1 and isinstance(done[0], ConversationItemInputAudioTranscriptionCompletedEvent)
              and all(e.item_id == done[0].item_id for _, e in deltas), "one completed event, the deltas' item")
        transcript = done[0].transcript if done else ""
        check(words(transcript) == words(FILE_TEXT), f"completed transcript has the file transcription's words: {transcript!r}")
        joined = "".join(e.delta for _, e in deltas)
        check(words(joined) == words(transcript), f"the deltas append up to the transcript's words: {joined!r}")
        print(f"     deltas: {[(round(t, 1), e.delta) for t, e in deltas]}")
        print(f"     byte-exact concatenation: {joined == transcript}")
        n_partials = srv.metric("asr_realtime_partials_total")
        busy = srv.metric("asr_realtime_partial_seconds_total")
        check(2 <= n_partials <= 13, f"{n_partials:.0f} partial decodes for 11 s of speech at one a second at most")
        print(f"     partial decodes: {n_partials:.0f}, {srv.metric('asr_realtime_partials_aborted_total'):.0f} stopped by the "
              f"turn's end, {busy:.2f} s busy in all ({busy / max(n_partials, 1):.2f} s each)")

        # --- no turn detection: the client commits -------------------------------------------
        conn.session.update(session=session(None))
        upd = conn.recv()
        check(isinstance(upd, SessionUpdatedEvent) and upd.session.audio.input.turn_detection is None,
              "turn_detection null → updated, no VAD")
        feed(conn, to_24k_pcm16(jfk), 0)
        conn.input_audio_buffer.commit()
        evs = events_until(conn, lambda e: e.type in (TRANSCRIPTION + ".completed", "error"), 60)
        types = [e.type for _, e in evs]
        done = [e for _, e in evs if e.type == TRANSCRIPTION + ".completed"]
        deltas = [e for _, e in evs if e.type == TRANSCRIPTION + ".delta"]
        check(types[:1] == ["input_audio_buffer.committed"] and done and deltas,
              f"commit → committed, deltas, completed ({types})")
        if done:
            check(words(done[0].transcript) == words(FILE_TEXT), f"manual commit: the file's words ({done[0].transcript!r})")
            check("".join(e.delta for e in deltas) == done[0].transcript, "manual commit: the deltas add up to the transcript")

        # --- errors as the SDK's types ----------------------------------------------------------
        conn.input_audio_buffer.commit()
        err = conn.recv()
        check(isinstance(err, RealtimeErrorEvent) and err.error.code == "input_audio_buffer_commit_empty",
              f"commit of an empty buffer → RealtimeErrorEvent input_audio_buffer_commit_empty ({err!r:.200})")
        conn.session.update(session=session(None, model="gpt-4o-transcribe"), event_id="evt_model")
        err = conn.recv()
        check(isinstance(err, RealtimeErrorEvent) and err.error.code == "model_not_found"
              and err.error.param == "session.audio.input.transcription.model" and err.error.event_id == "evt_model",
              f"a model this server does not have → model_not_found, naming the field and the event ({err!r:.300})")
        conn.session.update(session={"type": "realtime"})
        err = conn.recv()
        check(isinstance(err, RealtimeErrorEvent) and err.error.param == "session.type",
              f"a conversation session (type realtime) → error on session.type ({err!r:.200})")

    try:
        with client.realtime.connect(model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as conn:
            conn.recv()
        check(False, "?model= not served: the handshake is refused")
    except Exception as e:  # noqa: BLE001  (the SDK raises the websockets package's InvalidStatus)
        status = getattr(getattr(e, "response", None), "status_code", None)
        body = getattr(getattr(e, "response", None), "body", b"") or b""
        check(status == 404 and b"model_not_found" in body, f"?model= not served: 404 model_not_found at the handshake ({e!r:.200})")
    time.sleep(0.5)
    check(srv.metric("asr_realtime_connections_open") == 0, "no session left open")
finally:
    srv.stop()
finish()
