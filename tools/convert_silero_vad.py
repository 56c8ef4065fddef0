#!/usr/bin/env python3
"""convert_silero_vad.py — writes the weights of Silero VAD v6 (the 16 kHz ONNX
graph faster-whisper ships) as the small binary file src/vad.c reads.

Run by hand with the test venv (it needs the `onnx` package):
    $ASR_VENV/bin/python tools/convert_silero_vad.py \
        ../shared/testdata/silero_vad_v6.onnx models/silero_vad_v6.bin

File format (all little-endian, every field 4-byte aligned):
    char     magic[8]      "ASRVAD\\0\\0"
    uint32   version       1
    uint32   n_tensors
    n_tensors times:
        uint32   name_len        1..64
        char     name[name_len]  ASCII, zero-padded to a multiple of 4 bytes
        uint32   n_dims          1..4
        uint32   dims[n_dims]
        float32  data[prod(dims)]   row-major, as in the ONNX initializer
The file ends right after the last tensor.

The graph is checked against the structure src/vad.c implements (reflect pad
128, STFT as a stride-128 conv, magnitude of frames 1.., four conv+ReLU
layers, one LSTM step per 576-sample frame, ReLU, 1x1 conv, sigmoid) so a
different export fails here instead of converting into something wrong.
"""
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

# ONNX initializer name -> name in the file (the LSTM's get readable names).
TENSORS = [
    ("encoder.feature_extractor.forward_basis_buffer", "stft.basis", (258, 1, 256)),
    ("encoder.conv_layers.0.weight", "conv0.weight", (128, 129, 3)),
    ("encoder.conv_layers.0.bias", "conv0.bias", (128,)),
    ("encoder.conv_layers.1.weight", "conv1.weight", (64, 128, 3)),
    ("encoder.conv_layers.1.bias", "conv1.bias", (64,)),
    ("encoder.conv_layers.2.weight", "conv2.weight", (64, 64, 3)),
    ("encoder.conv_layers.2.bias", "conv2.bias", (64,)),
    ("encoder.conv_layers.3.weight", "conv3.weight", (128, 64, 3)),
    ("encoder.conv_layers.3.bias", "conv3.bias", (128,)),
    ("onnx::LSTM_209", "lstm.w", (1, 512, 128)),   # input weights, gates i,o,f,c
    ("onnx::LSTM_210", "lstm.r", (1, 512, 128)),   # recurrent weights, same order
    ("onnx::LSTM_211", "lstm.b", (1, 1024)),       # input biases then recurrent biases
    ("decoder.conv1d.weight", "decoder.weight", (1, 128, 1)),
    ("decoder.conv1d.bias", "decoder.bias", (1,)),
]

EXPECTED_OPS = ["Pad", "Unsqueeze", "Conv", "Slice", "Slice", "Pow", "Pow", "Add", "Sqrt",
                "Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "Transpose",
                "LSTM", "Squeeze", "Relu", "Transpose", "Conv", "Sigmoid", "Reshape"]


def check_graph(model):
    g = model.graph
    ops = [n.op_type for n in g.node]
    if ops != EXPECTED_OPS:
        sys.exit(f"unexpected graph: {ops}")
    inputs = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in g.input}
    if inputs.get("input", [None, None])[1] != 576 or inputs.get("h") != [1, 1, 128]:
        sys.exit(f"unexpected inputs: {inputs}")
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    pad = g.node[0]
    if init[pad.input[1]].tolist() != [0, 128, 0, 128] or pad.attribute[0].s != b"reflect":
        sys.exit("unexpected STFT padding")
    stft = g.node[2]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in stft.attribute}
    if attrs["strides"] != [128] or attrs["kernel_shape"] != [256]:
        sys.exit("unexpected STFT conv")
    for n in g.node:
        if n.op_type == "Conv" and n is not stft:
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            k = a["kernel_shape"][0]
            if a.get("group", 1) != 1 or a.get("dilations", [1]) != [1] or a["pads"] != [k // 2, k // 2]:
                sys.exit(f"unexpected conv {n.name}: {a}")
        if n.op_type == "LSTM":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            if a != {"hidden_size": 128}:
                sys.exit(f"unexpected LSTM attributes {a}")
    strides = [onnx.helper.get_attribute_value(a)[0] for n in g.node if n.op_type == "Conv"
               for a in n.attribute if a.name == "strides"]
    if strides != [128, 1, 2, 2, 1, 1]:
        sys.exit(f"unexpected conv strides {strides}")
    return init


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: convert_silero_vad.py silero_vad_v6.onnx OUT.bin")
    model = onnx.load(sys.argv[1])
    init = check_graph(model)
    out = bytearray(b"ASRVAD\0\0")
    out += struct.pack("<II", 1, len(TENSORS))
    for onnx_name, name, shape in TENSORS:
        a = np.ascontiguousarray(init[onnx_name], dtype="<f4")
        if a.shape != shape:
            sys.exit(f"{onnx_name}: shape {a.shape}, expected {shape}")
        raw = name.encode("ascii")
        out += struct.pack("<I", len(raw)) + raw + b"\0" * (-len(raw) % 4)
        out += struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        out += a.tobytes()
    with open(sys.argv[2], "wb") as f:
        f.write(out)
    print(f"wrote {sys.argv[2]}: {len(TENSORS)} tensors, {len(out)} bytes")


if __name__ == "__main__":
    main()
