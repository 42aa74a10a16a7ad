"""``RealtimeBridge``: connects an audio callback to a StreamingSeparator without ever making the callback wait.

The audio callback (PortAudio's or JACK's thread) only copies: input into ``in_ring``, separated
output out of ``out_ring``, and optionally what it played into ``rec_ring`` for a file writer. A
worker thread feeds the input to ``StreamingSeparator.process`` as it arrives and writes the stems
into ``out_ring``, one output per stem; the callback mixes them (or plays each on its own JACK ports) at
the amplitudes of a small parameter block that control threads write (``set_mix``): the mixer, whose
changes are heard from the callback's next block on, ramped over ``RAMP_SECONDS``. The rings are
preallocated and follow rings.py; their positions are published through int64 counters, each
written by exactly one side (single-producer/single-consumer). The callback is not Python
(callbacks.py); its kernels are in kernels.py, the slots of the arrays it shares with the threads
here in slots.py. The slot numbers stay in this folder: the session reads the counters under their
names (``stats()``, ``levels()``) and the JACK client hands over its ports (``jack_callback``).

The delay (stream-rate samples). Output position ``q`` plays the separated input ``q - buffers``,
which the separator itself delays by ``latency_samples``, so the chain delays by
``separator.latency_samples + buffers``. ``buffers`` follows from the worker's time budget:

- The separator runs its model once per hop on the input up to a hop boundary, and that run
  finishes the output for the hop *after* the boundary as well (``StreamingSeparator.ready_after``):
  output that ``process`` returns only as the following input arrives is final as soon as the
  boundary's input is in. The worker writes it into ``out_ring`` at once (``ahead``).
- So with blocks aligned to the hop, the block that completes a hop's input arrives one period
  before the first block that plays output needing that hop's run: a worker that finishes within one
  period adds nothing to the separator's own latency. Each further period of budget adds a period.
- ``budget_blocks`` (``W``) is how many periods the worker may take for the input of one callback;
  ``buffers`` is then the smallest delay at which every block's output is final ``W`` callbacks after
  the input it needs arrived, plus ``fade``:

      buffers = max over blocks j of ((j + W) * blocksize + fade - ready_after(j * blocksize))

  which is ``(W - 1) * blocksize + fade`` when the hop is a multiple of the block (44.1 kHz), and up to
  a block more when the hop's boundaries fall inside blocks (48 kHz: the model's hop is not a whole
  number of device samples, so some hops complete just after a block began and wait for its end).
  ``fade`` more samples guarantee that when the worker is late, the separated samples for a full
  fade-out are already there. The default budget is ``INFERENCE_BUDGET`` seconds rounded up to whole
  blocks (docs/architecture.md has the figures).

File playback has ``buffers = 0``: its worker runs ahead of the callback instead.

A missed deadline (the worker has not delivered the samples this block needs) never blocks: the
callback fades, over ``fade`` samples, to the dry input read from ``in_ring`` with the same delay (the
input ring doubles as the dry delay line) at the level the mix gives it, and fades back once
the worker has caught up. A worker that falls further behind than one batched call can absorb
(``max_chunks`` hops) skips to the present (``sep.reset()``), and the output stays dry until the
separator has warmed up again. Every missed block, xrun and skip is counted in ``counters``; the
status thread reads them. Counters are plain int64 stores, published after the data they cover (the
compiled callback puts a release fence in between; the readers rely on x86 keeping loads in order).

The operating system's part: the buffers the callback writes are mapped before it runs
(``resident_zeros``), and the worker asks for the lowest real-time scheduling class (``raise_priority``).

Waking the worker: it polls with a short sleep rather than waiting on a ``threading.Event``, because
``Event.set()`` is Python and takes the event's internal lock, neither of which belongs on the audio
thread; a sleep of a quarter block costs a few hundred wake-ups per second and never touches the
audio thread.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from ..rings import ring_size
from .callbacks import jack_process, stream_callback
from .kernels import read_ring, write_outputs, write_ring
from .readings import Latency, Levels, LiveStats
from .slots import (
    END,
    FRAMES,
    IN_PEAK,
    IN_WRITTEN,
    INPUT_OVERFLOWS,
    JACK_XRUNS,
    LATE_CYCLES,
    LONGEST_CYCLE,
    MIDI_WRITTEN,
    MISSED,
    MIX_AT,
    MIX_SEEN,
    MIX_TIME,
    MIX_VERSION,
    N_COUNTERS,
    N_FSTATE,
    N_TABLE,
    NONFINITE,
    OUTPUT_UNDERFLOWS,
    PA_INPUT_OVERFLOW,
    PA_INPUT_UNDERFLOW,
    PA_OUTPUT_OVERFLOW,
    PA_OUTPUT_UNDERFLOW,
    PERIOD_CHANGES,
    PROCESSED,
    READY,
    REC_WRITTEN,
    SKIPS,
    T_BUFFERS,
    T_CAPTURE,
    T_CLIENT,
    T_COUNTERS,
    T_DRY_PORTS,
    T_FADE,
    T_FRAME_TIME,
    T_FSTATE,
    T_GAINS,
    T_GET_BUFFER,
    T_GET_TIME,
    T_IN_CHANNELS,
    T_IN_FRAMES,
    T_IN_PORTS,
    T_IN_RING,
    T_LATENCY,
    T_MIDI_COUNT,
    T_MIDI_EVENT,
    T_MIDI_GET,
    T_MIDI_PORT,
    T_MIDI_RING,
    T_MIDI_ROWS,
    T_MIX_STATE,
    T_MIX_TARGETS,
    T_MIXED,
    T_OUT_CHANNELS,
    T_OUT_FRAMES,
    T_OUT_PAIRS,
    T_OUT_PORTS,
    T_OUT_RING,
    T_OUTPUTS,
    T_PERIOD,
    T_PERIOD_US,
    T_RAMP,
    T_REC_FRAMES,
    T_REC_RING,
    T_WEIGHT_FRAMES,
    T_WEIGHTS,
    WET,
    WET_FROM,
    XRUNS,
)

LOAD_BIN = 0.005    # load histogram resolution (0.5 % of a hop's real-time budget)
LOAD_BINS = 2000    # up to 10x real time; slower hops land in the last bin
MIN_RING = 4096     # frames: the smallest ring the bridge makes
MAX_CALLBACK_FRAMES = 8192  # the callback's scratch (JACK's largest period); longer blocks go in pieces
# The worker's time for a callback's input: a hop's inference on one thread here takes 2.9 / 4.4 ms at p50 / p99
# at balanced and about as long at low (docs/benchmarks.md), so 8 ms leaves 3.6 ms for a loaded machine. Rounded
# up to whole blocks: 2 at 256 frames (11.6 ms), 3 at 128 (8.7 ms), 1 at 512 and above.
INFERENCE_BUDGET = 0.008
# A mix change ramps each stem's amplitude in a straight line over 5 ms: a step in gain is a click, and a ramp
# shorter than a couple of milliseconds still thumps on bass; 5 ms puts the ramp's own spectrum below about
# 200 Hz and finishes within one 256-frame period at 44.1 kHz (5.8 ms), so a change still feels immediate.
RAMP_SECONDS = 0.005
MIDI_ROWS = 1024  # MIDI messages the callback holds for the session's MIDI thread (read every millisecond)
MAX_PATTERN_BLOCKS = 200_000  # ready_after's pattern is simulated over this many blocks at most


def resident_zeros(shape: tuple[int, ...] | int, dtype=np.float32) -> np.ndarray:
    """Zeros whose memory pages are already mapped, for buffers an audio callback writes.

    ``np.zeros`` maps pages lazily, so the callback's first write to each page would
    page-fault into the kernel; numpy also asks for 2 MB transparent huge pages on big
    arrays, and zeroing one of those on the audio thread costs an xrun. Writing every
    page once here moves those faults to setup time.
    """
    array = np.zeros(shape, dtype)
    array.fill(0)
    return array


def raise_priority() -> bool:
    """Put the calling (worker) thread in the lowest real-time class where the system allows it
    (root, or an rtprio limit as audio users have): above every ordinary process, still below the
    audio threads of PortAudio and JACK. On a loaded machine this is what keeps inference on time
    (measured: p99 of one run 5 ms instead of 13-67 ms next to a CPU hog). Not on a single CPU,
    where an overloaded worker would starve everything else; there, and where it is not allowed,
    the worker keeps normal scheduling. Returns whether it got real-time scheduling."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if cpus < 2:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    return True


