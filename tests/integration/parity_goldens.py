#!/usr/bin/env python3
"""parity_goldens.py — holds `asr transcribe` to faster-whisper's golden transcripts on every English clip.

This is also the accuracy gate of the reduced-precision compute types. For each model with
goldens (tiny.en = ASR_TEST_MODEL, and base, pulled when missing), each compute type that
`--compute-type auto` may pick on some CPU (float32, bfloat16; int8 does not pass this gate and
auto never picks it) and each decoding mode
in the goldens (greedy, beam 5), asr transcribes every clip of tests/golden/<model>.json in
one invocation, then:
  - the text, exactly after .strip(), equals faster-whisper float32's for >= 90% of clips;
  - pooled WER against the ground truth (Whisper's English normaliser) is at
    most 0.5 points above faster-whisper's;
  - for a type other than float32, pooled WER is at most 0.3 points above asr float32's
    in the same mode (measured in the same run).
Prints a per-clip table and what ran. Environment (set by tests/run.sh): ASR_BIN,
ASR_TEST_MODEL, ASR_SHARED, ASR_MODELS_DIR, BUILD. Narrowing, for a quick local run:
ASR_PARITY_MODES=greedy,beam5, ASR_PARITY_COMPUTE_TYPES=float32,bfloat16 (int8 to see it),
ASR_PARITY_MODELS=tiny.en,base (names of golden files). The sanitizer build runs tiny.en
only, in float32 and the type auto picks here (it is about 5x slower).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
import evalset  # noqa: E402
import normalizer  # noqa: E402

MIN_IDENTICAL = 0.90     # share of clips whose text must equal faster-whisper's
MAX_WER_EXCESS = 0.005   # pooled WER may exceed faster-whisper's by 0.5 points at most
MAX_TYPE_EXCESS = 0.003  # a reduced type's pooled WER may exceed asr float32's by 0.3 points
MODE_FLAGS = {"greedy": [], "beam5": ["--beam-size", "5"]}


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def asr_help(asr: str) -> str:
    r = subprocess.run([asr, "transcribe", "--help"], capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def output_for(out_dir: Path, path: Path):
    # asr names outputs after the input; accept the usual spellings.
    for name in (path.stem + ".verbose.json", path.stem + ".json", path.name + ".json"):
        if (out_dir / name).is_file():
            return out_dir / name
    return None


def run_asr(asr: str, model: str, clips, flags, batch: bool) -> dict:
    """Transcribe every clip; returns {clip id: verbose_json dict}."""
    base = [asr, "transcribe", "--model", model, "--output-format", "verbose_json"] + flags
    results = {}
    if batch:
        with tempfile.TemporaryDirectory(prefix="asr-parity-") as tmp:
            cmd = base + ["--output-dir", tmp] + [str(c.path) for c in clips]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                fail(f"{' '.join(cmd[:8])} ... exited {r.returncode}: {r.stderr.strip()[-2000:]}")
            for c in clips:
                f = output_for(Path(tmp), c.path)
                if f is None:
                    fail(f"asr wrote no output for {c.path.name} in --output-dir "
                         f"(found: {sorted(p.name for p in Path(tmp).iterdir())})")
                results[c.id] = json.loads(f.read_text(encoding="utf-8"))
        return results
    for c in clips:
        r = subprocess.run(base + [str(c.path)], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            fail(f"asr transcribe {c.path} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
        try:
            results[c.id] = json.loads(r.stdout)
        except json.JSONDecodeError as e:
            fail(f"asr transcribe {c.path} --output-format verbose_json printed no JSON ({e}): "
                 f"{r.stdout[:300]!r}")
    return results


def short(clip_id: str) -> str:
    return clip_id.replace("shared:testdata/", "").replace("pocketsphinx:", "ps:")


def check_mode(mode: str, golden: dict, clips, outputs: dict, f32_wer=None) -> tuple:
    """Prints the table for one mode; returns (failures, asr's pooled WER)."""
    rows, same, fw_pairs, asr_pairs = [], 0, [], []
    for c in clips:
        g = golden[c.id][mode]
        out = outputs[c.id]
        text = out.get("text")
        if not isinstance(text, str) or not isinstance(out.get("segments"), list):
            return [f"{mode}: {c.id}: verbose_json lacks text/segments: {str(out)[:200]}"], None
        identical = text.strip() == g["text"].strip()
        same += identical
        asr_wer = normalizer.word_errors(c.reference, text)
        fw_pairs.append((c.reference, g["text"]))
        asr_pairs.append((c.reference, text))
        rows.append((c, identical, g["wer"], asr_wer.wer, g["text"].strip(), text.strip()))

    print(f"\n== {mode}: {len(clips)} clips ==")
    print(f"{'clip':52s} {'same':>4s} {'fw WER':>7s} {'asr WER':>7s}")
    for c, identical, fw_wer, a_wer, _, _ in rows:
        print(f"{short(c.id)[:52]:52s} {'yes' if identical else 'NO':>4s} {100 * fw_wer:6.1f}% "
              f"{100 * a_wer:6.1f}%")
    for c, identical, _, _, fw_text, asr_text in rows:
        if not identical:
            # Show both texts from a little before the first character that differs.
            at = next((i for i, (x, y) in enumerate(zip(fw_text, asr_text)) if x != y),
                      min(len(fw_text), len(asr_text)))
            lo = max(0, at - 60)
            print(f"-- {c.id} differs at character {at}\n"
                  f"   faster-whisper: ...{fw_text[lo:lo + 240]}\n"
                  f"   asr:            ...{asr_text[lo:lo + 240]}")
    fw_pooled = normalizer.pooled_wer(fw_pairs)
    asr_pooled = normalizer.pooled_wer(asr_pairs)
    share = same / len(clips)
    print(f"{mode}: identical text {same}/{len(clips)} ({100 * share:.0f}%, need "
          f">= {100 * MIN_IDENTICAL:.0f}%); pooled WER asr {100 * asr_pooled:.2f}% vs "
          f"faster-whisper {100 * fw_pooled:.2f}% (limit {100 * (fw_pooled + MAX_WER_EXCESS):.2f}%)")
    failures = []
    if f32_wer is not None:
        print(f"{mode}: pooled WER {100 * asr_pooled:.2f}% vs asr float32's {100 * f32_wer:.2f}% "
              f"(limit {100 * (f32_wer + MAX_TYPE_EXCESS):.2f}%)")
        if asr_pooled > f32_wer + MAX_TYPE_EXCESS + 1e-9:
            failures.append(f"{mode}: pooled WER {100 * asr_pooled:.2f}% exceeds float32's "
                            f"{100 * f32_wer:.2f}% by more than 0.3 points")
    if share < MIN_IDENTICAL:
        failures.append(f"{mode}: only {same}/{len(clips)} clips identical to faster-whisper")
    if asr_pooled > fw_pooled + MAX_WER_EXCESS + 1e-9:
        failures.append(f"{mode}: pooled WER {100 * asr_pooled:.2f}% exceeds faster-whisper's "
                        f"{100 * fw_pooled:.2f}% by more than 0.5 points")
    return failures, asr_pooled


def resolved_type(asr: str, model: str, compute: str) -> str:
    """The type `--compute-type compute` loads as on this CPU (auto resolves here)."""
    r = subprocess.run([asr, "models", "info", model, "--compute-type", compute], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        fail(f"asr models info {model} --compute-type {compute}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)["compute_type"]


def model_path(asr: str, name: str) -> str:
    if name == Path(os.environ.get("ASR_TEST_MODEL", "tiny.en")).name and os.environ.get("ASR_TEST_MODEL"):
        return os.environ["ASR_TEST_MODEL"]
    models = Path(os.environ.get("ASR_MODELS_DIR") or Path.home() / ".cache/asr/models")
    path = models / name
    if not (path / "model.bin").is_file():
        r = subprocess.run([asr, "models", "pull", name], capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            fail(f"asr models pull {name}: {r.stderr.strip()[-500:]}")
    return str(path)


def main() -> None:
    asr = os.environ.get("ASR_BIN") or str(REPO / "build" / "asr")
    test_model = os.environ.get("ASR_TEST_MODEL") or str(Path.home() / ".cache/asr/models/tiny.en")
    san = os.environ.get("BUILD") == "build-san"
    names = os.environ.get("ASR_PARITY_MODELS", Path(test_model).name if san else f"{Path(test_model).name},base")
    types = os.environ.get("ASR_PARITY_COMPUTE_TYPES", "float32,auto" if san else "float32,bfloat16")
    wanted = os.environ.get("ASR_PARITY_MODES", "greedy,beam5").split(",")
    clips = evalset.english_clips()
    for c in clips:
        if not c.path.is_file():
            fail(f"missing test clip {c.path} (install pocketsphinx-testdata / check ASR_SHARED)")
    help_text = asr_help(asr)
    batch = "--output-dir" in help_text
    ran, not_run, failures = [], [], []
    for name in names.split(","):
        golden_file = REPO / "tests" / "golden" / f"{name}.json"
        if not golden_file.is_file():
            fail(f"no goldens for model {name!r} ({golden_file}); make them with tests/golden/make_goldens.py")
        golden_doc = json.loads(golden_file.read_text(encoding="utf-8"))
        golden = {c["id"]: c for c in golden_doc["clips"]}
        missing = [c.id for c in clips if c.id not in golden] + \
                  [i for i in golden if i not in {c.id for c in clips}]
        if missing:
            fail(f"clip set and goldens of {name} disagree on: {missing} — regenerate the goldens")
        model = model_path(asr, name)
        # the goldens decode English with the language given, as the English-only model does
        lang = ["--language", golden_doc["settings"].get("language", "en")]
        seen, f32_wer = set(), {}
        for compute in types.split(","):
            ctype = resolved_type(asr, model, compute)
            if ctype in seen:
                print(f"\n{name}: --compute-type {compute} is {ctype} here, already checked")
                continue
            seen.add(ctype)
            for mode in wanted:
                if mode not in MODE_FLAGS:
                    fail(f"unknown mode {mode!r} in ASR_PARITY_MODES")
                flags = MODE_FLAGS[mode]
                what = f"{name} {ctype} {mode}"
                if flags and flags[0] not in help_text:
                    # Beam search is part of the contract: its absence fails the check.
                    not_run.append(what)
                    failures.append(f"{what}: asr transcribe --help lists no {flags[0]}")
                    continue
                t0 = time.monotonic()
                outputs = run_asr(asr, model, clips, ["--compute-type", ctype] + lang + flags, batch)
                print(f"\n### {what}: asr took {time.monotonic() - t0:.1f}s for {len(clips)} clips "
                      f"({'one invocation' if batch else 'one invocation per clip'})")
                f, wer = check_mode(mode, golden, clips, outputs, None if ctype == "float32" else f32_wer.get(mode))
                failures += [f"{name} {ctype} {x}" for x in f]
                if ctype == "float32" and wer is not None:
                    f32_wer[mode] = wer
                ran.append(what)
    print(f"\nrun: {', '.join(ran) or 'none'}; not run: {', '.join(not_run) or 'none'}")
    if failures:
        fail("; ".join(failures))
    print("parity with faster-whisper: OK")


if __name__ == "__main__":
    main()
