"""`asr serve` with the official openai SDK and curl: every response_format, translations,
streaming (first delta before the last), /v1/models, every audio format, /asr, /detect-language."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import JFK_TEXT, SLOW, Server, check, data, finish, long_speech_wav  # noqa: E402

import openai  # noqa: E402
import requests  # noqa: E402


def srt_vtt_text(body):
    """Cue texts of an SRT or VTT document, joined by spaces."""
    cues = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = [l for l in block.split("\n") if l.strip()]
        if any("-->" in l for l in lines):
            i = next(i for i, l in enumerate(lines) if "-->" in l)
            cues.append(" ".join(lines[i + 1:]).strip())
    return " ".join(cues)


srv = Server("--workers", "1", "--queue", "8", name="server")
try:
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=120 * SLOW)

    # --- transcriptions, every response_format -------------------------------------------
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f)
    check(r.text == JFK_TEXT, f"SDK json: exact jfk text (got {r.text!r})")

    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    check(isinstance(r, str) and r.strip() == JFK_TEXT, f"SDK text: exact jfk text (got {r!r})")

    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    check(r.startswith("1\n00:00:00,000 --> 00:00:"), f"SDK srt: starts with cue 1 at 0 s ({r[:40]!r})")
    check(srt_vtt_text(r) == JFK_TEXT, f"SDK srt: cue texts are the jfk text ({srt_vtt_text(r)!r})")

    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    check(r.startswith("WEBVTT\n\n"), f"SDK vtt: WEBVTT header ({r[:20]!r})")
    check(srt_vtt_text(r) == JFK_TEXT, f"SDK vtt: cue texts are the jfk text ({srt_vtt_text(r)!r})")

    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["segment"])
    check(r.text == JFK_TEXT, f"SDK verbose_json: text ({r.text!r})")
    check(getattr(r, "task", None) == "transcribe", f"verbose_json task=transcribe ({getattr(r, 'task', None)})")
    check(r.language in ("en", "english"), f"verbose_json language ({r.language})")
    check(abs(r.duration - 11.0) < 0.01, f"verbose_json duration 11.0 ({r.duration})")
    segs = r.segments or []
    check(len(segs) >= 1 and all(0 <= s.start <= s.end <= r.duration + 0.01 for s in segs),
          f"verbose_json segments ordered within the audio ({[(s.start, s.end) for s in segs]})")
    check(" ".join(s.text.strip() for s in segs) == JFK_TEXT, "verbose_json segment texts join to the jfk text")

    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["word", "segment"])
    words = r.words or []
    check(" ".join(w.word for w in words) == JFK_TEXT.replace(",", "").replace(".", "") or
          " ".join(w.word for w in words) == JFK_TEXT,
          f"SDK verbose_json with word granularity: {len(words)} words spell the jfk text")
    check(len(words) == 22 and all(0 <= w.start <= w.end <= r.duration for w in words) and
          all(a.start <= b.start for a, b in zip(words, words[1:])),
          f"words ordered within the audio ({[(w.start, w.end) for w in words[:3]]} ...)")
    check(words and words[0].word == "And" and words[0].start == 0.0 and abs(words[-1].end - 10.5) < 0.05,
          f"first word 'And' at 0.0 s, last ends near 10.5 s ({words[0] if words else None}, "
          f"{words[-1] if words else None})")
    check(all(s.tokens and isinstance(s.avg_logprob, float) and isinstance(s.no_speech_prob, float)
              and isinstance(s.compression_ratio, float) and isinstance(s.seek, int) for s in segs),
          "verbose_json segments carry tokens, seek, avg_logprob, compression_ratio, no_speech_prob")

    # Raw HTTP: content types as OpenAI sends them.
    for fmt, ctype in [("json", "application/json"), ("verbose_json", "application/json"),
                       ("text", "text/plain"), ("srt", "text/plain"), ("vtt", "text/plain")]:
        with open(data("jfk.wav"), "rb") as f:
            h = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": ("jfk.wav", f)},
                              data={"model": "whisper-1", "response_format": fmt}, timeout=120 * SLOW)
        check(h.status_code == 200 and h.headers["content-type"].startswith(ctype),
              f"{fmt}: 200 {ctype} (got {h.status_code} {h.headers.get('content-type')})")
        if fmt == "json":
            check(list(h.json().keys())[0] == "text" and h.json()["text"] == JFK_TEXT, "json body is {\"text\": ...}")
        if fmt == "text":
            check(h.text == JFK_TEXT + "\n", f"text body is the text and a newline ({h.text!r})")

    # Local model name accepted too.
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="tiny.en", file=f, language="en")
    check(r.text == JFK_TEXT, "model=tiny.en and language=en accepted")

    # --- translations --------------------------------------------------------------------------
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f)
    check(r.text == JFK_TEXT, f"SDK translations json: English text ({r.text!r})")
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f, response_format="verbose_json")
    check(getattr(r, "task", None) == "translate" and r.text == JFK_TEXT, "SDK translations verbose_json: task=translate")
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f, response_format="text")
    check(r.strip() == JFK_TEXT, "SDK translations text")

    # --- streaming -----------------------------------------------------------------------------
    with open(data("jfk.wav"), "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
    types = [e.type for e in events]
    check(types and types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"},
          f"stream: deltas then one done event ({types})")
    check(events and events[-1].text == JFK_TEXT, "stream: done event carries the exact jfk text")
    check("".join(e.delta for e in events[:-1]) == JFK_TEXT, "stream: deltas concatenate to the text")
    spans = [(getattr(e, "start", None), getattr(e, "end", None)) for e in events[:-1]]
    check(len(spans) == len(segs) and all(isinstance(a, float) and isinstance(b, float) and abs(a - s.start) < 1e-3
                                          and abs(b - s.end) < 1e-3 for (a, b), s in zip(spans, segs)),
          f"stream: each delta carries its segment's start and end, as verbose_json has them ({spans})")

    # Two windows of speech: the first window's deltas must arrive while the second still decodes.
    long_wav = long_speech_wav(5)  # 55 s: two windows, each full of speech
    t0 = time.monotonic()
    stream = client.audio.transcriptions.create(model="whisper-1", file=("jfk5.wav", long_wav), stream=True)
    arrivals, done_text = [], None
    for e in stream:
        arrivals.append((time.monotonic() - t0, e.type))
        if e.type == "transcript.text.done":
            done_text = e.text
    deltas = [t for t, ty in arrivals if ty == "transcript.text.delta"]
    done = [t for t, ty in arrivals if ty == "transcript.text.done"]
    check(len(deltas) >= 2 and len(done) == 1, f"long stream: several deltas and one done ({len(deltas)}, {len(done)})")
    if deltas and done:
        check(done[0] - deltas[0] > 0.2 * done[0],
              f"long stream: first delta at {deltas[0]:.2f}s, well before the last event at {done[0]:.2f}s")

    # The streamed done text is the json answer's text (both Python's str.strip() of the result),
    # on clips of several segments.
    r = client.audio.transcriptions.create(model="whisper-1", file=("jfk5.wav", long_wav), response_format="json")
    check(done_text is not None and done_text == r.text, f"long stream: done text == json text ({done_text!r:.80} / {r.text!r:.80})")
    with open(data("fleurs/en-000.ogg"), "rb") as f:
        clip = f.read()
    done_text = [e.text for e in client.audio.transcriptions.create(model="whisper-1", file=("en-000.ogg", clip), stream=True)
                 if e.type == "transcript.text.done"]
    r = client.audio.transcriptions.create(model="whisper-1", file=("en-000.ogg", clip), response_format="json")
    check(done_text == [r.text] and r.text, f"en-000.ogg: streamed done text == json text ({done_text} / {r.text!r})")

    # --- /v1/models --------------------------------------------------------------------------------
    ids = [m.id for m in client.models.list()]
    check("whisper-1" in ids and "tiny.en" in ids, f"/v1/models lists whisper-1 and tiny.en ({ids})")

    # --- curl uploads of every audio format in testdata ---------------------------------------
    def curl(*args):
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, timeout=300 * SLOW)
        body, _, code = out.stdout.decode().rpartition("\n")
        return int(code or 0), body

    def words(s):
        return re.sub(r"[^a-z0-9' ]", " ", s.lower()).split()

    # WAV and FLAC hold the same samples: the exact text. The MP3 is a lossy
    # copy, whose punctuation may differ (a final period on an Intel Xeon):
    # the same words.
    for name in ["jfk.wav", "jfk.mp3", "jfk.flac"]:
        code, body = curl("-F", f"file=@{data(name)}", "-F", "model=whisper-1", "-F", "response_format=text",
                          srv.url + "/v1/audio/transcriptions")
        if name.endswith(".mp3"):
            check(code == 200 and words(body) == words(JFK_TEXT), f"curl {name}: the jfk words ({code} {body.strip()!r})")
        else:
            check(code == 200 and body.strip() == JFK_TEXT, f"curl {name}: exact jfk text ({code} {body.strip()!r})")

    def recall(ref, hyp):
        h = words(hyp)
        return sum(1 for w in words(ref) if w in h) / max(1, len(words(ref)))

    with open(data("fleurs/en-000.txt")) as f:
        ref = f.read()
    code, body = curl("-F", f"file=@{data('fleurs/en-000.ogg')}", "-F", "model=whisper-1", "-F",
                      "response_format=text", srv.url + "/v1/audio/transcriptions")
    check(code == 200 and recall(ref, body) >= 0.7, f"curl fleurs/en-000.ogg (Opus): {recall(ref, body):.2f} of the reference words")
    code, body = curl("-F", f"file=@{data('hotwords.mp3')}", "-F", "model=whisper-1", "-F", "prompt=ComfyUI",
                      "-F", "response_format=json", srv.url + "/v1/audio/transcriptions")
    check(code == 200 and json.loads(body)["text"].strip() != "", f"curl hotwords.mp3 with a prompt: 200 ({body[:80]!r})")
    code, body = curl("-F", f"file=@{data('stereo_diarization.wav')}", "-F", "model=whisper-1",
                      srv.url + "/v1/audio/transcriptions")
    check(code == 200 and len(words(json.loads(body)["text"])) >= 5,
          f"curl stereo_diarization.wav (two voices, downmixed): 200 with words ({body[:100]!r})")
    code, body = curl("-F", f"file=@{data('multilingual.mp3')}", "-F", "model=whisper-1", "-F", "response_format=text",
                      srv.url + "/v1/audio/transcriptions")
    check(code == 200 and "permission is hereby granted" in body.lower(),
          f"curl multilingual.mp3 (24 kHz MP3, 60 s): 200 with the licence text ({body[:60]!r})")

    # --- whisper-asr-webservice: /asr and /detect-language --------------------------------
    def asr(output, **params):
        with open(data("jfk.wav"), "rb") as f:
            return requests.post(srv.url + "/asr", params={"output": output, **params},
                                 files={"audio_file": ("jfk.wav", f)}, timeout=120 * SLOW)

    r = asr("txt")
    check(r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), "/asr txt: 200 text/plain")
    check(" ".join(r.text.strip().split("\n")) == JFK_TEXT and r.text.endswith("\n"),
          f"/asr txt: one stripped segment per line ({r.text!r})")
    check(r.headers.get("content-disposition") == 'attachment; filename="jfk.wav.txt"' and r.headers.get("asr-engine"),
          f"/asr: Content-Disposition and Asr-Engine headers ({r.headers.get('content-disposition')})")
    r = asr("json", task="transcribe", language="en")
    j = r.json()
    check(r.status_code == 200 and j["text"].strip() == JFK_TEXT and j["language"] == "en" and j["segments"],
          "/asr json: {text, segments, language}")
    check(all(k in j["segments"][0] for k in ("id", "seek", "start", "end", "text", "tokens")), "/asr json segments")
    check(all("words" not in s for s in j["segments"]), "/asr json: no words unless asked for")
    r = asr("json", word_timestamps="true")
    segs = r.json().get("segments", []) if r.status_code == 200 else []
    ws = [w for s in segs for w in s.get("words", [])]
    check(len(ws) == 22 and "".join(w["word"] for w in ws).strip() == JFK_TEXT and
          all(0 <= w["start"] <= w["end"] and 0 <= w["probability"] <= 1 for w in ws),
          f"/asr json word_timestamps=true: 22 words with times and probabilities ({ws[:2]})")
    check(asr("json", word_timestamps="maybe").status_code == 422, "/asr word_timestamps=maybe: 422")
    r = asr("srt")
    check(r.status_code == 200 and srt_vtt_text(r.text) == JFK_TEXT, "/asr srt")
    r = asr("vtt")
    check(r.status_code == 200 and r.text.startswith("WEBVTT") and srt_vtt_text(r.text) == JFK_TEXT, "/asr vtt")
    r = asr("tsv")
    rows = [l.split("\t") for l in r.text.strip().split("\n")]
    check(r.status_code == 200 and rows[0] == ["start", "end", "text"] and
          " ".join(x[2] for x in rows[1:]) == JFK_TEXT and all(x[0].isdigit() and x[1].isdigit() for x in rows[1:]),
          f"/asr tsv: integer milliseconds and text ({rows[:2]})")
    r = asr("xml")
    check(r.status_code == 422, f"/asr output=xml: 422 ({r.status_code})")
    # encode=false: headerless 16 kHz s16le PCM.
    raw = "/usr/share/pocketsphinx/test/data/goforward.raw"
    if os.path.exists(raw):
        with open(raw, "rb") as f:
            r = requests.post(srv.url + "/asr", params={"encode": "false", "output": "txt"},
                              files={"audio_file": ("goforward.raw", f)}, timeout=120 * SLOW)
        check(r.status_code == 200 and "forward" in r.text.lower(), f"/asr encode=false raw PCM ({r.text.strip()!r})")

    with open(data("jfk.wav"), "rb") as f:
        r = requests.post(srv.url + "/detect-language", files={"audio_file": ("jfk.wav", f)}, timeout=60 * SLOW)
    j = r.json() if r.status_code == 200 else {}
    check(r.status_code == 200 and j.get("detected_language") == "english" and j.get("language_code") == "en"
          and 0.5 <= j.get("confidence", 0) <= 1.0, f"/detect-language: english ({r.status_code} {j})")

    # --- logs and metrics ------------------------------------------------------------------------
    reqs = srv.log_events("request")
    check(len(reqs) >= 20 and all({"method", "path", "status", "duration_ms", "time"} <= set(x) for x in reqs),
          f"one JSON log line per request with method/path/status/duration ({len(reqs)})")
    m = requests.get(srv.url + "/metrics", timeout=10).text
    check('asr_http_requests_total{route="/v1/audio/transcriptions",status="200"}' in m, "metrics: requests by route/status")
    check("asr_audio_seconds_total" in m and srv.metric("asr_audio_seconds_total") > 100, "metrics: audio seconds")
    check("asr_http_request_duration_seconds_bucket" in m and "asr_real_time_factor" in m and "asr_queue_depth" in m
          and "asr_workers_busy" in m and "asr_model_load_seconds" in m, "metrics: latency, RTF, queue, busy, load time")
    oa = requests.get(srv.url + "/openapi.json", timeout=10).json()
    check(set(oa["paths"]) >= {"/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/asr",
                               "/detect-language", "/healthz", "/readyz", "/metrics", "/openapi.json"},
          "openapi.json describes every route")
    props = oa["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    check({"file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]", "stream"} <= set(props),
          "openapi.json lists every transcription field")
    check(requests.get(srv.url + "/healthz", timeout=5).json() == {"status": "ok"}, "/healthz ok")
    check(requests.get(srv.url + "/readyz", timeout=5).status_code == 200, "/readyz ready")
finally:
    srv.stop()
finish()
