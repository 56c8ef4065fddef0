#!/usr/bin/env python3
"""batched_longform.py — `asr transcribe --batch-size N` (batched long-form) on the 5-minute clip.

Checks, in float32 on tiny.en (ASR_TEST_MODEL):
  - --batch-size 8 on longform/en-brian.ogg: WER (Whisper's English
    normaliser, against longform/en.txt) at most 1 point above the sequential
    loop's on the same file; segments in time order (starts never go back,
    ends at or after starts), within the audio, covering it (first in the
    first 2 s, last in the final 5 s, no gap over 10 s: the talk is
    continuous speech); no repetition loops (no segment text three times in a
    row, no 6-word sequence more often than in the reference + 1, a word
    count within 10% of the reference's);
  - the batch does not change results: the first 100 s (several VAD windows)
    with --batch-size 1 and --batch-size 4 give the same segments (text,
    times, tokens) — each window's result is computed independently of the
    others in its batch;
  - --word-timestamps with --batch-size 2 on jfk.wav: every segment has words,
    in order, inside the segment and the audio;
  - 30 s of digital silence with --batch-size 8 gives no segments;
  - --batch-size 0, 17 and x are refused as usage errors;
  - `asr serve --batch-size 8` answers the 5-minute upload with exactly the
    CLI's --batch-size 8 segments, and a clip under 30 s with the sequential
    loop's answer (the option is for long uploads only).
Environment (set by tests/run.sh): ASR_BIN, ASR_TEST_MODEL, ASR_SHARED.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
import normalizer  # noqa: E402
from checks import check, finish  # noqa: E402
from pcm16 import write_wav  # noqa: E402

from faster_whisper.audio import decode_audio  # noqa: E402

MAX_WER_EXCESS = 0.01


def ngram_counts(words, n):
    return collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def transcribe(asr, model, audio, *flags):
    r = subprocess.run([asr, "transcribe", "--model", model, "--compute-type", "float32", "--threads", "2",
                        "--output-format", "verbose_json", *flags, str(audio)],
                       capture_output=True, text=True, timeout=900)
    what = " ".join(flags) or "sequential"
    check(r.returncode == 0, f"{what}: asr transcribe exits 0 ({r.stderr.strip()[-300:]})")
    return json.loads(r.stdout) if r.returncode == 0 else None


def main() -> None:
    asr = os.environ["ASR_BIN"]
    model = os.environ["ASR_TEST_MODEL"]
    td = Path(os.environ["ASR_SHARED"]) / "testdata"
    audio = td / "longform" / "en-brian.ogg"
    reference = " ".join((td / "longform" / "en.txt").read_text(encoding="utf-8").split())
    ref_words = normalizer.normalize(reference).split()
    ref_6grams = ngram_counts(ref_words, 6)

    for bad in ("0", "17", "x"):
        r = subprocess.run([asr, "transcribe", "--model", model, "--batch-size", bad, str(audio)],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and "--batch-size" in r.stderr, f"--batch-size {bad}: usage error (exit {r.returncode})")

    seq = transcribe(asr, model, audio)
    out = transcribe(asr, model, audio, "--batch-size", "8")
    if seq and out:
        segs, duration = out["segments"], out["duration"]
        check(abs(duration - 304.7) < 0.5, f"batched: duration {duration:.2f} s")
        check(len(segs) >= 30, f"batched: {len(segs)} segments")
        if segs:
            check(segs[0]["start"] <= 2.0, f"batched: first segment starts at {segs[0]['start']:.2f} s")
            check(segs[-1]["end"] >= duration - 5.0, f"batched: last segment ends at {segs[-1]['end']:.2f} s")
        gaps = [(a["end"], b["start"]) for a, b in zip(segs, segs[1:]) if b["start"] - a["end"] > 10.0]
        check(not gaps, f"batched: no gap over 10 s between segments {gaps[:3]}")
        bad_order = [s["id"] for s in segs if s["end"] < s["start"]]
        check(not bad_order, f"batched: every segment ends at or after its start {bad_order[:5]}")
        back = [b["id"] for a, b in zip(segs, segs[1:]) if b["start"] < a["start"]]
        check(not back, f"batched: segment starts never go back {back[:5]}")
        ids = [s["id"] for s in segs]
        check(ids == list(range(len(segs))), "batched: segment ids are 0, 1, 2, ... in time order")
        outside = [(s["id"], s["start"], s["end"]) for s in segs if s["start"] < 0 or s["end"] > duration + 0.02]
        check(not outside, f"batched: every segment within 0 .. {duration:.2f} s {outside[:5]}")

        texts = [s["text"].strip() for s in segs]
        triples = [t for a, b, t in zip(texts, texts[1:], texts[2:]) if a == b == t and t]
        check(not triples, f"batched: no segment text three times in a row {triples[:2]}")
        hyp_words = normalizer.normalize(out["text"]).split()
        loops = [(" ".join(g), n) for g, n in ngram_counts(hyp_words, 6).items() if n > ref_6grams.get(g, 0) + 1]
        check(not loops, f"batched: no 6-word sequence repeated beyond the reference {loops[:2]}")
        ratio = len(hyp_words) / len(ref_words)
        check(0.9 <= ratio <= 1.1, f"batched: {len(hyp_words)} words for {len(ref_words)} in the reference")

        e_seq = normalizer.word_errors(reference, seq["text"])
        e_bat = normalizer.word_errors(reference, out["text"])
        wer_seq, wer_bat = e_seq.errors / e_seq.ref_words, e_bat.errors / e_bat.ref_words
        check(wer_bat <= wer_seq + MAX_WER_EXCESS,
              f"batched WER {100 * wer_bat:.2f}% vs sequential {100 * wer_seq:.2f}% (limit +{100 * MAX_WER_EXCESS:.0f})")

    with tempfile.TemporaryDirectory() as tmp:
        head = Path(tmp) / "head100.wav"
        write_wav(head, decode_audio(str(audio))[:100 * 16000])
        one = transcribe(asr, model, head, "--batch-size", "1")
        four = transcribe(asr, model, head, "--batch-size", "4")
        if one and four:
            key = [(s["start"], s["end"], s["text"], s["tokens"]) for s in one["segments"]]
            check(len(key) >= 10, f"first 100 s: {len(key)} segments with --batch-size 1")
            same = key == [(s["start"], s["end"], s["text"], s["tokens"]) for s in four["segments"]]
            check(same, "first 100 s: --batch-size 4 gives exactly the segments of --batch-size 1")
            if not same:
                print("  1:", one["text"][:400], "\n  4:", four["text"][:400])
        silence = Path(tmp) / "silence30.wav"
        write_wav(silence, [0.0] * (30 * 16000))
        quiet = transcribe(asr, model, silence, "--batch-size", "8")
        if quiet:
            check(not quiet["segments"] and not quiet["text"].strip(), f"30 s of silence: no text ({quiet['text']!r})")

    jfk = transcribe(asr, model, td / "jfk.wav", "--batch-size", "2", "--word-timestamps")
    if jfk:
        segs = jfk["segments"]
        words = [w for s in segs for w in s.get("words", [])]
        check(segs and all(s.get("words") for s in segs), f"jfk words: {len(words)} words in {len(segs)} segments")
        inside = all(s["start"] - 0.01 <= w["start"] <= w["end"] <= s["end"] + 0.01 for s in segs for w in s["words"])
        check(inside, "jfk words: every word inside its segment")
        ordered = all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
        check(ordered and words and words[-1]["end"] <= jfk["duration"] + 0.02, "jfk words: in order, within the audio")
        check("ask not what your country" in jfk["text"], f"jfk text: {jfk['text'].strip()!r}")

    # asr serve --batch-size: long uploads take the batched pipeline, short ones the sequential loop
    sys.path.insert(0, str(HERE))
    from server_lib import Server  # noqa: E402
    import requests  # noqa: E402
    alone = transcribe(asr, model, td / "jfk.wav")
    srv = Server("--compute-type", "float32", "--threads", "2", "--workers", "2", "--batch-size", "8",
                 name="batch-size server")
    try:
        def post(path):
            r = requests.post(srv.url + "/v1/audio/transcriptions", files={"file": (path.name, path.read_bytes())},
                              data={"model": "whisper-1", "response_format": "verbose_json"}, timeout=900)
            check(r.status_code == 200, f"server --batch-size 8: {path.name} answered 200 ({r.status_code})")
            return r.json() if r.status_code == 200 else None
        long_ans, short_ans = post(audio), post(td / "jfk.wav")
        key = lambda j: [(s["start"], s["end"], s["text"], s["tokens"]) for s in j["segments"]]  # noqa: E731
        if long_ans and out:
            check(key(long_ans) == key(out), "server --batch-size 8: the 5-minute upload gets the CLI's "
                  f"--batch-size 8 segments ({len(long_ans['segments'])} vs {len(out['segments'])})")
        if short_ans and alone:
            check(key(short_ans) == key(alone), "server --batch-size 8: an 11 s clip gets the sequential answer")
    finally:
        srv.stop()
    finish("batched long-form: OK")


if __name__ == "__main__":
    main()
