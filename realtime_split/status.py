"""What a live session reports: its latency, named counters (``LiveStats``) and peak levels (``Levels``),
and how the command line shows them: one refreshing status line while it plays, a summary when it stops.

The line is for a person at a terminal, so it is drawn (with ``\\r``) only when stderr is a TTY
unless forced; logs and pipes get the start line and the summary alone. It reads the session's
counters and meters from the main thread; the audio callback never formats or prints anything.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

METER_FLOOR_DB = -60.0
MISSED_SHARE = 0.001  # more blocks than this played dry (issue 17's bar), and the summary says what to change


def db(peak: float) -> float:
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def meter(peak: float, width: int = 6) -> str:
    """``-12 dB [####--]``: a peak level and a bar from -60 dBFS to 0 dBFS."""
    level = db(peak)
    filled = 0 if level <= METER_FLOOR_DB else min(width, math.ceil(width * (1 - level / METER_FLOOR_DB)))
    text = " -inf" if level == -math.inf else f"{max(level, -99):5.0f}"
    return f"{text} dB [{'#' * filled}{'-' * (width - filled)}]"


@dataclass(frozen=True)
class Latency:
    """The delay from the input to the speakers, by component (``samplerate`` is the stream's)."""

    separator: int       # samples: StreamingSeparator.latency_samples
    buffers: int         # samples: the bridge's rings (see realtime/bridge.py)
    device_seconds: float  # PortAudio's input + output latency (0: the app runs its own stream, or JACK ports)
    samplerate: int
    between_ports: bool = False  # JACK ports: separator + buffers is the whole delay from input port to output port
    host_frames: int = 0  # samples the audio API holds on top (PortAudio's JACK host API: one block)
    from_file: bool = False  # JACK ports fed from a file: the delay runs from the file's read position, no input port

    @property
    def samples(self) -> int:
        """Input to output in the session's own samples: between its ports, with JACK (PortAudio's too)."""
        return self.separator + self.buffers + self.host_frames

    @property
    def total_ms(self) -> float:
        return 1000.0 * (self.samples / self.samplerate + self.device_seconds)

    def __str__(self) -> str:
        if self.between_ports:
            return (f"latency {self.total_ms:.1f} ms = separator {self.separator} + buffers {self.buffers} samples "
                    f"at {self.samplerate} Hz, {'file' if self.from_file else 'input port'} to output port")
        host = f" + PortAudio {self.host_frames} samples" if self.host_frames else ""
        return (f"latency {self.total_ms:.1f} ms = separator {self.separator} + buffers {self.buffers} samples"
                f"{host} + device {1000.0 * self.device_seconds:.1f} ms at {self.samplerate} Hz")


@dataclass(frozen=True)
class LiveStats:
    """A live session's counters since it started (``LiveSession.stats()``)."""

    seconds_played: float
    blocksize: int  # frames per audio callback
    latency: Latency
    missed_deadlines: int  # blocks played (fully or partly) dry because separation was late
    restarts: int  # times separation fell too far behind and skipped to the present
    xruns: int  # blocks the audio system flagged with an under- or overflow
    input_overflows: int
    output_underflows: int
    nonfinite_inputs: int  # NaN/Inf input samples replaced by silence
    nonfinite_outputs: int  # NaN/Inf samples the model produced, replaced by silence (a broken model)
    load: float  # the latest hop's inference time over its real-time budget (1.0: just in time)
    load_p50: float | None  # median of ``load`` so far (None before the first hop)
    load_p99: float | None
    realtime_priority: bool  # whether the inference worker got real-time scheduling
    recording: Path | None  # the file the session records what it plays to
    recorded_seconds: float
    recording_lost_seconds: float  # not saved because the disk was too slow
    callback_overruns: int = 0  # JACK: cycles in which this session's own callback ran longer than a period
    longest_callback_seconds: float = 0.0  # JACK: the callback's longest run
    budget_blocks: int = 0  # live input: blocks the separation may take for one callback's input (0: file playback)


@dataclass(frozen=True)
class Levels:
    """Peak levels (1.0 = full scale) since the previous reading, for meters."""

    input: float
    stems: dict[str, float]  # the selected stems, in order


class Readings(Protocol):
    """What the status line reads: a live session, or the bridge readings behind one."""

    def stats(self) -> LiveStats: ...

    def levels(self) -> Levels: ...


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.0f}%"


