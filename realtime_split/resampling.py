"""Resampling between the caller's rate and the model's, with a fixed, exact delay at the caller's rate.

Two kinds, chosen by ``quality``:

- ``"LD"`` (low delay; streaming's default): ``FirResampler``, a short linear-phase polyphase FIR filter
  in each direction (a Kaiser-windowed sinc of 24 zero crossings either side at the lower rate, cut
  at 91 % of its Nyquist frequency). Each direction delays by its filter's half length, 0.54 ms at
  44.1 kHz, so 48 kHz adds 1.1 ms to the model's latency (two directions, rounded up to a whole
  sample). It computes every output sample from a known set of input samples, so the delay is exact
  and known without measuring, nothing is buffered beyond the filters, it allocates nothing while it
  runs, and it knows which output samples are already final before the input that follows them
  arrives (``ready_after``): a real-time host can play those early (live/bridge.py does).
- soxr's recipes ``"LQ"``, ``"MQ"``, ``"HQ"``, ``"VHQ"``: ``SoxrResampler``. soxr keeps the signal
  time-aligned (output sample ``j`` is input time ``j * in_rate / out_rate``) but holds samples back
  before it can filter them, in blocks, so how many frames come out of a call varies. The separator must
  return exactly as many frames as it was given, so the resampled stems pass through a FIFO that starts
  with ``prefill`` zeros, enough to cover the largest possible hold-back of both streams:

      latency_samples = prefill + (model latency + extra_model_delay) * caller_rate / model_rate

  ``extra_model_delay`` (< model_rate / gcd, only for common rate pairs) makes the second term an
  integer so the stems stay sample-exact against the input. soxr's hold-back at 48 kHz is about 10 ms
  per direction even for "LQ" and its minimum-phase variant (measured; see docs/benchmarks.md), which
  is why live audio does not use it.

And one plain conversion that keeps no delay account: ``playback_resampler``, a file's rate to the device's
before live playback separates it (at the device's rate, so the separator's delay is all that is reported).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import soxr
from numba import njit

from .rings import ring

LOW_DELAY = "LD"
SOXR_QUALITIES = ("LQ", "MQ", "HQ", "VHQ")  # soxr recipes; lower ones have shorter filters, hence less delay
QUALITIES = (LOW_DELAY, *SOXR_QUALITIES)
DEFAULT_QUALITY = LOW_DELAY  # streaming's default; whole files and arrays use "HQ" (api.py)
MEASURE_SECONDS = 0.25  # soxr's hold-back pattern repeats within this (checked up to 5 s: < 0.5 sample more)
SAFETY_FRAMES = 2
MAX_EXTRA_DELAY_SECONDS = 0.01

ZERO_CROSSINGS = 24  # LD: filter half length, in samples of the lower rate
CUTOFF = 0.91  # LD: -6 dB point, as a share of the lower rate's Nyquist frequency
KAISER_BETA = 7.0  # LD: about 70 dB stop band
MAX_PHASES = 4096  # LD: rate pairs needing more filter phases (exotic ones, 44100 and 47999) use soxr's "LQ"
PIECE = 4096  # LD: caller frames per step, so the scratch buffers have a fixed size
PLAYBACK_QUALITY = "HQ"  # a file played to a device that refused its rate: transparent; the delay is not heard


def playback_resampler(in_rate: int, out_rate: int, channels: int) -> soxr.ResampleStream:
    """A soxr stream from a file's rate to the device's (``resample_chunk(frames, last=...)``), for live file
    playback: it runs before the separator, ahead of the audio, so its varying hold-back delays nothing heard."""
    return soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality=PLAYBACK_QUALITY)


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


class SoxrResampler:
    """Caller rate -> model rate for the input, model rate -> caller rate for the stems, fixed delay.

    ``quality``: a soxr recipe. "HQ" is transparent (files use it); "LQ" has shorter filters, but soxr
    still holds back about 10 ms per direction at 48 kHz (it filters in blocks), so live audio uses the
    "LD" filters of ``FirResampler`` instead. soxr releases no output before it has its block, so
    nothing is final ahead of the input: ``ready_after(p) == p``.
    """

    def __init__(self, caller_rate: int, model_rate: int, in_channels: int, out_stems: int, out_channels: int,
                 model_latency: int, quality: str = DEFAULT_QUALITY):
        if quality not in SOXR_QUALITIES:
            raise ValueError(f"resampling quality must be one of {', '.join(SOXR_QUALITIES)}, got {quality!r}")
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
        self._input = np.zeros((0, in_channels), np.float32)  # grown on demand; a steady block size stops that
        self._model_stems = np.zeros((out_stems, 0, out_channels), np.float32)
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

    def process(self, frames: np.ndarray, out: np.ndarray, stream, stats) -> None:
        """Caller-rate ``frames`` (finite float32) through the model-rate ``stream`` into ``out[:, :n]``."""
        model_frames = self.to_model(frames)
        m = len(model_frames)
        if self._model_stems.shape[1] < m:
            self._model_stems = np.zeros((self.out_stems, m, self.out_channels), np.float32)
        stream.process(model_frames, self._model_stems, stats)
        self.push_stems(self._model_stems[:, :m])
        self.pull(out, 0, len(frames))
        stats.resampler_underruns = self.underruns

    def ready_after(self, position: int) -> int:
        return position

    def ready_period(self) -> int:
        return 1

    def ahead(self, stream, skip: int, out: np.ndarray) -> None:
        """Nothing is final ahead of the input (see the class)."""

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


# Low delay: polyphase FIR ---------------------------------------------------------------------------------------

def periods(caller_rate: int, model_rate: int) -> tuple[int, int]:
    """(caller period, model period) in ticks of the common rate ``caller_rate * model_rate / gcd``, on
    which both streams' samples fall: a caller sample lasts ``model_rate / gcd`` ticks, a model sample
    ``caller_rate / gcd`` (coprime, e.g. 147 and 160 for 48 kHz against 44.1 kHz)."""
    g = math.gcd(caller_rate, model_rate)
    return model_rate // g, caller_rate // g


def fir_supported(caller_rate: int, model_rate: int) -> bool:
    """Whether the LD filters' tables stay small for this rate pair (one phase per tick of a sample)."""
    return max(periods(caller_rate, model_rate)) <= MAX_PHASES


