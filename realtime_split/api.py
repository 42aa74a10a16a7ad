"""The library's whole-audio API: separate an array or files with a model, no command line needed.

``Separator`` holds a model and its settings (like ``demucs.api.Separator``); ``separate`` and
``separate_file`` are the one-call forms. Both run the same engine as streaming
(``StreamingSeparator``) and compensate its latency, so the stems line up with the input sample for
sample. Arrays and files default to the ``offline`` preset (full context, the best separation);
a streaming preset (``latency="balanced"``) reproduces what live mode gives.

Errors are ``ParameterError`` (a ``ValueError``: an argument that cannot work, named in the
message as ``model=``, ``stems=``...) or ``AudioIOError`` (an ``OSError``: a file that cannot be
read or written); both are ``UserError``\\ s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import limits
from .audio_files import ChannelSelection
from .errors import ParameterError
from .file_mode import FileResult, ProgressCallback, separate_files
from .mix import Mix
from .model import Model
from .model_format import OFFLINE, Geometry, ModelInfo
from .separator import BLOCK_FRAMES, StreamingSeparator

Gains = Mapping[str, float] | str | Iterable[str] | Mix | None
# Whole arrays and files are latency compensated, so they resample with soxr's transparent recipe (its ~40 ms of
# delay at 48 kHz costs nothing here); streams default to the low-delay filters.
WHOLE_AUDIO_RESAMPLING = "HQ"


@dataclass(frozen=True)
class Separation:
    """The stems of one array, aligned with it sample for sample."""

    stems: dict[str, np.ndarray]  # name -> float32 samples shaped like the input: (n, channels), or (n,)
    sample_rate: int
    latency_samples: int  # the separator's delay at sample_rate, compensated here (a stream would lag this much)
    latency_seconds: float
    preset: str


class Separator:
    """A model and its settings, for whole arrays (``separate``) and files (``separate_file(s)``).

    The arguments are ``StreamingSeparator``'s: ``model`` a loaded ``Model``, a bundled name (``"fast"``,
    ``"quality"``) or an .onnx file (None: the bundled model for the preset); ``stems`` ``"all"``,
    ``"vocals,drums"`` or a list (``"accompaniment"`` is the mix minus the vocals); ``latency`` a preset
    (default ``"offline"``); ``hop`` its hop in model samples; ``gains`` dB per stem (``{"vocals": -inf}``,
    or a ``Mix``);
    ``provider`` ``"auto"``, ``"cpu"`` or ``"cuda"``; ``threads`` ONNX Runtime threads. The model is
    loaded here, once (``self.model``), so a bad model, preset, stem or gain fails at once; each sample
    rate and channel count then gets its own stream of it, kept for the next input.
    """

    def __init__(self, model: str | os.PathLike | Model | None = None, *, stems: str | Iterable[str] = "all",
                 latency: str | None = OFFLINE, hop: int | None = None, gains: Gains = None,
                 provider: str = "auto", threads: int | None = None):
        limits.hop(hop)  # refused before the model loads, like StreamingSeparator does
        self.model: Model = Model.load(model, provider, threads, latency=latency)

        def build(sample_rate: int | None, channels: int) -> StreamingSeparator:
            return StreamingSeparator(self.model, stems=stems, latency=latency, hop=hop, sample_rate=sample_rate,
                                      channels=channels, gains=gains, resample_quality=WHOLE_AUDIO_RESAMPLING)

        self._build = build
        first = build(None, 2)  # checks the settings; serves stereo input at the model's rate
        self._streams: dict[tuple[int, int], StreamingSeparator] = {(first.sample_rate, first.channels): first}
        self.model_path: Path = first.model_path
        self.info: ModelInfo = first.info
        self.preset: str = first.preset
        self.geometry: Geometry = first.geometry
        self.stems: tuple[str, ...] = first.stems
        self.gains_db: dict[str, float] = first.gains_db
        self.mix: Mix = first.mix  # the same, as a Mix (mix.py): the vocabulary live sessions share
        self.provider: str = first.provider
        self.model_sample_rate: int = first.model_sample_rate

    def __repr__(self) -> str:
        return (f"Separator(model={str(self.model_path)!r}, stems={self.stems}, preset={self.preset!r}, "
                f"provider={self.provider!r})")

    def _stream(self, sample_rate: int, channels: int) -> StreamingSeparator:
        """The stream for one rate and channel count, of the one model: built on first use, kept, reset."""
        key = (int(sample_rate), int(channels))
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = self._build(*key)
        else:
            stream.reset()
        return stream

    def separate(self, audio, sample_rate: int | None = None) -> Separation:
        """The stems of ``audio``: samples ``(n, channels)`` with 1 or 2 channels, or ``(n,)`` mono, at
        ``sample_rate`` (None: the model's, 44.1 kHz for the bundled ones; others, from 1 kHz to 768 kHz, are
        resampled). Float samples are taken as they are; integer PCM (int16, int32, int8, uint8) is scaled to
        [-1, 1) as soundfile reads it, so the stems are float32 either way."""
        samples = limits.float_samples(audio, "audio")
        if samples.ndim not in (1, 2):
            raise ParameterError(f"audio must be samples shaped (frames, channels) or (frames,), got shape "
                                 f"{samples.shape}", "audio")
        frames = samples.reshape(-1, 1) if samples.ndim == 1 else samples
        channels = frames.shape[1]
        if channels not in (1, 2):
            raise ParameterError(f"audio has {channels} channels; the separator takes 1 or 2, so pick them first "
                                 "(e.g. audio[:, :2])", "audio")
        rate = self.model_sample_rate if sample_rate is None else limits.sample_rate(sample_rate)
        stream = self._stream(int(rate), channels)
        n = len(frames)
        out = np.empty((len(stream.stems), n, channels), np.float32)
        done = 0
        for part in stream.aligned(frames[start:start + BLOCK_FRAMES] for start in range(0, n, BLOCK_FRAMES)):
            out[:, done:done + part.shape[1]] = part
            done += part.shape[1]
        stems = {name: out[i] if samples.ndim == 2 else out[i, :, 0] for i, name in enumerate(stream.stems)}
        return Separation(stems, stream.sample_rate, stream.latency_samples, stream.latency_seconds, stream.preset)

    def separate_file(self, input: str | os.PathLike, output: str | os.PathLike, *,
                      channels: ChannelSelection = None, format: str | None = None, subtype: str | None = None,
                      mix: bool = False, progress: ProgressCallback | None = None) -> FileResult:
        """Separate the audio file ``input`` (``"-"``: standard input) into ``output``: a folder (a trailing
        slash, an existing folder, or no suffix) gets ``<stem>.<format>`` per stem; a file gets the one
        selected stem, or with ``mix=True`` the sum of the stems, gains applied; ``"-"`` is standard output.

        ``channels``: the two input channels (1-based, ``"3,4"``) of a file with more than two. ``format``
        and ``subtype``: the output's (default: from its name, else 32-bit float wav). A wav that passes
        4 GiB is written as RF64 (``FileResult.rf64`` lists them); ``format="wav"`` keeps plain WAV and
        refuses (``ParameterError``) an input too long for it. ``progress`` is called with a ``Progress``
        at the start, after each block and at the end (``.result`` set).
        """
        return self.separate_files([input], output, channels=channels, format=format, subtype=subtype, mix=mix,
                                   progress=progress)[0]

    def separate_files(self, inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                       channels: ChannelSelection = None, format: str | None = None, subtype: str | None = None,
                       mix: bool = False, subfolders: bool | None = None,
                       progress: ProgressCallback | None = None) -> list[FileResult]:
        """Separate several files like ``separate_file``; in a folder ``output`` each input gets its own
        ``<name>/`` (``subfolders``, None: when there are several). All inputs are opened and all outputs
        checked (none may be any input, under any name) before the first is separated.

        The run owns its outputs (``output_set.OutputSet``): each is written under a hidden temporary name
        (``.vocals.wav.partial-<pid>``) and renamed when its input is done, so a name always holds a whole
        file; another run writing one of them meanwhile is refused (``AudioIOError`` naming its pid). Stopped
        (KeyboardInterrupt, SIGTERM/SIGHUP under the CLI), the partial stems, of one length, take their names;
        a failed write keeps only stems that decode, never over a file that was there before."""
        return separate_files(self._stream, self.stems, inputs, output, channels=channels, file_format=format,
                              subtype=subtype, mix=mix, subfolders=subfolders, progress=progress)


def separate(audio, sample_rate: int | None = None, *, model: str | os.PathLike | None = None,
             stems: str | Iterable[str] = "all", latency: str | None = OFFLINE, hop: int | None = None,
             gains: Gains = None, provider: str = "auto", threads: int | None = None) -> Separation:
    """The stems of one array (see ``Separator.separate``); loads the model for this call only."""
    return Separator(model, stems=stems, latency=latency, hop=hop, gains=gains, provider=provider,
                     threads=threads).separate(audio, sample_rate)


def separate_file(input: str | os.PathLike, output: str | os.PathLike, *, model: str | os.PathLike | None = None,
                  stems: str | Iterable[str] = "all", latency: str | None = OFFLINE, hop: int | None = None,
                  gains: Gains = None, provider: str = "auto", threads: int | None = None,
                  channels: ChannelSelection = None, format: str | None = None, subtype: str | None = None,
                  mix: bool = False, progress: ProgressCallback | None = None) -> FileResult:
    """Separate one file (see ``Separator.separate_file``); loads the model for this call only."""
    return Separator(model, stems=stems, latency=latency, hop=hop, gains=gains, provider=provider,
                     threads=threads).separate_file(input, output, channels=channels, format=format,
                                                    subtype=subtype, mix=mix, progress=progress)
