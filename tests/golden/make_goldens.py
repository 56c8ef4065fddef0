#!/usr/bin/env python3
"""make_goldens.py — runs faster-whisper on every parity clip, greedy and beam 5, and writes the golden outputs.

Run by hand (never in CI), with the bench venv made by bench/setup.sh:

    ~/.cache/asr/bench-venv/bin/python tests/golden/make_goldens.py \
        --model ~/.cache/asr/models/tiny.en --out tests/golden/tiny.en.json

The decoding settings are openai/whisper transcribe()'s, spelled out below
rather than left to faster-whisper's defaults, so the goldens say exactly what
asr is held to. tests/integration/parity_goldens.py checks asr against the file.
"""
import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import evalset  # noqa: E402
import normalizer  # noqa: E402

# openai/whisper transcribe() + DecodingOptions, as faster-whisper names them.
# best_of=5 and beam_size=5 are the `whisper` command line's defaults; greedy
# sets beam_size=1. length_penalty=1 in CTranslate2 divides the summed
# log-probability by the length, which is openai's length_penalty=None.
OPENAI_SETTINGS = dict(
    language="en",
    task="transcribe",
    best_of=5,
    patience=1.0,
    length_penalty=1.0,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    compression_ratio_threshold=2.4,
    log_prob_threshold=-1.0,
    no_speech_threshold=0.6,
    condition_on_previous_text=True,
    prompt_reset_on_temperature=0.5,
    initial_prompt=None,
    prefix=None,
    suppress_blank=True,
    suppress_tokens=[-1],
    without_timestamps=False,
    max_initial_timestamp=1.0,
    word_timestamps=False,
    vad_filter=False,
    chunk_length=None,
    clip_timestamps="0",
    hallucination_silence_threshold=None,
    hotwords=None,
)
MODES = {"greedy": 1, "beam5": 5}


def transcribe(model, path: Path, beam_size: int) -> dict:
    segments, info = model.transcribe(str(path), beam_size=beam_size, **OPENAI_SETTINGS)
    segs = [dict(start=round(s.start, 3), end=round(s.end, 3), text=s.text, tokens=list(s.tokens),
                 temperature=s.temperature, avg_logprob=round(s.avg_logprob, 4),
                 compression_ratio=round(s.compression_ratio, 4),
                 no_speech_prob=round(s.no_speech_prob, 4)) for s in segments]
    # openai's result["text"] is the decode of every token, i.e. the segment texts joined.
    return dict(text="".join(s["text"] for s in segs).strip(), duration=round(info.duration, 3),
                segments=segs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(Path.home() / ".cache/asr/models/tiny.en"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "tiny.en.json"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device="cpu", compute_type="float32",
                         cpu_threads=args.threads)
    clips = evalset.english_clips()
    out_clips = []
    pooled = {m: [] for m in MODES}
    for clip in clips:
        entry = dict(id=clip.id, group=clip.group, reference=clip.reference)
        for mode, beam in MODES.items():
            t0 = time.perf_counter()
            r = transcribe(model, clip.path, beam)
            e = normalizer.word_errors(clip.reference, r["text"])
            r["wer"] = round(e.wer, 6)
            r["errors"], r["ref_words"] = e.errors, e.ref_words
            entry[mode] = r
            pooled[mode].append(e)
            print(f"{mode:6s} {time.perf_counter() - t0:6.1f}s wer={e.wer:.3f} {clip.id}: "
                  f"{r['text'][:70]}", file=sys.stderr)
        out_clips.append(entry)

    def pool(errs):
        return round(sum(e.errors for e in errs) / sum(e.ref_words for e in errs), 6)

    golden = dict(
        about="faster-whisper outputs that asr's parity test (tests/integration/parity_goldens.py) "
              "is held to; made by tests/golden/make_goldens.py, see tests/golden/README.md",
        command="python tests/golden/make_goldens.py " + " ".join(
            a if not a.startswith(str(Path.home())) else "~" + a[len(str(Path.home())):]
            for a in sys.argv[1:]),
        made=datetime.date.today().isoformat(),
        model=Path(args.model).name,
        engine=dict(faster_whisper=faster_whisper.__version__, ctranslate2=ctranslate2.__version__,
                    python=platform.python_version(), device="cpu", compute_type="float32",
                    cpu_threads=args.threads),
        settings=dict(OPENAI_SETTINGS, beam_size=MODES),
        normalizer="whisper_normalizer.english.EnglishTextNormalizer "
                   f"{_version('whisper-normalizer')}",
        pooled_wer={m: pool(errs) for m, errs in pooled.items()},
        clips=out_clips,
    )
    Path(args.out).write_text(_dump(golden), encoding="utf-8")
    print(f"wrote {args.out}: {len(out_clips)} clips, pooled WER "
          + ", ".join(f"{m} {100 * w:.2f}%" for m, w in golden["pooled_wer"].items()),
          file=sys.stderr)
    return 0


def _dump(golden: dict) -> str:
    """JSON with one line per segment, so a regenerated file diffs segment by segment."""
    def compact(o):
        return json.dumps(o, ensure_ascii=False)
    lines = ["{"]
    top = [k for k in golden if k != "clips"]
    for k in top:
        lines.append(f"  {compact(k)}: {compact(golden[k])},")
    lines.append('  "clips": [')
    for i, clip in enumerate(golden["clips"]):
        lines.append("    {")
        keys = list(clip)
        for j, k in enumerate(keys):
            end = "," if j < len(keys) - 1 else ""
            v = clip[k]
            if isinstance(v, dict) and "segments" in v:
                head = {kk: vv for kk, vv in v.items() if kk != "segments"}
                lines.append(f"      {compact(k)}: {compact(head)[:-1]}, \"segments\": [")
                segs = v["segments"]
                lines += [f"        {compact(s)}" + ("," if n < len(segs) - 1 else "")
                          for n, s in enumerate(segs)]
                lines.append(f"      ]}}{end}")
            else:
                lines.append(f"      {compact(k)}: {compact(v)}{end}")
        lines.append("    }" + ("," if i < len(golden["clips"]) - 1 else ""))
    lines += ["  ]", "}", ""]
    text = "\n".join(lines)
    assert json.loads(text) == golden
    return text


def _version(dist: str) -> str:
    from importlib.metadata import version
    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
