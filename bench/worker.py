#!/usr/bin/env python3
"""worker.py — one benchmark run of a Python-hosted engine (faster-whisper or whisper.cpp) in its own process.

bench/run.py starts this as a child so that wall time, CPU time and peak RSS
(from wait4) cover exactly one engine, as they do for the `asr` process:

    worker.py --engine faster-whisper --model DIR --compute-type int8 --threads 2 \
              --beam-size 1 --out result.json FILE...
    worker.py --engine whisper.cpp --model ggml.bin --threads 2 --beam-size 5 --out r.json FILE...
    worker.py --engine faster-whisper --batch-size 8 ...   (BatchedInferencePipeline)

Decoding settings are openai/whisper transcribe()'s (as in tests/golden/make_goldens.py);
whisper.cpp has no compression-ratio test and uses its entropy threshold 2.4 instead.
Writes {"load_s", "files": {path: {"text", "segments", "transcribe_s"}}, "timings"}.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

TEMPERATURES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def run_faster_whisper(args) -> dict:
    from faster_whisper import WhisperModel
    t0 = time.perf_counter()
    model = WhisperModel(args.model, device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads)
    load_s = time.perf_counter() - t0
    files = {}
    if args.batch_size > 0:
        return run_faster_whisper_batched(args, model, load_s)
    for path in args.files:
        t = time.perf_counter()
        segments, _ = model.transcribe(
            path, language=args.language, task="transcribe", beam_size=args.beam_size, best_of=5,
            patience=1.0, length_penalty=1.0, temperature=TEMPERATURES,
            compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6,
            condition_on_previous_text=True, prompt_reset_on_temperature=0.5,
            suppress_blank=True, suppress_tokens=[-1], without_timestamps=False,
            max_initial_timestamp=1.0, word_timestamps=False, vad_filter=False)
        segs = [dict(start=s.start, end=s.end, text=s.text) for s in segments]
        files[path] = dict(text="".join(s["text"] for s in segs).strip(), segments=segs,
                           transcribe_s=time.perf_counter() - t)
    return dict(load_s=load_s, files=files)


def run_faster_whisper_batched(args, model, load_s) -> dict:
    """BatchedInferencePipeline (Silero VAD, chunks packed into 30 s windows, batch_size at a time), as
    `asr transcribe --vad --batch-size N`: greedy at beam 1, timestamps on (the pipeline's default is
    without_timestamps=True), its own defaults otherwise."""
    from faster_whisper import BatchedInferencePipeline
    pipeline = BatchedInferencePipeline(model)
    files = {}
    for path in args.files:
        t = time.perf_counter()
        segments, _ = pipeline.transcribe(path, language=args.language, task="transcribe",
                                          beam_size=args.beam_size, batch_size=args.batch_size,
                                          without_timestamps=False, word_timestamps=False)
        segs = [dict(start=s.start, end=s.end, text=s.text) for s in segments]
        files[path] = dict(text="".join(s["text"] for s in segs).strip(), segments=segs,
                           transcribe_s=time.perf_counter() - t)
    return dict(load_s=load_s, files=files)


def run_whisper_cpp(args) -> dict:
    from faster_whisper.audio import decode_audio  # same PyAV decoding as faster-whisper
    from pywhispercpp.model import Model
    params = dict(n_threads=args.threads, language=args.language, translate=False, no_context=False,
                  no_timestamps=False, suppress_blank=True, max_initial_ts=1.0,
                  temperature=0.0, temperature_inc=0.2, entropy_thold=2.4, logprob_thold=-1.0,
                  no_speech_thold=0.6, print_progress=False, print_realtime=False,
                  greedy={"best_of": 5}, beam_search={"beam_size": args.beam_size, "patience": 1.0})
    # whisper.cpp prints its timings on the C stderr: send them to a file we parse.
    log = tempfile.NamedTemporaryFile(prefix="whispercpp-", suffix=".log", delete=False)
    t0 = time.perf_counter()
    model = Model(args.model, params_sampling_strategy=0 if args.beam_size <= 1 else 1,
                  redirect_whispercpp_logs_to=False, **params)
    load_s = time.perf_counter() - t0
    files = {}
    for path in args.files:
        t = time.perf_counter()
        audio = decode_audio(path, sampling_rate=16000)
        segments = model.transcribe(audio)
        segs = [dict(start=s.t0 / 100, end=s.t1 / 100, text=s.text) for s in segments]
        # whisper.cpp's segment texts may lack openai's leading space: join with one.
        files[path] = dict(text=" ".join(s["text"].strip() for s in segs).strip(), segments=segs,
                           transcribe_s=time.perf_counter() - t)
    # whisper.cpp's timings add up over every transcribe of this context.
    totals = _whisper_cpp_timings(model, log.name)
    os.unlink(log.name)
    timings = {}
    if totals.get("encode_runs"):
        timings["encoder_ms_per_window"] = totals["encode_ms"] / totals["encode_runs"]
    if totals.get("decode_runs"):
        timings["decoder_ms_per_token"] = totals["decode_ms"] / totals["decode_runs"]
    return dict(load_s=load_s, files=files, timings=timings)


def _whisper_cpp_timings(model, log_path: str) -> dict:
    """Encoder and decoder totals of every transcribe so far, from whisper_print_timings()."""
    fd = os.dup(2)
    try:
        with open(log_path, "w") as f:
            os.dup2(f.fileno(), 2)
            model.print_timings()
            sys.stderr.flush()
    finally:
        os.dup2(fd, 2)
        os.close(fd)
    text = open(log_path, encoding="utf-8", errors="replace").read()
    out = {}
    m = re.search(r"encode time =\s*([\d.]+) ms /\s*(\d+) runs", text)
    if m:
        out["encode_ms"], out["encode_runs"] = float(m.group(1)), int(m.group(2))
    # greedy steps are "decode", beam steps "batchd"; both are one token per sequence.
    for key in ("decode", "batchd"):
        m = re.search(key + r" time =\s*([\d.]+) ms /\s*(\d+) runs", text)
        if m and int(m.group(2)):
            out["decode_ms"] = out.get("decode_ms", 0.0) + float(m.group(1))
            out["decode_runs"] = out.get("decode_runs", 0) + int(m.group(2))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["faster-whisper", "whisper.cpp"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--compute-type", default="float32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--language", default="en")
    ap.add_argument("--batch-size", type=int, default=0, help="faster-whisper: > 0 runs BatchedInferencePipeline")
    ap.add_argument("--out", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    result = run_faster_whisper(args) if args.engine == "faster-whisper" else run_whisper_cpp(args)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