def stream_hop(separator) -> int:
    """The model's hop in samples of the separator's (the stream's) rate: the worker's unit of work, and the
    block a live session uses when none is given."""
    return max(1, round(separator.geometry.hop * separator.sample_rate / separator.model_sample_rate))


def budget_blocks(seconds: float, samplerate: int, blocksize: int) -> int:
    """Whole blocks that cover ``seconds`` of inference time (at least one)."""
    return max(1, math.ceil(seconds * samplerate / blocksize - 1e-9))


def live_buffers(separator, blocksize: int, budget: int, fade: int) -> int:
    """The smallest ``buffers`` at which every block's output is final ``budget`` callbacks after the input it
    needs arrived, plus ``fade`` (see the module's docstring). ``separator.ready_after`` repeats with
    ``separator.ready_period()``, so one period of its pattern against the blocks covers every case."""
    period = math.lcm(blocksize, separator.ready_period())
    blocks = period // blocksize + budget + 1
    if blocks > MAX_PATTERN_BLOCKS:  # an exotic rate pair: nothing early, the bound that needs no pattern
        return budget * blocksize + fade
    worst = max((j + budget) * blocksize - separator.ready_after(j * blocksize) for j in range(blocks))
    return max(0, worst) + fade


class _NativeRate:
    """``ready_after`` of a separator at its model's own rate, from the geometry alone (no model loaded)."""

    def __init__(self, geometry):
        self.hop, self.extra = geometry.hop, 0

    def ready_after(self, position: int) -> int:
        return position // self.hop * self.hop + self.hop

    def ready_period(self) -> int:
        return self.hop


