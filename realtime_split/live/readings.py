"""What a live session reports: its delay by component (``Latency``), named counters (``LiveStats``) and peak
levels (``Levels``). The bridge builds them from its counters (``RealtimeBridge.stats``); the command line
shows them (cli_status.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Latency:
    """The delay from the input to the speakers, by component (``samplerate`` is the stream's)."""

    separator: int       # samples: StreamingSeparator.latency_samples
    buffers: int         # samples: the bridge's rings (see bridge.py)
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
