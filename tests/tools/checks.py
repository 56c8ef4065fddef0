"""checks.py — the assertion helpers the Python integration tests share.

check() prints one "ok"/"FAIL" line per assertion and records failures;
finish() exits non-zero when any failed, so tests/run.sh counts the script.
"""
import sys

failures = []


def check(cond, what):
    """Record one assertion; the script exits non-zero at finish() if any failed."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def finish(success="all checks passed"):
    if failures:
        print(f"{len(failures)} check(s) failed:", *failures, sep="\n  ")
        sys.exit(1)
    print(success)