def live_delay(geometry, samplerate: int, blocksize: int, inference_budget: float = INFERENCE_BUDGET,
               fade_seconds: float = 0.001) -> int:
    """The delay a live session with JACK ports has at the model's own rate: the separator's latency plus the
    buffers for ``blocksize`` (what ``RealtimeBridge`` computes, without loading a model; for ``--help``)."""
    fade = max(16, math.floor(fade_seconds * samplerate))
    budget = budget_blocks(inference_budget, samplerate, blocksize)
    return geometry.latency + live_buffers(_NativeRate(geometry), blocksize, budget, fade)


class RealtimeBridge:
    """Preallocated rings, counters, the worker thread and the audio callbacks' user data (``table``).

    ``separator``: a StreamingSeparator at the stream's sample rate. ``live_input``: True when the
    callback captures the input, False when a reader thread feeds it with ``write_input`` (file
    playback). ``out_ring`` holds one output per stem; the callback mixes them at the amplitudes of the
    parameter block (``gains``: the initial ones, None: 1 each; ``set_mix`` changes them while it plays, each
    change ramped over ``ramp_seconds``). ``stem_outputs``: the JACK callback plays each stem on its own pair
    of ports (at its gain) instead of their mix. On a miss the mix falls back to the dry input at the
    loudest stem's amplitude (a miss never plays louder than full separation would), a stem's ports to the
    dry input at its amplitude over the number of stems, so the outputs still add up to about the mix.
    ``inference_budget``: seconds the worker may take for one callback's input (rounded up to whole
    blocks; see ``live_buffers``).
    """

    def __init__(self, separator, samplerate: int, blocksize: int, out_channels: int, *,
                 live_input: bool, gains=None, record: bool = False, stem_outputs: bool = False,
                 fade_seconds: float = 0.001, max_chunks: int = 16, inference_budget: float = INFERENCE_BUDGET,
                 ramp_seconds: float = RAMP_SECONDS):
        self.sep = separator
        self.live_input = live_input
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize)
        self.in_channels = separator.channels
        self.out_channels = int(out_channels)
        self.stem_outputs = stem_outputs
        self.outputs = len(separator.stems)
        self.pairs = self.outputs if stem_outputs else 1  # JACK output port pairs
        self.ramp = max(1, round(ramp_seconds * self.samplerate))
        self.chunk = stream_hop(separator)
        self.fade = max(16, math.floor(fade_seconds * self.samplerate))
        self.latency = int(separator.latency_samples)
        # File playback has neither: its worker runs ahead of the callback instead.
        self.budget_blocks = budget_blocks(inference_budget, self.samplerate, self.blocksize) if live_input else 0
        self.buffers = live_buffers(separator, self.blocksize, self.budget_blocks, self.fade) if live_input else 0
        self.max_chunks = max_chunks
        self.ahead_max = self.chunk + 8  # frames final beyond the input: up to a hop (and rounding at another rate)
        span = (self.buffers + self.latency + self.blocksize + self.chunk * max_chunks + self.ahead_max
                + self.fade)
        # File playback reads ahead; half a second keeps it robust against a slow disk or a busy CPU.
        size = ring_size(max(MIN_RING, 4 * span, self.samplerate if live_input else self.samplerate // 2 + span))
        self.in_ring = resident_zeros((size, self.in_channels))
        self.out_ring = resident_zeros((size, self.outputs, self.out_channels))
        self.rec_ring = resident_zeros((ring_size(4 * self.samplerate), self.out_channels)) if record else None
        self.counters = resident_zeros(N_COUNTERS, np.int64)
        self.counters[END] = -1
        if live_input:  # what the separator gives before any input (the silence its latency starts with) is final
            self.counters[READY] = separator.ready_after(0)
        self.fstate = resident_zeros(N_FSTATE, np.float64)
        self.fstate[WET] = 1.0
        # The parameter block: targets (control threads write), the callback's ramps (current, step, aim) and
        # its scratch of one amplitude per stem and frame.
        start_gains = np.ones(self.outputs) if gains is None else np.asarray(gains, np.float64)
        self.mix_targets = resident_zeros(self.outputs, np.float64)
        self.mix_targets[:] = start_gains
        self.mix_state = resident_zeros((self.outputs, 3), np.float64)
        self.mix_state[:, 0] = self.mix_state[:, 2] = start_gains
        self.gain_frames = resident_zeros((self.outputs, MAX_CALLBACK_FRAMES), np.float64)
        self.weights = resident_zeros(MAX_CALLBACK_FRAMES, np.float64)
        self.midi_ring = resident_zeros((MIDI_ROWS, 4), np.uint8)  # JACK's midi_in (jack_callback's midi=)
        self.midi_event = resident_zeros(3, np.int64)
        self.midi_lost = 0  # messages the MIDI thread fell too far behind to read
        self._midi_read = 0
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
        self._ports: list[np.ndarray] = []  # JACK's port pointers the callback reads (jack_callback)
        self._in_block = np.zeros((self.chunk * max_chunks, self.in_channels), np.float32)
        n_stems = len(separator.stems)
        self._stems = np.zeros(n_stems * max(self.chunk * max_chunks, self.ahead_max) * self.in_channels, np.float32)
        self.table = np.zeros(N_TABLE, np.int64)  # the callbacks' user data (see slots.T_IN_RING)
        self.table[[T_IN_RING, T_IN_FRAMES, T_IN_CHANNELS]] = self.in_ring.ctypes.data, *self.in_ring.shape
        self.table[[T_OUT_RING, T_OUT_FRAMES, T_OUTPUTS, T_OUT_CHANNELS]] = (self.out_ring.ctypes.data,
                                                                           *self.out_ring.shape)
        if self.rec_ring is not None:
            self.table[[T_REC_RING, T_REC_FRAMES]] = self.rec_ring.ctypes.data, len(self.rec_ring)
        self.table[[T_COUNTERS, T_FSTATE]] = self.counters.ctypes.data, self.fstate.ctypes.data
        self.table[[T_WEIGHTS, T_WEIGHT_FRAMES]] = self.weights.ctypes.data, len(self.weights)
        self.table[[T_MIX_TARGETS, T_MIX_STATE, T_GAINS]] = (self.mix_targets.ctypes.data,
                                                             self.mix_state.ctypes.data, self.gain_frames.ctypes.data)
        self.table[[T_RAMP, T_MIXED, T_OUT_PAIRS]] = self.ramp, int(not stem_outputs), self.pairs
        self.table[[T_BUFFERS, T_LATENCY, T_FADE, T_CAPTURE]] = self.buffers, self.latency, self.fade, live_input
        self._warm_up()

    @property
    def delay(self) -> int:
        """Input to output, in stream samples: the separator's latency plus the bridge's buffers."""
        return self.latency + self.buffers

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

    def jack_callback(self, in_ports: list[int], out_ports: list[int], dry_ports: list[int], get_buffer: int,
                      get_time: int, frame_time: int = 0, client: int = 0,
                      midi: tuple[int, int, int] | None = None) -> tuple[int, int]:
        """JACK's process callback for this bridge: the addresses of the compiled ``jack_process`` and of its
        user data, the table with the ports (``jack_port_t *`` as ints: the input channels; output pair ``o``'s
        channel ``c`` at ``o * channels + c``, a pair per stem with ``stem_outputs``, else one; the dry channels,
        or none), libjack's ``jack_port_get_buffer`` and ``jack_get_time``, and (optional) its
        ``jack_last_frame_time`` with the ``client`` it takes, and ``midi``: the ``midi_in`` port with libjack's
        ``jack_midi_get_event_count`` and ``jack_midi_event_get`` (its messages for ``read_midi``). The period the
        callback expects is the bridge's block."""
        table = self.table
        for slot, group in ((T_IN_PORTS, in_ports), (T_OUT_PORTS, out_ports), (T_DRY_PORTS, dry_ports)):
            pointers = np.array(group or [0], np.int64)
            self._ports.append(pointers)  # alive as long as the bridge
            table[slot] = pointers.ctypes.data if group else 0
        table[[T_GET_BUFFER, T_GET_TIME, T_FRAME_TIME, T_CLIENT]] = get_buffer, get_time, frame_time, client
        if midi is not None:
            table[[T_MIDI_PORT, T_MIDI_COUNT, T_MIDI_GET]] = midi
            table[[T_MIDI_EVENT, T_MIDI_RING, T_MIDI_ROWS]] = (self.midi_event.ctypes.data, self.midi_ring.ctypes.data,
                                                               len(self.midi_ring))
        table[T_PERIOD] = self.blocksize
        table[T_PERIOD_US] = round(1e6 * self.blocksize / self.samplerate)
        address = jack_process.address  # compiled (or loaded from the cache) when callbacks.py was imported
        assert address is not None
        return address, table.ctypes.data

    def count_jack_xrun(self) -> None:
        """An xrun the JACK server reported (its notification thread, the only writer of this counter)."""
        self.counters[JACK_XRUNS] += 1

    def output_callback(self):
        """Like ``duplex_callback`` for a ``sounddevice.OutputStream`` (file playback)."""
        call, table = stream_callback.ctypes, self.table.ctypes.data

        def callback(outdata, frames, time_info, status):
            _check_block(outdata, frames, self.out_channels)
            call(None, outdata.ctypes.data, frames, None, _status_bits(status), table)

        return callback

    # ----------------------------------------------------------------- the mixer
    def set_mix(self, factors) -> None:
        """New target amplitudes per stem (a control thread; callers take turns, ``LiveSession`` under its
        lock): the callback ramps to them from its next block on. The version is odd while the targets are
        written and even once they are whole; the callback reads them only in a block that finds it moved and
        even, and notes that block as where the change is heard (never one block before it says)."""
        factors = np.asarray(factors, np.float64)
        self.counters[MIX_VERSION] += 1
        self.mix_targets[:] = factors
        self.counters[MIX_VERSION] += 1

    def mix_taken(self) -> tuple[bool, int, int]:
        """(whether the callback has taken the latest ``set_mix``, the output position from which it ramps to it,
        the JACK frame time of that cycle: 0 without JACK)."""
        c = self.counters
        taken = c[MIX_SEEN] == c[MIX_VERSION]  # read first: the callback writes MIX_SEEN after the others
        return bool(taken), int(c[MIX_AT]), int(c[MIX_TIME])

    def read_midi(self) -> list[tuple[int, int, int]]:
        """The MIDI channel messages (status, data 1, data 2) the JACK callback took from ``midi_in`` since the
        last call (one reader: the session's MIDI thread)."""
        end = int(self.counters[MIDI_WRITTEN])
        rows = len(self.midi_ring)
        if end - self._midi_read > rows - 64:  # the callback may be overwriting the oldest
            self.midi_lost += end - self._midi_read - (rows - 64)
            self._midi_read = end - (rows - 64)
        found = []
        for position in range(self._midi_read, end):
            status, data1, data2, _ = (int(v) for v in self.midi_ring[position & (rows - 1)])
            found.append((status, data1, data2))
        self._midi_read = end
        return found

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
        write_ring(self.in_ring, start, block, self.counters, self.fstate)
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
        return int(self.buffers + self.counters[READY] - self.counters[FRAMES])

    @property
    def finished(self) -> bool:
        """File playback has played everything, the separator's tail included."""
        end = self.counters[END]
        return end >= 0 and self.counters[FRAMES] >= end

    @property
    def all_separated(self) -> bool:
        """File playback: the worker has separated the whole file, the separator's tail included."""
        return bool(self.counters[END] >= 0)

    @property
    def frames_played(self) -> int:
        """Frames the callback has played: it stops growing when the device stops calling."""
        return int(self.counters[FRAMES])

    @property
    def period_changed(self) -> bool:
        """JACK ran a cycle of another size than the period this bridge was made for (the delay no longer holds)."""
        return bool(self.counters[PERIOD_CHANGES])

    # ----------------------------------------------------------------- worker
    def _warm_up(self) -> None:
        """Run the separator and the worker's kernels once before the stream starts: the first ONNX
        Runtime run and numba's first calls are slow, and must not be the first deadline. (The
        callbacks themselves were compiled, or loaded from numba's cache, when their module was imported.)"""
        zeros = np.zeros((self.chunk * 2, self.in_channels), np.float32)
        self.sep.process(zeros)
        self.sep.ahead()
        self.sep.reset()
        dummy = np.zeros((0, self.in_channels), np.float32)
        write_ring(self.in_ring, 0, dummy, self.counters, self.fstate)
        read_ring(self.in_ring, 0, dummy)
        write_outputs(self._stem_view(0), 0, self.out_ring, 0, np.zeros(len(self.sep.stems)))

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._work, name="realtime-split-separation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _stem_view(self, n: int) -> np.ndarray:
        """A C-contiguous ``(stems, n, channels)`` view of preallocated memory for the separator to write into."""
        shape = (len(self.sep.stems), n, self.in_channels)
        return self._stems[:shape[0] * n * shape[2]].reshape(shape)

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
        room = played + len(self.out_ring) - self.blocksize - self.fade - self.ahead_max - (self.buffers + done)
        n = min(available, room, chunk * self.max_chunks)
        if not self.live_input:
            n = n // chunk * chunk  # file playback: whole hops, the tail at the end (_finish)
        if n <= 0:
            if input_done and available < chunk and room >= available + self.latency:
                self._finish(done, available)
                return True
            return False
        self._separate(done, n)
        return True

    def _separate(self, done: int, n: int) -> None:
        """Separate input ``[done, done + n)`` into out_ring, then (live input) the output that is already
        final beyond it, so the callback can play it before the input that ``process`` needs arrives."""
        block = self._in_block[:n]
        read_ring(self.in_ring, done, block)
        stats = self.sep.stats
        runs, seconds = stats.runs, stats.total_inference_seconds
        stems = self.sep.process(block, out=self._stem_view(n))
        write_outputs(stems, n, self.out_ring, self.buffers + done, self.stem_peaks)
        ready = done + n
        if self.live_input:
            already = max(0, int(self.counters[READY]) - ready)  # written ahead by an earlier step
            k = self.sep.frames_ahead - already
            if k > 0:
                ahead = self.sep.ahead(already, out=self._stem_view(k))
                write_outputs(ahead, k, self.out_ring, self.buffers + ready + already, self.stem_peaks)
            ready += max(already, self.sep.frames_ahead)
        self.counters[PROCESSED] = done + n
        self.counters[READY] = max(ready, int(self.counters[READY]))
        if stats.runs > runs:
            hop_seconds = self.sep.geometry.hop / self.sep.model_sample_rate
            self._record_load((stats.total_inference_seconds - seconds) / ((stats.runs - runs) * hop_seconds))

    def _finish(self, done: int, rest: int) -> None:
        """File playback: separate the last partial chunk and the separator's tail, then mark the end."""
        if rest > 0:
            self._separate(done, rest)
        tail = self.sep.flush()
        done = int(self.counters[PROCESSED])
        write_outputs(tail, tail.shape[1], self.out_ring, self.buffers + done, self.stem_peaks)
        # The tail counts as separated input (the separator flushed it with silence) and ends playback.
        self.counters[PROCESSED] = done + tail.shape[1]
        self.counters[READY] = done + tail.shape[1]
        self.counters[END] = self.buffers + done + tail.shape[1]

    def _skip_to(self, played: int) -> None:
        """Fallen more than one batched call behind: drop the stale input and restart the separator at
        the present. A shorter backlog is caught up instead (batched, so faster than real time), which
        keeps the separator's context and resumes separation sooner than a restart's warm-up would. The
        restart is on a block boundary, where the separator's hop pattern is the one ``buffers`` was
        computed for."""
        step = self.blocksize if self.live_input else self.chunk
        target = -(-max(int(self.counters[PROCESSED]), played - self.buffers) // step) * step
        self.sep.reset()
        self.counters[WET_FROM] = self.buffers + target + self.latency
        self.counters[PROCESSED] = target
        self.counters[READY] = target
        self.counters[SKIPS] += 1

    def _record_load(self, load: float) -> None:
        self.last_load = load
        self.load_histogram[min(int(load / LOAD_BIN), LOAD_BINS - 1)] += 1

    # ----------------------------------------------------------------- readings for status/summary
    def stats(self, latency: Latency | None = None, recording: Path | None = None,
              recorded_frames: int = 0) -> LiveStats:
        """The counters under their names. ``latency``: the session's whole delay (None: the bridge's part
        alone, all there is when an application runs the stream); ``recording`` and ``recorded_frames``: the
        file the session's writer saves to and how much it saved."""
        c, rate = self.counters, self.samplerate
        return LiveStats(
            seconds_played=self.seconds_played, blocksize=self.blocksize,
            latency=Latency(self.latency, self.buffers, 0.0, rate) if latency is None else latency,
            missed_deadlines=int(c[MISSED]), restarts=int(c[SKIPS]), xruns=int(c[XRUNS] + c[JACK_XRUNS]),
            input_overflows=int(c[INPUT_OVERFLOWS]), output_underflows=int(c[OUTPUT_UNDERFLOWS]),
            nonfinite_inputs=int(c[NONFINITE]), nonfinite_outputs=self.sep.stats.nonfinite_outputs,
            load=self.last_load, load_p50=self.load_percentile(50), load_p99=self.load_percentile(99),
            realtime_priority=self.realtime_priority, recording=recording, recorded_seconds=recorded_frames / rate,
            recording_lost_seconds=self.record_lost / rate, callback_overruns=int(c[LATE_CYCLES]),
            longest_callback_seconds=int(c[LONGEST_CYCLE]) / 1e6, budget_blocks=self.budget_blocks)

    def levels(self) -> Levels:
        """Peak levels of the input and of each stem since the previous call (reading resets them)."""
        peak, stems = self.take_peaks()
        return Levels(peak, {name: float(p) for name, p in zip(self.sep.stems, stems)})

    def load_percentile(self, q: float) -> float | None:
        """Share of a hop's real-time duration its inference took, at percentile ``q`` (0-100)."""
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
