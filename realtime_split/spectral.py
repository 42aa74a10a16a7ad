"""The STFT side of spectral models: magnitudes in, masks out, the runtime does the transforms.

A spectral model's ONNX graph maps STFT magnitudes to one mask per stem
(docs/model-format.md, ``frontend``): tf2onnx cannot convert TensorFlow's FFT
ops, and numpy's FFT is fast. ``SpectralRunner`` wraps such a session behind
the same interface as ``inference.BatchRunner`` (waveform windows in, stem
waveforms out), so the streaming engine does not know which kind it runs.
Training (``training/models/quality.py``) uses the same ``StftGeometry`` framing
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

    def reset(self) -> None:
        """Nothing to forget: every window is separated on its own."""

    def run(self, n: int) -> float:
        """Separate ``inputs[:n]`` into ``outputs[:n]``; returns the seconds the call took."""
        began = time.perf_counter()
        start, stop = self.keep
        self.outputs[:n, :, :, start:stop] = self.separate(self.inputs[:n])
        return time.perf_counter() - began


class StatefulRunner:
    """``inference.BatchRunner``'s interface for a stateful model on a "lowdelay" STFT.

    The engine hands it consecutive windows, one per hop (``StateTensor`` docs: a hop is ``k``
    STFT frames). Only each window's ``k`` newest frames are new: they are transformed, run
    through the model in ONE call for all ``n`` windows (``T = n * k`` frames, the model's own
    state carried in and out), masked, synthesized and overlap-added, and each window's kept
    region receives the ``k * hop`` samples that became final. The model's state and the
    synthesis tail are this object's; ``reset()`` restores the initial state. Inference runs on the
    worker thread, never in an audio callback, so its numpy temporaries are allowed.
    """

    def __init__(self, session, geometry: StftGeometry, state, n_stems: int, window: int, max_batch: int,
                 keep_start: int, keep_length: int):
        g = geometry
        self.session, self.g, self.state_spec = session, g, tuple(state)
        self.analysis, synthesis = g.lowdelay_windows()
        self.synthesis = synthesis[g.n_fft - g.synthesis:]
        self.k = keep_length // g.hop  # frames per window
        self.inputs = np.zeros((max_batch, 2, window), np.float32)
        self.outputs = np.zeros((max_batch, n_stems, 2, window), np.float32)
        self.keep = (keep_start, keep_start + keep_length)
        # Sample indices, in a window, of its k new frames.
        ends = window - (self.k - 1 - np.arange(self.k)) * g.hop
        self.index = ends[:, None] - g.n_fft + np.arange(g.n_fft)
        self.output_names = [MASK_OUTPUT] + [t.output for t in self.state_spec]
        self.tail = np.zeros((n_stems, 2, g.synthesis - g.hop), np.float32)
        self.reset()

    def reset(self) -> None:
        """The initial state: what the model starts a stream with."""
        self.state = {t.input: np.full((1, *t.shape), t.init, np.float32) for t in self.state_spec}
        self.tail[:] = 0.0

    def run(self, n: int) -> float:
        """Separate the new frames of ``inputs[:n]`` into the kept regions of ``outputs[:n]``; returns seconds."""
        began = time.perf_counter()
        g, k = self.g, self.k
        frames = self.inputs[:n][:, :, self.index]  # (n, 2, k, n_fft)
        frames = frames.transpose(1, 0, 2, 3).reshape(1, 2, n * k, g.n_fft)
        spec = np.fft.rfft(frames * self.analysis, axis=-1).astype(np.complex64)  # (1, 2, T, n_freq)
        feed = {MASK_INPUT: np.ascontiguousarray(np.abs(spec[..., :g.bins])), **self.state}
        masks, *state = self.session.run(self.output_names, feed)  # masks (1, S, 2, T, bins)
        self.state = {t.input: value for t, value in zip(self.state_spec, state)}
        masks = extend_masks(masks[0], spec.shape[-1])  # (S, 2, T, n_freq)
        wave = np.fft.irfft(spec[0][None] * masks, n=g.n_fft, axis=-1)[..., g.n_fft - g.synthesis:]
        wave = (wave * self.synthesis).astype(np.float32)  # (S, 2, T, 2 * hop)
        total = n * k * g.hop
        acc = np.zeros(wave.shape[:2] + (total + g.hop,), np.float32)
        acc[..., :g.hop] = self.tail
        acc[..., :total] += wave[..., :g.hop].reshape(wave.shape[:2] + (total,))
        acc[..., g.hop:] += wave[..., g.hop:].reshape(wave.shape[:2] + (total,))
        self.tail[:] = acc[..., total:]
        start, stop = self.keep
        self.outputs[:n, :, :, start:stop] = acc[..., :total].reshape(
            wave.shape[:2] + (n, k * g.hop)).transpose(2, 0, 1, 3)
        return time.perf_counter() - began
