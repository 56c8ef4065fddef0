#!/usr/bin/env python3
"""cli_vad.py — `asr transcribe --vad` (faster-whisper's vad_filter) with tiny.en.

Digital silence (30 s) and white noise (20 s) give empty text, not invented
words. jfk.wav gives exactly faster-whisper's greedy text (the golden) and the
ground truth's words. On a splice of silence and speech, segment and word
times come back on the input's timeline exactly as faster-whisper's
restore_speech_timestamps() maps the times of a plain transcription of the
collected speech (the chunks from `asr vad`, which vad_reference.py holds to
faster-whisper's). Bad --vad-* values are usage errors.
Environment (set by tests/run.sh): ASR_BIN, ASR_TEST_MODEL, ASR_SHARED.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
from checks import check, finish  # noqa: E402
from pcm16 import read_wav, write_wav  # noqa: E402

from faster_whisper.transcribe import restore_speech_timestamps  # noqa: E402

ASR, MODEL = os.environ["ASR_BIN"], os.environ["ASR_TEST_MODEL"]
DATA = Path(os.environ["ASR_SHARED"]) / "testdata"
TRUTH = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def transcribe(path, *flags):
    r = subprocess.run([ASR, "transcribe", "--model", MODEL, "--threads", "2", *flags, str(path)],
                       capture_output=True, text=True, timeout=900)
    check(r.returncode == 0, f"asr transcribe {' '.join(flags)} {path.name} exits 0 ({r.stderr.strip()[-200:]})")
    return r.stdout


def norm(s):
    return " ".join(re.sub(r"[^\w\s]", "", s.lower()).split())


def restored(plain, chunks, with_words):
    """faster-whisper's restore_speech_timestamps() applied to the segments of a plain run."""
    segs = []
    for s in plain["segments"]:
        words = [SimpleNamespace(**w) for w in s.get("words", [])] if with_words else None
        segs.append(SimpleNamespace(start=s["start"], end=s["end"], text=s["text"], words=words))
    return list(restore_speech_timestamps(segs, chunks, 16000))


def compare_mapping(label, tmp, audio_path, audio, vad_flags, with_words):
    word_flag = ["--word-timestamps"] if with_words else []
    r = subprocess.run([ASR, "vad", "--json", *vad_flags, str(audio_path)], capture_output=True, text=True, timeout=300)
    chunks = json.loads(r.stdout)["segments"] if r.returncode == 0 else []
    check(len(chunks) >= 2, f"{label}: `asr vad` finds {len(chunks)} speech chunks (at least 2)")
    collected = np.concatenate([audio[c["start"]:c["end"]] for c in chunks])
    write_wav(tmp / "collected.wav", collected)
    plain = json.loads(transcribe(tmp / "collected.wav", "-f", "verbose_json", *word_flag))
    got = json.loads(transcribe(audio_path, "--vad", *vad_flags, "-f", "verbose_json", *word_flag))
    want = restored(plain, chunks, with_words)
    check(got["text"] == plain["text"], f"{label}: text equals that of the collected speech alone")
    check(abs(got["duration"] - len(audio) / 16000) < 1e-9, f"{label}: duration {got['duration']} is the input's")
    check(len(got["segments"]) == len(want) and len(want) > 0, f"{label}: {len(want)} segments")
    seg_ok = all(g["start"] == w.start and g["end"] == w.end and g["text"] == w.text
                 for g, w in zip(got["segments"], want))
    check(seg_ok, f"{label}: segment times equal faster-whisper's restore_speech_timestamps()"
          + ("" if seg_ok else f"\n     got  {[(g['start'], g['end']) for g in got['segments']]}"
             f"\n     want {[(w.start, w.end) for w in want]}"))
    if with_words:
        gw = [(x["word"], x["start"], x["end"]) for s in got["segments"] for x in s["words"]]
        ww = [(x.word, x.start, x.end) for s in want for x in s.words]
        check(gw == ww and len(gw) > 30, f"{label}: {len(gw)} word times equal faster-whisper's restored ones")
    shifted = [s for s in got["segments"] if s["start"] > chunks[0]["start"] / 16000 + 0.5]
    check(len(shifted) > 0 and got["segments"][0]["start"] >= chunks[0]["start"] / 16000 - 0.01,
          f"{label}: times are on the input's timeline (first segment at {got['segments'][0]['start']} s)")


def main():
    golden = json.loads((REPO / "tests" / "golden" / "tiny.en.json").read_text())
    jfk_text = next(c["greedy"]["text"] for c in golden["clips"] if c["id"].endswith("jfk.wav"))
    with tempfile.TemporaryDirectory(prefix="asr-cli-vad-") as tmp:
        tmp = Path(tmp)
        write_wav(tmp / "silence.wav", np.zeros(30 * 16000))
        write_wav(tmp / "noise.wav", 0.3 * np.random.default_rng(1).uniform(-1, 1, 20 * 16000))
        for name in ("silence.wav", "noise.wav"):
            out = transcribe(tmp / name, "--vad")
            check(out.strip() == "", f"--vad on {name}: empty text (got {out.strip()!r})")
            vj = json.loads(transcribe(tmp / name, "--vad", "-f", "verbose_json"))
            check(vj["segments"] == [] and vj["text"] == "", f"--vad on {name}: no segments")

        out = transcribe(DATA / "jfk.wav", "--vad").strip()
        check(out == jfk_text, f"--vad on jfk.wav: faster-whisper's text ({out!r})")
        check(norm(out) == norm(TRUTH), "--vad on jfk.wav: the ground truth's words")

        jfk = read_wav(DATA / "jfk.wav")
        splice = np.concatenate([np.zeros(8 * 16000), jfk, np.zeros(6 * 16000), jfk])
        splice = write_wav(tmp / "splice.wav", splice)
        compare_mapping("splice, words", tmp, tmp / "splice.wav", splice, [], True)
        compare_mapping("splice, 300 ms silences", tmp, tmp / "splice.wav", splice,
                        ["--vad-min-silence-ms", "300", "--vad-speech-pad-ms", "100"], False)

        for flags in (["--vad-threshold", "2"], ["--vad-min-silence-ms", "abc"], ["--vad-max-speech-s", "0"],
                      ["--vad-speech-pad-ms", "-5"]):
            r = subprocess.run([ASR, "transcribe", "--model", MODEL, "--vad", *flags, str(DATA / "jfk.wav")],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode == 2 and "--vad" in r.stderr, f"{' '.join(flags)}: usage error, exit 2 ({r.returncode})")
    finish()


if __name__ == "__main__":
    main()
