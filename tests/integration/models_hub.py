#!/usr/bin/env python3
"""models_hub.py — `asr models pull hf:ORG/REPO` against a fake hub on 127.0.0.1.

The fake hub serves the hub's tree API (GET /api/models/ORG/REPO/tree/REV:
type, path, size, oid = git blob SHA-1, lfs.oid = SHA-256) and its resolve
endpoint (LFS files answer 302 to a storage URL with X-Linked-Etag, small
files 200 with their blob id as ETag; Range answered with 206). Repositories:
the real tiny.en files (pulled, then used by `asr transcribe --model hf:...`
on jfk.wav), a private one that wants a bearer token, a wrong SHA-256, a
wrong git blob id, a body cut short (then resumed with Range on the retry),
a hub sending more than it lists, a missing file and a missing repository.
Each failure must exit non-zero with a clear message and leave nothing
installed: no model directory, no staging directory, nothing that `models
list` shows or --model finds.
Environment (set by tests/run.sh): ASR_BIN, ASR_TEST_MODEL, ASR_SHARED.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
from checks import check, finish  # noqa: E402

ASR, MODEL = os.environ["ASR_BIN"], Path(os.environ["ASR_TEST_MODEL"])
JFK = Path(os.environ["ASR_SHARED"]) / "testdata" / "jfk.wav"
TOKEN = "hub-secret-token"


def blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """files: name -> bytes; lfs: names stored in LFS; listed_*: what the
    listing claims where it should lie."""

    def __init__(self, files, lfs=("model.bin",), private=False):
        self.files, self.lfs, self.private = dict(files), set(lfs), private
        self.listed_sha256, self.listed_blob, self.listed_size = {}, {}, {}
        self.missing = set()      # listed but 404 on resolve
        self.cut_once = set()     # first full GET sends half the body, then closes
        self.extra = {}           # served with this many more bytes than listed
        self.linked_etag = {}     # X-Linked-Etag sent instead of the object's SHA-256

    def tree(self):
        out = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": "docs"},
               {"type": "file", "oid": blob_id(b"# readme\n"), "size": 9, "path": "README.md"}]
        for name, data in self.files.items():
            size = self.listed_size.get(name, len(data))
            entry = {"type": "file", "path": name, "size": size,
                     "oid": self.listed_blob.get(name, blob_id(data))}
            if name in self.lfs:
                entry["lfs"] = {"oid": self.listed_sha256.get(name, hashlib.sha256(data).hexdigest()),
                                "size": size, "pointerSize": 134}
            out.append(entry)
        return out


def real_model():
    return {p.name: p.read_bytes() for p in MODEL.iterdir()
            if p.name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")}


def small_model(seed, model_bytes=3_000_000):
    rng = hashlib.sha256(seed.encode()).digest()
    body = (rng * (model_bytes // len(rng) + 1))[:model_bytes]
    return {"config.json": b'{"seed": "%s"}\n' % seed.encode(), "model.bin": body,
            "vocabulary.txt": b"a\nb\n"}


repos = {}
seen = []          # (method, path, Range header, Authorization header)
seen_lock = threading.Lock()
storage = {}       # sha256 -> (repo, name): where the LFS redirect points


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def authorized(self, repo):
        return not repo.private or self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def do_GET(self):
        with seen_lock:
            seen.append(("GET", self.path, self.headers.get("Range"), self.headers.get("Authorization")))
        parts = self.path.split("/")
        # /api/models/ORG/REPO/tree/REV
        if len(parts) == 7 and parts[1:3] == ["api", "models"] and parts[5] == "tree":
            repo = repos.get(f"{parts[3]}/{parts[4]}")
            if repo is None:
                return self.send_json(404, {"error": "Repository not found"})
            if not self.authorized(repo):
                return self.send_json(401, {"error": "Invalid credentials in Authorization header"})
            if unquote(parts[6]) not in ("main", "refs/pr/1"):
                return self.send_json(404, {"error": "Revision Not Found"})
            return self.send_json(200, repo.tree())
        # /ORG/REPO/resolve/REV/FILE
        if len(parts) == 6 and parts[3] == "resolve":
            repo = repos.get(f"{parts[1]}/{parts[2]}")
            name = parts[5]
            if repo is None or name not in repo.files or name in repo.missing:
                return self.send_json(404, {"error": "Entry not found"})
            if not self.authorized(repo):
                return self.send_json(401, {"error": "Invalid credentials in Authorization header"})
            data = repo.files[name]
            if name in repo.lfs:
                sha = hashlib.sha256(data).hexdigest()
                storage[sha] = (repo, name)
                self.send_response(302)
                self.send_header("Location", f"/storage/{sha}")
                self.send_header("X-Linked-Etag", f'"{repo.linked_etag.get(name, sha)}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.send_file(repo, name, [("ETag", f'"{blob_id(data)}"')])
        # /storage/SHA256
        if len(parts) == 3 and parts[1] == "storage" and parts[2] in storage:
            repo, name = storage[parts[2]]
            return self.send_file(repo, name, [])
        self.send_json(404, {"error": "Not found"})

    def send_file(self, repo, name, headers):
        data = repo.files[name] + b"\0" * repo.extra.get(name, 0)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.send_json(416, {"error": "Range Not Satisfiable"})
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if name in repo.cut_once and not start:
            repo.cut_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        for i in range(0, len(body), 1 << 20):
            self.wfile.write(body[i:i + (1 << 20)])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
    tmp = tempfile.TemporaryDirectory()
    cache = Path(tmp.name) / "models"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    env.update(ASR_MODELS_DIR=str(cache), HF_ENDPOINT=endpoint)

    def asr(*args, extra_env=None, timeout=600):
        return subprocess.run([ASR, *args], capture_output=True, text=True, timeout=timeout,
                              env={**env, **(extra_env or {})})

    def installed_names():
        return sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) if cache.exists() else []

    def nothing_installed(ref, what):
        cname = ref[3:].replace("/", "--")
        names = installed_names()
        check(cname not in names and not any(".tmp-" in n or ".old-" in n for n in names),
              f"{what}: nothing installed, no staging left (cache holds {names})")
        r = asr("models", "path", ref)
        check(r.returncode == 1 and f"run: asr models pull {ref}" in r.stderr,
              f"{what}: --model {ref} is not found ({r.stderr.strip()[-120:]})")
        r = asr("models", "list")
        check(cname not in r.stdout, f"{what}: models list does not show {cname}")

    def expect_failure(ref, what, needle, *flags, extra_env=None):
        r = asr("models", "pull", *flags, ref, extra_env=extra_env)
        check(r.returncode == 1, f"{what}: pull exits 1 (got {r.returncode})")
        check(needle in r.stderr and "nothing was installed" in r.stderr,
              f"{what}: says '{needle}' ({r.stderr.strip().splitlines()[-2:]})")
        nothing_installed(ref, what)
        return r

    def part_files():
        d = cache / ".downloads"
        return sorted(d.iterdir()) if d.exists() else []

    # ---- success with the real tiny.en, then transcription -------------------
    real = real_model()
    check(len(real) == 4, f"the test model has its 4 files ({sorted(real)})")
    repos["good/tiny-en"] = Repo(real)
    r = asr("models", "pull", "hf:good/tiny-en")
    check(r.returncode == 0, f"pull hf:good/tiny-en exits 0 ({r.stderr.strip()[-300:]})")
    check("model.bin: 75537502 bytes, SHA-256 ok" in r.stderr, "model.bin checked against the LFS SHA-256")
    check("config.json: 2317 bytes, git blob SHA-1 ok" in r.stderr, "config.json checked against its git blob id")
    target = cache / "good--tiny-en"
    check(sorted(p.name for p in target.iterdir()) == sorted(real) if target.is_dir() else False,
          "installed as good--tiny-en with exactly the model's files (README skipped)")
    check(all((target / n).read_bytes() == b for n, b in real.items()) if target.is_dir() else False,
          "installed files equal the served ones byte for byte")
    check(not (cache / ".downloads").exists(), "no download directory left after success")
    check(any(p == "/good/tiny-en/resolve/main/model.bin" for _, p, _, _ in seen) and
          any(p.startswith("/storage/") for _, p, _, _ in seen), "model.bin came through the LFS redirect")
    r = asr("models", "path", "hf:good/tiny-en")
    check(r.returncode == 0 and r.stdout.strip() == str(target), f"--model hf:good/tiny-en resolves ({r.stdout.strip()})")
    r = asr("models", "list")
    check("good--tiny-en" in r.stdout and "78.1 MB" in r.stdout, "models list shows good--tiny-en, 78.1 MB")
    r = asr("models", "pull", "hf:good/tiny-en")
    check(r.returncode == 0 and "already installed" in r.stderr, "a second pull is a no-op")
    r = asr("transcribe", "--model", "hf:good/tiny-en", "--threads", "2", str(JFK))
    check(r.returncode == 0 and "ask not what your country can do for you" in r.stdout,
          f"asr transcribe --model hf:good/tiny-en jfk.wav ({r.stdout.strip()[:100]!r} {r.stderr.strip()[-200:]})")

    # ---- token, revision, endpoint option --------------------------------------
    repos["private/small"] = Repo(small_model("private"), private=True)
    expect_failure("hf:private/small", "no token", "HF_TOKEN")
    before = len(seen)
    r = asr("models", "pull", "--revision", "refs/pr/1", "hf:private/small", extra_env={"HF_TOKEN": TOKEN})
    check(r.returncode == 0, f"with HF_TOKEN and --revision refs/pr/1 the private repo pulls ({r.stderr.strip()[-200:]})")
    new = seen[before:]
    check(all(a == f"Bearer {TOKEN}" for _, p, _, a in new if not p.startswith("/storage/")),
          "every hub request carried the bearer token")
    check(any(p == "/api/models/private/small/tree/refs%2Fpr%2F1" for _, p, _, _ in new),
          "the revision is escaped into the tree URL")
    check("hub-secret-token" not in r.stderr, "the token is never printed")
    repos["other/small"] = Repo(small_model("other"))
    r = asr("models", "pull", "--endpoint", endpoint, "hf:other/small", extra_env={"HF_ENDPOINT": ""})
    check(r.returncode == 0, f"--endpoint stands in for HF_ENDPOINT ({r.stderr.strip()[-200:]})")
    r = asr("models", "pull", "hf:other/nothing", extra_env={"HF_ENDPOINT": ""})
    check(r.returncode == 2 and "set HF_ENDPOINT" in r.stderr, "no endpoint at all: a usage error that says what to set")
    r = asr("models", "pull", "hf:../etc")
    check(r.returncode == 2 and "not a hub repository" in r.stderr, "a malformed reference is refused")

    # ---- wrong digests --------------------------------------------------------
    repos["bad/sha256"] = Repo(small_model("sha"))
    # The hub lists and links one object, the bytes served are another.
    repos["bad/sha256"].listed_sha256["model.bin"] = hashlib.sha256(b"something else").hexdigest()
    repos["bad/sha256"].linked_etag["model.bin"] = repos["bad/sha256"].listed_sha256["model.bin"]
    expect_failure("hf:bad/sha256", "wrong SHA-256", "checksum mismatch for model.bin")
    check(part_files() == [], "the mismatching download is discarded")
    repos["bad/blob"] = Repo(small_model("blob"))
    repos["bad/blob"].listed_blob["config.json"] = blob_id(b"other")
    expect_failure("hf:bad/blob", "wrong git blob id", "checksum mismatch for config.json")
    repos["bad/long"] = Repo(small_model("long"))
    repos["bad/long"].extra["model.bin"] = 10
    expect_failure("hf:bad/long", "more bytes than listed", "sent more than")
    check(part_files() == [], "an overlong download is discarded")

    repos["bad/etag"] = Repo(small_model("etag"))
    repos["bad/etag"].linked_etag["model.bin"] = hashlib.sha256(b"another object").hexdigest()
    expect_failure("hf:bad/etag", "X-Linked-Etag disagrees with the listing", "but served object")
    check(part_files() == [], "a download of another object is discarded")

    # ---- truncated body, then resume ------------------------------------------
    cut = Repo(small_model("cut"))
    cut.cut_once.add("model.bin")
    repos["cut/small"] = cut
    r = expect_failure("hf:cut/small", "truncated body", "run the pull again to resume")
    parts = part_files()
    half = len(cut.files["model.bin"]) // 2
    check(len(parts) == 1 and parts[0].stat().st_size == half,
          f"the partial download is kept for resuming ({[(p.name, p.stat().st_size) for p in parts]})")
    r = asr("models", "list")
    check("1.5 MB of interrupted hub downloads" in r.stdout, f"models list mentions the partial download ({r.stdout.strip()[-160:]!r})")
    before = len(seen)
    r = asr("models", "pull", "hf:cut/small")
    check(r.returncode == 0 and "resuming at" in r.stderr, f"the retry succeeds, resuming ({r.stderr.strip()[-200:]})")
    ranges = [rg for _, p, rg, _ in seen[before:] if p.startswith("/storage/")]
    check(ranges == [f"bytes={half}-"], f"the retry asked only for the rest (Range {ranges})")
    got = (cache / "cut--small" / "model.bin")
    check(got.exists() and got.read_bytes() == cut.files["model.bin"], "the resumed model.bin is whole and correct")
    check(part_files() == [], "no partial download left after the resume")

    # ---- 404s -----------------------------------------------------------------
    expect_failure("hf:nope/nothing", "missing repository", "the hub has no repository nope/nothing")
    gone = Repo(small_model("gone"))
    gone.files["tokenizer.json"] = b"{}"
    gone.missing.add("tokenizer.json")
    repos["gone/file"] = gone
    expect_failure("hf:gone/file", "missing file", "the hub has no file tokenizer.json")
    repos["rev/small"] = Repo(small_model("rev"))
    expect_failure("hf:rev/small", "missing revision", "at revision v9", "--revision", "v9")
    r = asr("models", "pull", "--force", "--revision", "v9", "hf:good/tiny-en")
    check(r.returncode == 1 and (cache / "good--tiny-en" / "model.bin").exists() and
          not any(".old-" in n or ".tmp-" in n for n in installed_names()),
          "a failed --force pull keeps the installed copy")
    repos["empty/repo"] = Repo({"README.md": b"hi"}, lfs=())
    expect_failure("hf:empty/repo", "not a CTranslate2 repository", "is not a CTranslate2 Whisper repository")

    server.shutdown()
    tmp.cleanup()
    finish()


if __name__ == "__main__":
    main()
