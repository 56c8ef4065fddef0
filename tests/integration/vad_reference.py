#!/usr/bin/env python3
"""vad_reference.py — `asr vad` (Silero VAD v6 in C) against onnxruntime and faster-whisper's VAD code.

On jfk.wav, the 5-minute long-form clip and a splice of silence, speech and
noise, the C per-frame speech probabilities must lie within 1e-3 of
onnxruntime's run of /work/shared/testdata/silero_vad_v6.onnx (fed as
faster-whisper's SileroVADModel feeds it), and the speech chunks must equal
faster-whisper's get_speech_timestamps() sample for sample, with the default
VadOptions and with other options (short silences, padding, minimum speech,
maximum speech that forces splits). A second comparison hands the C
probabilities to faster-whisper's chunking, so its logic is compared exactly
whatever the models' rounding. Also: a corrupt --weights file is refused.
Environment (set by tests/run.sh): ASR_BIN, ASR_SHARED.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "tools"))
from checks import check, finish  # noqa: E402
from pcm16 import read_wav, write_wav  # noqa: E402

import faster_whisper.vad as fwvad  # noqa: E402
from faster_whisper.audio import decode_audio  # noqa: E402

ASR = os.environ["ASR_BIN"]
DATA = Path(os.environ["ASR_SHARED"]) / "testdata"
ONNX = DATA / "silero_vad_v6.onnx"
PROB_TOL = 1e-3

# (name, VadOptions kwargs, the same as asr vad flags)
OPTION_SETS = [
    ("defaults", {}, []),
    ("short silences", {"min_silence_duration_ms": 100, "speech_pad_ms": 30},
     ["--vad-min-silence-ms", "100", "--vad-speech-pad-ms", "30"]),
    ("threshold 0.3, min speech 250 ms", {"threshold": 0.3, "min_speech_duration_ms": 250, "min_silence_duration_ms": 500},
     ["--vad-threshold", "0.3", "--vad-min-speech-ms", "250", "--vad-min-silence-ms", "500"]),
    ("max speech 3 s", {"max_speech_duration_s": 3.0, "min_silence_duration_ms": 300},
     ["--vad-max-speech-s", "3", "--vad-min-silence-ms", "300"]),
    ("neg threshold 0.2, no padding", {"neg_threshold": 0.2, "speech_pad_ms": 0, "min_silence_duration_ms": 250},
     ["--vad-neg-threshold", "0.2", "--vad-speech-pad-ms", "0", "--vad-min-silence-ms", "250"]),
]


SAN = os.environ.get("BUILD") == "build-san"


def run_vad(path, flags=()):
    r = subprocess.run([ASR, "vad", "--json", *flags, str(path)], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"asr vad {' '.join(flags)} {path.name} exits 0 ({r.stderr.strip()[-200:]})")
    return json.loads(r.stdout) if r.returncode == 0 else None


class FixedProbs:
    """Stands in for SileroVADModel with given probabilities (to compare the chunking alone)."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float32)

    def __call__(self, audio):
        assert audio.shape[0] // 512 == len(self.probs)
        return self.probs.reshape(-1, 1)


def as_pairs(segments):
    return [(int(s["start"]), int(s["end"])) for s in segments]