def design(in_period: int, out_period: int) -> tuple[np.ndarray, int]:
    """The polyphase table ``(in_period phases, taps)`` of the LD low-pass for one direction, and its delay
    in ticks (its centre). Tap ``k`` of phase ``f`` is the prototype at tick ``f + k * in_period``; an output
    at tick ``u`` is ``sum_k x[u // in_period - k] * table[u % in_period, k]``."""
    low = max(in_period, out_period)  # ticks per sample of the lower rate
    centre = ZERO_CROSSINGS * low
    t = np.arange(2 * centre + 1, dtype=np.float64) - centre
    cut = CUTOFF / (2 * low)  # cycles per tick
    prototype = 2 * cut * np.sinc(2 * cut * t) * np.kaiser(len(t), KAISER_BETA)
    prototype *= in_period / prototype.sum()  # one output sums one in every in_period ticks: unit gain at DC
    taps = -(-len(prototype) // in_period)
    padded = np.zeros(taps * in_period)
    padded[:len(prototype)] = prototype
    return np.ascontiguousarray(padded.reshape(taps, in_period).T, dtype=np.float32), centre


@njit(cache=True, nogil=True)
def fir(history, table, in_period, out_period, offset, first, n, out, out_offset):
    """Outputs ``first .. first + n - 1`` of one direction into ``out[:, out_offset:, :]``.

    ``history`` is a ring (rings.py) of input frames ``(R, stems, channels)``; output ``j`` falls on
    tick ``u = j * out_period + offset`` and sums the ``taps`` inputs up to ``u // in_period``, weighted
    by the table's phase ``u % in_period``. The ring must hold all of them."""
    mask = history.shape[0] - 1
    taps = table.shape[1]
    for jj in range(n):
        u = (first + jj) * out_period + offset
        last = u // in_period
        phase = u - last * in_period
        for s in range(history.shape[1]):
            for c in range(history.shape[2]):
                acc = np.float32(0.0)
                for k in range(taps):
                    acc += history[(last - k) & mask, s, c] * table[phase, k]
                out[s, out_offset + jj, c] = acc


@njit(cache=True, nogil=True)
def store(history, frames, n, position):
    """``frames[:, :n]`` (stems, frames, channels) into the ring ``history`` (R, stems, channels) at ``position``."""
    mask = history.shape[0] - 1
    for i in range(n):
        row = (position + i) & mask
        for s in range(frames.shape[0]):
            for c in range(frames.shape[2]):
                history[row, s, c] = frames[s, i, c]


@njit(cache=True, nogil=True)
def store_input(history, frames, offset, n, position):
    """Caller frames ``frames[offset:offset + n]`` ``(frames, channels)`` into ``history`` ``(R, 1, channels)``."""
    mask = history.shape[0] - 1
    for i in range(n):
        row = (position + i) & mask
        for c in range(frames.shape[1]):
            history[row, 0, c] = frames[offset + i, c]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class FirResampler:
    """Caller rate -> model rate for the input, model rate -> caller rate for the stems (the "LD" filters).

    Ticks (``periods``): a caller sample lasts ``a`` ticks, a model sample ``b``. Model sample ``m`` falls
    on tick ``m * b`` and needs the caller samples up to ``m * b // a``; caller output ``j`` falls on tick
    ``j * a - pad`` and needs the model-rate stems up to ``(j * a - pad) // b``. Both filters are causal
    and linear-phase, so the chain delays the input by exactly

        centre_in + centre_out + b * model_latency + pad   ticks,

    and ``pad`` (< a) makes that a whole number of caller samples: ``latency_samples``.
    """

    def __init__(self, caller_rate: int, model_rate: int, in_channels: int, out_stems: int, out_channels: int,
                 model_latency: int, hop: int):
        self.caller_rate, self.model_rate = caller_rate, model_rate
        self.in_channels, self.out_stems, self.out_channels = in_channels, out_stems, out_channels
        self.a, self.b = periods(caller_rate, model_rate)
        self.hop = hop
        self.table_in, centre_in = design(self.a, self.b)  # caller -> model: inputs every a ticks
        self.table_out, centre_out = design(self.b, self.a)
        delay = centre_in + centre_out + self.b * model_latency
        self.pad = -delay % self.a
        self.latency_samples = (delay + self.pad) // self.a
        self.extra_model_delay = 0
        self.underruns = 0
        self.piece_model = _ceil_div(self.a * PIECE, self.b) + 1  # model frames one piece can make
        self.history_in = ring(self.table_in.shape[1] + PIECE + 1, 1, in_channels)
        self.history_out = ring(self.table_out.shape[1] + self.piece_model + 2 * hop + 64, out_stems, out_channels)
        self.model_in = np.zeros((1, self.piece_model, in_channels), np.float32)
        self.model_out = np.zeros((out_stems, max(self.piece_model, hop + 1), out_channels), np.float32)
        self.reset()
        # Compile (or load) the kernels for exactly these array types now, not on the first block.
        store_input(self.history_in, np.zeros((0, in_channels), np.float32), 0, 0, 0)
        fir(self.history_in, self.table_in, self.a, self.b, 0, 0, 0, self.model_in, 0)
        store(self.history_out, self.model_out, 0, 0)
        fir(self.history_out, self.table_out, self.b, self.a, -self.pad, 0, 0,
            np.zeros((out_stems, 0, out_channels), np.float32), 0)

    def reset(self) -> None:
        self.history_in[:] = 0.0
        self.history_out[:] = 0.0
        self.pushed = 0  # caller frames in
        self.made = 0  # model frames made from them (and separated)

    def _model_available(self, pushed: int) -> int:
        """Model frames computable from ``pushed`` caller frames: those with ``m * b // a < pushed``."""
        return _ceil_div(self.a * pushed, self.b)

    def _caller_ready(self, model_frames: int) -> int:
        """Caller outputs computable from ``model_frames`` model-rate stems: ``(j * a - pad) // b < model_frames``."""
        return _ceil_div(self.b * model_frames + self.pad, self.a)

    def process(self, frames: np.ndarray, out: np.ndarray, stream, stats) -> None:
        """Caller-rate ``frames`` ``(n, channels)`` (finite float32) through the model-rate ``stream`` into
        ``out[:, :n]``: exactly the next ``n`` caller-rate stem frames."""
        n, done = len(frames), 0
        while done < n:
            k = min(PIECE, n - done)
            store_input(self.history_in, frames, done, k, self.pushed)
            first_out = self.pushed
            self.pushed += k
            m = self._model_available(self.pushed) - self.made
            fir(self.history_in, self.table_in, self.a, self.b, 0, self.made, m, self.model_in, 0)
            stream.process(self.model_in[0, :m], self.model_out, stats)
            store(self.history_out, self.model_out, m, self.made)
            self.made += m
            fir(self.history_out, self.table_out, self.b, self.a, -self.pad, first_out, k, out, done)
            done += k

    def ready_after(self, position: int, model_ready) -> int:
        """Caller outputs final once ``position`` caller frames are in, given the model stream's
        ``model_ready(model frames in)``."""
        return max(position, self._caller_ready(model_ready(self._model_available(position))))

    def ready_period(self) -> int:
        """Caller frames after which ``ready_after(p) - p`` repeats: the model-rate hop pattern in caller samples."""
        return self.b * self.hop // math.gcd(self.a, self.hop)

    def ahead(self, stream, skip: int, out: np.ndarray) -> None:
        """Caller-rate stems ``[pushed + skip, pushed + skip + out.shape[1])``, already final: the model stream's
        final frames beyond those it returned go into the output history (the next ``process`` writes the same
        values there again) and the output filter runs on them."""
        extra = stream.ready() - stream.position
        if extra > 0:
            stream.peek(self.model_out, extra)
            store(self.history_out, self.model_out, extra, self.made)
        fir(self.history_out, self.table_out, self.b, self.a, -self.pad, self.pushed + skip, out.shape[1], out, 0)


def make_resampler(caller_rate: int, model_rate: int, channels: int, stems: int, model_latency: int, hop: int,
                   quality: str):
    """The resampler ``quality`` names for this rate pair (LD falls back to soxr's "LQ" for exotic pairs)."""
    if quality == LOW_DELAY and fir_supported(caller_rate, model_rate):
        return FirResampler(caller_rate, model_rate, channels, stems, channels, model_latency, hop)
    recipe = "LQ" if quality == LOW_DELAY else quality
    return SoxrResampler(caller_rate, model_rate, channels, stems, channels, model_latency, recipe)
