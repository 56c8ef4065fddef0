"""normalizer.py — Whisper's English text normaliser and word error rates, for the parity test and the benchmark.

The normaliser is EnglishTextNormalizer from the `whisper-normalizer` package
(MIT), a packaged copy of openai/whisper's whisper/normalizers/english.py that
needs no torch: lower case, spelled-out numbers to digits, British to American
spelling, contractions, punctuation and filler words removed. Pinned in
tests/requirements.txt and bench/requirements.txt so both score alike. For
German (no English rules apply) the BasicTextNormalizer is used.
"""
from dataclasses import dataclass

try:
    from whisper_normalizer.english import EnglishTextNormalizer
    from whisper_normalizer.basic import BasicTextNormalizer
except ImportError as e:  # say what to install rather than a bare traceback
    raise SystemExit(f"normalizer.py needs the whisper-normalizer package ({e}); "
                     "install tests/requirements.txt into the test venv") from e

_english = EnglishTextNormalizer()
_basic = BasicTextNormalizer()


def normalize(text: str, language: str = "en") -> str:
    return _english(text) if language == "en" else _basic(text)


@dataclass
class WordErrors:
    errors: int       # substitutions + deletions + insertions
    ref_words: int

    @property
    def wer(self) -> float:
        return self.errors / self.ref_words if self.ref_words else float("nan")


def _edit_distance(ref: list, hyp: list) -> int:
    # Levenshtein distance on words; one row at a time, O(len(hyp)) memory.
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_errors(reference: str, hypothesis: str, language: str = "en") -> WordErrors:
    """Errors of one hypothesis against its reference, both normalised first."""
    ref = normalize(reference, language).split()
    hyp = normalize(hypothesis, language).split()
    return WordErrors(_edit_distance(ref, hyp), len(ref))


def pooled_wer(pairs) -> float:
    """Total errors over total reference words for (reference, hypothesis[, language]) tuples."""
    errors = ref_words = 0
    for p in pairs:
        e = word_errors(*p)
        errors += e.errors
        ref_words += e.ref_words
    return errors / ref_words if ref_words else float("nan")
