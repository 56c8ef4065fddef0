#!/usr/bin/env python3
"""run.py — benchmarks asr against faster-whisper and whisper.cpp: accuracy, speed, long-form and server throughput.

Full run (by hand; bench/run.sh makes the venv first and runs this with it):

    bash bench/run.sh                       # everything, results in bench/results/DATE.{md,json,png}
    bash bench/run.sh --parts speed --repeats 5

Smoke run (CI, tests/integration/bench_smoke.sh, about 10 s): asr only, two short
clips, greedy, one repeat, a 20-second "long-form" file, two server requests
per concurrency level if `asr serve` exists; needs only numpy (for the WAV
splice) and the normaliser:

    python bench/run.py --smoke --out /tmp/bench-smoke

Every system runs as its own child process, timed with wait4(): wall time,
CPU time (user + system) and peak RSS of exactly that process. Systems and
repeats alternate A/B/A/B and the tables give the median. Same weights for
every system: the CTranslate2 model directory for asr and faster-whisper, the
`asr convert` ggml file of that model for whisper.cpp.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests" / "tools"))
import evalset  # noqa: E402
import normalizer  # noqa: E402

MODES = {"greedy": 1, "beam5": 5}
# "asr" runs the default compute type (auto); "asr-TYPE" a given one. "whisper.cpp" runs the
# f16 ggml file of the same weights, "whisper.cpp-q8_0" its q8_0 file (ggml's int8 blocks, the
# fast path of whisper.cpp's CPU kernels), both written by `asr convert`.
ALL_SYSTEMS = ["asr", "faster-whisper-int8", "faster-whisper-float32", "whisper.cpp", "whisper.cpp-q8_0"]
# Batched long-form (not in the default set): "asr-batched" is `asr transcribe --vad --batch-size 8`
# (compute type auto; "asr-batched-TYPE" another), "faster-whisper-batched-TYPE" its
# BatchedInferencePipeline with batch_size 8. Both greedy in mode greedy, timestamps on.
BATCH_SIZE = 8
ALL_PARTS = ["accuracy", "speed", "longform", "server"]


# ---- systems --------------------------------------------------------------

@dataclass
class System:
    name: str
    engine: str              # "asr", "faster-whisper" or "whisper.cpp"
    compute_type: str = ""   # faster-whisper and asr-TYPE; whisper.cpp: "q8_0" or "" (f16)
    skip: str = ""           # why it cannot run here; empty when it can
    model_file: str = ""     # whisper.cpp: the ggml file made by asr convert
    batch_size: int = 0      # > 0: the batched long-form pipeline with this many windows


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path                         # scratch directory under /tmp
    asr_help: str = ""
    notes: list = field(default_factory=list)

    def note(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr)
        self.notes.append(text)


def run_text(cmd, timeout=60) -> tuple:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def make_systems(b: Bench, names: list) -> list:
    systems = []
    for name in names:
        if name == "asr-batched" or name.startswith("asr-batched-"):
            s = System(name, "asr", compute_type=name[len("asr-batched-"):], batch_size=BATCH_SIZE)
            if not os.access(b.args.asr, os.X_OK):
                s.skip = f"no asr binary at {b.args.asr}"
            elif "--batch-size" not in b.asr_help:
                s.skip = "this asr has no --batch-size"
        elif name.startswith("faster-whisper-batched-"):
            s = System(name, "faster-whisper", compute_type=name.split("-", 3)[3], batch_size=BATCH_SIZE)
            if not importable("faster_whisper"):
                s.skip = "faster-whisper not installed (run bench/setup.sh)"
        elif name == "asr" or name.startswith("asr-"):
            s = System(name, "asr", compute_type=name[4:])
            if not os.access(b.args.asr, os.X_OK):
                s.skip = f"no asr binary at {b.args.asr}"
            elif "--model" not in b.asr_help:
                s.skip = "asr transcribe --help does not work"
        elif name.startswith("faster-whisper-"):
            s = System(name, "faster-whisper", compute_type=name.split("-", 2)[2])
            if not importable("faster_whisper"):
                s.skip = "faster-whisper not installed (run bench/setup.sh)"
        elif name in ("whisper.cpp", "whisper.cpp-q8_0"):
            s = System(name, "whisper.cpp", compute_type="q8_0" if name.endswith("q8_0") else "")
            if not importable("pywhispercpp"):
                s.skip = "pywhispercpp not installed (run bench/setup.sh)"
            else:
                s.model_file, s.skip = convert_to_ggml(b, b.args.model, s.compute_type)
        else:
            raise SystemExit(f"unknown system {name!r}; known: {', '.join(ALL_SYSTEMS)}, asr-batched[-TYPE], "
                             "faster-whisper-batched-TYPE")
        if s.skip:
            b.note(f"{s.name}: skipped ({s.skip})")
        systems.append(s)
    return systems


def convert_to_ggml(b: Bench, model_dir: str, quant: str = "") -> tuple:
    """whisper.cpp runs the very weights asr has: `asr convert MODEL out.bin [--q8_0]`."""
    out = b.work / f"ggml-{Path(model_dir).name}{'-' + quant if quant else ''}.bin"
    if out.is_file():
        return str(out), ""
    rc, text = run_text([b.args.asr, "convert", model_dir, str(out)] + ([f"--{quant}"] if quant else []),
                        timeout=300)
    if rc != 0 or not out.is_file():
        first = text.strip().splitlines()[:1]
        return "", "no asr convert" + (f": {first[0]}" if first else "")
    return str(out), ""


# ---- measuring one child process --------------------------------------------

def measure(cmd, log_path: Path, timeout: float, stdout_path: Path = None) -> dict:
    """Runs cmd to completion; wall, CPU (user+sys) and peak RSS of the child from wait4."""
    with open(log_path, "ab") as log, open(stdout_path or os.devnull, "wb") as stdout:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=stdout if stdout_path else log, stderr=log,
                             stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    break
                time.sleep(0.005)
        except BaseException:  # interrupted: leave no child behind
            p.kill()
            os.wait4(p.pid, 0)
            raise
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return dict(rc=p.returncode, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime,
                peak_rss_mb=ru.ru_maxrss / 1024.0)


def asr_output(out_dir: Path, path: Path):
    for name in (path.stem + ".verbose.json", path.stem + ".json", path.name + ".json"):
        if (out_dir / name).is_file():
            return json.loads((out_dir / name).read_text(encoding="utf-8"))
    return None


def run_system(b: Bench, s: System, beam: int, files: list, language: str = "en",
               model: str = None) -> dict:
    """One timed run of a system over files; returns metrics plus {path: text/segments}."""
    model = model or b.args.model
    tag = f"{s.name}-{beam}-{uuid.uuid4().hex[:8]}"
    log = b.work / f"{tag}.log"
    out_dir = b.work / tag
    out_dir.mkdir()
    timeout = b.args.timeout
    if s.engine == "asr":
        base = [b.args.asr, "transcribe", "--model", model, "--threads", str(b.args.threads),
                "--output-format", "verbose_json"]
        if s.compute_type:
            base += ["--compute-type", s.compute_type]
        if beam > 1:
            base += ["--beam-size", str(beam)]
        if s.batch_size:
            base += ["--vad", "--batch-size", str(s.batch_size)]
        if language != "en" or "--language" in b.asr_help:
            base += ["--language", language]
        if "--output-dir" in b.asr_help:
            m = measure(base + ["--output-dir", str(out_dir)] + [str(f) for f in files], log, timeout)
        else:  # one process per file, output on stdout; times summed, RSS the largest
            m = dict(rc=0, wall_s=0.0, cpu_s=0.0, peak_rss_mb=0.0)
            for f in files:
                one = measure(base + [str(f)], log, timeout,
                              stdout_path=out_dir / (Path(f).stem + ".json"))
                m = dict(rc=m["rc"] or one["rc"], wall_s=m["wall_s"] + one["wall_s"],
                         cpu_s=m["cpu_s"] + one["cpu_s"],
                         peak_rss_mb=max(m["peak_rss_mb"], one["peak_rss_mb"]))
        outputs = {}
        if m["rc"] == 0:
            for f in files:
                try:
                    o = asr_output(out_dir, Path(f))
                except ValueError as e:
                    o = None
                    b.note(f"asr: unreadable verbose_json for {f}: {e}")
                if o is None:
                    m["rc"] = 99
                    b.note(f"asr: no output for {f}")
                    continue
                outputs[str(f)] = dict(text=o.get("text", "").strip(), segments=o.get("segments", []))
        m["timings"] = {}
    else:
        result_file = out_dir / "result.json"
        cmd = [sys.executable, str(BENCH / "worker.py"), "--engine", s.engine,
               "--model", s.model_file if s.engine == "whisper.cpp" else model,
               "--compute-type", s.compute_type or "float32", "--threads", str(b.args.threads),
               "--beam-size", str(beam), "--language", language, "--out", str(result_file)]
        if s.batch_size:
            cmd += ["--batch-size", str(s.batch_size)]
        m = measure(cmd + [str(f) for f in files], log, timeout)
        outputs = {}
        m["timings"] = {}
        if m["rc"] == 0 and result_file.is_file():
            r = json.loads(result_file.read_text(encoding="utf-8"))
            outputs = {p: dict(text=v["text"], segments=v["segments"]) for p, v in r["files"].items()}
            m["load_s"] = r["load_s"]
            m["transcribe_s"] = sum(v["transcribe_s"] for v in r["files"].values())
            m["timings"] = r.get("timings", {})
    if m["rc"] != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        b.note(f"{s.name} beam={beam}: exit {m['rc']}: {' | '.join(tail)}")
    m["outputs"] = outputs
    shutil.rmtree(out_dir, ignore_errors=True)
    return m


# ---- accuracy and speed -------------------------------------------------------

def clip_set(b: Bench) -> list:
    clips = evalset.english_clips()
    if b.args.smoke:
        keep = {"shared:testdata/jfk.wav", "pocketsphinx:cards/001.wav"}
        return [c for c in clips if c.id in keep]
    # The long-form file has its own part; the clip workload is the short clips.
    return [c for c in clips if c.group != "longform"]


def duration_s(path: Path) -> float:
    if path.suffix == ".wav":
        import wave
        with wave.open(str(path)) as w:
            return w.getnframes() / w.getframerate()
    return len(decode_16k(path)) / 16000.0


def decode_16k(path: Path):
    """Mono float32 samples at 16 kHz: WAV by the stdlib, anything else by PyAV."""
    import numpy as np
    if path.suffix == ".wav":
        import wave
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2 or w.getframerate() != 16000:
                raise ValueError(f"{path}: only 16 kHz s16 WAV is read without PyAV")
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
            x = x.reshape(-1, w.getnchannels()).mean(axis=1)
            return x / 32768.0
    from faster_whisper.audio import decode_audio  # PyAV, from the bench venv
    return decode_audio(str(path), sampling_rate=16000)


def score(clips: list, outputs: dict) -> dict:
    """WER per clip, per group and pooled, Whisper-normalised."""
    per_clip, groups = {}, {}
    total_err = total_words = 0
    for c in clips:
        out = outputs.get(str(c.path))
        if out is None:
            continue
        e = normalizer.word_errors(c.reference, out["text"], c.language)
        per_clip[c.id] = dict(wer=e.wer, text=out["text"])
        g = groups.setdefault(c.group, [0, 0])
        g[0] += e.errors
        g[1] += e.ref_words
        total_err += e.errors
        total_words += e.ref_words
    return dict(clips=per_clip,
                groups={k: v[0] / v[1] for k, v in groups.items() if v[1]},
                pooled=total_err / total_words if total_words else None,
                complete=len(per_clip) == len(clips))


def median_metrics(runs: list, audio_s: float) -> dict:
    ok = [r for r in runs if r["rc"] == 0]
    if not ok:
        return dict(ok=False, runs=len(runs))
    med = {k: statistics.median(r[k] for r in ok) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    med.update(ok=True, runs=len(ok), audio_s=audio_s, rtf=med["wall_s"] / audio_s,
               x_realtime=audio_s / med["wall_s"], walls=[round(r["wall_s"], 3) for r in ok])
    if all("transcribe_s" in r for r in ok):
        med["engine_rtf"] = statistics.median(r["transcribe_s"] for r in ok) / audio_s
        med["load_s"] = statistics.median(r["load_s"] for r in ok)
    timings = [r["timings"] for r in ok if r.get("timings")]
    if timings:
        for k in timings[0]:
            med[k] = statistics.median(t[k] for t in timings if k in t)
    return med


def part_speed(b: Bench, systems: list, modes: list, results: dict) -> None:
    clips = clip_set(b)
    files = [c.path for c in clips]
    audio_s = sum(duration_s(p) for p in files)
    runs = {(s.name, m): [] for s in systems for m in modes}
    live = [s for s in systems if not s.skip]
    # A/B/A/B: every system once per round, rounds repeated, so drift hits all alike.
    for rep in range(b.args.repeats):
        for mode in modes:
            for s in live:
                r = run_system(b, s, MODES[mode], files)
                runs[(s.name, mode)].append(r)
                print(f"  round {rep + 1}/{b.args.repeats} {mode:6s} {s.name:24s} "
                      f"{r['wall_s']:7.2f}s rc={r['rc']}", file=sys.stderr)
    speed, accuracy = [], []
    for s in systems:
        for mode in modes:
            if s.skip:
                speed.append(dict(system=s.name, mode=mode, skipped=s.skip))
                continue
            rs = runs[(s.name, mode)]
            row = dict(system=s.name, mode=mode, **median_metrics(rs, audio_s))
            first_ok = next((r for r in rs if r["rc"] == 0), None)
            if first_ok:
                sc = score(clips, first_ok["outputs"])
                row["wer"] = sc["pooled"]
                accuracy.append(dict(system=s.name, mode=mode, **sc))
            speed.append(row)
    results["speed"] = dict(clips=[c.id for c in clips], audio_s=audio_s,
                            repeats=b.args.repeats, rows=speed)
    results["accuracy"] = accuracy


def part_multilingual(b: Bench, systems: list, results: dict) -> None:
    """fleurs/de with a multilingual model (base, then small), greedy, where one is present."""
    models_dir = Path(b.args.model).parent
    model = next((models_dir / n for n in ("base", "small") if (models_dir / n / "model.bin").is_file()),
                 None)
    if model is None:
        b.note(f"fleurs/de: skipped (no multilingual base or small model in {models_dir})")
        return
    clips = evalset.german_clips()
    rows = []
    for s in systems:
        if s.skip:
            continue
        sys_ = s
        if s.engine == "whisper.cpp":
            ggml, why = convert_to_ggml(b, str(model), s.compute_type)
            if why:
                b.note(f"{s.name} fleurs/de: skipped ({why})")
                continue
            sys_ = System(s.name, s.engine, compute_type=s.compute_type, model_file=ggml)
        r = run_system(b, sys_, 1, [c.path for c in clips], language="de", model=str(model))
        if r["rc"] == 0:
            sc = score(clips, r["outputs"])
            rows.append(dict(system=s.name, model=model.name, wer=sc["pooled"],
                             complete=sc["complete"]))
    results["multilingual"] = rows


# ---- long-form ------------------------------------------------------------------

def build_longform(b: Bench, min_s: float) -> tuple:
    """Splices clips (0.5 s of silence between) into one 16 kHz WAV of at least min_s seconds."""
    import numpy as np
    import wave
    clips = evalset.english_clips()
    if b.args.smoke or not importable("faster_whisper"):
        clips = [c for c in clips if c.path.suffix == ".wav"]  # no PyAV: WAV clips only
    else:  # the real long-form recording first, then the rest
        clips.sort(key=lambda c: c.group != "longform")
    gap = np.zeros(8000, dtype=np.float32)
    pieces, refs, total = [], [], 0.0
    while total < min_s:
        for c in clips:
            x = decode_16k(c.path)
            pieces += [x, gap]
            refs.append(c.reference)
            total += (len(x) + len(gap)) / 16000.0
            if total >= min_s:
                break
    audio = np.concatenate(pieces)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    path = b.work / f"longform-{int(min_s)}s.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path, " ".join(refs), len(audio) / 16000.0


def part_longform(b: Bench, systems: list, modes: list, results: dict) -> None:
    min_s = 12.0 if b.args.smoke else b.args.longform_seconds
    path, reference, audio_s = build_longform(b, min_s)
    rows = []
    for rep in range(b.args.longform_repeats):
        for mode in modes:
            for s in systems:
                if s.skip:
                    continue
                r = run_system(b, s, MODES[mode], [path])
                print(f"  long-form {mode:6s} {s.name:24s} {r['wall_s']:7.2f}s rc={r['rc']}",
                      file=sys.stderr)
                rows.append((s.name, mode, r))
    out = []
    for s in systems:
        for mode in modes:
            if s.skip:
                out.append(dict(system=s.name, mode=mode, skipped=s.skip))
                continue
            rs = [r for name, m, r in rows if name == s.name and m == mode]
            row = dict(system=s.name, mode=mode, **median_metrics(rs, audio_s))
            ok = next((r for r in rs if r["rc"] == 0 and str(path) in r["outputs"]), None)
            if ok:
                o = ok["outputs"][str(path)]
                segs = o["segments"]
                row["wer"] = normalizer.word_errors(reference, o["text"]).wer
                row["segments"] = len(segs)
                starts = [float(x["start"]) for x in segs]
                row["monotonic"] = all(a <= c for a, c in zip(starts, starts[1:])) and \
                    all(float(x["start"]) <= float(x["end"]) for x in segs)
                row["last_end_s"] = max((float(x["end"]) for x in segs), default=0.0)
                row["within_audio"] = row["last_end_s"] <= audio_s + 0.5
            out.append(row)
    results["longform"] = dict(audio_s=audio_s, min_s=min_s, rows=out)


# ---- server throughput ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(fields: dict, filename: str, data: bytes) -> tuple:
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     .encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                 + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_transcription(port: int, filename: str, data: bytes, timeout: float) -> tuple:
    body, ctype = multipart({"model": "whisper-1", "response_format": "json"}, filename, data)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/audio/transcriptions", data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = json.loads(resp.read().decode("utf-8")).get("text", "")
            return time.perf_counter() - t0, resp.status, text
    except urllib.error.HTTPError as e:
        return time.perf_counter() - t0, e.code, ""
    except (OSError, ValueError) as e:
        return time.perf_counter() - t0, 0, str(e)


def start_server(cmd, port: int, log_path: Path, timeout: float = 120.0):
    log = open(log_path, "ab")
    p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            log.close()
            return None, f"exited {p.returncode}: " + " | ".join(
                log_path.read_text(errors="replace").strip().splitlines()[-3:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return p, ""
        except OSError:
            time.sleep(0.2)
    stop_server(p)
    return None, "did not listen within the time limit"


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the server and its children (uvicorn may fork)."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for q in pids:
        try:
            m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{q}/status").read_text())
            total += int(m.group(1)) / 1024.0 if m else 0.0
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """utime + stime of the server and its children (uvicorn may fork), in seconds."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for q in pids:
        try:
            fields = Path(f"/proc/{q}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def stop_server(p) -> None:
    if p is None or p.poll() is not None:
        return
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def load_test(port: int, payloads: list, concurrency: int, n_requests: int) -> dict:
    """n_requests POSTs from `concurrency` client threads; payloads cycle."""
    lock = threading.Lock()
    latencies, errors, audio_done = [], [], [0.0]
    next_index = [0]

    def client():
        while True:
            with lock:
                i = next_index[0]
                if i >= n_requests:
                    return
                next_index[0] += 1
            name, data, dur = payloads[i % len(payloads)]
            lat, status, text = post_transcription(port, name, data, timeout=300)
            with lock:
                if status == 200 and text.strip():
                    latencies.append(lat)
                    audio_done[0] += dur
                else:
                    errors.append(f"{status} {text[:80]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q):
        return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else None
    return dict(concurrency=concurrency, requests=n_requests, ok=len(lat), errors=len(errors),
                error_sample=errors[:3], wall_s=wall,
                throughput=audio_done[0] / wall if wall else None, p50_s=pct(0.5), p95_s=pct(0.95))


def part_server(b: Bench, systems: list, results: dict) -> None:
    rc, serve_help = run_text([b.args.asr, "serve", "--help"])
    servers = []
    if any(s.engine == "asr" and not s.skip for s in systems):
        if rc != 0 or "--port" not in serve_help:
            b.note("asr serve: skipped (asr serve --help lists no --port)")
        else:
            def asr_cmd(port, workers, batched, serve_help=serve_help):
                cmd = [b.args.asr, "serve", "--port", str(port)]
                for flag, value in (("--host", "127.0.0.1"), ("--workers", str(workers)),
                                    ("--model", b.args.model), ("--threads", str(b.args.threads)),
                                    ("--decode-batch", "64" if batched else "0")):
                    if flag in serve_help:
                        cmd += [flag, value]
                return cmd
            if "--decode-batch" in serve_help:
                # batched: enough workers for every client's request to join the shared steps
                w = b.args.server_batched_workers
                servers.append((f"asr serve batched ({w} workers)", lambda port, w=w: asr_cmd(port, w, True)))
            servers.append((f"asr serve unbatched ({b.args.server_workers} worker)",
                            lambda port: asr_cmd(port, b.args.server_workers, False)))
    if not b.args.smoke and importable("fastapi") and importable("faster_whisper"):
        def seed_cmd(port):
            return [sys.executable, str(BENCH / "seed_server.py"), "--port", str(port),
                    "--model", b.args.model, "--compute-type", b.args.seed_compute_type,
                    "--threads", str(b.args.threads), "--workers", str(b.args.server_workers)]
        servers.append((f"seed (FastAPI+faster-whisper {b.args.seed_compute_type})", seed_cmd))
    elif not b.args.smoke:
        b.note("seed server: skipped (fastapi or faster-whisper not installed)")

    # Smoke: the shortest clip only, to stay within CI's ten seconds.
    clips = [c for c in clip_set(b) if c.group == "cards"] if b.args.smoke else \
        [c for c in evalset.english_clips() if c.group in ("jfk", "fleurs-en")]
    payloads = [(c.path.name, c.path.read_bytes(), duration_s(c.path)) for c in clips]
    levels = [1, 2] if b.args.smoke else [int(x) for x in b.args.concurrency.split(",")]
    rows = []
    for name, make_cmd in servers:
        port = free_port()
        p, why = start_server(make_cmd(port), port, b.work / f"server-{port}.log")
        if p is None:
            b.note(f"{name}: not started ({why})")
            rows.append(dict(system=name, skipped=why))
            continue
        try:
            if not b.args.smoke:
                post_transcription(port, *payloads[0][:2], timeout=300)  # warm-up, not counted
            for c in levels:
                n = c if b.args.smoke else max(b.args.requests_per_level, 2 * c)
                cpu0 = cpu_seconds(p.pid)
                r = load_test(port, payloads, c, n)
                cpu = cpu_seconds(p.pid) - cpu0
                audio = (r["throughput"] or 0) * r["wall_s"]
                r.update(system=name, peak_rss_mb=peak_rss_mb(p.pid), cpu_s=cpu,
                         cpu_s_per_audio_s=cpu / audio if audio else None)
                rows.append(r)
                print(f"  server {name:40s} c={c} {r['throughput'] or 0:6.2f} audio-s/s "
                      f"p50={r['p50_s']} errors={r['errors']}", file=sys.stderr)
        finally:
            stop_server(p)
    results["server"] = dict(workers=b.args.server_workers, batched_workers=b.args.server_batched_workers,
                             threads=b.args.threads, rows=rows)


# ---- machine, versions and report ------------------------------------------------

def machine_info() -> dict:
    cpu, flags = "", []
    try:
        info = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.*)", info)
        cpu = m.group(1).strip() if m else platform.processor()
        m = re.search(r"flags\s*:\s*(.*)", info)
        wanted = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|avx512\w*|amx\w*|avx_vnni)$")
        flags = sorted(f for f in (m.group(1).split() if m else []) if wanted.match(f))
    except OSError:
        pass
    mem_gib = None
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        mem_gib = round(int(m.group(1)) / 1024 / 1024, 1) if m else None
    except OSError:
        pass
    return dict(cpu=cpu, flags=flags, cores=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)),
                memory_gib=mem_gib, kernel=platform.release(), python=platform.python_version(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"))


def versions(b: Bench) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    rc, text = run_text([b.args.asr, "--version"])
    first = text.strip().splitlines()[0] if rc == 0 and text.strip() else None
    out["asr"] = first.split()[-1] if first else None
    for dist in ("faster-whisper", "ctranslate2", "pywhispercpp", "whisper-normalizer", "jiwer",
                 "numpy", "fastapi", "uvicorn", "matplotlib"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def fmt(x, spec=".2f", scale=1.0, suffix=""):
    return "–" if x is None else f"{x * scale:{spec}}{suffix}"


def ratio(x, ref):
    return "–" if x is None or not ref else f"{x / ref:.2f}×"


def write_markdown(results: dict, path: Path) -> None:
    m, v, a = results["machine"], results["versions"], results["args"]
    L = [f"# asr benchmark, {results['date']}", "",
         f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
         f"{m['memory_gib']} GiB; flags {' '.join(m['flags']) or '–'}; Linux {m['kernel']}. "
         f"Model {Path(a['model']).name}, threads {a['threads']}, median of {a['repeats']} "
         "alternated runs (A/B/A/B).", "",
         "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), ""]
    for n in results["notes"]:
        L.append(f"- {n}")
    if results["notes"]:
        L.append("")
    sp = results.get("speed")
    if sp:
        L += [f"## Speed and accuracy: {len(sp['clips'])} clips, {sp['audio_s']:.1f} s of audio",
              "", "RTF = wall time / audio time of the whole process (load included); "
              "× asr = the system's figure over asr's in the same mode (above 1 = asr is better for "
              "time and memory).", "",
              "| system | mode | wall s | RTF | × real time | CPU s | peak RSS MB | WER | "
              "wall × asr | RSS × asr | enc ms/window | dec ms/token |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        asr_rows = {r["mode"]: r for r in sp["rows"] if r["system"] == "asr" and r.get("ok")}
        for r in sp["rows"]:
            if "skipped" in r or not r.get("ok"):
                L.append(f"| {r['system']} | {r['mode']} | {r.get('skipped', 'failed')} |"
                         + " |" * 9)
                continue
            ref = asr_rows.get(r["mode"], {})
            L.append(f"| {r['system']} | {r['mode']} | {fmt(r['wall_s'])} | {fmt(r['rtf'], '.3f')} | "
                     f"{fmt(r['x_realtime'], '.1f')} | {fmt(r['cpu_s'])} | {fmt(r['peak_rss_mb'], '.0f')} | "
                     f"{fmt(r.get('wer'), '.2f', 100, '%')} | {ratio(r['wall_s'], ref.get('wall_s'))} | "
                     f"{ratio(r['peak_rss_mb'], ref.get('peak_rss_mb'))} | "
                     f"{fmt(r.get('encoder_ms_per_window'), '.1f')} | "
                     f"{fmt(r.get('decoder_ms_per_token'), '.2f')} |")
        L.append("")
    acc = results.get("accuracy")
    if acc:
        groups = sorted({g for r in acc for g in r["groups"]})
        L += ["## Accuracy (WER, Whisper's English normaliser)", "",
              "| system | mode | " + " | ".join(groups) + " | pooled |",
              "|---|---|" + "---|" * (len(groups) + 1)]
        for r in acc:
            L.append(f"| {r['system']} | {r['mode']} | "
                     + " | ".join(fmt(r["groups"].get(g), ".2f", 100, "%") for g in groups)
                     + f" | {fmt(r['pooled'], '.2f', 100, '%')} |")
        L.append("")
    ml = results.get("multilingual")
    if ml:
        L += ["## German (fleurs/de, multilingual model, greedy)", "", "| system | model | WER |",
              "|---|---|---|"]
        L += [f"| {r['system']} | {r['model']} | {fmt(r['wer'], '.2f', 100, '%')} |" for r in ml]
        L.append("")
    lf = results.get("longform")
    if lf:
        L += [f"## Long-form: one {lf['audio_s'] / 60:.1f}-minute file spliced from the clips", "",
              "| system | mode | wall s | RTF | peak RSS MB | WER | segments | monotonic | "
              "within audio | wall × asr |", "|---|---|---|---|---|---|---|---|---|---|"]
        asr_rows = {r["mode"]: r for r in lf["rows"] if r["system"] == "asr" and r.get("ok")}
        for r in lf["rows"]:
            if "skipped" in r or not r.get("ok"):
                L.append(f"| {r['system']} | {r['mode']} | {r.get('skipped', 'failed')} |" + " |" * 7)
                continue
            L.append(f"| {r['system']} | {r['mode']} | {fmt(r['wall_s'])} | {fmt(r['rtf'], '.3f')} | "
                     f"{fmt(r['peak_rss_mb'], '.0f')} | {fmt(r.get('wer'), '.2f', 100, '%')} | "
                     f"{r.get('segments', '–')} | {r.get('monotonic', '–')} | "
                     f"{r.get('within_audio', '–')} | "
                     f"{ratio(r['wall_s'], asr_rows.get(r['mode'], {}).get('wall_s'))} |")
        L.append("")
    sv = results.get("server")
    if sv and sv["rows"]:
        L += [f"## Server: {sv['threads']} threads; the seed and unbatched asr with {sv['workers']} worker(s), "
              f"batched asr with {sv.get('batched_workers', '?')}; POST /v1/audio/transcriptions", "",
              "| server | clients | requests | ok | throughput (audio s/s) | p50 s | p95 s | "
              "CPU s per audio s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
        for r in sv["rows"]:
            if "skipped" in r:
                L.append(f"| {r['system']} | not started: {r['skipped']} |" + " |" * 7)
                continue
            L.append(f"| {r['system']} | {r['concurrency']} | {r['requests']} | {r['ok']} | "
                     f"{fmt(r['throughput'])} | {fmt(r['p50_s'])} | {fmt(r['p95_s'])} | "
                     f"{fmt(r.get('cpu_s_per_audio_s'), '.3f')} | {fmt(r['peak_rss_mb'], '.0f')} |")
        L.append("")
        # the batched server against the others at each client count
        by = {}
        for r in sv["rows"]:
            if "skipped" not in r and r.get("throughput"):
                by.setdefault(r["concurrency"], {})[r["system"]] = r
        ratio_lines = []
        for c, rs in sorted(by.items()):
            bat = next((r for n, r in rs.items() if n.startswith("asr serve batched")), None)
            if not bat:
                continue
            parts = [f"{bat['throughput'] / r['throughput']:.2f}× {n.split(' (')[0]}"
                     for n, r in rs.items() if r is not bat]
            if parts:
                ratio_lines.append(f"- {c} clients: batched asr throughput = " + ", ".join(parts))
        if ratio_lines:
            L += ratio_lines + [""]
    L.append(f"Command: `{results['command']}`")
    path.write_text("\n".join(L) + "\n", encoding="utf-8")


def write_chart(results: dict, path: Path) -> str:
    """Bar charts of RTF and WER per system and mode; returns why it was not drawn, or ''."""
    if not importable("matplotlib"):
        return "matplotlib not installed"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in results.get("speed", {}).get("rows", []) if r.get("ok")]
    if not rows:
        return "no speed results"
    systems = list(dict.fromkeys(r["system"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(modes)
    for ax, key, label, scale in ((axes[0], "rtf", "real-time factor (lower is faster)", 1.0),
                                  (axes[1], "wer", "WER % (lower is better)", 100.0)):
        for i, mode in enumerate(modes):
            vals = []
            for s in systems:
                r = next((r for r in rows if r["system"] == s and r["mode"] == mode), None)
                vals.append((r.get(key) or 0.0) * scale if r else 0.0)
            xs = [x + i * width for x in range(len(systems))]
            bars = ax.bar(xs, vals, width, label=mode)
            ax.bar_label(bars, fmt="%.3f" if key == "rtf" else "%.1f", fontsize=7)
        ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(systems))])
        ax.set_xticklabels(systems, rotation=15, fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"{Path(results['args']['model']).name}, {results['args']['threads']} threads, "
                 f"{results['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


# ---- main ---------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="about 10 s, asr only: what CI runs")
    ap.add_argument("--parts", default=",".join(ALL_PARTS))
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    ap.add_argument("--modes", default="greedy,beam5")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=os.environ.get("ASR_TEST_MODEL")
                    or str(Path.home() / ".cache/asr/models/tiny.en"))
    ap.add_argument("--asr", default=os.environ.get("ASR_BIN") or str(REPO / "build" / "asr"))
    ap.add_argument("--out", default=str(BENCH / "results"))
    ap.add_argument("--name", default=datetime.date.today().isoformat(),
                    help="results file stem (default: today's date)")
    ap.add_argument("--longform-seconds", type=float, default=600.0)
    ap.add_argument("--longform-repeats", type=int, default=1)
    ap.add_argument("--longform-modes", default=None, help="default: --modes")
    ap.add_argument("--concurrency", default="1,2,4,8")
    ap.add_argument("--requests-per-level", type=int, default=8)
    ap.add_argument("--server-workers", type=int, default=1)
    ap.add_argument("--server-batched-workers", type=int, default=8,
                    help="workers of the batched asr serve (its requests share decoder steps)")
    ap.add_argument("--seed-compute-type", default="int8")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per child run")
    args = ap.parse_args()
    if args.smoke:
        args.systems, args.modes, args.repeats, args.longform_repeats = "asr", "greedy", 1, 1
    args.model = str(Path(args.model).expanduser())
    modes = [m for m in args.modes.split(",") if m]
    parts = [p for p in args.parts.split(",") if p]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    for p in parts:
        if p not in ALL_PARTS:
            raise SystemExit(f"unknown part {p!r}; known: {', '.join(ALL_PARTS)}")

    # SIGTERM unwinds like Ctrl-C, so children are killed and the scratch dir removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    b = Bench(args, work)
    if not args.smoke and os.access(args.asr, os.X_OK):
        # Others rebuild build/asr while a long run goes on: measure one fixed copy.
        shutil.copy2(args.asr, work / "asr")
        args.asr = str(work / "asr")
    _, b.asr_help = run_text([args.asr, "transcribe", "--help"])
    if "beam5" in modes and "--beam-size" not in b.asr_help:
        b.note("asr: beam5 will fail (asr transcribe --help lists no --beam-size)")
    results = dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                   command=" ".join(["bench/run.py"] + sys.argv[1:]),
                   args=vars(args), machine=machine_info(), versions=versions(b), notes=b.notes)
    try:
        systems = make_systems(b, [s for s in args.systems.split(",") if s])
        if "speed" in parts or "accuracy" in parts:
            part_speed(b, systems, modes, results)
        if "accuracy" in parts and not args.smoke:
            part_multilingual(b, systems, results)
        if "longform" in parts:
            lf_modes = [m for m in (args.longform_modes or args.modes).split(",") if m in MODES]
            part_longform(b, systems, lf_modes, results)
        if "server" in parts:
            part_server(b, systems, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / args.name
    why = write_chart(results, stem.with_suffix(".png"))
    if why:
        b.note(f"chart: skipped ({why})")
    results["chart"] = None if why else stem.with_suffix(".png").name
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False,
                                                    default=str) + "\n", encoding="utf-8")
    write_markdown(results, stem.with_suffix(".md"))
    print(f"bench: wrote {stem}.md, {stem}.json" + ("" if why else f", {stem}.png"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
