#!/usr/bin/env bash
# bench_smoke.sh — runs the benchmark harness in --smoke mode (asr only, ~10 s) and checks what it wrote, so bench/ cannot rot.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${ASR_BIN:?}" "${ASR_TEST_MODEL:?}" "${ASR_TEST_PY:?}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$ASR_TEST_PY" bench/run.py --smoke --asr "$ASR_BIN" --model "$ASR_TEST_MODEL" --out "$out" --name smoke
"$ASR_TEST_PY" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
r = json.loads((out / "smoke.json").read_text())
md = (out / "smoke.md").read_text()
problems = []
speed = [x for x in r["speed"]["rows"] if x["system"] == "asr"]
if not (speed and speed[0].get("ok")):
    problems.append(f"asr speed row failed: {speed}")
else:
    s = speed[0]
    if not (s["wall_s"] > 0 and s["cpu_s"] > 0 and s["peak_rss_mb"] > 10 and 0 < s["rtf"] < 5):
        problems.append(f"implausible asr timings: {s}")
acc = [x for x in r["accuracy"] if x["system"] == "asr"]
if not acc or not acc[0]["complete"]:
    problems.append(f"asr accuracy incomplete: {acc}")
elif acc[0]["clips"]["shared:testdata/jfk.wav"]["wer"] != 0.0:
    problems.append(f"jfk WER is not 0: {acc[0]['clips']['shared:testdata/jfk.wav']}")
lf = [x for x in r["longform"]["rows"] if x["system"] == "asr"]
# (within_audio is reported, not asserted: Whisper itself may end the last
# segment at a timestamp token past the end of the audio.)
if not (lf and lf[0].get("ok") and lf[0]["monotonic"] and lf[0]["segments"] >= 2
        and lf[0]["wer"] < 0.3):
    problems.append(f"long-form row wrong: {lf}")
for row in r.get("server", {}).get("rows", []):
    if row.get("skipped") or row["ok"] != row["requests"] or not row["throughput"]:
        problems.append(f"server row wrong: {row}")
for needle in ("| asr | greedy |", "## Speed", "## Accuracy", "## Long-form"):
    if needle not in md:
        problems.append(f"markdown lacks {needle!r}")
print(md)
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("bench smoke: OK (server part", "ran)" if r.get("server", {}).get("rows") else "not run)")
PY
