#!/usr/bin/env python3
"""vad.py — speed of the Silero VAD: `asr vad` (C, one thread) against onnxruntime (one thread).

Run by hand with the bench venv (numpy, av, onnxruntime):
    ~/.cache/asr/bench-venv/bin/python bench/vad.py [--repeats 5] [--asr build/asr]
The long-form clip (304.7 s) is decoded once to a 16 kHz WAV under /tmp; `asr vad` runs on it
--repeats times and the CPU time (user + system, from wait4) of the fastest run is reported,
together with the wall time; decoding a WAV costs well under a millisecond per second of
audio, so it is almost all VAD. onnxruntime runs the same ONNX file the way faster-whisper's
SileroVADModel does (576-sample inputs, batches of 10000, state carried), intra_op threads 1.
Prints ms of CPU per second of audio for both.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ASR_SHARED", REPO.parent / "shared"))


def decode(path):
    import av

    with av.open(str(path)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=16000)
        chunks = []
        for frame in c.decode(audio=0):
            for f in res.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1))
        for f in res.resample(None):
            chunks.append(f.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype("<i2")


def run_asr(asr, wav):
    t0 = time.perf_counter()
    p = subprocess.Popen([asr, "vad", str(wav)], stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"asr vad failed ({status})")
    return ru.ru_utime + ru.ru_stime, wall


def run_ort(onnx_path, audio):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    sess = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"], sess_options=opts)
    padded = np.pad(audio, (0, 512 - audio.shape[0] % 512))
    frames = padded.reshape(-1, 512)
    context = np.roll(np.concatenate([frames[:-1, -64:], np.zeros((1, 64), np.float32)]), 1, 0)
    batch = np.concatenate([context, frames], 1)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    for i in range(0, len(batch), 10000):
        _, h, c = sess.run(None, {"input": batch[i:i + 10000], "h": h, "c": c})
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--asr", default=str(REPO / "build" / "asr"))
    args = ap.parse_args()
    pcm = decode(SHARED / "testdata" / "longform" / "en-brian.ogg")
    seconds = len(pcm) / 16000
    with tempfile.TemporaryDirectory(prefix="asr-bench-vad-") as tmp:
        wav = Path(tmp) / "longform.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())
        asr_runs = [run_asr(args.asr, wav) for _ in range(args.repeats)]
    audio = pcm.astype(np.float32) / 32768
    ort_runs = [run_ort(SHARED / "testdata" / "silero_vad_v6.onnx", audio) for _ in range(args.repeats)]
    print(f"audio: {seconds:.1f} s (longform/en-brian.ogg), best of {args.repeats}")
    for name, runs in (("asr vad (C, 1 thread)", asr_runs), ("onnxruntime (1 thread)", ort_runs)):
        cpu, wall = min(runs)
        print(f"{name:24s} cpu {cpu * 1000 / seconds:6.2f} ms per audio second"
              f"  (cpu {cpu:.3f} s, wall {wall:.3f} s, {seconds / cpu:.0f}x real time)")


if __name__ == "__main__":
    main()
