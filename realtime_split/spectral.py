"""The STFT side of spectral models: magnitudes in, masks out, the runtime does the transforms.

A spectral model's ONNX graph maps STFT magnitudes to one mask per stem
(docs/model-format.md, ``frontend``): tf2onnx cannot convert TensorFlow's FFT
ops, and numpy's FFT is fast. ``SpectralRunner`` wraps such a session behind
the same interface as ``inference.BatchRunner`` (waveform windows in, stem
waveforms out), so the streaming engine does not know which kind it runs.
Training (``training/spectral_model.py``) uses the same ``StftGeometry`` framing
with TensorFlow ops, so the model is trained on exactly these frames. Hann
analysis and synthesis windows; the inverse divides by the summed squared
windows, so masks of one give back the input exactly.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import ModelFormatError
from .model_format import MASK_INPUT, MASK_OUTPUT, StftGeometry


def overlap_envelope(g: StftGeometry, length: int) -> np.ndarray:
    """Sum of the squared windows over every sample of a ``length``-sample window."""
    squared = g.window_function().astype(np.float64) ** 2
    total = np.zeros(length + 2 * g.pad + g.n_fft)
    for f in range(length // g.hop):
        total[f * g.hop:f * g.hop + g.n_fft] += squared
    return total[g.pad:g.pad + length].astype(np.float32)


class Stft:
    """Forward and inverse transforms of fixed-length windows, vectorized over a batch."""

    def __init__(self, geometry: StftGeometry, length: int):
        if length % geometry.hop:
            raise ModelFormatError(f"window {length} is not a multiple of the STFT hop {geometry.hop}")
        self.g, self.length = geometry, length
        self.frames = length // geometry.hop
        self.window = geometry.window_function()
        self.inverse_norm = 1.0 / overlap_envelope(geometry, length)
        # Sample indices of every frame in the padded window.
        self.index = np.arange(self.frames)[:, None] * geometry.hop + np.arange(geometry.n_fft)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(..., length)`` -> complex ``(..., frames, n_freq)``."""
        g = self.g
        padded = np.zeros(x.shape[:-1] + (self.length + 2 * g.pad,), np.float32)
        padded[..., g.pad:g.pad + self.length] = x
        return np.fft.rfft(padded[..., self.index] * self.window, axis=-1).astype(np.complex64)

    def frame_range(self, start: int, stop: int) -> tuple[int, int]:
        """Frames whose samples touch ``[start, stop)`` of the window."""
        g = self.g
        first = max(0, -(-(start + g.pad - g.n_fft + 1) // g.hop))
        last = min(self.frames, (stop + g.pad - 1) // g.hop + 1)
        return first, last

    def inverse(self, spec: np.ndarray, first: int, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` from frames ``first ..`` of ``spec`` ``(..., k, n_freq)`` covering them."""
        g = self.g
        frames = np.fft.irfft(spec, n=g.n_fft, axis=-1).astype(np.float32) * self.window
        k = frames.shape[-2]
        origin = first * g.hop - g.pad  # window index of frames[..., 0, 0]
        out = np.zeros(frames.shape[:-2] + ((k - 1) * g.hop + g.n_fft,), np.float32)
        for j in range(k):
            out[..., j * g.hop:j * g.hop + g.n_fft] += frames[..., j, :]
        return out[..., start - origin:stop - origin] * self.inverse_norm[start:stop]


def extend_masks(masks: np.ndarray, n_freq: int) -> np.ndarray:
    """``(..., bins)`` masks -> ``(..., n_freq)``: each frame's mean over the model's bins above them."""
    bins = masks.shape[-1]
    if bins == n_freq:
        return masks
    high = masks.mean(axis=-1, keepdims=True)
    return np.concatenate([masks, np.broadcast_to(high, masks.shape[:-1] + (n_freq - bins,))], axis=-1)


class SpectralRunner:
    """``inference.BatchRunner``'s interface for a spectral model: ``inputs[:n]`` -> ``outputs[:n]``.

    Only the region ``[keep_start, keep_start + keep_length)`` of each output window is
    synthesized (the engine reads nothing else); the rest stays zero. Inference runs on the
    worker thread, never in an audio callback, so its numpy temporaries are allowed.
    """

    def __init__(self, session, geometry: StftGeometry, n_stems: int, window: int, max_batch: int,
                 keep_start: int, keep_length: int):
        self.session = session
        self.stft = Stft(geometry, window)
        self.inputs = np.zeros((max_batch, 2, window), np.float32)
        self.outputs = np.zeros((max_batch, n_stems, 2, window), np.float32)
        self.keep = (keep_start, keep_start + keep_length)
        self.frames = self.stft.frame_range(*self.keep)
        self.bins = geometry.bins

    def separate(self, mix: np.ndarray) -> np.ndarray:
        """``(n, 2, window)`` -> ``(n, S, 2, keep_length)``: the kept region of every stem."""
        spec = self.stft.forward(mix)  # (n, 2, F, n_freq)
        magnitude = np.ascontiguousarray(np.abs(spec[..., :self.bins]))
        masks = self.session.run([MASK_OUTPUT], {MASK_INPUT: magnitude})[0]  # (n, S, 2, F, bins)
        first, last = self.frames
        masks = extend_masks(masks[..., first:last, :], spec.shape[-1])
        return self.stft.inverse(spec[:, None, :, first:last] * masks, first, *self.keep)

    def run(self, n: int) -> float:
        """Separate ``inputs[:n]`` into ``outputs[:n]``; returns the seconds the call took."""
        began = time.perf_counter()
        start, stop = self.keep
        self.outputs[:n, :, :, start:stop] = self.separate(self.inputs[:n])
        return time.perf_counter() - began
