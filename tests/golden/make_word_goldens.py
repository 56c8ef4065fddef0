#!/usr/bin/env python3
"""make_word_goldens.py — faster-whisper's word timestamps on every parity clip (greedy), the oracle for asr's.

Run by hand (never in CI), with the bench venv made by bench/setup.sh:

    ~/.cache/asr/bench-venv/bin/python tests/golden/make_word_goldens.py \
        --model ~/.cache/asr/models/tiny.en --out tests/golden/tiny.en.words.json

Same decoding settings as make_goldens.py (openai's transcribe()), greedy, with
word_timestamps=True and openai's punctuation lists.
tests/integration/word_timestamps.py checks `asr transcribe --word-timestamps`
against the file.
"""
import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tools"))
import evalset  # noqa: E402
from make_goldens import OPENAI_SETTINGS  # noqa: E402

SETTINGS = dict(OPENAI_SETTINGS, word_timestamps=True, beam_size=1,
                prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(Path.home() / ".cache/asr/models/tiny.en"))
    ap.add_argument("--out", default=str(HERE / "tiny.en.words.json"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device="cpu", compute_type="float32", cpu_threads=args.threads)
    clips = []
    for clip in evalset.english_clips():
        segments, _ = model.transcribe(str(clip.path), **SETTINGS)
        segs = [dict(start=round(s.start, 3), end=round(s.end, 3), text=s.text,
                     words=[[w.word, round(w.start, 3), round(w.end, 3), round(w.probability, 4)]
                            for w in (s.words or [])]) for s in segments]
        clips.append(dict(id=clip.id, segments=segs))
        print(f"{clip.id}: {sum(len(s['words']) for s in segs)} words", file=sys.stderr)
    home = str(Path.home())
    golden = dict(
        about="faster-whisper word timestamps that tests/integration/word_timestamps.py holds asr to; "
              "made by tests/golden/make_word_goldens.py",
        command="python tests/golden/make_word_goldens.py " + " ".join(
            "~" + a[len(home):] if a.startswith(home) else a for a in sys.argv[1:]),
        made=datetime.date.today().isoformat(),
        model=Path(args.model).name,
        engine=dict(faster_whisper=faster_whisper.__version__, ctranslate2=ctranslate2.__version__,
                    python=platform.python_version(), device="cpu", compute_type="float32",
                    cpu_threads=args.threads),
        settings=SETTINGS,
        clips=clips,
    )
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in golden.items()
                     if k != "clips"]
    lines.append('  "clips": [')
    lines += [f"    {json.dumps(c, ensure_ascii=False)}" + ("," if i < len(clips) - 1 else "")
              for i, c in enumerate(clips)]
    lines += ["  ]", "}", ""]
    text = "\n".join(lines)
    assert json.loads(text) == golden
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {len(clips)} clips", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
