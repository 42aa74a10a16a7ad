"""``StreamingSeparator``: audio blocks of any size in, stems out, delayed by a fixed ``latency_samples``.

Every ``hop`` model samples the model runs on the latest ``window`` samples
(docs/model-format.md); the kept region of each run is overlap-added with
complementary crossfades. A block that spans several hops runs its windows as
one batched ONNX Runtime call, which gives the same numbers as running them one
by one, so file mode is fast and live mode (one hop per block) is identical.
When the caller's sample rate differs from the model's, soxr streams convert in
and out and a prefilled FIFO keeps the delay fixed (see resampling.py).

One instance holds one stream's state and no global state: separate instances
may run on separate threads, and one instance may be driven from any single
thread at a time (``process`` is not reentrant).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import limits, overlap_add as ola
from .errors import ParameterError
from .inference import BatchRunner
from .mix import Mix
from .model import Model
from .model_format import Geometry, ModelInfo
from .resampling import DEFAULT_QUALITY, LOW_DELAY, QUALITIES, FirResampler, SoxrResampler, make_resampler
from .rings import ring
from .stems import available_stems, linear_gains, parse_gains, parse_stems, stem_sources

# Whole arrays and files are fed in blocks this long: many hops per ONNX Runtime call, memory flat for any length.
BLOCK_FRAMES = 65536


@dataclass
class SeparatorStats:
    """Counters since construction (``reset`` keeps them); plain attributes, cheap to read from any thread."""

    runs: int = 0  # model windows processed
    batches: int = 0  # ONNX Runtime calls (each runs up to max_batch windows)
    nonfinite_samples: int = 0  # NaN/Inf input samples replaced by 0
    nonfinite_outputs: int = 0  # NaN/Inf model output samples replaced by 0
    resampler_underruns: int = 0  # frames the resampling FIFO lacked (0 unless its bound is wrong)
    last_inference_seconds: float = 0.0  # duration of the latest ONNX Runtime call
    total_inference_seconds: float = 0.0

    @property
    def avg_inference_seconds(self) -> float:
        return self.total_inference_seconds / self.batches if self.batches else 0.0


class _ModelRateStream:
    """The overlap-add engine at the model rate: frames in, selected stems out, ``delay`` samples later."""

    def __init__(self, runner: BatchRunner, geometry: Geometry, delay: int, max_batch: int,
                 sources: np.ndarray, gains: np.ndarray, n_model_stems: int):
        g = geometry
        self.runner, self.geometry, self.delay, self.max_batch = runner, g, delay, max_batch
        self.sources, self.gains = sources, gains
        self.fade_in, self.fade_out = ola.crossfade_pair(g.crossfade)
        longest_segment = max_batch * g.hop
        # The input ring also serves as the delay line for the mix (accompaniment = mix - vocals).
        self.input_ring = ring(g.window + delay + longest_segment, 2)
        self.accumulator = ring(delay + longest_segment + 1, n_model_stems, 2)
        self.position = 0  # input frames consumed so far

    def reset(self) -> None:
        self.input_ring[:] = 0.0
        self.accumulator[:] = 0.0
        self.position = 0
        self.runner.reset()  # a stateful model's initial state

    def process(self, frames: np.ndarray, out: np.ndarray, stats: SeparatorStats) -> None:
        """Consume ``frames`` ``[m, 1|2]`` and write ``m`` delayed output frames into ``out[:, :m]``."""
        g, runner = self.geometry, self.runner
        done, total = 0, len(frames)
        while done < total:
            # Up to max_batch hop boundaries per segment: their windows go into one ORT call.
            until_boundary = g.hop - self.position % g.hop
            n = min(total - done, until_boundary + (self.max_batch - 1) * g.hop)
            stats.nonfinite_samples += ola.write_ring(self.input_ring, self.position, frames, done, n)
            first_end = self.position + until_boundary
            runs = (self.position + n) // g.hop - self.position // g.hop
            if runs:
                ola.gather_windows(self.input_ring, first_end, g.hop, runs, runner.inputs)
                seconds = runner.run(runs)
                stats.nonfinite_outputs += ola.overlap_add(
                    runner.outputs, runs, g.keep_start, g.keep_length, self.fade_in, self.fade_out,
                    self.accumulator, first_end - g.latency, g.hop)
                stats.runs += runs
                stats.batches += 1
                stats.last_inference_seconds = seconds
                stats.total_inference_seconds += seconds
            ola.read_output(self.accumulator, self.input_ring, self.position - self.delay, n,
                            self.sources, self.gains, out, done)
            self.position += n
            done += n

    def ready_at(self, position: int) -> int:
        """Output frames final once ``position`` input frames are in: the run at the last hop boundary
        ``b`` finished every sample its successor does not touch, so the delayed output is final up to
        ``b + hop`` (plus any delay beyond the model's latency). ``process`` returns only the first
        ``position`` of them; ``peek`` the rest."""
        hop = self.geometry.hop
        return position // hop * hop + hop + self.delay - self.geometry.latency

    def ready(self) -> int:
        return self.ready_at(self.position)

    def peek(self, out: np.ndarray, n: int, offset: int = 0) -> None:
        """Output frames ``[position + offset, position + offset + n)`` into ``out[:, :n]`` without consuming
        anything: they must be final (``position + offset + n <= ready()``)."""
        ola.read_output(self.accumulator, self.input_ring, self.position + offset - self.delay, n,
                        self.sources, self.gains, out, 0, False)


class StreamingSeparator:
    """Separate a stream pushed block by block into stems delayed by a fixed ``latency_samples``.

    ``model``: a loaded ``Model`` (streams at several rates or channel counts share it: building one then
    costs no loading), a bundled model's name (``"fast"``, ``"quality"``; see ``registry``) or an exported
    .onnx file, loaded here (``Model.load``, kept as ``self.model``); None picks the bundled model for the
    latency preset (``registry.default_model``: the quality model for ``quality`` and ``offline`` when it
    is bundled, else the fast one). ``stems``: ``"all"``,
    ``"vocals,drums"`` or a list; ``"accompaniment"`` is the mix minus the vocals. ``provider``:
    ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``; the one in use is ``self.provider``.
    ``latency``: preset name (low, balanced, quality, offline; None = the model's default preset,
    balanced for the fast model; the one in use is ``self.preset``); ``hop`` overrides its hop (model
    samples). ``sample_rate``: the caller's rate (None = the model's; otherwise soxr resamples in and
    out). ``channels``: 1 or 2 (mono is duplicated into the model and averaged back). ``gains``: dB
    per output stem, ``{"vocals": -inf}``, ``"vocals=-inf,drums=-6"`` or a ``Mix``; ``self.mix`` is the
    result as a ``Mix``. ``mixer=True``: separate every stem the model offers, the selected ones first, and
    apply no gains: ``self.mix`` then holds the gains with the stems not selected muted, for a host that mixes
    the stems itself and may bring the others in (a live session). ``max_batch``: how many
    windows one ONNX Runtime call may run when a block spans several hops. ``threads``: ONNX Runtime
    intra-op threads (None = the physical cores; 1 is steadier next to an audio thread under load). With a
    ``Model``, ``provider`` and ``threads`` are its own: leave them out (another value is refused).
    ``resample_quality``: when resampling, "LD" (low delay, the default: short filters that add about 1.1 ms at
    48 kHz) or a soxr recipe ("HQ" is transparent and adds about 40 ms; whole files and arrays use it).
    With "LD", a rate among the model's ``native_rates`` is not resampled at all: the network runs at it
    directly (``model_sample_rate``), its window and hop the same number of samples, hence shorter in time.
    """

    def __init__(
        self,
        model: str | os.PathLike | Model | None = None,
        stems: str | Iterable[str] = "all",
        provider: str = "auto",
        latency: str | None = None,
        hop: int | None = None,
        sample_rate: int | None = None,
        channels: int = 2,
        gains: Mapping[str, float] | str | Iterable[str] | Mix | None = None,
        max_batch: int = 16,
        threads: int | None = None,
        resample_quality: str = DEFAULT_QUALITY,
        mixer: bool = False,
    ):
        if isinstance(channels, bool) or channels not in (1, 2):
            raise ParameterError(f"channels={channels!r}: the separator takes 1 or 2 channels", "channels")
        max_batch = limits.whole(max_batch, "max_batch", 1, 16)
        if resample_quality not in QUALITIES:
            raise ParameterError(f"resample_quality must be one of {', '.join(QUALITIES)}, got {resample_quality!r}",
                                 "resample_quality")
        if threads is not None:
            threads = limits.whole(threads, "threads", 1, 1)
        hop = limits.hop(hop)
        rate = None if sample_rate is None else limits.sample_rate(sample_rate)
        self.model: Model = Model.load(model, provider, threads, latency=latency)  # a Model is used as it is
        self.model_path: Path = self.model.path
        self.info: ModelInfo = self.model.info
        self.provider: str = self.model.provider
        self.preset: str = self.model.preset(latency)
        self.geometry: Geometry = self.model.geometry(self.preset, hop)
        self.stems: tuple[str, ...] = parse_stems(stems, self.info.stems)
        self.gains_db: dict[str, float] = parse_gains(gains, self.stems, available_stems(self.info.stems))
        self.mix: Mix = Mix.of(self.stems, self.gains_db)
        if mixer:
            selected = self.stems
            self.stems = selected + tuple(s for s in self.info.stems if s not in selected)
            self.mix = Mix.of(self.stems, self.gains_db, muted=self.stems[len(selected):])
            self.gains_db = {}
        self.channels = channels
        self.sample_rate = rate or self.info.sample_rate
        # The rate the network runs at: its own, or a native rate when the caller wants the least delay.
        native = self.sample_rate in self.info.native_rates and resample_quality == LOW_DELAY
        self.model_sample_rate = self.sample_rate if native else self.info.sample_rate
        self.stats = SeparatorStats()

        self._resampler: FirResampler | SoxrResampler | None = None
        delay = self.geometry.latency
        if self.sample_rate != self.model_sample_rate:
            self._resampler = make_resampler(self.sample_rate, self.model_sample_rate, channels, len(self.stems),
                                             self.geometry.latency, self.geometry.hop, resample_quality)
            delay += self._resampler.extra_model_delay
        self.latency_samples: int = self._resampler.latency_samples if self._resampler else delay
        self.latency_seconds: float = self.latency_samples / self.sample_rate

        runner = self.model.runner(self.geometry, int(max_batch))
        self._stream = _ModelRateStream(
            runner, self.geometry, delay, int(max_batch), stem_sources(self.stems, self.info.stems),
            linear_gains(self.stems, self.gains_db), len(self.info.stems))
        self._input = np.zeros((0, channels), np.float32)  # resampling: the block, sanitized (grown on demand)
        self._pushed = 0  # input frames since the stream began
        ola.warm_up()

    def __repr__(self) -> str:
        g = self.geometry
        return (f"StreamingSeparator(stems={self.stems}, sample_rate={self.sample_rate}, "
                f"latency_samples={self.latency_samples}, window={g.window}, hop={g.hop}, "
                f"provider={self.provider!r})")

    def _frames(self, block) -> np.ndarray:
        frames = limits.float_samples(block, "block")
        if frames.ndim == 1:
            frames = frames.reshape(-1, 1)
        if frames.ndim != 2:
            raise ParameterError(f"audio blocks must be (frames, channels) or (frames,), got shape {frames.shape}",
                                 "block")
        found = frames.shape[1]
        if found > 2:
            raise ParameterError(f"input has {found} channels; the separator takes 1 or 2, so pick them first "
                                 "(e.g. block[:, :2])", "block")
        if found != self.channels:
            raise ParameterError(
                f"input has {found} channel{'s' if found != 1 else ''} but the separator was made for "
                f"{self.channels}; create it with channels={found}", "block")
        return frames

    def _output(self, out: np.ndarray | None, n: int) -> np.ndarray:
        shape = (len(self.stems), n, self.channels)
        if out is None:
            return np.empty(shape, np.float32)
        if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ParameterError(f"out= must be a C-contiguous float32 array of shape {shape}, "
                                 f"got {out.dtype} {out.shape}", "out")
        return out

    def process(self, block, out: np.ndarray | None = None) -> np.ndarray:
        """Push ``block`` ``(n, channels)`` (or ``(n,)`` mono), any ``n >= 0``, and get the stems
        ``(len(stems), n, channels)`` of the input ``latency_samples`` earlier. Float samples are taken as they
        are; integer PCM (int16, int32, int8, uint8) is scaled to [-1, 1) like soundfile reads it (limits.py).

        With a preallocated C-contiguous float32 ``out`` and a float32 block the engine allocates no
        arrays (when resampling, soxr still returns new arrays). NaN/Inf input samples become 0 and
        are counted in ``stats.nonfinite_samples``.
        """
        frames = self._frames(block)
        n = len(frames)
        out = self._output(out, n)
        if n == 0:
            return out
        self._pushed += n
        if self._resampler is None:
            self._stream.process(frames, out, self.stats)
            return out
        if len(self._input) < n:
            self._input = np.zeros((n, self.channels), np.float32)
        frames_in = self._input[:n]
        frames_in[:] = frames
        self.stats.nonfinite_samples += ola.sanitize(frames_in, n)
        self._resampler.process(frames_in, out, self._stream, self.stats)
        return out

    # For real-time hosts: output that is final before the input that process() needs for it --------------------

    def ready_after(self, position: int) -> int:
        """How many output frames are final once ``position`` input frames have been pushed (at least
        ``position``). The model runs once per hop on the input up to a hop boundary, and that run
        finishes the output for the hop after the boundary too, so up to a hop more than ``process``
        returned is already known (with the LD resampler too; soxr's recipes give nothing ahead).
        A host that plays output a fixed time after the input can play those frames before the input
        that ``process`` would need for them arrives: that is how live mode gives inference a whole
        audio period without adding a period of delay (live/bridge.py). A pure function of
        ``position``: it does not look at the stream."""
        if self._resampler is None:
            return self._stream.ready_at(position)
        if isinstance(self._resampler, FirResampler):
            return self._resampler.ready_after(position, self._stream.ready_at)
        return self._resampler.ready_after(position)

    def ready_period(self) -> int:
        """Input frames after which ``ready_after(p) - p`` repeats."""
        return self.geometry.hop if self._resampler is None else self._resampler.ready_period()

    @property
    def frames_ahead(self) -> int:
        """Output frames final beyond what ``process`` has returned (``ready_after`` of the input so far)."""
        return self.ready_after(self._pushed) - self._pushed

    def ahead(self, skip: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """The stems of the output frames that are final beyond what ``process`` has returned, without consuming
        input, skipping the first ``skip`` of them: ``(len(stems), frames_ahead - skip, channels)``. The next
        ``process`` calls return the same samples again. ``out``: a C-contiguous float32 array of that shape."""
        n = max(0, self.frames_ahead - skip)
        out = self._output(out, n)
        if n == 0:
            return out
        if self._resampler is None:
            self._stream.peek(out, n, skip)
        else:
            self._resampler.ahead(self._stream, skip, out)
        return out

    def aligned(self, blocks: Iterable) -> Iterator[np.ndarray]:
        """The stems of a whole stream, lined up with its input: ``blocks`` are pushed through ``process`` from
        the start (the separator is reset first if it has seen audio), the first ``latency_samples`` output
        frames (the delay, from before the input) are dropped and ``flush``'s tail is added, so the arrays
        yielded, ``(len(stems), n, channels)`` each, joined along time, are exactly as long as the input and
        sample ``i`` of a stem belongs to input sample ``i``. One array per block (empty while the delay is
        still being dropped), then one for the tail. Each array is valid until the next is asked for: a
        buffer is reused for blocks of the first block's length (``BLOCK_FRAMES`` blocks allocate nothing).
        What ``separate`` and file mode run."""
        if self._pushed:
            self.reset()
        skip = self.latency_samples  # output frames still to drop: the delay before the input's first sample
        buffer: np.ndarray | None = None
        for block in blocks:
            frames = self._frames(block)
            if buffer is None:
                buffer = np.empty((len(self.stems), len(frames), self.channels), np.float32)
            stems = self.process(frames, out=buffer if len(frames) == buffer.shape[1] else None)
            dropped = min(skip, stems.shape[1])
            skip -= dropped
            yield stems[:, dropped:]
        tail = self.flush()
        yield tail[:, min(skip, tail.shape[1]):]

    def flush(self) -> np.ndarray:
        """The last ``latency_samples`` frames still inside (fed with silence).

        All ``process`` outputs plus ``flush()``, minus the first ``latency_samples`` frames, line up
        sample for sample with the input. Call ``reset`` before starting another stream.
        """
        return self.process(np.zeros((self.latency_samples, self.channels), np.float32))

    def reset(self) -> None:
        """Forget the stream (audio state only; ``stats`` keep counting)."""
        self._stream.reset()
        self._pushed = 0
        if self._resampler is not None:
            self._resampler.reset()
