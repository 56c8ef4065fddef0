#!/usr/bin/env python3
"""make_synthetic_model.py — writes a CTranslate2 Whisper model directory with random weights
and the exact shapes of a Whisper size that cannot be downloaded here.

The shapes are openai/whisper's published ModelDimensions:

    size            n_mels  width  heads  enc layers  dec layers  n_vocab
    small             80     768    12       12          12        51865
    medium            80    1024    16       24          24        51865
    large-v3         128    1280    20       32          32        51866
    large-v3-turbo   128    1280    20       32           4        51866

The linear layers' weights are stored as CTranslate2 stores an int8 model (an int8 tensor plus
a float32 "<name>_scale" per output row), which keeps large-v3 at 1.6 GB on disk and lets the
loader's int8 path read them as they are; everything else is float16. The values are drawn so
that activations stay of order one through every layer (each row has norm about 1, layer
norms are the identity), so a window runs to the end with finite numbers; the text it decodes
is meaningless. The vocabulary is taken from a multilingual model directory (`--vocab-from`,
e.g. the base model); for large-v3 `<|yue|>` is inserted after the 99 original languages, as
in large-v3's own vocabulary.

Usage: make_synthetic_model.py SIZE OUT_DIR --vocab-from MODEL_DIR [--seed N]
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

SIZES = {
    #                 n_mels, width, heads, enc, dec, n_vocab
    "small": (80, 768, 12, 12, 12, 51865),
    "medium": (80, 1024, 16, 24, 24, 51865),
    "large-v3": (128, 1280, 20, 32, 32, 51866),
    "large-v3-turbo": (128, 1280, 20, 32, 4, 51866),
}
N_AUDIO_CTX = 1500
N_TEXT_CTX = 448
# CTranslate2's DataType values in model.bin.
CT2_F32, CT2_I8, CT2_I32, CT2_F16 = 0, 1, 3, 4


def ct2_string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


class ModelBin:
    """Writes model.bin version 6 as CTranslate2 does: header, variables, aliases (CTranslate2 itself loads it)."""

    def __init__(self, path: Path):
        self.path = path
        self.vars = []  # (name, array, ct2 dtype)

    def add(self, name: str, array: np.ndarray, dtype: int) -> None:
        # np.ascontiguousarray would make a scalar rank 1; CTranslate2 wants rank 0
        self.vars.append((name, np.require(array, requirements="C"), dtype))

    def write(self) -> None:
        with open(self.path, "wb") as f:
            f.write(struct.pack("<I", 6) + ct2_string("WhisperSpec") + struct.pack("<I", 3))
            f.write(struct.pack("<I", len(self.vars)))
            for name, a, dtype in self.vars:
                f.write(ct2_string(name) + struct.pack("<B", a.ndim))
                f.write(struct.pack(f"<{a.ndim}I", *a.shape))
                f.write(struct.pack("<BI", dtype, a.nbytes))
                f.write(a.tobytes())
            # the output projection is the embedding, as in CTranslate2's own conversions
            f.write(struct.pack("<I", 1))
            f.write(ct2_string("decoder/projection/weight") + ct2_string("decoder/embeddings/weight"))


def sinusoids(length: int, channels: int) -> np.ndarray:
    """openai/whisper's sinusoidal position embedding (the encoder's)."""
    inc = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1)


def write_model(size: str, out: Path, vocab_from: Path, seed: int) -> None:
    n_mels, d, heads, n_enc, n_dec, n_vocab = SIZES[size]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    mb = ModelBin(out / "model.bin")

    def linear(name: str, rows: int, cols: int) -> None:
        # int8 values uniform in [-127, 127]; a row's norm is about 1 after scaling
        q = rng.integers(-127, 128, size=(rows, cols), dtype=np.int8)
        scale = np.full(rows, 1.0 / (73.3 * np.sqrt(cols)), dtype=np.float32)
        mb.add(name + "/weight", q, CT2_I8)
        # CTranslate2 stores the factor that maps float to int8 (w ≈ q / scale)
        mb.add(name + "/weight_scale", (1.0 / scale).astype(np.float32), CT2_F32)
        mb.add(name + "/bias", (rng.standard_normal(rows) * 0.02).astype(np.float16), CT2_F16)

    def layer_norm(name: str) -> None:
        mb.add(name + "/gamma", np.ones(d, np.float16), CT2_F16)
        mb.add(name + "/beta", np.zeros(d, np.float16), CT2_F16)

    def half(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float16)

    mb.add("encoder/num_heads", np.array([heads], np.int32).reshape(()), CT2_I32)
    mb.add("encoder/conv1/weight", half(rng.standard_normal((d, n_mels, 3)) / np.sqrt(3 * n_mels)), CT2_F16)
    mb.add("encoder/conv1/bias", np.zeros(d, np.float16), CT2_F16)
    mb.add("encoder/conv2/weight", half(rng.standard_normal((d, d, 3)) / np.sqrt(3 * d)), CT2_F16)
    mb.add("encoder/conv2/bias", np.zeros(d, np.float16), CT2_F16)
    mb.add("encoder/position_encodings/encodings", half(sinusoids(N_AUDIO_CTX, d)), CT2_F16)
    for i in range(n_enc):
        p = f"encoder/layer_{i}"
        layer_norm(f"{p}/self_attention/layer_norm")
        linear(f"{p}/self_attention/linear_0", 3 * d, d)
        linear(f"{p}/self_attention/linear_1", d, d)
        layer_norm(f"{p}/ffn/layer_norm")
        linear(f"{p}/ffn/linear_0", 4 * d, d)
        linear(f"{p}/ffn/linear_1", d, 4 * d)
    layer_norm("encoder/layer_norm")

    mb.add("decoder/num_heads", np.array([heads], np.int32).reshape(()), CT2_I32)
    mb.add("decoder/embeddings/weight", half(rng.standard_normal((n_vocab, d)) / np.sqrt(d)), CT2_F16)
    mb.add("decoder/position_encodings/encodings", half(rng.standard_normal((N_TEXT_CTX, d)) * 0.02), CT2_F16)
    for i in range(n_dec):
        p = f"decoder/layer_{i}"
        layer_norm(f"{p}/self_attention/layer_norm")
        linear(f"{p}/self_attention/linear_0", 3 * d, d)
        linear(f"{p}/self_attention/linear_1", d, d)
        layer_norm(f"{p}/attention/layer_norm")
        linear(f"{p}/attention/linear_0", d, d)
        linear(f"{p}/attention/linear_1", 2 * d, d)
        linear(f"{p}/attention/linear_2", d, d)
        layer_norm(f"{p}/ffn/layer_norm")
        linear(f"{p}/ffn/linear_0", 4 * d, d)
        linear(f"{p}/ffn/linear_1", d, 4 * d)
    layer_norm("decoder/layer_norm")
    mb.write()

    tokens = json.loads((vocab_from / "vocabulary.json").read_text(encoding="utf-8"))
    if len(tokens) != 51865:
        sys.exit(f"{vocab_from}/vocabulary.json has {len(tokens)} tokens; need a multilingual (51865) one")
    if n_vocab == 51866:
        at = tokens.index("<|su|>") + 1  # the last of the 99 original languages
        tokens.insert(at, "<|yue|>")
    assert len(tokens) == n_vocab
    (out / "vocabulary.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    # No config.json: the loader derives the suppress lists and alignment heads.
    (out / "synthetic.json").write_text(json.dumps({"size": size, "seed": seed, "random_weights": True}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("size", choices=sorted(SIZES))
    ap.add_argument("out", type=Path)
    ap.add_argument("--vocab-from", type=Path, required=True, help="a multilingual CT2 model directory")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    write_model(a.size, a.out, a.vocab_from, a.seed)


if __name__ == "__main__":
    main()
