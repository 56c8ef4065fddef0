"""/detect-language on the multilingual base model, where the answer comes from running the
model (on tiny.en the server answers "english" without it): English and German FLEURS clips
are told apart, the confidence is a real probability, and the answer equals the CLI's
detected language on the same file. Pulls base into the model cache when it is missing."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import ASR_BIN, SLOW, Server, check, data, finish, is_openai_error  # noqa: E402

import requests  # noqa: E402

MODELS = os.environ.get("ASR_MODELS_DIR", os.path.expanduser("~/.cache/asr/models"))
BASE = os.path.join(MODELS, "base")
if not os.path.isfile(os.path.join(BASE, "model.bin")):
    r = subprocess.run([ASR_BIN, "models", "pull", "base"], capture_output=True, text=True, timeout=1800)
    check(r.returncode == 0, f"asr models pull base ({r.stderr[-300:]!r})")

CLIPS = [("jfk.wav", "english", "en"), ("fleurs/de-000.ogg", "german", "de"),
         ("fleurs/de-001.ogg", "german", "de"), ("fleurs/en-000.ogg", "english", "en")]


def cli_language(path):
    r = subprocess.run([ASR_BIN, "transcribe", "-m", BASE, "-f", "verbose_json", path],
                       capture_output=True, text=True, timeout=300 * SLOW)
    return json.loads(r.stdout).get("language") if r.returncode == 0 else f"exit {r.returncode}: {r.stderr[-200:]}"


srv = Server("--model", BASE, "--workers", "1", name="base server")
try:
    for name, want_lang, want_code in CLIPS:
        with open(data(name), "rb") as f:
            r = requests.post(srv.url + "/detect-language", files={"audio_file": (os.path.basename(name), f)},
                              timeout=120 * SLOW)
        j = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        conf = j.get("confidence", -1)
        check(r.status_code == 200 and j.get("detected_language") == want_lang and j.get("language_code") == want_code,
              f"/detect-language {name}: {want_lang} ({r.status_code} {j})")
        # A probability the model computed: above chance among 99 languages, and never the
        # exact 1.0 the English-only shortcut answers.
        check(0.5 <= conf < 1.0, f"/detect-language {name}: confidence {conf} in [0.5, 1)")
        check(cli_language(data(name)) == want_lang, f"asr transcribe -f verbose_json {name}: language {want_lang}")
    # The same encode=false path on the multilingual model: 16 kHz s16le of jfk.wav's data chunk.
    with open(data("jfk.wav"), "rb") as f:
        wav = f.read()
    pcm = wav[wav.index(b"data") + 8:]
    r = requests.post(srv.url + "/detect-language", params={"encode": "false"},
                      files={"audio_file": ("jfk.raw", pcm)}, timeout=120 * SLOW)
    check(r.status_code == 200 and r.json().get("language_code") == "en",
          f"/detect-language encode=false on raw PCM: en ({r.status_code} {r.text[:120]!r})")
    r = requests.post(srv.url + "/detect-language", files={"audio_file": ("empty.wav", b"")}, timeout=60 * SLOW)
    check(r.status_code == 400 and is_openai_error(r.json(), "audio_file"), f"/detect-language empty file: 400 ({r.text[:120]!r})")
finally:
    srv.stop()
finish()
