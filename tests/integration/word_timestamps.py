#!/usr/bin/env python3
"""word_timestamps.py — `asr transcribe --word-timestamps` against faster-whisper's words (tests/golden/<model>.words.json).

Every parity clip, greedy, in one invocation. Per clip the word sequence (text
with its spaces and merged punctuation) must equal faster-whisper's for at
least 90% of clips; over the clips that match, at least 95% of word starts and
ends must lie within 0.02 s (one encoder frame) of faster-whisper's, and none
more than 1 s off. Structural checks on every clip: words are in time order,
end >= start, lie inside their segment (give or take openai's 0.7 s) and the audio,
probabilities in [0, 1],
the top-level OpenAI "words" list equals the per-segment words stripped, and
joining a segment's words gives its text.
Environment (set by tests/run.sh): ASR_BIN, ASR_TEST_MODEL, ASR_SHARED.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
import evalset  # noqa: E402
from checks import check, finish  # noqa: E402

MIN_SAME_WORDS = 0.90
MIN_CLOSE = 0.95
CLOSE_S = 0.0201
FAR_S = 1.0


def main() -> None:
    asr, model = os.environ["ASR_BIN"], os.environ["ASR_TEST_MODEL"]
    golden_path = REPO / "tests" / "golden" / f"{Path(model).name}.words.json"
    if not golden_path.is_file():
        print(f"FAIL: no word goldens for {Path(model).name} ({golden_path})")
        sys.exit(1)
    golden = {c["id"]: c for c in json.loads(golden_path.read_text())["clips"]}
    clips = [c for c in evalset.english_clips() if c.id in golden]
    check(len(clips) == len(golden), f"{len(clips)} of {len(golden)} golden clips found on this machine")

    with tempfile.TemporaryDirectory(prefix="asr-words-") as tmp:
        cmd = [asr, "transcribe", "--model", model, "--word-timestamps", "--output-format", "verbose_json",
               "--output-dir", tmp] + [str(c.path) for c in clips]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        check(r.returncode == 0, f"asr transcribe --word-timestamps exits 0 ({r.stderr.strip()[-300:]})")
        if r.returncode != 0:
            sys.exit(1)
        same = close = far = compared = 0
        for c in clips:
            out = None
            for name in (c.path.stem + ".json", c.path.stem + ".verbose.json"):
                if (Path(tmp) / name).is_file():
                    out = json.loads((Path(tmp) / name).read_text())
            if out is None:
                check(False, f"{c.id}: output written")
                continue
            segs = out["segments"]
            words = [w for s in segs for w in s.get("words", [])]
            want = [w for s in golden[c.id]["segments"] for w in s["words"]]
            # structure
            problems = []
            for s in segs:
                sw = s.get("words", [])
                if sw and "".join(w["word"] for w in sw) != s["text"]:
                    problems.append(f"segment {s['id']} words do not join to its text")
                for w in sw:
                    # openai lets a segment's first/last word reach past the segment by up
                    # to the median word duration (at most 0.7 s) when it prefers the
                    # segment's own bound; farther is a bug
                    if not (s["start"] - 0.705 <= w["start"] <= w["end"] <= s["end"] + 0.705):
                        problems.append(f"word {w['word']!r} {w['start']}-{w['end']} outside segment "
                                        f"{s['start']}-{s['end']}")
                    if not 0.0 <= w["probability"] <= 1.0:
                        problems.append(f"word {w['word']!r} probability {w['probability']}")
            starts = [w["start"] for w in words]
            if starts != sorted(starts):
                problems.append("word starts go back in time")
            if words and words[-1]["end"] > out["duration"] + 0.02:
                problems.append(f"last word ends at {words[-1]['end']} after the audio ({out['duration']})")
            top = [(w["word"], w["start"], w["end"]) for w in out.get("words", [])]
            if top != [(w["word"].strip(), w["start"], w["end"]) for w in words]:
                problems.append("top-level words differ from the segments' words")
            check(not problems and len(words) > 0, f"{c.id}: {len(words)} words well-formed {problems[:2]}")
            # against faster-whisper
            if [w["word"] for w in words] != [w[0] for w in want]:
                print(f"     {c.id}: words differ from faster-whisper's ({len(words)} vs {len(want)})")
                continue
            same += 1
            for w, g in zip(words, want):
                for got, exp in ((w["start"], g[1]), (w["end"], g[2])):
                    compared += 1
                    close += abs(got - exp) <= CLOSE_S
                    far += abs(got - exp) > FAR_S
        check(same >= MIN_SAME_WORDS * len(clips),
              f"word sequence equal to faster-whisper's for {same}/{len(clips)} clips (need {MIN_SAME_WORDS:.0%})")
        check(compared > 0 and close >= MIN_CLOSE * compared,
              f"{close}/{compared} word times within {CLOSE_S:.2f} s of faster-whisper's (need {MIN_CLOSE:.0%})")
        check(far == 0, f"{far} word times more than {FAR_S:.0f} s off")
    finish("word timestamps: OK")


if __name__ == "__main__":
    main()
