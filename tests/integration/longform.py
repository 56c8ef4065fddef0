#!/usr/bin/env python3
"""longform.py — the 5-minute longform/en-brian.ogg through the seek loop, greedy and beam 5.

Checks the properties that long audio breaks first:
  - segments cover the audio: the first starts in the first 2 s, the last
    ends in the final 5 s, and no stretch of more than 10 s has no segment
    (the recording is continuous speech);
  - timestamps are monotonic: every segment ends at or after it starts and
    starts at or after the previous one started, and seeks never go back;
  - every segment lies within the audio (end <= duration + 0.02 s);
  - no repetition loops: no segment text three times in a row, no 6-word
    sequence more often than in the reference text (+1), no segment's
    compression ratio above 2.4 (openai's loop detector), and a word count
    within 10% of the reference;
  - WER against longform/en.txt (Whisper's English normaliser) is printed and
    at most 1 point above faster-whisper's on the same weights (the golden in
    tests/golden/<model>.json).
All of it in float32 and in the type `--compute-type auto` picks on this CPU; the
latter's WER may be at most 0.5 points above float32's in the same mode.
Environment (set by tests/run.sh): ASR_BIN, ASR_TEST_MODEL, ASR_SHARED.
"""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
import normalizer  # noqa: E402
from checks import check, finish  # noqa: E402

CLIP_ID = "shared:testdata/longform/en-brian.ogg"
MAX_WER_EXCESS = 0.01
MAX_TYPE_EXCESS = 0.005


def ngram_counts(words, n):
    return collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def main() -> None:
    asr = os.environ["ASR_BIN"]
    model = os.environ["ASR_TEST_MODEL"]
    td = Path(os.environ["ASR_SHARED"]) / "testdata"
    audio = td / "longform" / "en-brian.ogg"
    reference = " ".join((td / "longform" / "en.txt").read_text(encoding="utf-8").split())
    golden_path = REPO / "tests" / "golden" / f"{Path(model).name}.json"
    golden = None
    if golden_path.is_file():
        for clip in json.loads(golden_path.read_text())["clips"]:
            if clip["id"] == CLIP_ID:
                golden = clip

    ref_words = normalizer.normalize(reference).split()
    ref_6grams = ngram_counts(ref_words, 6)
    info = subprocess.run([asr, "models", "info", model], capture_output=True, text=True, timeout=600)
    check(info.returncode == 0, f"asr models info {model} ({info.stderr.strip()[-300:]})")
    auto = json.loads(info.stdout)["compute_type"] if info.returncode == 0 else "float32"
    types = ["float32"] + ([auto] if auto != "float32" else [])
    print(f"compute types: {', '.join(types)} (auto is {auto} here)")
    f32_wer = {}
    for ctype, (mode, flags) in [(t, m) for t in types for m in (("greedy", []), ("beam5", ["--beam-size", "5"]))]:
        if ctype != "float32":
            mode = f"{mode} {ctype}"
        r = subprocess.run([asr, "transcribe", "--model", model, "--compute-type", ctype, "--output-format",
                            "verbose_json", *flags, str(audio)], capture_output=True, text=True, timeout=900)
        check(r.returncode == 0, f"{mode}: asr transcribe exits 0 ({r.stderr.strip()[-300:]})")
        if r.returncode != 0:
            continue
        out = json.loads(r.stdout)
        segs = out["segments"]
        duration = out["duration"]
        check(abs(duration - 304.7) < 0.5, f"{mode}: duration {duration:.2f} s")
        check(len(segs) >= 30, f"{mode}: {len(segs)} segments")
        if not segs:
            continue
        check(segs[0]["start"] <= 2.0, f"{mode}: first segment starts at {segs[0]['start']:.2f} s")
        check(segs[-1]["end"] >= duration - 5.0, f"{mode}: last segment ends at {segs[-1]['end']:.2f} s")
        gaps = [(a["end"], b["start"]) for a, b in zip(segs, segs[1:]) if b["start"] - a["end"] > 10.0]
        check(not gaps, f"{mode}: no gap over 10 s between segments {gaps[:3]}")
        bad_order = [s["id"] for s in segs if s["end"] < s["start"]]
        check(not bad_order, f"{mode}: every segment ends at or after its start {bad_order[:5]}")
        back = [b["id"] for a, b in zip(segs, segs[1:]) if b["start"] < a["start"] or b["seek"] < a["seek"]]
        check(not back, f"{mode}: starts and seeks never go back {back[:5]}")
        outside = [(s["id"], s["end"]) for s in segs if s["start"] < 0 or s["end"] > duration + 0.02]
        check(not outside, f"{mode}: every segment within 0 .. {duration:.2f} s {outside[:5]}")

        texts = [s["text"].strip() for s in segs]
        triples = [t for a, b, t in zip(texts, texts[1:], texts[2:]) if a == b == t and t]
        check(not triples, f"{mode}: no segment text three times in a row {triples[:2]}")
        hyp_words = normalizer.normalize(out["text"]).split()
        loops = [(" ".join(g), n) for g, n in ngram_counts(hyp_words, 6).items() if n > ref_6grams.get(g, 0) + 1]
        check(not loops, f"{mode}: no 6-word sequence repeated beyond the reference {loops[:2]}")
        high = [(s["id"], s["compression_ratio"]) for s in segs if s["compression_ratio"] > 2.4]
        check(not high, f"{mode}: no segment with compression ratio > 2.4 {high[:3]}")
        ratio = len(hyp_words) / len(ref_words)
        check(0.9 <= ratio <= 1.1, f"{mode}: {len(hyp_words)} words for {len(ref_words)} in the reference")

        e = normalizer.word_errors(reference, out["text"])
        wer = e.errors / e.ref_words
        base_mode = mode.split()[0]
        if ctype == "float32":
            f32_wer[base_mode] = wer
        elif base_mode in f32_wer:
            check(wer <= f32_wer[base_mode] + MAX_TYPE_EXCESS,
                  f"{mode}: WER {100 * wer:.2f}% vs float32 {100 * f32_wer[base_mode]:.2f}% (limit +0.5)")
        if golden and base_mode in golden:
            fw = golden[base_mode]["wer"]
            check(wer <= fw + MAX_WER_EXCESS,
                  f"{mode}: WER {100 * wer:.2f}% vs faster-whisper {100 * fw:.2f}% (limit +{100 * MAX_WER_EXCESS:.1f})")
        else:
            print(f"info {mode}: WER {100 * wer:.2f}% (no golden for {Path(model).name})")
    finish("long-form: OK")


if __name__ == "__main__":
    main()
