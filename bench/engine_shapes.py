#!/usr/bin/env python3
"""engine_shapes.py — encoder ms per 30 s window and decoder ms per token of asr, CTranslate2 and whisper.cpp on
the same Whisper shapes, with the GFLOP/s they reach and the share of this CPU's peak.

    bash bench/run.sh --parts engine            (or: bench-venv/bin/python bench/engine_shapes.py)

Models: tiny.en and base from $ASR_MODELS_DIR (default ~/.cache/asr/models), the synthetic
small and large-v3-turbo (random weights, exact shapes) from ~/.cache/asr/synthetic, made
with tests/tools/make_synthetic_model.py when missing.
  asr          build/bench/engine (make bench-engine): asr_encode of one window (cross K/V of every
               decoder layer included), then TOKENS single-token asr_decode steps (batch 1, logits
               included); best of REPEATS.
  CTranslate2  ctranslate2.models.Whisper(..., intra_threads=THREADS): encode() of one window; per
               token, the slope of generate() on the encoder output between 8 and 8+TOKENS greedy
               steps (end of text suppressed so the length is fixed); best of REPEATS.
  whisper.cpp  pywhispercpp on jfk.wav (one window) with asr convert's ggml file (f16, q8_0): its own
               encode ms/run and decode ms/run (whisper_print_timings), per transcribe; best of REPEATS.
FLOPs count the matrix products only (2 per multiply-add): per window the two convolutions,
24·A·d² + 4·A²·d per encoder layer and the cross K/V (4·A·d·td per decoder layer); per token
24·td² + 4·(pos + A)·td per decoder layer and the logits (2·td·n_vocab).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asr"
# Per-core peaks (GFLOP/s, GOP/s) of fp32 FMA, bf16 vdpbf16ps and int8 vpdpbusd, measured on this machine at
# the start of each run by `build/bench/kernels --peaks` (docs/engine.md); empty where it cannot run.
PEAK = {}
# which peak a configuration's encoder / decoder products run against
ASR_PEAK = {"bfloat16": ("bf16", "bf16"), "float32": ("f32", "f32"), "int8": ("int8", "int8")}
SHAPES = {  # n_mels, d, layers enc, layers dec, n_vocab (openai's ModelDimensions)
    "tiny": (80, 384, 4, 4, 51864), "base": (80, 512, 6, 6, 51865),
    "small": (80, 768, 12, 12, 51865), "large-v3-turbo": (128, 1280, 32, 4, 51866),
}
A = 1500


def enc_flops(n_mels, d, n_enc, n_dec):
    conv = 2 * 2 * A * n_mels * 3 * d + 2 * A * 3 * d * d
    return conv + n_enc * (24 * A * d * d + 4 * A * A * d) + n_dec * 4 * A * d * d


def dec_flops(d, n_dec, n_vocab, pos):
    return n_dec * (24 * d * d + 4 * (pos + A) * d) + 2 * d * n_vocab


def models(args):
    mdir = Path(os.environ.get("ASR_MODELS_DIR", CACHE / "models"))
    out = {"tiny": mdir / "tiny.en", "base": mdir / "base"}
    syn = CACHE / "synthetic"
    for size in ("small", "large-v3-turbo"):
        p = syn / size
        if not (p / "model.bin").is_file():
            syn.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(REPO / "tests/tools/make_synthetic_model.py"), size, str(p),
                            "--vocab-from", str(out["base"])], check=True)
        out[size] = p
    return {k: v for k, v in out.items() if k in args.models.split(",")}


def run_asr(path, ctype, args, tokens, repeats):
    r = subprocess.run([str(REPO / "build/bench/engine"), str(path), ctype, str(args.threads), str(tokens),
                        str(repeats)], capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    return j["encode_ms"], j["decode_ms_per_token"], j["compute_type"]


def run_ct2(path, ctype, n_mels, args, tokens, repeats):
    import ctranslate2
    import numpy as np
    model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type=ctype, intra_threads=args.threads)
    rng = np.random.default_rng(1)
    feats = ctranslate2.StorageView.from_array(rng.uniform(-1, 1, (1, n_mels, 3000)).astype(np.float32))
    tok = _ct2_tokens(path)
    english_only = Path(path).name.endswith(".en")
    prompt = [tok["<|startoftranscript|>"]] + ([] if english_only else [tok["<|en|>"]]) + \
             [tok["<|transcribe|>"], tok["<|notimestamps|>"]]
    eot = tok["<|endoftext|>"]
    enc_best, dec_best = 1e30, 1e30
    warm = 1 if repeats > 1 else 0
    for r in range(1 - warm, repeats + 1):
        t = time.perf_counter()
        out = model.encode(feats, to_cpu=True)
        te = time.perf_counter() - t
        times = []
        for n in (8, 8 + tokens):
            t = time.perf_counter()
            res = model.generate(out, [prompt], beam_size=1, max_length=n, suppress_blank=False,
                                 suppress_tokens=[eot], max_initial_timestamp_index=1000)
            times.append((time.perf_counter() - t, len(res[0].sequences_ids[0])))
        (t1, n1), (t2, n2) = times
        if r and n2 > n1:
            enc_best = min(enc_best, 1e3 * te)
            dec_best = min(dec_best, 1e3 * (t2 - t1) / (n2 - n1))
    return enc_best, dec_best


def _ct2_tokens(path):
    p = Path(path) / "vocabulary.txt"
    if p.is_file():
        return {line.rstrip("\n"): i for i, line in enumerate(p.read_text(encoding="utf-8").splitlines())}
    return {t: i for i, t in enumerate(json.loads((Path(path) / "vocabulary.json").read_text()))}


def run_whisper_cpp(ggml, args, repeats):
    from pywhispercpp.model import Model
    import numpy as np
    from faster_whisper.audio import decode_audio
    audio = decode_audio(str(Path(args.shared) / "testdata/jfk.wav"), sampling_rate=16000).astype(np.float32)
    model = Model(str(ggml), redirect_whispercpp_logs_to=None, n_threads=args.threads, language="en",
                  temperature=0.0, temperature_inc=0.0, no_context=True, single_segment=True,
                  print_progress=False, print_realtime=False)
    prev = dict(encode_ms=0.0, encode_runs=0, decode_ms=0.0, decode_runs=0)
    enc_best, dec_best = 1e30, 1e30
    warm = 1 if repeats > 1 else 0
    for r in range(1 - warm, repeats + 1):
        model.transcribe(audio)
        tot = _timings(model)
        if r and tot.get("encode_runs", 0) > prev.get("encode_runs", 0):
            enc_best = min(enc_best, (tot["encode_ms"] - prev["encode_ms"]) /
                           (tot["encode_runs"] - prev["encode_runs"]))
            if tot.get("decode_runs", 0) > prev.get("decode_runs", 0):
                dec_best = min(dec_best, (tot["decode_ms"] - prev["decode_ms"]) /
                               (tot["decode_runs"] - prev["decode_runs"]))
        prev = tot
    return enc_best, dec_best


def _timings(model):
    """Totals so far from whisper_print_timings() (as bench/worker.py reads them)."""
    log = tempfile.NamedTemporaryFile(prefix="whispercpp-", suffix=".log", delete=False)
    fd = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        model.print_timings()
        sys.stderr.flush()
    finally:
        os.dup2(fd, 2)
        os.close(fd)
    text = open(log.name, encoding="utf-8", errors="replace").read()
    os.unlink(log.name)
    out = {}
    m = re.search(r"encode time =\s*([\d.]+) ms /\s*(\d+) runs", text)
    if m:
        out["encode_ms"], out["encode_runs"] = float(m.group(1)), int(m.group(2))
    for key in ("decode", "batchd"):
        m = re.search(key + r" time =\s*([\d.]+) ms /\s*(\d+) runs", text)
        if m and int(m.group(2)):
            out["decode_ms"] = out.get("decode_ms", 0.0) + float(m.group(1))
            out["decode_runs"] = out.get("decode_runs", 0) + int(m.group(2))
    return out


def ggml_file(path, quant):
    out = CACHE / "bench-ggml" / f"ggml-{Path(path).name}-{quant}.bin"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(REPO / "build/asr"), "convert", str(path), str(out) + ".partial", "--" + quant],
                       check=True, capture_output=True)
        os.rename(str(out) + ".partial", out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny,base,small,large-v3-turbo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5, help="best of this many (small: at most 2, large-v3-turbo: 1)")
    ap.add_argument("--engines", default="asr,ctranslate2,whisper.cpp")
    ap.add_argument("--shared", default=os.environ.get("ASR_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--json", type=Path, default=None, help="append one JSON line per measurement")
    args = ap.parse_args()
    engines = args.engines.split(",")
    try:
        out = subprocess.run([str(REPO / "build/bench/kernels"), "--peaks"], capture_output=True, text=True,
                             timeout=120)
        PEAK.update(json.loads(out.stdout) if out.returncode == 0 else {})
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    print("per-core peaks (build/bench/kernels --peaks): " +
          (", ".join(f"{k} {v:.1f}" for k, v in PEAK.items()) if PEAK else "not measured (no AVX-512 VNNI+BF16 "
           "or no build/bench/kernels); shares left out"), flush=True)
    rows = []
    for name, path in models(args).items():
        n_mels, d, n_enc, n_dec, n_vocab = SHAPES[name]
        reps = args.repeats if name in ("tiny", "base") else min(args.repeats, 2 if name == "small" else 1)
        toks = args.tokens if name in ("tiny", "base") else min(args.tokens, 24)
        ef = enc_flops(n_mels, d, n_enc, n_dec)
        df = dec_flops(d, n_dec, n_vocab, 4 + toks // 2)
        confs = []
        if "asr" in engines:
            for ct in ("auto", "float32"):
                confs.append((f"asr {ct}", lambda ct=ct: run_asr(path, ct, args, toks, reps)[:2],
                              ASR_PEAK["bfloat16" if ct == "auto" else ct]))
        if "ctranslate2" in engines:
            for ct in ("int8", "float32"):
                confs.append((f"CTranslate2 {ct}", lambda ct=ct: run_ct2(path, ct, n_mels, args, toks, reps),
                              ("int8", "int8") if ct == "int8" else ("f32", "f32")))
        if "whisper.cpp" in engines:
            for q in ("f16", "q8_0"):
                confs.append((f"whisper.cpp {q}", lambda q=q: run_whisper_cpp(ggml_file(path, q), args, reps),
                              ("int8", "int8") if q == "q8_0" else ("f32", "f32")))
        for label, fn, (pe, pd) in confs:
            try:
                enc_ms, dec_ms = fn()
            except Exception as e:  # one engine failing must not lose the others' figures
                print(f"{name} {label}: failed: {e}", file=sys.stderr)
                continue
            row = dict(model=name, engine=label, enc_ms=enc_ms, dec_ms=dec_ms,
                       enc_gflops=ef / enc_ms / 1e6, dec_gflops=df / dec_ms / 1e6,
                       enc_peak=pe, dec_peak=pd, threads=args.threads, repeats=reps, tokens=toks)
            row["enc_share"] = row["enc_gflops"] / (PEAK[pe] * args.threads) if pe in PEAK else None
            row["dec_share"] = row["dec_gflops"] / (PEAK[pd] * args.threads) if pd in PEAK else None
            row["peaks"] = dict(PEAK)
            rows.append(row)

            def share(x, peak):
                return f"{100 * x:4.1f}% of {peak}" if x is not None else "share unknown"
            print(f"{name:15s} {label:20s} enc {enc_ms:9.1f} ms ({row['enc_gflops']:6.1f} GFLOP/s, "
                  f"{share(row['enc_share'], pe)})  dec {dec_ms:8.2f} ms/token "
                  f"({row['dec_gflops']:5.1f} GFLOP/s, {share(row['dec_share'], pd)})", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
