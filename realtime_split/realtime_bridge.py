"""Connects an audio callback to a StreamingSeparator without ever making the callback wait.

The audio callback (a PortAudio thread) only copies: input into ``in_ring``, mixed stems out of
``out_ring``, and optionally what it played into ``rec_ring`` for a file writer. A worker thread
runs ``StreamingSeparator.process`` on ``chunk``-sized pieces (one hop at the stream rate) and
writes the summed stems into ``out_ring``. The rings are preallocated numpy arrays indexed by
monotonically increasing int64 counters, each counter written by exactly one side
(single-producer/single-consumer).

The callback is not Python: ``stream_callback`` is a numba ``cfunc`` with PortAudio's
``PaStreamCallback`` signature, handed to PortAudio as a C function pointer (``open_stream``). It
never touches the interpreter, so it never waits for the GIL that the worker, the status line or
the writer may hold (a Python callback did, on every block, and that made the JACK process
thread late: see docs/benchmarks.md). It allocates nothing, takes no locks, logs nothing and does
no I/O.

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
import os
import threading
import time

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

# counters[] slots. "callback" slots are written only by the audio callback (or, for IN_WRITTEN
# in file playback, only by the reader thread), "worker" slots only by the worker thread.
FRAMES = 0          # callback: frames played (= frames captured for live input)
IN_WRITTEN = 1      # callback (live) / reader (file): input samples in in_ring
PROCESSED = 2       # worker: input samples separated; out_ring holds output up to buffers + PROCESSED
WET_FROM = 3        # worker: first output position that is separated again after a skip
END = 4             # worker: output position where file playback ends (-1: live, no end)
MISSED = 5          # callback: blocks that missed their deadline (played dry, fully or partly)
INPUT_OVERFLOWS = 6   # callback: PortAudio input overflow flags
OUTPUT_UNDERFLOWS = 7  # callback: PortAudio output underflow flags
NONFINITE = 8       # callback/reader: NaN/Inf input samples replaced by 0
SKIPS = 9           # worker: times the worker skipped ahead after falling max_chunks behind
REC_WRITTEN = 10    # callback: frames copied into rec_ring
XRUNS = 11          # callback: blocks PortAudio flagged with any under- or overflow (JACK flags both kinds at once)
N_COUNTERS = 12

# fstate[] slots (float64): callback-owned mixing state and meters.
WET = 0             # current weight of the separated signal (1) versus the dry fallback (0)
DRY_GAIN = 1        # level of the dry fallback
IN_PEAK = 2         # peak input level since the status thread last reset it
N_FSTATE = 3

# table[] slots (int64): what the compiled callback gets through PortAudio's userData. numba would
# freeze global arrays into the compiled code as constants, so the bridge's arrays reach it as
# addresses and shapes; the bridge keeps the arrays (and the table) alive as long as itself.
T_IN_RING = 0       # address of in_ring
T_IN_FRAMES = 1     # its rows
T_IN_CHANNELS = 2   # its channels (= the stream's input channels)
T_OUT_RING = 3
T_OUT_FRAMES = 4
T_OUT_CHANNELS = 5  # = the stream's output channels (and rec_ring's)
T_REC_RING = 6      # 0: no recording
T_REC_FRAMES = 7
T_COUNTERS = 8
T_FSTATE = 9
T_BUFFERS = 10
T_LATENCY = 11
T_FADE = 12
T_CAPTURE = 13      # 1: duplex stream, the callback captures the input; 0: output only (file playback)
N_TABLE = 14

# PortAudio's PaStreamCallbackFlags and PaStreamCallbackResult (portaudio.h)
PA_INPUT_UNDERFLOW = 0x1
PA_INPUT_OVERFLOW = 0x2
PA_OUTPUT_UNDERFLOW = 0x4
PA_OUTPUT_OVERFLOW = 0x8
PA_CONTINUE = 0

LOAD_BIN = 0.005    # load histogram resolution (0.5 % of the chunk's real-time budget)
LOAD_BINS = 2000    # up to 10x real time; slower chunks land in the last bin


# Kernels the audio callback runs use error_model="numpy": a division or modulo by zero gives
# inf/0 instead of a Python exception, so no path in the callback needs the interpreter.
@njit(cache=True, nogil=True, error_model="numpy")
def _source(ring, pos, c, in_ch, out_ch):
    """Sample of output channel ``c`` from a ring frame with ``in_ch`` channels (mono<->stereo)."""
    if in_ch == out_ch:
        return ring[pos, c]
    if in_ch == 1:
        return ring[pos, 0]
    return 0.5 * (ring[pos, 0] + ring[pos, 1])


@njit(cache=True, nogil=True, error_model="numpy")
def write_ring(ring, block, start, counters, fstate):
    """Copy ``block`` into ``ring`` at stream position ``start``, zeroing and counting NaN/Inf,
    tracking the input peak. The caller publishes the new write counter afterwards."""
    size = ring.shape[0]
    peak = fstate[IN_PEAK]
    bad = 0
    for i in range(block.shape[0]):
        j = (start + i) % size
        for c in range(block.shape[1]):
            x = block[i, c]
            if not np.isfinite(x):
                x = 0.0
                bad += 1
            ring[j, c] = x
            a = abs(x)
            if a > peak:
                peak = a
    fstate[IN_PEAK] = peak
    counters[NONFINITE] += bad


@njit(cache=True, nogil=True, error_model="numpy")
def store_ring(ring, block, start):
    """Copy ``block`` into ``ring`` at stream position ``start`` as it is."""
    size = ring.shape[0]
    for i in range(block.shape[0]):
        j = (start + i) % size
        for c in range(block.shape[1]):
            ring[j, c] = block[i, c]


@njit(cache=True, nogil=True)
def read_ring(ring, start, out):
    """Copy ``len(out)`` frames from ``ring`` starting at stream position ``start`` into ``out``."""
    size = ring.shape[0]
    for i in range(out.shape[0]):
        j = (start + i) % size
        for c in range(out.shape[1]):
            out[i, c] = ring[j, c]


@njit(cache=True, nogil=True, error_model="numpy")
def render(outdata, start, in_ring, out_ring, counters, fstate, buffers, latency, fade):
    """Fill ``outdata`` for output positions ``[start, start + frames)``: separated output when the
    worker delivered it (with ``fade`` samples of margin), else the dry input delayed identically,
    crossfading linearly between the two. Counts the block as missed when it is not fully separated."""
    frames = outdata.shape[0]
    out_ch = outdata.shape[1]
    in_ch = in_ring.shape[1]
    in_size = in_ring.shape[0]
    out_size = out_ring.shape[0]
    written = buffers + counters[PROCESSED]
    end = counters[END]
    need = start + frames + fade
    if end >= 0 and need > end:
        need = end
    ok = written >= need and start >= counters[WET_FROM]
    if not ok and (end < 0 or start < end):
        counters[MISSED] += 1
    w = fstate[WET]
    dry_gain = fstate[DRY_GAIN]
    step = 1.0 / fade
    for i in range(frames):
        q = start + i
        if ok:
            w = min(1.0, w + step)
        else:
            w = max(0.0, w - step)
        d = q - buffers - latency  # input position heard at q
        for c in range(out_ch):
            if end >= 0 and q >= end:
                outdata[i, c] = 0.0
                continue
            dry = dry_gain * _source(in_ring, d % in_size, c, in_ch, out_ch) if d >= 0 else 0.0
            if w > 0.0:
                outdata[i, c] = w * out_ring[q % out_size, c] + (1.0 - w) * dry
            else:
                outdata[i, c] = dry
    fstate[WET] = w


@njit(cache=True, nogil=True)
def mix_stems(stems, out_ring, start, peaks):
    """Sum separated ``stems`` (n_stems, n, ch) into ``out_ring`` at output position ``start``,
    mapping channels, and raise each stem's running peak."""
    size = out_ring.shape[0]
    n_stems, n, in_ch = stems.shape
    out_ch = out_ring.shape[1]
    for s in range(n_stems):
        peak = peaks[s]
        for i in range(n):
            for c in range(in_ch):
                a = abs(stems[s, i, c])
                if a > peak:
                    peak = a
        peaks[s] = peak
    for i in range(n):
        j = (start + i) % size
        for c in range(out_ch):
            acc = 0.0
            for s in range(n_stems):
                acc += _source(stems[s], i, c, in_ch, out_ch)
            out_ring[j, c] = acc


