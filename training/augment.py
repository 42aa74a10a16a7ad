"""Random changes to the stems of one training window.

Augmentation acts on the stems only; the sampler builds the mixture as their
sum afterwards, so the mixture always equals the sum of the augmented stems.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .config import AugmentConfig


def augment_stems(stems: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int,
                  band_limited: bool = False) -> np.ndarray:
    """``stems``: float32 ``(n_stems, time, 2)``; returns a new array of the same shape.

    ``band_limited``: low-pass the window whatever ``cfg.band_limit`` draws (stems from a 16 kHz source).
    """
    n = len(stems)
    out = stems * (10.0 ** (rng.uniform(*cfg.gain_db, size=n) / 20.0)).astype(np.float32)[:, None, None]
    swap = rng.random(n) < cfg.channel_swap
    out[swap] = out[swap][:, :, ::-1]
    out[rng.random(n) < cfg.polarity] *= -1.0
    mono = rng.random(n) < cfg.mono
    out[mono] = out[mono].mean(axis=2, keepdims=True)
    if rng.random() < cfg.band_limit or band_limited:
        out = band_limit(out, cfg.band_limit_hz, sample_rate)
    return out


SPEED_MARGIN = 64  # samples read beyond each end, so the resampling filter's edges fall outside the window


def speed_ratio(rng: np.random.Generator, cfg: AugmentConfig) -> Fraction | None:
    """A random playback speed for one window (tape-style: tempo and pitch move together), or None.

    Whole semitones in ``[-speed_semitones, speed_semitones]`` without 0, as a small fraction, so
    polyphase resampling is exact and cheap.
    """
    if cfg.speed <= 0 or cfg.speed_semitones < 1 or rng.random() >= cfg.speed:
        return None  # off: no random draw, so runs without speed change sample exactly as before
    steps = [k for k in range(-cfg.speed_semitones, cfg.speed_semitones + 1) if k]
    return Fraction(2.0 ** (rng.choice(steps) / 12.0)).limit_denominator(48)


def source_length(window: int, speed: Fraction | None) -> int:
    """Samples to read so that ``change_speed`` yields ``window`` samples."""
    return window if speed is None else math.ceil(window * speed) + 2 * SPEED_MARGIN + 1


def change_speed(stems: np.ndarray, speed: Fraction, window: int) -> np.ndarray:
    """``(n_stems, source_length, 2)`` -> ``(n_stems, window, 2)`` played ``speed`` times faster."""
    from scipy.signal import resample_poly  # the train extra; imported here so the sampler runs without it

    out = resample_poly(stems, speed.denominator, speed.numerator, axis=1)
    start = int(round(SPEED_MARGIN / speed))
    return np.ascontiguousarray(out[:, start:start + window], dtype=np.float32)


def band_limit(stems: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` so full-band music looks like a band-limited (e.g. 16 kHz) dataset.

    Done for the window as a whole in the frequency domain: the model then
    cannot learn "band-limited means vocals" from a mix of 16 kHz and 44.1 kHz data.
    """
    spectrum = np.fft.rfft(stems, axis=1)
    freqs = np.fft.rfftfreq(stems.shape[1], 1.0 / sample_rate)
    spectrum[:, freqs > cutoff_hz] = 0
    return np.fft.irfft(spectrum, n=stems.shape[1], axis=1).astype(np.float32)
