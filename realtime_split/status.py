"""What a live run tells its user: one refreshing status line while it plays, a summary when it stops.

The line is for a person at a terminal, so it is drawn (with ``\\r``) only when stderr is a TTY
unless forced; logs and pipes get the start line and the summary alone. It reads the bridge's
counters and meters from the main thread; the audio callback never formats or prints anything.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass

from .realtime_bridge import INPUT_OVERFLOWS, MISSED, NONFINITE, OUTPUT_UNDERFLOWS, SKIPS

METER_FLOOR_DB = -60.0


def db(peak: float) -> float:
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def meter(peak: float, width: int = 6) -> str:
    """``-12 dB [####--]``: a peak level and a bar from -60 dBFS to 0 dBFS."""
    level = db(peak)
    filled = 0 if level <= METER_FLOOR_DB else min(width, math.ceil(width * (1 - level / METER_FLOOR_DB)))
    text = " -inf" if level == -math.inf else f"{max(level, -99):5.0f}"
    return f"{text} dB [{'#' * filled}{'-' * (width - filled)}]"


@dataclass
class Latency:
    """The delay from the input to the speakers, by component (``samplerate`` is the stream's)."""

    separator: int       # samples: StreamingSeparator.latency_samples
    buffers: int         # samples: the bridge's rings (see realtime_bridge)
    device_seconds: float  # PortAudio's reported input + output latency
    samplerate: int

    @property
    def total_ms(self) -> float:
        return 1000.0 * ((self.separator + self.buffers) / self.samplerate + self.device_seconds)

    def __str__(self) -> str:
        return (f"latency {self.total_ms:.1f} ms = separator {self.separator} + buffers {self.buffers} samples "
                f"+ device {1000.0 * self.device_seconds:.1f} ms at {self.samplerate} Hz")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.0f}%"


class StatusLine:
    """Redraws ``in ... | vocals ... | latency ... | load ... | missed ... | xruns ...`` every ``interval``."""

    def __init__(self, bridge, latency: Latency, enabled: bool | None = None, stream=None, interval: float = 0.2,
                 width: int | None = None):
        self.bridge = bridge
        self.width = width  # None: the terminal's width at each redraw
        self.latency = latency
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def line(self, elapsed: float, width: int) -> str:
        """The status with a bar meter per stem, or levels in dB only when that does not fit ``width``."""
        b = self.bridge
        in_peak, stem_peaks = b.take_peaks()
        counters = f"load {_percent(b.last_load)} | missed {int(b.counters[MISSED])} | xruns {b.xruns}"
        stems = " ".join(f"{name} {meter(p)}" for name, p in zip(b.sep.stems, stem_peaks))
        full = f"{elapsed:6.1f} s | in {meter(in_peak)} | {stems} | {self.latency.total_ms:.0f} ms | {counters}"
        if len(full) < width:
            return full
        levels = " ".join(f"{name[:3]} {max(db(p), -99):.0f}" for name, p in zip(b.sep.stems, stem_peaks))
        compact = (f"{elapsed:.1f}s in {max(db(in_peak), -99):.0f} {levels} {self.latency.total_ms:.0f}ms "
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


def summary(bridge, latency: Latency, recording: str | None = None) -> str:
    """One paragraph: how long, how late, how many deadlines missed, how loaded, what was saved."""
    c = bridge.counters
    parts = [
        f"realtime-split: played {bridge.seconds_played:.1f} s live with {latency}",
        f"missed deadlines: {int(c[MISSED])} blocks of {bridge.blocksize} (played dry; "
        f"{int(c[SKIPS])} restarts after falling too far behind)",
        f"xruns: {bridge.xruns} ({int(c[INPUT_OVERFLOWS])} input overflows, "
        f"{int(c[OUTPUT_UNDERFLOWS])} output underflows)",
        f"inference load p50 {_percent(bridge.load_percentile(50))} p99 {_percent(bridge.load_percentile(99))} "
        f"of the hop budget (worker at {'real-time' if bridge.realtime_priority else 'normal'} priority)",
    ]
    if c[NONFINITE]:
        parts.append(f"{int(c[NONFINITE])} NaN/Inf input samples replaced by silence")
    model_nonfinite = bridge.sep.stats.nonfinite_outputs  # counted by the separator on the worker thread
    if model_nonfinite:
        parts.append(f"warning: the model produced {model_nonfinite} NaN/Inf samples, replaced by silence (the "
                     "model may be broken; try another --model)")
    if recording:
        parts.append(recording)
    return "; ".join(parts) + "."
