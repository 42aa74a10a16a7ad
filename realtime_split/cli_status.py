"""How the command line shows what a live session reports (live/readings.py): one refreshing status line while
it plays, a summary when it stops.

The line is for a person at a terminal, so it is drawn (with ``\\r``) only when stderr is a TTY
unless forced; logs and pipes get the start line and the summary alone. It reads the session's
counters and meters from the main thread; the audio callback never formats or prints anything.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import Protocol

from .live.readings import Levels, LiveStats

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


class Readings(Protocol):
    """What the status line reads: a live session, or the bridge readings behind one."""

    def stats(self) -> LiveStats: ...

    def levels(self) -> Levels: ...


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.0f}%"


def mix_marks(stem) -> str:
    """`` -6dB M S``: what sets a stem apart in the mix (its gain when not 0 dB, muted, soloed), or nothing."""
    gain = "" if stem.gain_db == 0 else (" -infdB" if stem.gain_db == -math.inf else f" {stem.gain_db:+.0f}dB")
    return gain + (" M" if stem.muted else "") + (" S" if stem.soloed else "")


class StatusLine:
    """Redraws ``in ... | vocals ... | latency ... | load ... | missed ... | xruns ...`` every ``interval``; with a
    session that has a ``mix``, each stem's gain, mute and solo after its meter, and ``>`` before the stem the
    keys change (``selected()``, when given)."""

    def __init__(self, session: Readings, enabled: bool | None = None, stream=None, interval: float = 0.2,
                 width: int | None = None, selected=None):
        self.session = session
        self.selected = selected  # () -> the index of the stem the keys change, or None
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
        mix = getattr(self.session, "mix", None)
        chosen = self.selected() if self.selected is not None else None
        marks = {s.name: mix_marks(s) for s in mix.stems} if mix is not None else {}
        tags = {name: (">" if i == chosen else "", marks.get(name, "")) for i, name in enumerate(levels.stems)}
        stems = " ".join(f"{tags[name][0]}{name} {meter(p)}{tags[name][1]}" for name, p in levels.stems.items())
        full = f"{elapsed:6.1f} s | in {meter(levels.input)} | {stems} | {total_ms:.0f} ms | {counters}"
        if len(full) < width:
            return full
        compact_levels = " ".join(f"{tags[name][0]}{name[:3]} {max(db(p), -99):.0f}{tags[name][1]}"
                                  for name, p in levels.stems.items())
        counters = counters.replace(' |', '')
        compact = (f"{elapsed:.1f}s in {max(db(levels.input), -99):.0f} {compact_levels} {total_ms:.0f}ms "
                   f"{counters}")
        if len(compact) < width or mix is None:
            return compact[:width - 1]  # a line that wraps cannot be redrawn in place
        # Narrower still: the mix without the stems' levels, so the counters stay in view.
        mix_only = " ".join(f"{tags[name][0]}{name[:3]}{tags[name][1]}" for name in levels.stems)
        return f"{elapsed:.1f}s {mix_only} {total_ms:.0f}ms {counters}"[:width - 1]

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
