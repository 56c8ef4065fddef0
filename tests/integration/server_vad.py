"""`asr serve` with Silero VAD: OpenAI's chunking_strategy on /v1/audio/transcriptions and translations
("auto", a JSON object, or the SDK's chunking_strategy[NAME] form fields), vad_filter on /asr, and the
server default --vad / ASR_VAD. 30 s of silence and 20 s of noise give empty text; speech gives exactly
what `asr transcribe --vad` (with the same options) gives; bad values are 400 (422 on /asr) naming the
parameter; /openapi.json documents the fields."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import ASR_BIN, MODEL, SLOW, Server, check, data, finish, is_openai_error  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from pcm16 import read_wav, write_wav  # noqa: E402

import openai  # noqa: E402
import requests  # noqa: E402

tmp = tempfile.mkdtemp(prefix="asr-server-vad-")
SILENCE, NOISE, SPLICE = (os.path.join(tmp, n) for n in ("silence.wav", "noise.wav", "splice.wav"))
write_wav(SILENCE, np.zeros(30 * 16000))
write_wav(NOISE, 0.3 * np.random.default_rng(1).uniform(-1, 1, 20 * 16000))
jfk = read_wav(data("jfk.wav"))
write_wav(SPLICE, np.concatenate([np.zeros(8 * 16000), jfk, np.zeros(6 * 16000), jfk]))
JFK = data("jfk.wav")


def cli(path, *flags):
    r = subprocess.run([ASR_BIN, "transcribe", "--model", MODEL, "--threads", "2", "-f", "verbose_json", *flags, path],
                       capture_output=True, text=True, timeout=600 * SLOW)
    check(r.returncode == 0, f"asr transcribe {' '.join(flags)} {os.path.basename(path)} exits 0")
    return json.loads(r.stdout) if r.returncode == 0 else {"text": None, "segments": []}


def times(segments):
    return [(round(s["start"], 2), round(s["end"], 2), s["text"]) for s in segments]


want_jfk = cli(JFK, "--vad")
want_splice = cli(SPLICE, "--vad", "--vad-threshold", "0.6", "--vad-speech-pad-ms", "100", "--vad-min-silence-ms", "300")
plain_silence = cli(SILENCE)
check(plain_silence["text"].strip() != "", f"without VAD, tiny.en invents text on silence ({plain_silence['text']!r}),"
      " so an empty answer below is VAD's doing")

srv = Server("--threads", "2", name="server")


def post(path, fields, url=None):
    url = url or srv.url + "/v1/audio/transcriptions"  # the server running now
    with open(path, "rb") as f:
        return requests.post(url, files={"file": (os.path.basename(path), f.read())},
                         data={"model": "whisper-1", "response_format": "verbose_json", **fields}, timeout=600 * SLOW)


try:
    # --- silence and noise: nothing ------------------------------------------------------------------
    for path in (SILENCE, NOISE):
        r = post(path, {"chunking_strategy": "auto"})
        body = r.json() if r.status_code == 200 else {}
        check(r.status_code == 200 and body.get("text") == "" and body.get("segments") == [],
              f"chunking_strategy=auto on {os.path.basename(path)}: empty text, no segments ({r.status_code} {r.text[:80]})")
    r = post(SILENCE, {})
    check(r.status_code == 200 and r.json()["text"].strip() == plain_silence["text"].strip(),
          "no chunking_strategy on silence: the plain transcription (VAD off by default)")
    r = post(SILENCE, {"chunking_strategy": "auto", "response_format": "text"}, url=srv.url + "/v1/audio/translations")
    check(r.status_code == 200 and r.text.strip() == "", f"translations with chunking_strategy=auto on silence: empty")

    # --- speech: the CLI's --vad answer --------------------------------------------------------------
    r = post(JFK, {"chunking_strategy": "auto"})
    check(r.status_code == 200 and r.json()["text"] == want_jfk["text"] and want_jfk["text"],
          f"chunking_strategy=auto on jfk.wav: the CLI --vad text ({r.text[:80]})")
    cs = {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 100, "silence_duration_ms": 300}
    r = post(SPLICE, {"chunking_strategy": json.dumps(cs)})
    body = r.json() if r.status_code == 200 else {"segments": []}
    check(r.status_code == 200 and times(body["segments"]) == times(want_splice["segments"])
          and len(want_splice["segments"]) >= 2,
          "server_vad {threshold 0.6, prefix_padding_ms 100, silence_duration_ms 300} on a silence+speech splice: "
          "the CLI's --vad-threshold 0.6 --vad-speech-pad-ms 100 --vad-min-silence-ms 300 segments and times"
          + ("" if r.status_code != 200 else f"\n     got  {times(body['segments'])[:3]}\n     want {times(want_splice['segments'])[:3]}"))
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=600 * SLOW)
    with open(SPLICE, "rb") as f:  # the SDK sends chunking_strategy[type]=... form fields
        t = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               chunking_strategy=cs)
    check(times([s.model_dump() for s in t.segments]) == times(want_splice["segments"]),
          "SDK chunking_strategy={...} (bracketed form fields): the same segments")
    with open(NOISE, "rb") as f:
        t = client.audio.transcriptions.create(model="whisper-1", file=f, chunking_strategy="auto")
    check(t.text == "", f"SDK chunking_strategy='auto' on noise: empty text ({t.text!r})")

    # --- /asr vad_filter -----------------------------------------------------------------------------
    with open(SILENCE, "rb") as f:
        r = requests.post(srv.url + "/asr?vad_filter=true&output=json", files={"audio_file": ("s.wav", f.read())},
                          timeout=300 * SLOW)
    check(r.status_code == 200 and json.loads(r.text)["text"] == "", f"/asr?vad_filter=true on silence: empty ({r.text[:80]})")
    with open(JFK, "rb") as f:
        r = requests.post(srv.url + "/asr?vad_filter=true&output=json", files={"audio_file": ("jfk.wav", f.read())},
                          timeout=300 * SLOW)
    check(r.status_code == 200 and json.loads(r.text)["text"].strip() == want_jfk["text"].strip(), "/asr?vad_filter=true on jfk: CLI --vad text")

    # --- bad values ----------------------------------------------------------------------------------
    for bad in ("bogus", "{", "[]", '{"type":"semantic_vad"}', '{"threshold":0.5}', '{"type":"server_vad","threshold":2}',
                '{"type":"server_vad","threshold":"high"}', '{"type":"server_vad","prefix_padding_ms":-1}',
                '{"type":"server_vad","silence_duration_ms":2.5}', '{"type":"server_vad","eagerness":"low"}'):
        r = post(JFK, {"chunking_strategy": bad})
        ok = r.status_code == 400 and is_openai_error(r.json(), "chunking_strategy")
        check(ok, f"chunking_strategy={bad}: 400 param chunking_strategy ({r.status_code} {r.text[:100]})")
    r = post(JFK, {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "abc"})
    check(r.status_code == 400 and is_openai_error(r.json(), "chunking_strategy"),
          f"chunking_strategy[threshold]=abc: 400 ({r.status_code})")
    hostile = [({"chunking_strategy": "a" * 300}, None), ({"chunking_strategy[Type]": "server_vad"}, None),
               ({"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "0.5&x=1"}, None),
               ({"chunking_strategy[threshold]": "0.5"}, "chunking_strategy"),
               ({"chunking_strategy": '{"type":"server_vad","type":"server_vad"}'}, "chunking_strategy"),
               ({"chunking_strategy": '{"type":"server_vad","threshold":' + "[" * 100 + "]" * 100 + "}"}, "chunking_strategy"),
               ({"chunking_strategy": '{"type":"server_vad","threshold":1e999}'}, "chunking_strategy"),
               ({"chunking_strategy[type]": "server_vad", "chunking_strategy[silence_duration_ms]": "nan"}, "chunking_strategy")]
    for fields, param in hostile:
        r = post(SILENCE, fields)
        check(r.status_code == 400 and is_openai_error(r.json(), param),
              f"hostile {str(fields)[:70]}: 400 OpenAI error ({r.status_code} {r.text[:90]})")
    r = post(JFK, {"chunking_strategy": "auto"})
    check(r.status_code == 200 and r.json()["text"] == want_jfk["text"], "after the bad values a good VAD request works")
    with open(JFK, "rb") as f:
        r = requests.post(srv.url + "/asr?vad_filter=maybe", files={"audio_file": ("jfk.wav", f.read())}, timeout=60)
    check(r.status_code == 422 and is_openai_error(r.json(), "vad_filter"), f"/asr?vad_filter=maybe: 422 ({r.status_code})")

    # --- the API description ---------------------------------------------------------------------------
    doc = requests.get(srv.url + "/openapi.json", timeout=10).json()
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        props = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        check("chunking_strategy" in props, f"openapi: {path} documents chunking_strategy")
    asr_params = {p.get("name"): p for p in doc["paths"]["/asr"]["post"]["parameters"]}
    check("vad_filter" in asr_params and "ignored" not in asr_params["vad_filter"].get("description", "").lower(),
          "openapi: /asr documents vad_filter as working")
finally:
    srv.stop()

# --- the server default: --vad and ASR_VAD -----------------------------------------------------------
for args, env, label in ((("--vad",), None, "--vad"), ((), {"ASR_VAD": "true"}, "ASR_VAD=true")):
    srv = Server("--threads", "2", *args, env=env, name=f"server {label}")
    try:
        check(srv.log_events("listening")[0].get("vad") is True, f"{label}: the listening line says vad true")
        r = post(SILENCE, {})
        check(r.status_code == 200 and r.json()["text"] == "", f"{label}: silence without chunking_strategy is empty")
        r = post(SILENCE, {"chunking_strategy": "none"})
        check(r.status_code == 200 and r.json()["text"].strip() == plain_silence["text"].strip(),
              f"{label}: chunking_strategy=none turns it off for one request")
        with open(SILENCE, "rb") as f:
            r = requests.post(srv.url + "/asr?vad_filter=false", files={"audio_file": ("s.wav", f.read())}, timeout=300)
        check(r.status_code == 200 and r.text.strip() == plain_silence["text"].strip(), f"{label}: /asr?vad_filter=false too")
    finally:
        srv.stop()
r = subprocess.run([ASR_BIN, "serve", "--port", "0", "--vad=maybe"], capture_output=True, text=True, timeout=60)
check(r.returncode == 2 and "--vad" in r.stderr, f"--vad=maybe: usage error ({r.returncode})")
finish()
