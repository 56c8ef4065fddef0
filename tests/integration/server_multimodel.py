"""`asr serve --model tiny.en,base`: two models in one server. The same clip through each gives that
model's own answer, equal to `asr transcribe --model X`; whisper-1 is the first; the two run at once;
/v1/models (and /v1/models/{id}) list both with their shapes; an unknown model is OpenAI's 404
model_not_found; /detect-language?model=base detects German where tiny.en only knows English;
/metrics counts the loaded models and their bytes; --model-idle-unload frees base when idle and the next
request loads it again; ASR_MODEL takes a list; bad lists exit 2."""
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import ASR_BIN, SLOW, Server, check, data, finish, is_openai_error  # noqa: E402

import openai  # noqa: E402
import requests  # noqa: E402

MODELS_DIR = os.environ.get("ASR_MODELS_DIR", os.path.expanduser("~/.cache/asr/models"))
CLIPS = ["jfk.wav", "fleurs/de-000.ogg"]


def cli_text(model, clip):
    r = subprocess.run([ASR_BIN, "transcribe", "--model", os.path.join(MODELS_DIR, model), "--threads", "2",
                        data(clip)], capture_output=True, text=True, timeout=600 * SLOW)
    check(r.returncode == 0, f"asr transcribe --model {model} {clip} exits 0 ({r.stderr.strip()[-200:]})")
    return r.stdout.strip()


