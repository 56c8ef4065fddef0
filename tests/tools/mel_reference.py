#!/usr/bin/env python3
"""mel_reference.py — reference log-mel spectrogram for tests: openai/whisper's
audio.log_mel_spectrogram re-done in numpy (float32, as torch computes it).

    mel_reference.py IN.wav OUT.npy [--n-mels 80] [--padding 0] [--filters mel_filters.npz]

IN.wav must be 16 kHz mono 16-bit PCM (samples / 32768, as whisper's
load_audio yields). OUT.npy holds a float32 (n_mels, n_frames) array. The mel
filters come from openai/whisper's mel_filters.npz, as whisper loads them.
"""
import argparse
import wave

import numpy as np

N_FFT, HOP_LENGTH, SAMPLE_RATE = 400, 160, 16000


def load_wav(path):
    with wave.open(path, "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def log_mel_spectrogram(audio, filters, padding=0, dtype=np.float32):
    """whisper.audio.log_mel_spectrogram: torch.stft(center=True, reflect),
    periodic Hann, |X|^2 without the last frame, mel, log10, clamp, scale."""
    audio = np.asarray(audio, dtype=dtype)
    if padding > 0:
        audio = np.pad(audio, (0, padding))
    n = np.arange(N_FFT, dtype=np.float64)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(dtype)  # torch.hann_window
    x = np.pad(audio, (N_FFT // 2, N_FFT // 2), mode="reflect")
    n_frames = 1 + (len(x) - N_FFT) // HOP_LENGTH
    idx = np.arange(N_FFT)[None, :] + HOP_LENGTH * np.arange(n_frames)[:, None]
    frames = x[idx] * window  # (n_frames, N_FFT)
    stft = np.fft.rfft(frames, axis=-1)  # complex64 for float32 input (numpy >= 2)
    if dtype == np.float32:
        stft = stft.astype(np.complex64)
    magnitudes = (np.abs(stft[:-1]) ** 2).astype(dtype).T  # (201, n_frames - 1)
    mel_spec = filters.astype(dtype) @ magnitudes
    log_spec = np.log10(np.maximum(mel_spec, dtype(1e-10)))
    log_spec = np.maximum(log_spec, log_spec.max() - dtype(8.0))
    return ((log_spec + dtype(4.0)) / dtype(4.0)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wav")
    ap.add_argument("out")
    ap.add_argument("--n-mels", type=int, default=80, choices=(80, 128))
    ap.add_argument("--padding", type=int, default=0)
    ap.add_argument("--filters", required=True, help="openai/whisper mel_filters.npz")
    ap.add_argument("--float64", action="store_true", help="compute in float64 instead")
    args = ap.parse_args()
    with np.load(args.filters) as f:
        filters = f[f"mel_{args.n_mels}"]
    spec = log_mel_spectrogram(load_wav(args.wav), filters, args.padding,
                               np.float64 if args.float64 else np.float32)
    np.save(args.out, spec)


if __name__ == "__main__":
    main()
