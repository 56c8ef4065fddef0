#!/usr/bin/env python3
"""synthetic_sizes.py — every Whisper size loads and runs a window, without downloading it.

tests/tools/make_synthetic_model.py writes CTranslate2 directories with random weights and the
exact shapes of small, medium, large-v3 (128 mel bins) and large-v3-turbo (4 decoder layers).
For each: `asr models info` reports openai's dimensions and the model type, and
`asr transcribe` runs jfk.wav (one 30 s window, so the 128-mel front end and encoder run end to
end) at temperature 0 alone (no fallback ladder) and exits 0 with a verbose_json whose segments lie within the audio and
whose numbers are finite. The text is meaningless (random weights) and is not checked.

The models are made once into $ASR_MODELS_DIR/../synthetic (about 3.4 GB in all, kept for the
next run) from the base model's vocabulary, which is pulled when missing.
Environment: ASR_BIN, ASR_MODELS_DIR, ASR_SHARED, ASR_TEST_PY (from tests/run.sh);
ASR_SYNTHETIC_SIZES=small,large-v3-turbo narrows the sizes (the sanitizer build's default).
"""
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GENERATOR = REPO / "tests" / "tools" / "make_synthetic_model.py"
sys.path.insert(0, str(REPO / "tests" / "tools"))
import make_synthetic_model as gen  # noqa: E402

# openai/whisper ModelDimensions: (n_mels, width, heads, encoder layers, decoder layers, n_vocab)
EXPECTED_TYPE = {"small": "small", "medium": "medium", "large-v3": "large-v3", "large-v3-turbo": "large-v3-turbo"}
failures = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(cmd, timeout):
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def model_dir(size: str, cache: Path, vocab: Path) -> Path:
    """The synthetic model, made once; a stamp holds the generator's hash so a change remakes it."""
    out = cache / size
    stamp = out / "generator.sha"
    digest = subprocess.run(["sha256sum", str(GENERATOR)], capture_output=True, text=True).stdout.split()[0]
    if stamp.is_file() and stamp.read_text() == digest and (out / "model.bin").is_file():
        return out
    tmp = cache / (size + ".partial")
    subprocess.run(["rm", "-rf", str(tmp), str(out)], check=True)
    r, took = run([sys.executable, str(GENERATOR), size, str(tmp), "--vocab-from", str(vocab)], 1200)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: generating {size}: {r.stderr[-2000:]}")
    (tmp / "generator.sha").write_text(digest)
    tmp.rename(out)
    print(f"made synthetic {size} in {took:.1f}s")
    return out


def main() -> None:
    asr = os.environ.get("ASR_BIN") or str(REPO / "build" / "asr")
    models = Path(os.environ.get("ASR_MODELS_DIR") or Path.home() / ".cache/asr/models")
    shared = Path(os.environ.get("ASR_SHARED") or REPO.parent / "shared")
    # The sanitizer build (about 5x slower) runs the 80-mel and the 128-mel path once each;
    # the optimised build runs every size.
    every = "small,large-v3-turbo" if os.environ.get("BUILD") == "build-san" else "small,medium,large-v3,large-v3-turbo"
    sizes = os.environ.get("ASR_SYNTHETIC_SIZES", every).split(",")
    print(f"sizes: {', '.join(sizes)}")
    base = models / "base"
    if not (base / "vocabulary.json").is_file():
        r, _ = run([asr, "models", "pull", "base"], 1800)
        if r.returncode != 0:
            raise SystemExit(f"FAIL: asr models pull base: {r.stderr[-2000:]}")
    cache = models.parent / "synthetic"
    cache.mkdir(parents=True, exist_ok=True)
    clip = shared / "testdata" / "jfk.wav"

    for size in sizes:
        if size not in gen.SIZES:
            raise SystemExit(f"FAIL: unknown size {size!r} in ASR_SYNTHETIC_SIZES")
        n_mels, d, heads, n_enc, n_dec, n_vocab = gen.SIZES[size]
        path = model_dir(size, cache, base)

        r, took = run([asr, "models", "info", str(path)], 600)
        check(r.returncode == 0, f"{size}: asr models info exits 0 ({r.stderr.strip()[-300:]})")
        if r.returncode != 0:
            continue
        info = json.loads(r.stdout)
        want = {"type": EXPECTED_TYPE[size], "n_mels": n_mels, "n_audio_ctx": 1500, "n_audio_state": d,
                "n_audio_head": heads, "n_audio_layer": n_enc, "n_vocab": n_vocab, "n_text_ctx": 448,
                "n_text_state": d, "n_text_head": heads, "n_text_layer": n_dec, "multilingual": True}
        got = {k: info.get(k) for k in want}
        check(got == want, f"{size}: shapes {got} (load {took:.1f}s, {info.get('compute_type')}, "
                           f"{info.get('weight_bytes', 0) / 1e9:.2f} GB of weights)")

        cmd = [asr, "transcribe", "-m", str(path), "-l", "en", "--temperature", "0",
               "--temperature-increment-on-fallback", "0", "-t", "2", "-f", "verbose_json", str(clip)]
        r, took = run(cmd, 1200)
        check(r.returncode == 0, f"{size}: one window of jfk.wav transcribes, exit 0 in {took:.1f}s "
                                 f"({r.stderr.strip()[-300:]})")
        if r.returncode != 0:
            continue
        out = json.loads(r.stdout)
        segs = out.get("segments", [])
        duration = out.get("duration")
        check(abs(duration - 11.0) < 0.01, f"{size}: duration {duration}")
        numbers = [x for s in segs for x in (s["start"], s["end"], s["avg_logprob"], s["no_speech_prob"],
                                             s["compression_ratio"])]
        check(all(math.isfinite(x) for x in numbers), f"{size}: {len(segs)} segments, every number finite")
        check(all(0 <= s["start"] <= s["end"] <= duration + 1e-6 for s in segs),
              f"{size}: segments within the audio")
        check(all(0 <= s["no_speech_prob"] <= 1 for s in segs), f"{size}: no_speech_prob in [0, 1]")

    n_fail = len(failures)
    print(f"{n_fail} failures" if n_fail else "all synthetic sizes OK")
    sys.exit(1 if n_fail else 0)


if __name__ == "__main__":
    main()