def listening_line(env, *args):
    """Start `asr serve` with only `env` as ASR_* settings; return its listening event (or None) and rc."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASR_") or k == "ASR_MODELS_DIR"}
    full.update(env)
    p = subprocess.Popen([ASR_BIN, "serve", "--port", "0", *args], env=full, stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True)
    event = None
    for line in p.stderr:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("event") == "listening":
            event = obj
            break
    if event:
        p.terminate()
    rc = p.wait(timeout=60 * SLOW)
    return event, rc


want = {(m, c): cli_text(m, c) for m in ("tiny.en", "base") for c in CLIPS}
check(want[("tiny.en", "jfk.wav")] != want[("base", "jfk.wav")]
      and want[("tiny.en", "fleurs/de-000.ogg")] != want[("base", "fleurs/de-000.ogg")],
      "the CLI gives the two models different answers (so the check below can tell them apart)")

srv = Server("--model", "tiny.en,base", "--workers", "2", "--threads", "2", name="two-model server")
URL = srv.url + "/v1/audio/transcriptions"


def post_text(model, clip, out):
    with open(data(clip), "rb") as f:
        r = requests.post(URL, files={"file": (os.path.basename(clip), f.read())},
                          data={"model": model, "response_format": "text"}, timeout=600 * SLOW)
    out[(model, clip)] = (r.status_code, r.text.strip())


try:
    listening = srv.log_events("listening")[0]
    check(listening.get("models") == ["tiny.en", "base"] and listening.get("model") == "tiny.en",
          f"the listening line names both models, tiny.en the default ({listening.get('models')})")

    # --- each model its own answer, the CLI's; both at once -----------------------------------------
    got = {}
    threads = [threading.Thread(target=post_text, args=(m, c, got)) for m in ("tiny.en", "base") for c in CLIPS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key, text in want.items():
        status, body = got.get(key, (0, ""))
        check(status == 200 and body == text, f"model={key[0]} on {key[1]} (concurrently): the CLI's text "
              f"({status} {body[:70]!r})")
    post_text("whisper-1", "jfk.wav", got)
    check(got[("whisper-1", "jfk.wav")] == (200, want[("tiny.en", "jfk.wav")]), "whisper-1 is tiny.en, the first")
    post_text("tiny", "jfk.wav", got)
    check(got[("tiny", "jfk.wav")] == (200, want[("tiny.en", "jfk.wav")]),
          "model=tiny (the type, one served model has it) picks tiny.en")

    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=600 * SLOW)
    with open(data("jfk.wav"), "rb") as f:
        r = client.audio.transcriptions.create(model="base", file=f, response_format="verbose_json")
    check(r.text.strip() == want[("base", "jfk.wav")] and r.language == "english",
          f"SDK model=base: base's text, language english ({r.text.strip()[:60]!r}, {r.language})")

    # --- /v1/models -------------------------------------------------------------------------------
    listed = {m.id: m for m in client.models.list()}
    check(list(listed) == ["whisper-1", "tiny.en", "base"], f"/v1/models lists whisper-1, tiny.en, base ({list(listed)})")
    body = requests.get(srv.url + "/v1/models", timeout=10).json()["data"]
    by_id = {m["id"]: m for m in body}
    te, ba = by_id["tiny.en"], by_id["base"]
    check(te["multilingual"] is False and ba["multilingual"] is True, "tiny.en is English-only, base multilingual")
    check(te["tasks"] == ["transcribe"] and ba["tasks"] == ["transcribe", "translate"], "tasks: base translates too")
    check(te["dims"]["n_audio_state"] == 384 and ba["dims"]["n_audio_state"] == 512
          and te["dims"]["n_text_layer"] == 4 and ba["dims"]["n_text_layer"] == 6
          and te["dims"]["n_mels"] == 80 == ba["dims"]["n_mels"],
          f"layer sizes are each model's own (tiny 384x4, base 512x6): {te['dims']}, {ba['dims']}")
    check(ba["weight_bytes"] > te["weight_bytes"] > 10_000_000, f"weight bytes: base {ba['weight_bytes']} > "
          f"tiny.en {te['weight_bytes']}")
    check(te["compute_type"] == ba["compute_type"] and te["compute_type"] in ("float32", "bfloat16", "float16",
          "int8", "int8_float32", "int8_bfloat16"), f"compute type reported ({te['compute_type']})")
    check(by_id["whisper-1"].get("alias_of") == "tiny.en" and te["default"] is True and ba["default"] is False,
          "whisper-1 is listed as an alias of the default, tiny.en")
    one = client.models.retrieve("base")
    check(one.id == "base" and one.object == "model", "SDK models.retrieve('base')")
    try:
        client.models.retrieve("large-v9")
        check(False, "models.retrieve of an unknown model raises NotFoundError")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and e.body.get("code") == "model_not_found", "retrieve unknown: 404 model_not_found")

    # --- unknown model: OpenAI's 404 ---------------------------------------------------------------
    r = requests.post(URL, files={"file": ("jfk.wav", open(data("jfk.wav"), "rb").read())}, data={"model": "gpt-9"},
                      timeout=60)
    b = r.json()
    check(r.status_code == 404 and is_openai_error(b) and b["error"]["code"] == "model_not_found"
          and b["error"]["type"] == "invalid_request_error" and "gpt-9" in b["error"]["message"],
          f"unknown model: 404 invalid_request_error model_not_found ({r.status_code} {r.text[:120]})")
    try:
        with open(data("jfk.wav"), "rb") as f:
            client.audio.transcriptions.create(model="gpt-9", file=f)
        check(False, "SDK with an unknown model raises NotFoundError")
    except openai.NotFoundError as e:
        check(e.status_code == 404, "SDK with an unknown model: NotFoundError")

    # --- /detect-language and /asr pick a model too ------------------------------------------------
    def detect(model):
        with open(data("fleurs/de-000.ogg"), "rb") as f:
            return requests.post(srv.url + "/detect-language" + (f"?model={model}" if model else ""),
                                 files={"audio_file": ("de.ogg", f.read())}, timeout=300 * SLOW)
    r = detect("base").json()
    check(r.get("language_code") == "de" and 0.5 < r.get("confidence", 0) < 1.0,
          f"/detect-language?model=base on German speech: de, a real probability ({r})")
    r = detect(None).json()
    check(r.get("language_code") == "en" and r.get("confidence") == 1.0,
          f"/detect-language on the default tiny.en: en at 1.0, all an English-only model knows ({r})")
    r = detect("nosuch")
    check(r.status_code == 404 and r.json()["error"]["code"] == "model_not_found", "/detect-language?model=nosuch: 404")
    with open(data("fleurs/de-000.ogg"), "rb") as f:
        r = requests.post(srv.url + "/asr?model=base&output=txt", files={"audio_file": ("de.ogg", f.read())},
                          timeout=300 * SLOW)
    check(r.status_code == 200 and " ".join(r.text.split()) == " ".join(want[("base", "fleurs/de-000.ogg")].split()),
          f"/asr?model=base: base's German text ({r.text.strip()[:60]!r})")

    # --- /metrics ------------------------------------------------------------------------------------
    check(srv.metric("asr_models_loaded") == 2 and srv.metric("asr_models_served") == 2, "asr_models_loaded 2, served 2")
    check(srv.metric('asr_model_weight_bytes{model="base"}') == ba["weight_bytes"]
          and srv.metric("asr_models_weight_bytes") == ba["weight_bytes"] + te["weight_bytes"],
          "asr_model_weight_bytes per model and in all equal /v1/models' weight_bytes")
finally:
    srv.stop()

# --- --model-idle-unload: base is freed when idle and loaded again by the next request ------------------
import time  # noqa: E402


def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


srv = Server("--model", "tiny.en,base", "--threads", "2", "--model-idle-unload", "1", name="idle-unload server")
URL = srv.url + "/v1/audio/transcriptions"
try:
    check(wait_for(lambda: srv.metric("asr_models_loaded") == 1, 15 * SLOW),
          "idle unload: base is freed a second after startup (asr_models_loaded 1)")
    check(srv.metric('asr_model_loaded{model="tiny.en"}') == 1 and srv.metric('asr_model_loaded{model="base"}') == 0
          and srv.metric('asr_model_weight_bytes{model="base"}') == 0, "the default model stays; base's bytes are 0")
    m = requests.get(srv.url + "/v1/models/base", timeout=10).json()
    check(m.get("loaded") is False and m["dims"]["n_audio_state"] == 512, "/v1/models/base: loaded false, shapes kept")
    got = {}
    post_text("base", "jfk.wav", got)
    check(got[("base", "jfk.wav")] == (200, want[("base", "jfk.wav")]), "a request for base loads it again: base's text")
    check(srv.metric('asr_model_loads_total{model="base"}') == 2, "asr_model_loads_total{model=base} 2")
    check(wait_for(lambda: srv.metric("asr_models_loaded") == 1, 15 * SLOW), "and it is freed again when idle")
    check(any(e.get("event") == "models_unloaded" for e in srv.log_events("models_unloaded")), "a models_unloaded log line")
finally:
    srv.stop()

# --- ASR_MODEL takes the list too; bad lists are usage errors ------------------------------------------
ev, rc = listening_line({"ASR_MODEL": "base,tiny.en"})
check(ev is not None and ev.get("models") == ["base", "tiny.en"] and ev.get("model") == "base" and rc == 0,
      f"ASR_MODEL=base,tiny.en: base is the default ({ev and ev.get('models')}, rc {rc})")
for bad in ("tiny.en,,base", "tiny.en,tiny.en", "tiny.en,no-such-model", "tiny.en,"):
    ev, rc = listening_line({}, "--model", bad)
    check(ev is None and rc == 2, f"--model {bad}: exit 2 without listening (rc {rc})")
finish()