def compare_clip(name, path, audio, ort):
    out = run_vad(path)
    if out is None:
        return
    probs_c = np.array(out["probs"], dtype=np.float64)
    padded = np.pad(audio, (0, 512 - audio.shape[0] % 512))
    probs_ort = ort(padded).reshape(-1).astype(np.float64)
    check(len(probs_c) == len(probs_ort), f"{name}: {len(probs_c)} frames, onnxruntime {len(probs_ort)}")
    if len(probs_c) != len(probs_ort):
        return
    diff = float(np.abs(probs_c - probs_ort).max())
    check(diff <= PROB_TOL, f"{name}: probabilities within {PROB_TOL} of onnxruntime (max diff {diff:.2e})")
    check(abs(out["duration"] - len(audio) / 16000) < 1e-5, f"{name}: duration {out['duration']}")
    # The sanitizer build (several times slower) checks the long clip with the default options only.
    sets = OPTION_SETS[:1] if SAN and len(audio) > 60 * 16000 else OPTION_SETS
    for label, kwargs, flags in sets:
        got = as_pairs(out["segments"]) if not flags else None
        if flags:
            o = run_vad(path, flags)
            if o is None:
                continue
            got = as_pairs(o["segments"])
        opts = fwvad.VadOptions(**kwargs)
        # onnxruntime's probabilities, computed once above, through faster-whisper's own chunking
        fwvad.get_vad_model = lambda: FixedProbs(probs_ort)
        want = as_pairs(fwvad.get_speech_timestamps(audio, opts))
        check(got == want, f"{name} [{label}]: {len(got)} chunks equal faster-whisper's with onnxruntime"
              + ("" if got == want else f"\n     got  {got[:6]}\n     want {want[:6]}"))
        fwvad.get_vad_model = lambda: FixedProbs(probs_c)
        want_c = as_pairs(fwvad.get_speech_timestamps(audio, opts))
        check(got == want_c, f"{name} [{label}]: chunks equal faster-whisper's chunking of the C probabilities")
    return out


def main():
    ort = fwvad.SileroVADModel(str(ONNX))
    with tempfile.TemporaryDirectory(prefix="asr-vad-") as tmp:
        tmp = Path(tmp)
        jfk_path = DATA / "jfk.wav"
        jfk = read_wav(jfk_path)
        out = compare_clip("jfk.wav", jfk_path, jfk, ort)
        if out:
            check(len(out["segments"]) == 1 and out["segments"][0]["end"] == len(jfk),
                  f"jfk.wav: one speech chunk up to the end ({out['segments']})")

        longform = write_wav(tmp / "en-brian.wav", decode_audio(str(DATA / "longform" / "en-brian.ogg")))
        compare_clip("en-brian (long form)", tmp / "en-brian.wav", longform, ort)

        rng = np.random.default_rng(7)
        splice = np.concatenate([np.zeros(10 * 16000, np.float32), jfk, np.zeros(3 * 16000, np.float32),
                                 jfk[: 5 * 16000], (0.01 * rng.standard_normal(25 * 16000)).astype(np.float32),
                                 jfk[5 * 16000:]])
        splice = write_wav(tmp / "splice.wav", splice)
        out = compare_clip("silence+speech splice", tmp / "splice.wav", splice, ort)
        if out:
            segs = as_pairs(out["segments"])
            check(len(segs) >= 3 and segs[0][0] >= 9 * 16000,
                  f"splice: the leading 10 s of silence are not speech, the pauses split it ({segs})")

        # a hostile weight file: every byte string is refused cleanly, never trusted
        good = (HERE.parents[1] / "models" / "silero_vad_v6.bin").read_bytes()
        cases = {"empty": b"", "magic": b"XXXXXXXX" + good[8:], "truncated": good[: len(good) // 2],
                 "trailing": good + b"\0\0\0\0", "header only": good[:16],
                 "huge name": good[:16] + b"\xff\xff\xff\x7f" + good[20:]}
        for label, blob in cases.items():
            p = tmp / "bad.bin"
            p.write_bytes(blob)
            r = subprocess.run([ASR, "vad", "--weights", str(p), str(jfk_path)], capture_output=True, text=True,
                               timeout=60)
            check(r.returncode == 3 and "VAD weight file" in r.stderr,
                  f"--weights {label}: refused with exit 3 ({r.returncode}: {r.stderr.strip()[:120]})")
        r = subprocess.run([ASR, "vad", "--weights", str(HERE.parents[1] / "models" / "silero_vad_v6.bin"),
                            "--json", str(jfk_path)], capture_output=True, text=True, timeout=60)
        builtin = run_vad(jfk_path)
        check(r.returncode == 0 and builtin is not None and json.loads(r.stdout) == builtin,
              "--weights models/silero_vad_v6.bin gives what the built-in weights give")
    finish()


if __name__ == "__main__":
    main()
