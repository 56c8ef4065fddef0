"""pcm16.py — 16 kHz mono 16-bit WAV files for the tests: write float samples, read them back."""
import wave

import numpy as np


def write_wav(path, samples):
    """float samples → 16-bit 16 kHz mono WAV; returns the samples as the C side reads them."""
    pcm = np.clip(np.round(np.asarray(samples) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def read_wav(path):
    """A 16 kHz mono 16-bit WAV as float samples."""
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