@intrinsic
def _address(typingctx, value):
    """The int64 ``value`` (an address from the table) as a ``void *`` that ``carray`` accepts."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(types.int64), codegen


@intrinsic
def _release_fence(typingctx):
    """Memory writes before it become visible before stores after it: ring data before the counters
    that publish it, whatever the compiler or the CPU would reorder."""
    def codegen(context, builder, signature, args):
        builder.fence("release")
        return context.get_dummy_value()
    return types.none(), codegen


@njit(cache=True, nogil=True, error_model="numpy")
def _count_status(flags, counters):
    if flags & PA_INPUT_OVERFLOW:
        counters[INPUT_OVERFLOWS] += 1
    if flags & PA_OUTPUT_UNDERFLOW:
        counters[OUTPUT_UNDERFLOWS] += 1
    if flags & (PA_INPUT_UNDERFLOW | PA_INPUT_OVERFLOW | PA_OUTPUT_UNDERFLOW | PA_OUTPUT_OVERFLOW):
        counters[XRUNS] += 1


PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)


@cfunc(PA_STREAM_CALLBACK, cache=True, error_model="numpy")
def stream_callback(input_, output, frame_count, time_info, status_flags, user_data):
    """PortAudio's ``PaStreamCallback`` (float32 interleaved buffers; ``user_data``: the bridge's
    table): capture into ``in_ring`` (duplex), render from ``out_ring``, copy what it played into
    ``rec_ring``, then publish the counters. Compiled C: no GIL, no allocation (``carray`` only
    wraps existing memory), and ``error_model="numpy"`` leaves no Python exception to raise."""
    t = carray(user_data, N_TABLE, np.int64)
    frames = np.int64(frame_count)
    counters = carray(_address(t[T_COUNTERS]), N_COUNTERS, np.int64)
    fstate = carray(_address(t[T_FSTATE]), N_FSTATE, np.float64)
    in_ring = carray(_address(t[T_IN_RING]), (t[T_IN_FRAMES], t[T_IN_CHANNELS]), np.float32)
    out_ring = carray(_address(t[T_OUT_RING]), (t[T_OUT_FRAMES], t[T_OUT_CHANNELS]), np.float32)
    outdata = carray(output, (frames, t[T_OUT_CHANNELS]), np.float32)
    _count_status(np.int64(status_flags), counters)
    start = counters[FRAMES]
    if t[T_CAPTURE] != 0:
        write_ring(in_ring, carray(input_, (frames, t[T_IN_CHANNELS]), np.float32), start, counters, fstate)
    render(outdata, start, in_ring, out_ring, counters, fstate, t[T_BUFFERS], t[T_LATENCY], t[T_FADE])
    if t[T_REC_RING] != 0:
        rec_ring = carray(_address(t[T_REC_RING]), (t[T_REC_FRAMES], t[T_OUT_CHANNELS]), np.float32)
        store_ring(rec_ring, outdata, counters[REC_WRITTEN])
    _release_fence()
    if t[T_CAPTURE] != 0:
        counters[IN_WRITTEN] = start + frames
    if t[T_REC_RING] != 0:
        counters[REC_WRITTEN] += frames
    counters[FRAMES] = start + frames
    return PA_CONTINUE


def resident_zeros(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Zeros whose memory pages are already mapped, for buffers an audio callback writes.

    ``np.zeros`` maps pages lazily, so the callback's first write to each page would
    page-fault into the kernel; numpy also asks for 2 MB transparent huge pages on big
    arrays, and zeroing one of those on the audio thread costs an xrun. Writing every
    page once here moves those faults to setup time.
    """
    array = np.zeros(shape, dtype)
    array.fill(0)
    return array


def _ring_size(frames: int) -> int:
    return 1 << max(12, math.ceil(math.log2(max(frames, 1))))


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
        size = _ring_size(max(4 * span, self.samplerate if live_input else self.samplerate // 2 + span))
        self.in_ring = resident_zeros((size, self.in_channels))
        self.out_ring = resident_zeros((size, self.out_channels))
        self.rec_ring = resident_zeros((_ring_size(4 * self.samplerate), self.out_channels)) if record else None
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
            j = self._rec_read % size
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
            self.realtime_priority = _raise_priority()
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


def _raise_priority() -> bool:
    """Put the calling (worker) thread in the lowest real-time class where the system allows it
    (root, or an rtprio limit as audio users have): above every ordinary process, still below the
    audio threads of PortAudio and JACK. On a loaded machine this is what keeps inference on time
    (measured: p99 of one run 5 ms instead of 13-67 ms next to a CPU hog). Not on a single CPU,
    where an overloaded worker would starve everything else; there, and where it is not allowed,
    the worker keeps normal scheduling."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if cpus < 2:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    return True


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
