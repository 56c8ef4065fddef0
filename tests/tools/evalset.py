"""evalset.py — the real-speech clips the parity test and the benchmark score, with their ground truth.

Every clip has a stable id that says where it lives without naming this
machine's paths: "shared:testdata/jfk.wav" is under $ASR_SHARED (default
../shared relative to the repository root), "pocketsphinx:librivox/x.wav"
under Debian's pocketsphinx-testdata ($ASR_POCKETSPHINX, default
/usr/share/pocketsphinx/test/data). References are read from the data's own
transcript files at run time, never copied into the repository.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("ASR_SHARED") or REPO.parent / "shared")


def pocketsphinx_dir() -> Path:
    return Path(os.environ.get("ASR_POCKETSPHINX") or "/usr/share/pocketsphinx/test/data")


@dataclass
class Clip:
    id: str             # "shared:testdata/jfk.wav" or "pocketsphinx:librivox/x.wav"
    group: str          # "jfk", "fleurs-en", "longform", "librivox", "cards", "fleurs-de"
    language: str       # ISO code of the speech
    reference: str      # ground-truth text
    path: Path = field(default=None)

    def __post_init__(self):
        if self.path is None:
            self.path = resolve(self.id)


def resolve(clip_id: str) -> Path:
    root, _, rel = clip_id.partition(":")
    if root == "shared":
        return shared_dir() / rel
    if root == "pocketsphinx":
        return pocketsphinx_dir() / rel
    raise ValueError(f"unknown clip root in {clip_id!r}")


def _jfk_reference() -> str:
    # The testdata README's table row for jfk.wav carries the ground truth in backticks.
    readme = (shared_dir() / "testdata" / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():
        if line.startswith("| jfk.wav"):
            quoted = re.findall(r"`([^`]+)`", line)
            if quoted:
                return quoted[0]
    raise RuntimeError("no jfk.wav reference in testdata/README.md")


def _sphinx_transcripts(path: Path) -> dict:
    # Lines look like "<s> ten of clubs  </s> (001)": text between the markers, id in brackets.
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if m:
            out[m.group(2)] = " ".join(m.group(1).split())
    return out


def english_clips() -> list:
    """jfk, fleurs/en, longform/en-brian, LibriVox and cards: the parity and accuracy set."""
    td = shared_dir() / "testdata"
    clips = [Clip("shared:testdata/jfk.wav", "jfk", "en", _jfk_reference())]
    for ogg in sorted((td / "fleurs").glob("en-*.ogg")):
        ref = ogg.with_suffix(".txt").read_text(encoding="utf-8").strip()
        clips.append(Clip(f"shared:testdata/fleurs/{ogg.name}", "fleurs-en", "en", ref))
    longform_ref = " ".join((td / "longform" / "en.txt").read_text(encoding="utf-8").split())
    clips.append(Clip("shared:testdata/longform/en-brian.ogg", "longform", "en", longform_ref))
    ps = pocketsphinx_dir()
    for sub, transcript in (("librivox", "transcription"), ("cards", "cards.transcription")):
        refs = _sphinx_transcripts(ps / sub / transcript)
        for wav in sorted((ps / sub).glob("*.wav")):
            if wav.stem not in refs:
                raise RuntimeError(f"{wav} has no line in {transcript}")
            clips.append(Clip(f"pocketsphinx:{sub}/{wav.name}", sub, "en", refs[wav.stem]))
    return clips


def german_clips() -> list:
    """fleurs/de: for a multilingual model only."""
    td = shared_dir() / "testdata"
    return [Clip(f"shared:testdata/fleurs/{ogg.name}", "fleurs-de", "de",
                 ogg.with_suffix(".txt").read_text(encoding="utf-8").strip())
            for ogg in sorted((td / "fleurs").glob("de-*.ogg"))]
