"""`--temperature T` (CLI) and the `temperature` form field (server) mean the same thing, openai-whisper's
CLI semantics: the first rung of a fallback ladder T, T+D, ... up to 1.0 (D = the CLI's
--temperature-increment-on-fallback, default 0.2; the server's step is 0.2), not a fixed temperature.
The observable is verbose_json's per-segment `temperature`, the rung a window was finally decoded at.
fleurs/de-001.ogg (German) on the English-only tiny.en fails the log-probability threshold at every
rung, so each window climbs to its ladder's last rung; sampling is seeded, so runs are repeatable."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import ASR_BIN, MODEL, SLOW, Server, check, data, finish  # noqa: E402

import requests  # noqa: E402

CLIP = data("fleurs/de-001.ogg")


def temps(segments):
    return [round(s["temperature"], 3) for s in segments]


def cli(*args):
    r = subprocess.run([ASR_BIN, "transcribe", "-m", MODEL, "-f", "verbose_json", *args, CLIP],
                       capture_output=True, text=True, timeout=300 * SLOW)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr[-200:]}"
    return temps(json.loads(r.stdout)["segments"])


def on_ladder(got, ladder):
    return isinstance(got, list) and len(got) > 0 and all(t in ladder for t in got)


# The CLI: T is where the ladder starts; D its step; D = 0 turns fallback off.
got = cli()
check(on_ladder(got, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) and max(got) == 1.0,
      f"CLI default: the ladder 0, 0.2, ... 1.0, climbed to its end: {got}")
got = cli("--temperature", "0")
check(on_ladder(got, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) and max(got) == 1.0,
      f"CLI --temperature 0 is the same ladder, not a fixed 0: {got}")
got = cli("--temperature", "0", "--temperature-increment-on-fallback", "0")
check(got == [0.0] * len(got) and len(got) > 0, f"CLI --temperature 0 --temperature-increment-on-fallback 0: 0 alone: {got}")
got = cli("--temperature", "0.6")
check(on_ladder(got, [0.6, 0.8, 1.0]) and max(got) > 0.6, f"CLI --temperature 0.6: the ladder 0.6, 0.8, 1.0: {got}")
got = cli("--temperature", "0.5", "--temperature-increment-on-fallback", "0.3")
check(on_ladder(got, [0.5, 0.8]) and max(got) == 0.8,
      f"CLI --temperature 0.5 --temperature-increment-on-fallback 0.3: the ladder 0.5, 0.8 (it stops below 1.0): {got}")
got = cli("--temperature", "1.5")
check(got == [1.5] * len(got) and len(got) > 0, f"CLI --temperature 1.5 (above 1.0): that temperature alone: {got}")
r = subprocess.run([ASR_BIN, "transcribe", "--help"], capture_output=True, text=True)
check("first temperature of the fallback ladder" in r.stdout and "0 = T alone" in r.stdout,
      "asr transcribe --help says what --temperature and its increment mean")

# The server: the same ladder from the field's value, step 0.2.
srv = Server("--workers", "1")
try:
    with open(CLIP, "rb") as f:
        clip = f.read()

    def server(temperature=None):
        fields = {"model": "whisper-1", "response_format": "verbose_json"}
        if temperature is not None:
            fields["temperature"] = temperature
        r = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": ("de-001.ogg", clip)}, data=fields,
                          timeout=300 * SLOW)
        return temps(r.json()["segments"]) if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"

    for t, ladder in [(None, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), ("0", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
                      ("0.6", [0.6, 0.8, 1.0]), ("0.5", [0.5, 0.7, 0.9])]:
        got = server(t)
        check(on_ladder(got, ladder) and max(got) == ladder[-1],
              f"server temperature={t}: the ladder {ladder}, climbed to its end: {got}")
        if t in ("0", "0.6"):
            want = cli("--temperature", t)
            check(got == want, f"server temperature={t} decodes as the CLI's --temperature {t}: {got} vs {want}")
finally:
    srv.stop()
finish()
