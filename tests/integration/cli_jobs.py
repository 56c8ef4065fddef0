"""`asr transcribe --jobs N`: several files at once on one shared compute give, byte for byte, the
output of one file at a time — on stdout in input order, and in --output-dir — with a broken file
among them reported and counted in the exit status while the others are still transcribed."""
import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from checks import check, finish  # noqa: E402

ASR = os.environ.get("ASR_BIN", "build/asr")
MODEL = os.environ["ASR_TEST_MODEL"]
SHARED = os.environ.get("ASR_SHARED", "../shared")
files = [os.path.join(SHARED, "testdata", "jfk.wav")] + \
    sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))[:3] + \
    sorted(glob.glob("/usr/share/pocketsphinx/test/data/cards/*.wav"))[:2]
check(len(files) == 6, f"6 real clips ({len(files)})")


def run(*args):
    r = subprocess.run([ASR, "transcribe", "--model", MODEL, "--threads", "2", *args], capture_output=True,
                       timeout=600)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


rc1, out1, _ = run("--jobs", "1", *files)
rc3, out3, err3 = run("--jobs", "3", *files)
check(rc1 == 0 and rc3 == 0, f"both exit 0 ({rc1}, {rc3}: {err3[-200:]})")
check(out1 and out3 == out1, "stdout: --jobs 3 prints exactly what --jobs 1 prints, in input order")
lines = out1.decode().splitlines()
check(len(lines) == 6 and "ask not what your country" in lines[0], f"one line per file, jfk first ({len(lines)})")

with tempfile.TemporaryDirectory() as tmp:
    d1, d4 = os.path.join(tmp, "one"), os.path.join(tmp, "four")
    run("--jobs", "1", "-f", "verbose_json", "-o", d1, *files)
    run("--jobs", "4", "-f", "verbose_json", "-o", d4, *files)
    names = sorted(os.listdir(d1))
    same = names == sorted(os.listdir(d4)) and len(names) == 6 and all(
        open(os.path.join(d1, n), "rb").read() == open(os.path.join(d4, n), "rb").read() for n in names)
    check(same, f"--output-dir verbose_json: the 6 files identical with --jobs 4 and --jobs 1 ({names})")

    broken = os.path.join(tmp, "broken.wav")
    with open(broken, "wb") as f:
        f.write(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    rc, out, err = run("--jobs", "3", files[0], broken, files[1])
    got = out.decode().splitlines()
    check(rc == 3, f"a broken file among three: exit 3 (bad input), got {rc}")
    check("broken.wav" in err, "and it is named on stderr")
    check(len(got) == 2 and got[0] == lines[0] and got[1] == lines[1],
          "the other two are still transcribed, in input order")

rc, _, err = run("--jobs", "0", files[0])
check(rc == 2 and "--jobs" in err, f"--jobs 0 is a usage error ({rc})")
finish()