class StatusLine:
    """Redraws ``in ... | vocals ... | latency ... | load ... | missed ... | xruns ...`` every ``interval``."""

    def __init__(self, session: Readings, enabled: bool | None = None, stream=None, interval: float = 0.2,
                 width: int | None = None):
        self.session = session
        self.width = width  # None: the terminal's width at each redraw
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def line(self, elapsed: float, width: int) -> str:
        """The status with a bar meter per stem, or levels in dB only when that does not fit ``width``."""
        stats, levels = self.session.stats(), self.session.levels()
        total_ms = stats.latency.total_ms
        counters = f"load {_percent(stats.load)} | missed {stats.missed_deadlines} | xruns {stats.xruns}"
        stems = " ".join(f"{name} {meter(p)}" for name, p in levels.stems.items())
        full = f"{elapsed:6.1f} s | in {meter(levels.input)} | {stems} | {total_ms:.0f} ms | {counters}"
        if len(full) < width:
            return full
        compact_levels = " ".join(f"{name[:3]} {max(db(p), -99):.0f}" for name, p in levels.stems.items())
        compact = (f"{elapsed:.1f}s in {max(db(levels.input), -99):.0f} {compact_levels} {total_ms:.0f}ms "
                   f"{counters.replace(' |', '')}")
        return compact[:width - 1]  # a line that wraps cannot be redrawn in place

    def update(self, elapsed: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.interval:
            return
        self._last = now
        text = self.line(elapsed, self.width or shutil.get_terminal_size().columns)
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _xruns(stats: LiveStats) -> str:
    if stats.latency.between_ports:
        period_ms = 1000.0 * stats.blocksize / stats.latency.samplerate
        return (f"xruns: {stats.xruns} reported by JACK, {stats.callback_overruns} caused by this program's callback "
                f"(its longest run {1000.0 * stats.longest_callback_seconds:.2f} ms of the {period_ms:.2f} ms period)")
    return (f"xruns: {stats.xruns} ({stats.input_overflows} input overflows, {stats.output_underflows} output "
            "underflows)")


def _budget_hint(stats: LiveStats) -> list[str]:
    """When live input missed more than MISSED_SHARE of its deadlines: the option that gives the separation more
    time, with its cost. A machine that stalls a real-time thread now and then (a virtual machine's host, a
    power-saving CPU) needs a larger budget than inference alone would (docs/benchmarks.md, "Live audio")."""
    rate, block = stats.latency.samplerate, stats.blocksize
    blocks = stats.seconds_played * rate / block
    if not stats.budget_blocks or not blocks or stats.missed_deadlines <= MISSED_SHARE * blocks:
        return []
    budget = stats.budget_blocks * block / rate
    seconds = math.floor(2e4 * budget) / 1e4  # rounded down: the option rounds up to whole blocks, 2x exactly
    return [f"more than {100 * MISSED_SHARE:g} % of the blocks were late: --inference-budget {seconds:g} "
            f"would give the separation {1000 * 2 * budget:.1f} ms instead of {1000 * budget:.1f} ms, for "
            f"{1000 * budget:.1f} ms more latency"]


def summary(stats: LiveStats) -> str:
    """One paragraph: how long, how late, how many deadlines missed, how loaded, what was saved."""
    parts = [
        f"realtime-split: played {stats.seconds_played:.1f} s live with {stats.latency}",
        f"missed deadlines: {stats.missed_deadlines} blocks of {stats.blocksize} (played dry; "
        f"{stats.restarts} restarts after falling too far behind)",
        *_budget_hint(stats),
        _xruns(stats),
        f"inference load p50 {_percent(stats.load_p50)} p99 {_percent(stats.load_p99)} "
        f"of the hop budget (worker at {'real-time' if stats.realtime_priority else 'normal'} priority)",
    ]
    if stats.nonfinite_inputs:
        parts.append(f"{stats.nonfinite_inputs} NaN/Inf input samples replaced by silence")
    if stats.nonfinite_outputs:
        parts.append(f"warning: the model produced {stats.nonfinite_outputs} NaN/Inf samples, replaced by silence "
                     "(the model may be broken; try another --model)")
    if stats.recording is not None:
        lost = f", {stats.recording_lost_seconds:.1f} s lost to a slow disk" if stats.recording_lost_seconds else ""
        parts.append(f"recorded {stats.recorded_seconds:.1f} s to {stats.recording}{lost}")
    return "; ".join(parts) + "."
