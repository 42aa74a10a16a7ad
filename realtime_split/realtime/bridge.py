"""``RealtimeBridge``: connects an audio callback to a StreamingSeparator without ever making the callback wait.

The audio callback (a PortAudio thread) only copies: input into ``in_ring``, mixed stems out of
``out_ring``, and optionally what it played into ``rec_ring`` for a file writer. A worker thread
runs ``StreamingSeparator.process`` on ``chunk``-sized pieces (one hop at the stream rate) and
writes the summed stems into ``out_ring``. The rings are preallocated numpy arrays indexed by
monotonically increasing int64 counters, each counter written by exactly one side
(single-producer/single-consumer).

The callback is not Python (realtime/callbacks.py); its kernels are in realtime/kernels.py, the
slots of the arrays it shares with the threads here in realtime/slots.py.

Timeline (stream-rate samples). Output position ``q`` plays the separated input ``q - buffers``
(which the separator itself delays by ``latency_samples``), so the whole chain delays by
``separator.latency_samples + buffers`` where, for live input,

    buffers = ceil(chunk / blocksize) * blocksize + chunk - gcd(blocksize, chunk) + fade

A chunk is complete up to ``blocksize - gcd`` samples after a block boundary, and the worker then
gets ``ceil(chunk / blocksize)`` whole block periods, at least one hop of real time, to separate
it: an inference load below 100 % of the hop budget meets every deadline. ``fade`` more samples
guarantee that when the worker is late, the separated samples for a full fade-out are already
there. File playback has ``buffers = 0``: its worker runs ahead of the callback instead.

A missed deadline (the worker has not delivered the samples this block needs) never blocks:
the callback fades, over ``fade`` samples, to the dry input read from ``in_ring`` with the same
delay (the input ring doubles as the dry delay line), and fades back once the worker has
caught up. A worker that falls further behind than one batched call can absorb (``max_chunks``
chunks) skips to the present (``sep.reset()``), and the output stays dry until the separator has
warmed up again. Every missed block, xrun and skip is counted in ``counters``; the status thread
reads them. Counters are plain int64 stores, published after the data they cover (the compiled
callback puts a release fence in between; the readers rely on x86 keeping loads in order).

Waking the worker: it polls with a short sleep rather than waiting on a ``threading.Event``,
because ``Event.set()`` is Python and takes the event's internal lock, neither of which belongs
on the audio thread; a sleep of a quarter block costs a few hundred wake-ups per second and
never touches the audio thread.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from ..rings import ring_size
from .callbacks import stream_callback
from .kernels import mix_stems, read_ring, write_ring
from .memory import resident_zeros
from .priority import raise_priority
from .slots import (
    DRY_GAIN,
    END,
    FRAMES,
    IN_PEAK,
    IN_WRITTEN,
    N_COUNTERS,
    N_FSTATE,
    N_TABLE,
    PA_INPUT_OVERFLOW,
    PA_INPUT_UNDERFLOW,
    PA_OUTPUT_OVERFLOW,
    PA_OUTPUT_UNDERFLOW,
    PROCESSED,
    REC_WRITTEN,
    SKIPS,
    T_BUFFERS,
    T_CAPTURE,
    T_COUNTERS,
    T_FADE,
    T_FSTATE,
    T_IN_CHANNELS,
    T_IN_FRAMES,
    T_IN_RING,
    T_LATENCY,
    T_OUT_CHANNELS,
    T_OUT_FRAMES,
    T_OUT_RING,
    T_REC_FRAMES,
    T_REC_RING,
    WET,
    WET_FROM,
    XRUNS,
)

LOAD_BIN = 0.005    # load histogram resolution (0.5 % of the chunk's real-time budget)
LOAD_BINS = 2000    # up to 10x real time; slower chunks land in the last bin


MIN_RING = 4096  # frames: the smallest ring the bridge makes



class RealtimeBridge:
    """Preallocated rings, counters, the worker thread and the two audio callbacks.

    ``separator``: a StreamingSeparator at the stream's sample rate. ``live_input``: True when
    the callback captures the input (duplex stream), False when a reader thread feeds it with
    ``write_input`` (file playback). ``dry_gain``: level of the dry fallback (the loudest
    selected stem's gain, so a miss never plays louder than full separation would).
    """

    def __init__(self, separator, samplerate: int, blocksize: int, out_channels: int, *,
                 live_input: bool, dry_gain: float = 1.0, record: bool = False,
                 fade_seconds: float = 0.0015, max_chunks: int = 16):
        self.sep = separator
        self.live_input = live_input
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize)
        self.in_channels = separator.channels
        self.out_channels = int(out_channels)
        geometry = separator.geometry
        self.chunk = max(1, round(geometry.hop * self.samplerate / separator.model_sample_rate))
        self.fade = max(16, round(fade_seconds * self.samplerate))
        self.latency = int(separator.latency_samples)
        if live_input:
            budget = -(-self.chunk // self.blocksize) * self.blocksize  # whole blocks, at least one hop
            self.buffers = budget + self.chunk - math.gcd(self.blocksize, self.chunk) + self.fade
        else:
            self.buffers = 0
        self.max_chunks = max_chunks
        span = self.buffers + self.latency + self.blocksize + self.chunk * max_chunks + self.fade
        # File playback reads ahead; half a second keeps it robust against a slow disk or a busy CPU.
        size = ring_size(max(MIN_RING, 4 * span, self.samplerate if live_input else self.samplerate // 2 + span))
        self.in_ring = resident_zeros((size, self.in_channels))
        self.out_ring = resident_zeros((size, self.out_channels))
        self.rec_ring = resident_zeros((ring_size(4 * self.samplerate), self.out_channels)) if record else None
        self.counters = np.zeros(N_COUNTERS, np.int64)
        self.counters[END] = -1
        self.fstate = np.zeros(N_FSTATE, np.float64)
        self.fstate[WET] = 1.0
        self.fstate[DRY_GAIN] = dry_gain
        self.stem_peaks = np.zeros(len(separator.stems), np.float64)
        self.load_histogram = np.zeros(LOAD_BINS, np.int64)
        self.last_load = 0.0
        self.record_lost = 0  # frames the recording writer fell too far behind to save
        self._rec_read = 0
        self.error: BaseException | None = None
        self.realtime_priority = False  # whether the worker got real-time scheduling
        self.input_done = False  # set by the file reader after its last write_input
        self._running = False
        self._thread: threading.Thread | None = None
        self._in_block = np.zeros((self.chunk * max_chunks, self.in_channels), np.float32)
        self._outs: dict[int, np.ndarray] = {}
        self.table = np.zeros(N_TABLE, np.int64)  # stream_callback's user data (see T_IN_RING)
        self.table[[T_IN_RING, T_IN_FRAMES, T_IN_CHANNELS]] = self.in_ring.ctypes.data, *self.in_ring.shape
        self.table[[T_OUT_RING, T_OUT_FRAMES, T_OUT_CHANNELS]] = self.out_ring.ctypes.data, *self.out_ring.shape
        if self.rec_ring is not None:
            self.table[[T_REC_RING, T_REC_FRAMES]] = self.rec_ring.ctypes.data, len(self.rec_ring)
        self.table[[T_COUNTERS, T_FSTATE]] = self.counters.ctypes.data, self.fstate.ctypes.data
        self.table[[T_BUFFERS, T_LATENCY, T_FADE, T_CAPTURE]] = self.buffers, self.latency, self.fade, live_input
        self._warm_up()

    # ----------------------------------------------------------------- audio callback
    def open_stream(self, sd, device=None, latency=None):
        """A sounddevice stream whose PortAudio callback is ``stream_callback`` itself, with no Python in
        between: duplex for live input, output only for file playback. ``sd._StreamBase`` is sounddevice's
        documented way to take a C function pointer (python-rtmixer uses it the same way)."""
        channels = (self.in_channels, self.out_channels) if self.live_input else self.out_channels
        return sd._StreamBase("duplex" if self.live_input else "output", samplerate=self.samplerate,
                              blocksize=self.blocksize, device=device, channels=channels, dtype="float32",
                              latency=latency, callback=sd._ffi.cast("PaStreamCallback *", stream_callback.address),
                              userdata=sd._ffi.cast("void *", self.table.ctypes.data))

    def duplex_callback(self):
        """The compiled callback wrapped as a ``sounddevice.Stream`` Python callback, for an app that
        processes the output further in its own callback (examples/karaoke_monitor.py) and for tests
        that drive it block by block."""
        call, table = stream_callback.ctypes, self.table.ctypes.data

        def callback(indata, outdata, frames, time_info, status):
            _check_block(indata, frames, self.in_channels)
            _check_block(outdata, frames, self.out_channels)
            call(indata.ctypes.data, outdata.ctypes.data, frames, None, _status_bits(status), table)

        return callback

    def output_callback(self):
        """Like ``duplex_callback`` for a ``sounddevice.OutputStream`` (file playback)."""
        call, table = stream_callback.ctypes, self.table.ctypes.data

        def callback(outdata, frames, time_info, status):
            _check_block(outdata, frames, self.out_channels)
            call(None, outdata.ctypes.data, frames, None, _status_bits(status), table)

        return callback

    # ----------------------------------------------------------------- file playback input
    def input_space(self) -> int:
        """Frames ``write_input`` may add now without overwriting input the worker or the dry
        fallback still needs."""
        c = self.counters
        oldest_needed = min(c[PROCESSED], c[FRAMES] - self.buffers - self.latency)
        return max(0, oldest_needed + len(self.in_ring) - self.blocksize - self.fade - c[IN_WRITTEN])

    def write_input(self, block: np.ndarray) -> None:
        """Append input frames (file playback); call only when ``input_space()`` allows it."""
        start = self.counters[IN_WRITTEN]
        write_ring(self.in_ring, block, start, self.counters, self.fstate)
        self.counters[IN_WRITTEN] = start + len(block)

    # ----------------------------------------------------------------- recording
    def drain_recording(self, write) -> int:
        """Hand everything the callback played since the last call to ``write`` (the writer thread;
        ``write`` gets views into the ring). Returns the number of frames handed over."""
        ring = self.rec_ring
        if ring is None:
            raise RuntimeError("drain_recording: this bridge was made without record=True")
        size = len(ring)
        end = int(self.counters[REC_WRITTEN])
        oldest_safe = end - (size - self.blocksize)  # the callback may be overwriting anything older
        if self._rec_read < oldest_safe:
            self.record_lost += oldest_safe - self._rec_read
            self._rec_read = oldest_safe
        start = self._rec_read
        while self._rec_read < end:
            j = self._rec_read & (size - 1)
            n = min(end - self._rec_read, size - j)
            write(ring[j:j + n])
            self._rec_read += n
        return end - start

    def buffered(self) -> int:
        """Separated frames ready ahead of playback."""
        return int(self.buffers + self.counters[PROCESSED] - self.counters[FRAMES])

    @property
    def finished(self) -> bool:
        """File playback has played everything, the separator's tail included."""
        end = self.counters[END]
        return end >= 0 and self.counters[FRAMES] >= end

    # ----------------------------------------------------------------- worker
    def _warm_up(self) -> None:
        """Run the separator and the worker's kernels once before the stream starts: the first ONNX
        Runtime run and numba's first calls are slow, and must not be the first deadline. (The
        callback itself was compiled, or loaded from numba's cache, when this module was imported.)"""
        zeros = np.zeros((self.chunk * 2, self.in_channels), np.float32)
        self.sep.process(zeros)
        self.sep.reset()
        dummy = np.zeros((0, self.in_channels), np.float32)
        write_ring(self.in_ring, dummy, 0, self.counters, self.fstate)
        read_ring(self.in_ring, 0, dummy)
        mix_stems(np.zeros((len(self.sep.stems), 0, self.in_channels), np.float32), self.out_ring, 0,
                  np.zeros(len(self.sep.stems)))

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._work, name="realtime-split-separation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _out(self, n: int) -> np.ndarray:
        out = self._outs.get(n)
        if out is None:
            out = self._outs[n] = np.zeros((len(self.sep.stems), n, self.in_channels), np.float32)
        return out

    def _work(self) -> None:
        try:
            self.realtime_priority = raise_priority()
            poll = max(0.0002, 0.25 * min(self.blocksize, self.chunk) / self.samplerate)
            while self._running:
                if not self.step():
                    time.sleep(poll)
        except BaseException as exc:  # reported by the main thread, which stops the stream
            self.error = exc

    def step(self) -> bool:
        """One unit of the worker's work: separate what is ready (or skip ahead when fallen behind,
        or finish file playback). False when there was nothing to do. The worker thread calls it
        in a loop; a caller that schedules the work itself (a test, a single-threaded host) may
        call it instead of ``start()``."""
        c = self.counters
        chunk = self.chunk
        if c[END] >= 0:
            return False
        input_done = self.input_done  # read before IN_WRITTEN: the reader sets it after its last write
        done = int(c[PROCESSED])
        played = int(c[FRAMES])
        if played - (self.buffers + done) >= chunk * self.max_chunks:
            self._skip_to(played)
            return True
        available = int(c[IN_WRITTEN]) - done
        room = played + len(self.out_ring) - self.blocksize - self.fade - (self.buffers + done)
        n = min(available, room, chunk * self.max_chunks) // chunk * chunk
        if n <= 0:
            if input_done and available < chunk and room >= available + self.latency:
                self._finish(done, available)
                return True
            return False
        self._separate(done, n)
        return True

    def _separate(self, done: int, n: int) -> None:
        block = self._in_block[:n]
        read_ring(self.in_ring, done, block)
        t0 = time.perf_counter()
        stems = self.sep.process(block, out=self._out(n))
        elapsed = time.perf_counter() - t0
        mix_stems(stems, self.out_ring, self.buffers + done, self.stem_peaks)
        self.counters[PROCESSED] = done + n
        self._record_load(elapsed * self.samplerate / n)

    def _finish(self, done: int, rest: int) -> None:
        """File playback: separate the last partial chunk and the separator's tail, then mark the end."""
        if rest > 0:
            self._separate(done, rest)
        tail = self.sep.flush()
        done = int(self.counters[PROCESSED])
        mix_stems(tail, self.out_ring, self.buffers + done, self.stem_peaks)
        # The tail counts as separated input (the separator flushed it with silence) and ends playback.
        self.counters[PROCESSED] = done + tail.shape[1]
        self.counters[END] = self.buffers + done + tail.shape[1]

    def _skip_to(self, played: int) -> None:
        """Fallen more than one batched call behind: drop the stale input and restart the separator at
        the present. A shorter backlog is caught up instead (batched, so faster than real time), which
        keeps the separator's context and resumes separation sooner than a restart's warm-up would."""
        chunk = self.chunk
        target = -(-max(int(self.counters[PROCESSED]), played - self.buffers) // chunk) * chunk
        self.sep.reset()
        self.counters[WET_FROM] = self.buffers + target + self.latency
        self.counters[PROCESSED] = target
        self.counters[SKIPS] += 1

    def _record_load(self, load: float) -> None:
        self.last_load = load
        self.load_histogram[min(int(load / LOAD_BIN), LOAD_BINS - 1)] += 1

    # ----------------------------------------------------------------- readings for status/summary
    def load_percentile(self, q: float) -> float | None:
        """Share of the real-time budget one chunk's separation took, at percentile ``q`` (0-100)."""
        total = int(self.load_histogram.sum())
        if total == 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * total))
        index = int(np.searchsorted(np.cumsum(self.load_histogram), rank))
        return (index + 1) * LOAD_BIN

    def take_peaks(self) -> tuple[float, np.ndarray]:
        """(input peak, per-stem peaks) since the last call; resetting races with the writers only
        by losing one block's peak, which a meter can afford."""
        peak = float(self.fstate[IN_PEAK])
        self.fstate[IN_PEAK] = 0.0
        stems = self.stem_peaks.copy()
        self.stem_peaks[:] = 0.0
        return peak, stems

    @property
    def seconds_played(self) -> float:
        return float(self.counters[FRAMES]) / self.samplerate

    @property
    def xruns(self) -> int:
        """Blocks PortAudio flagged as an under- or overflow."""
        return int(self.counters[XRUNS])



def _check_block(block: np.ndarray, frames: int, channels: int) -> None:
    """The compiled callback reads and writes raw memory: refuse a block it would overrun."""
    if block.dtype != np.float32 or block.shape != (frames, channels) or not block.flags.c_contiguous:
        raise ValueError(f"audio block must be C-contiguous float32 of shape ({frames}, {channels}), "
                         f"got {block.dtype} {block.shape}")


def _status_bits(status) -> int:
    """PortAudio's flag bits of a ``sounddevice.CallbackFlags`` (None: no flags)."""
    if not status:
        return 0
    return (PA_INPUT_UNDERFLOW * status.input_underflow | PA_INPUT_OVERFLOW * status.input_overflow
            | PA_OUTPUT_UNDERFLOW * status.output_underflow | PA_OUTPUT_OVERFLOW * status.output_overflow)
