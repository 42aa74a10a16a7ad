"""soxr streams to and from the model rate, with a fixed delay at the caller's rate.

soxr keeps the signal time-aligned (output sample ``j`` is input time
``j * in_rate / out_rate``) but holds samples back before it can filter them,
so how many frames come out of a call varies. The separator must return exactly
as many frames as it was given, so the resampled stems pass through a FIFO that
starts with ``prefill`` zeros, enough to cover the largest possible hold-back of
both streams. The total delay is therefore fixed and known:

    latency_samples = prefill + (model latency + extra_model_delay) * caller_rate / model_rate

``extra_model_delay`` (< model_rate / gcd, only for common rate pairs) makes the
second term an integer so the stems stay sample-exact against the input.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import soxr

from .rings import ring

QUALITIES = ("LQ", "MQ", "HQ", "VHQ")  # soxr recipes; lower ones have shorter filters, hence less delay
DEFAULT_QUALITY = "HQ"
MEASURE_SECONDS = 0.25  # soxr's hold-back pattern repeats within this (checked up to 5 s: < 0.5 sample more)
SAFETY_FRAMES = 2
MAX_EXTRA_DELAY_SECONDS = 0.01


@cache
def max_hold_back(in_rate: int, out_rate: int, quality: str = DEFAULT_QUALITY) -> float:
    """The most output samples one soxr stream ever owes: max over t of ``t * out/in - produced(t)``.

    soxr's output count depends only on the total input so far, not on how it was chunked, so
    feeding one sample at a time visits every state.
    """
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    one = np.zeros(1, np.float32)
    produced, worst = 0, 0.0
    for t in range(1, int(MEASURE_SECONDS * in_rate) + 1):
        produced += len(stream.resample_chunk(one))
        worst = max(worst, t * out_rate / in_rate - produced)
    return worst


def extra_model_delay(model_latency: int, caller_rate: int, model_rate: int) -> int:
    """Model samples to add so ``(model_latency + extra) * caller_rate / model_rate`` is an integer."""
    period = model_rate // math.gcd(caller_rate, model_rate)
    if period > MAX_EXTRA_DELAY_SECONDS * model_rate:
        return 0  # exotic rate pair: accept a sub-sample offset rather than a long extra delay
    return -model_latency % period


class Resampler:
    """Caller rate -> model rate for the input, model rate -> caller rate for the stems, fixed delay.

    ``quality``: a soxr recipe. "HQ" (default) is transparent; live audio uses "LQ", whose shorter
    filters cut the delay resampling adds at 48 kHz from about 43 ms to about 14 ms (measured with the
    fixed-latency FIFO; the pass band still reaches about 0.8 of Nyquist).
    """

    def __init__(self, caller_rate: int, model_rate: int, in_channels: int, out_stems: int, out_channels: int,
                 model_latency: int, quality: str = DEFAULT_QUALITY):
        if quality not in QUALITIES:
            raise ValueError(f"resampling quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
        self.quality = quality
        self.caller_rate, self.model_rate = caller_rate, model_rate
        self.in_channels, self.out_stems, self.out_channels = in_channels, out_stems, out_channels
        self.extra_model_delay = extra_model_delay(model_latency, caller_rate, model_rate)
        # The input stream owes at most its hold-back in model samples (scaled to caller samples), the
        # output stream its own in caller samples; at worst both at once.
        owed_in = max_hold_back(caller_rate, model_rate, quality) * caller_rate / model_rate
        owed = owed_in + max_hold_back(model_rate, caller_rate, quality)
        self.prefill = math.ceil(owed) + SAFETY_FRAMES
        model_delay = (model_latency + self.extra_model_delay) * caller_rate / model_rate
        self.latency_samples = self.prefill + round(model_delay)
        self.underruns = 0  # frames the FIFO lacked; stays 0 unless the hold-back bound is wrong
        width = out_stems * out_channels
        self._staging = np.zeros((0, width), np.float32)
        # The FIFO is a ring (rings.py) holding positions [_read, _written) of the caller-rate stems.
        self._fifo = ring(self.prefill + 4096, width)
        self.reset()

    def reset(self) -> None:
        self._in = soxr.ResampleStream(self.caller_rate, self.model_rate, self.in_channels, "float32", self.quality)
        self._out = soxr.ResampleStream(
            self.model_rate, self.caller_rate, self.out_stems * self.out_channels, "float32", self.quality)
        self._fifo[:] = 0.0
        self._read = 0
        self._written = self.prefill  # the prefill: zeros that were never written

    def to_model(self, frames: np.ndarray) -> np.ndarray:
        """Caller-rate frames ``[n, channels]`` (finite float32) -> whatever model-rate frames are ready."""
        return self._in.resample_chunk(frames)

    def push_stems(self, stems: np.ndarray) -> None:
        """Resample model-rate stems ``[stems, m, channels]`` to the caller rate and queue them."""
        m = stems.shape[1]
        if m == 0:
            return
        if len(self._staging) < m:
            self._staging = np.zeros((m, self._staging.shape[1]), np.float32)
        staging = self._staging[:m]
        staging.reshape(m, self.out_stems, self.out_channels)[:] = stems.transpose(1, 0, 2)
        self._queue(self._out.resample_chunk(staging))

    def _queue(self, frames: np.ndarray) -> None:
        k = len(frames)
        if self._written + k - self._read > len(self._fifo):
            self._grow(self._written + k - self._read)
        _store(self._fifo, self._written, frames)
        self._written += k

    def _grow(self, needed: int) -> None:
        fifo = ring(needed, self._fifo.shape[1])
        position = self._read
        for part in self._take(self._read, self._written - self._read):
            _store(fifo, position, part)
            position += len(part)
        self._fifo = fifo

    def _take(self, position: int, n: int) -> list[np.ndarray]:
        """Views of positions ``[position, position + n)``: one, or two where they wrap around the ring."""
        return [self._fifo[start:stop] for start, stop in _rows(len(self._fifo), position, n)]

    def pull(self, out: np.ndarray, offset: int, n: int) -> None:
        """Write the next ``n`` caller-rate frames into ``out[:, offset:offset + n]``."""
        available = min(n, self._written - self._read)
        self.underruns += n - available
        done = offset
        for chunk in self._take(self._read, available):
            k = len(chunk)
            out[:, done:done + k] = chunk.reshape(k, self.out_stems, self.out_channels).transpose(1, 0, 2)
            done += k
        out[:, done:offset + n] = 0.0
        self._read += available


def _rows(size: int, position: int, n: int) -> list[tuple[int, int]]:
    """The row ranges of a ring of ``size`` rows that hold positions ``[position, position + n)``."""
    first = position & (size - 1)
    if first + n <= size:
        return [(first, first + n)]
    return [(first, size), (0, first + n - size)]


def _store(fifo: np.ndarray, position: int, frames: np.ndarray) -> None:
    done = 0
    for start, stop in _rows(len(fifo), position, len(frames)):
        fifo[start:stop] = frames[done:done + stop - start]
        done += stop - start
