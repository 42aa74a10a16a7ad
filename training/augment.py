"""Random changes to the stems of one training window.

Augmentation acts on the stems only; the sampler builds the mixture as their
sum afterwards, so the mixture always equals the sum of the augmented stems.
"""

from __future__ import annotations

import numpy as np

from .config import AugmentConfig


def augment_stems(stems: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """``stems``: float32 ``(n_stems, time, 2)``; returns a new array of the same shape."""
    n = len(stems)
    out = stems * (10.0 ** (rng.uniform(*cfg.gain_db, size=n) / 20.0)).astype(np.float32)[:, None, None]
    swap = rng.random(n) < cfg.channel_swap
    out[swap] = out[swap][:, :, ::-1]
    out[rng.random(n) < cfg.polarity] *= -1.0
    mono = rng.random(n) < cfg.mono
    out[mono] = out[mono].mean(axis=2, keepdims=True)
    if rng.random() < cfg.band_limit:
        out = band_limit(out, cfg.band_limit_hz, sample_rate)
    return out


def band_limit(stems: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` so full-band music looks like a band-limited (e.g. 16 kHz) dataset.

    Done for the window as a whole in the frequency domain: the model then
    cannot learn "band-limited means vocals" from a mix of 16 kHz and 44.1 kHz data.
    """
    spectrum = np.fft.rfft(stems, axis=1)
    freqs = np.fft.rfftfreq(stems.shape[1], 1.0 / sample_rate)
    spectrum[:, freqs > cutoff_hz] = 0
    return np.fft.irfft(spectrum, n=stems.shape[1], axis=1).astype(np.float32)
