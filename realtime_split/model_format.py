"""The model contract shared by training, export and the runtime.

One ONNX file per model. Input ``mix``: float32 ``[batch, 2, time]`` (stereo
waveform at the model's sample rate). Output ``stems``: float32
``[batch, n_stems, 2, time]`` in the order named by the metadata. ``time`` must
be a multiple of ``length_multiple``.

Everything the runtime needs to stream the model lives in the file's
``metadata_props`` under the ``realtime_split.`` prefix, so the runtime
hard-codes no geometry. docs/model-format.md is the prose version of this module.
This module must stay free of TensorFlow and of the ``onnx`` package: training
and export import it, the runtime reads metadata through ONNX Runtime.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from .errors import ModelFormatError

FORMAT_VERSION = 4
# Version 2 added the optional ``frontend`` (spectral models); version 3 the low-delay STFT window
# and ``state`` (stateful models: tensors carried from hop to hop); version 4 ``native_rates`` (device
# rates the network runs at directly, skipping the resampler's delay in live audio).
READABLE_VERSIONS = ("1", "2", "3", "4")
PREFIX = "realtime_split."
INPUT_NAME = "mix"
OUTPUT_NAME = "stems"
MASK_INPUT = "magnitude"  # spectral models: [batch, 2, frames, bins] STFT magnitudes ...
MASK_OUTPUT = "masks"  # ... -> [batch, n_stems, 2, frames, bins] masks
PRESET_NAMES = ("low", "balanced", "near", "quality")  # near: <= 100 ms (issue 29)
OFFLINE = "offline"
KNOWN_STEMS = ("vocals", "drums", "bass", "other", "accompaniment")


@dataclass(frozen=True)
class Geometry:
    """How one model run maps onto the stream (all lengths in model samples).

    Every ``hop`` new input samples the model runs on the latest ``window``
    samples. The window is ``context | hop + crossfade | lookahead``: the region
    of ``hop + crossfade`` samples after the past ``context`` is kept and
    overlap-added, its first and last ``crossfade`` samples faded against the
    neighbouring runs. A sample is final once the run that sees ``lookahead``
    samples past its region's fade-out has happened, so the algorithmic latency
    is ``hop + crossfade + lookahead``.
    """

    window: int
    hop: int
    crossfade: int
    lookahead: int

    @property
    def context(self) -> int:
        return self.window - self.hop - self.crossfade - self.lookahead

    @property
    def latency(self) -> int:
        return self.hop + self.crossfade + self.lookahead

    @property
    def keep_start(self) -> int:
        """Index in the window of the first kept sample."""
        return self.context

    @property
    def keep_length(self) -> int:
        return self.hop + self.crossfade

    def validate(self, length_multiple: int = 1, where: str = "geometry") -> Geometry:
        for name in ("window", "hop", "crossfade", "lookahead"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ModelFormatError(f"{where}: {name} must be a non-negative integer, got {value!r}")
        if self.hop < 1:
            raise ModelFormatError(f"{where}: hop must be at least 1 sample")
        if self.crossfade > self.hop:
            raise ModelFormatError(f"{where}: crossfade ({self.crossfade}) must not exceed hop ({self.hop})")
        if self.context < 0:
            raise ModelFormatError(
                f"{where}: hop + crossfade + lookahead ({self.latency}) exceeds the window ({self.window}); "
                "use a smaller hop"
            )
        if length_multiple > 1 and self.window % length_multiple:
            raise ModelFormatError(f"{where}: window {self.window} is not a multiple of {length_multiple}")
        return self

    def with_hop(self, hop: int) -> Geometry:
        """The same window and lookahead with another hop (for an explicit ``--hop``)."""
        return Geometry(self.window, hop, min(self.crossfade, hop), self.lookahead)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Geometry:
        try:
            return cls(
                window=int(data["window"]),
                hop=int(data["hop"]),
                crossfade=int(data["crossfade"]),
                lookahead=int(data["lookahead"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: needs integer window, hop, crossfade and lookahead ({exc})") from None


WINDOWS = ("hann", "lowdelay")


@dataclass(frozen=True)
class StftGeometry:
    """The STFT of a spectral model (metadata key ``frontend``); the runtime computes it (spectral.py).

    ``window`` "hann" (centered frames): frame ``f`` of a window covers samples
    ``[f * hop - pad, f * hop - pad + n_fft)``, ``pad = (n_fft - hop) / 2``, zeros outside the window:
    a window of ``W`` samples has ``W / hop`` frames. Periodic Hann analysis and synthesis windows.

    ``window`` "lowdelay" (causal frames, stateful models): frame ``j`` of a stream ends at sample
    ``(j + 1) * hop`` and covers the ``n_fft`` samples before it (zeros before the stream). The
    analysis window rises over ``n_fft - hop`` samples and falls over the last ``hop``; the
    synthesis window is zero except on the last ``synthesis = 2 * hop`` samples, and the two
    multiply to a Hann window of ``2 * hop`` samples that overlap-adds to one. The analysis sees
    ``n_fft`` samples of the past while a sample waits only ``synthesis`` samples for its output
    (Mauler and Martin 2007; Wang et al. 2022, "STFT-domain neural speech enhancement with very
    low algorithmic latency").
    """

    n_fft: int = 4096
    hop: int = 1024
    bins: int = 1024  # the model sees bins [0, bins); above, each stem's mask is its mean over them
    type: str = "stft"
    window: str = "hann"
    synthesis: int = 0  # "lowdelay" only: the synthesis window's nonzero length, 2 * hop

    @property
    def pad(self) -> int:
        return (self.n_fft - self.hop) // 2

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def window_function(self):
        """The periodic Hann window as float32 numpy (imported here: this module stays light)."""
        import numpy as np

        n = np.arange(self.n_fft)
        return (0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)).astype(np.float32)

    def lowdelay_windows(self):
        """(analysis, synthesis) float32 numpy windows of a "lowdelay" frontend (see the class docstring)."""
        import numpy as np

        n, h = self.n_fft, self.hop
        rise = np.sin(0.5 * np.pi * (np.arange(n - h) + 0.5) / (n - h))
        half = (np.arange(h) + 0.5) / h
        fall = np.cos(0.5 * np.pi * half)
        analysis = np.concatenate([rise, fall])
        synthesis = np.zeros(n)
        synthesis[n - 2 * h:n - h] = np.sin(0.5 * np.pi * half) ** 2 / analysis[n - 2 * h:n - h]
        synthesis[n - h:] = fall
        return analysis.astype(np.float32), synthesis.astype(np.float32)

    def stateful_geometry(self, hop: int) -> Geometry:
        """A stateful model's run of ``hop`` samples (whole frames): its new frames and the analysis
        window's past, no crossfade (the synthesis windows overlap-add), lookahead the synthesis tail."""
        return Geometry(self.n_fft + hop - self.hop, hop, 0, self.synthesis - self.hop)

    def to_json(self) -> str:
        data = asdict(self)
        if self.window == "hann":
            del data["synthesis"]  # version 2 readers know only these keys
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> StftGeometry:
        try:
            data = json.loads(text)
            geometry = cls(n_fft=int(data["n_fft"]), hop=int(data["hop"]), bins=int(data["bins"]),
                           type=str(data.get("type", "stft")), window=str(data.get("window", "hann")),
                           synthesis=int(data.get("synthesis", 0)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{source}: metadata 'frontend' must be a JSON object with integer n_fft, "
                                   f"hop and bins ({exc})") from None
        return geometry.validate(source)

    def validate(self, source: str) -> StftGeometry:
        if self.type != "stft" or self.window not in WINDOWS:
            raise ModelFormatError(f"{source}: frontend {self.type!r} with window {self.window!r} is not "
                                   f"supported (this realtime-split runs type 'stft', window {' or '.join(WINDOWS)})")
        if self.n_fft < 2 or self.n_fft % 2 or not 0 < self.hop <= self.n_fft or (self.n_fft - self.hop) % 2:
            raise ModelFormatError(f"{source}: frontend needs an even n_fft and 0 < hop <= n_fft with "
                                   f"n_fft - hop even, got n_fft {self.n_fft}, hop {self.hop}")
        if self.window == "lowdelay" and (self.synthesis != 2 * self.hop or self.n_fft < 2 * self.hop):
            raise ModelFormatError(f"{source}: a lowdelay frontend needs synthesis = 2 * hop <= n_fft, got "
                                   f"n_fft {self.n_fft}, hop {self.hop}, synthesis {self.synthesis}")
        if not 0 < self.bins <= self.n_freq:
            raise ModelFormatError(f"{source}: frontend bins must be in 1..{self.n_freq}, got {self.bins}")
        return self


@dataclass(frozen=True)
class StateTensor:
    """One tensor a stateful model carries from run to run (metadata key ``state``, a JSON list of these).

    The graph takes it as input ``input`` ``[batch, *shape]`` and gives its next value as output
    ``output``; the runtime feeds ``init`` (every element) at the start of a stream and after a reset.
    """

    input: str
    output: str
    shape: tuple[int, ...]
    init: float = 0.0

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "shape": list(self.shape), "init": self.init}


def state_from_json(text: str, source: str) -> tuple[StateTensor, ...]:
    try:
        items = json.loads(text)
        if not isinstance(items, list) or not items:
            raise TypeError("not a non-empty list")
        state = tuple(StateTensor(str(i["input"]), str(i["output"]), tuple(int(d) for d in i["shape"]),
                                  float(i.get("init", 0.0))) for i in items)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{source}: metadata 'state' must be a JSON list of objects with input, output "
                               f"and shape ({exc})") from None
    names = [n for t in state for n in (t.input, t.output)]
    if len(set(names)) != len(names) or set(names) & {MASK_INPUT, MASK_OUTPUT}:
        raise ModelFormatError(f"{source}: metadata 'state' names must be distinct and not "
                               f"{MASK_INPUT!r}/{MASK_OUTPUT!r}")
    if any(d < 1 for t in state for d in t.shape):
        raise ModelFormatError(f"{source}: metadata 'state' shapes must be positive")
    return state


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime knows about a model, read from its metadata."""

    sample_rate: int
    stems: tuple[str, ...]
    length_multiple: int
    presets: dict[str, Geometry]
    default_preset: str = "balanced"
    channels: int = 2
    name: str = ""
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    frontend: StftGeometry | None = None  # None: waveform in, stems out; else magnitudes in, masks out
    state: tuple[StateTensor, ...] = ()  # a stateful model's carried tensors (needs a lowdelay frontend)
    native_rates: tuple[int, ...] = ()  # other rates the network runs at unresampled, lengths in samples alike

    def geometry(self, preset: str | None = None, hop: int | None = None) -> Geometry:
        """The geometry for a preset name (``low``/``balanced``/``quality``/``offline``) or an explicit hop."""
        preset = preset or self.default_preset
        if preset not in self.presets:
            raise ModelFormatError(
                f"unknown latency preset {preset!r}; choose one of {', '.join(self.presets)}"
            )
        geometry = self.presets[preset]
        if hop is not None and self.state and self.frontend is not None:  # whole frames per run
            f = self.frontend
            if int(hop) < f.hop or int(hop) % f.hop:
                raise ModelFormatError(f"hop {hop} does not fit this stateful model: it runs whole STFT frames, "
                                       f"so the hop must be a multiple of {f.hop}")
            return f.stateful_geometry(int(hop))
        if hop is not None:
            geometry = geometry.with_hop(int(hop)).validate(self.length_multiple, where=f"hop={hop}")
        return geometry

    def loss_region(self) -> tuple[int, int]:
        """Indices ``[start, stop)`` of the longest window covered by some preset's kept region.

        Training puts its loss here, so the network is trained on exactly the
        samples the runtime keeps. A preset with a shorter window counts at the
        end of the longest one: its lookahead, not its past, places its region.
        """
        longest = max(g.window for g in self.presets.values())
        start = min(longest - g.window + g.keep_start for g in self.presets.values())
        stop = max(longest - g.window + g.keep_start + g.keep_length for g in self.presets.values())
        return start, stop

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entries (string to string) that describe this model."""
        props = {
            "format_version": str(FORMAT_VERSION),
            "sample_rate": str(self.sample_rate),
            "channels": str(self.channels),
            "stems": ",".join(self.stems),
            "length_multiple": str(self.length_multiple),
            "presets": json.dumps({k: asdict(v) for k, v in self.presets.items()}, sort_keys=True),
            "default_preset": self.default_preset,
            "name": self.name,
            "description": self.description,
        }
        if self.frontend is not None:
            props["frontend"] = self.frontend.to_json()
        if self.state:
            props["state"] = json.dumps([t.to_dict() for t in self.state])
        if self.native_rates:
            props["native_rates"] = ",".join(str(r) for r in self.native_rates)
        props.update(self.extra)
        return {PREFIX + k: v for k, v in props.items()}


def _require(props: dict[str, str], key: str, source: str) -> str:
    value = props.get(PREFIX + key)
    if value is None or value == "":
        raise ModelFormatError(
            f"{source}: metadata key {PREFIX + key!r} is missing; "
            "is this a realtime-split model? export it with `python -m export` (see docs/model-format.md)"
        )
    return value


def _parse(props: dict[str, str], key: str, convert, expected: str, source: str, default: str | None = None):
    """The metadata value ``key`` through ``convert``; a missing one (without a ``default``) or one that does not
    convert is a ``ModelFormatError`` naming the key and what it should hold."""
    text = props.get(PREFIX + key, default)
    if text is None or (text == "" and default is None):
        text = _require(props, key, source)
    try:
        return convert(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise ModelFormatError(f"{source}: metadata key {PREFIX + key!r} must be {expected}, found {text!r} "
                               f"({exc})") from None


def parse_metadata(props: dict[str, str], source: str = "model") -> ModelInfo:
    """Validate ``metadata_props`` and build a :class:`ModelInfo`, or raise ModelFormatError."""
    version = _require(props, "format_version", source)
    if version not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{source}: model format version {version} is not supported (this realtime-split reads "
            f"versions {', '.join(READABLE_VERSIONS)}); re-export the model or upgrade realtime-split"
        )
    sample_rate = _parse(props, "sample_rate", int, "a whole number of Hz", source)
    channels = _parse(props, "channels", int, "2", source, default="2")
    length_multiple = _parse(props, "length_multiple", int, "a whole number of samples", source)
    presets_raw = _parse(props, "presets", json.loads, "a JSON object of geometries", source)
    if sample_rate <= 0 or length_multiple <= 0 or channels != 2:
        raise ModelFormatError(f"{source}: sample_rate and length_multiple must be positive and channels 2")
    if PREFIX + "stems" not in props:
        _require(props, "stems", source)
    stems = tuple(s.strip() for s in props[PREFIX + "stems"].split(",") if s.strip())
    if not stems or len(set(stems)) != len(stems):
        raise ModelFormatError(f"{source}: metadata 'stems' must list distinct stem names, e.g. "
                               f"'vocals,drums,bass,other'; found {props[PREFIX + 'stems']!r}")
    if not isinstance(presets_raw, dict) or not presets_raw:
        raise ModelFormatError(f"{source}: metadata 'presets' must be a JSON object of geometries")
    presets = {
        name: Geometry.from_dict(g, f"{source}: preset {name!r}").validate(
            length_multiple, where=f"{source}: preset {name!r}"
        )
        for name, g in presets_raw.items()
    }
    frontend = None
    if props.get(PREFIX + "frontend"):
        if version == "1":
            raise ModelFormatError(f"{source}: metadata 'frontend' needs format_version 2 (found 1); "
                                   "re-export the model")
        frontend = StftGeometry.from_json(props[PREFIX + "frontend"], source)
        if length_multiple % frontend.hop:
            raise ModelFormatError(f"{source}: length_multiple {length_multiple} is not a multiple of the "
                                   f"frontend hop {frontend.hop}")
    if frontend is not None and frontend.window != "hann" and version == "2":
        raise ModelFormatError(f"{source}: frontend window {frontend.window!r} needs format_version 3 (found 2); "
                               "re-export the model")
    state: tuple[StateTensor, ...] = ()
    if props.get(PREFIX + "state"):
        if version in ("1", "2") or frontend is None or frontend.window != "lowdelay":
            raise ModelFormatError(f"{source}: metadata 'state' needs format_version 3 and a 'lowdelay' "
                                   "frontend; re-export the model")
        state = state_from_json(props[PREFIX + "state"], source)
        for name, g in presets.items():
            want = frontend.stateful_geometry(g.hop)
            if g.hop % frontend.hop or g != want:
                raise ModelFormatError(f"{source}: preset {name!r} of a stateful model must be {want} "
                                       f"(a whole number of frames per run), got {g}")
    native_rates = _native_rates(props, version, sample_rate, source)
    default = props.get(PREFIX + "default_preset") or "balanced"
    if default not in presets:
        raise ModelFormatError(f"{source}: default preset {default!r} is not among the presets")
    known = {PREFIX + k for k in ("format_version", "sample_rate", "channels", "stems", "length_multiple",
                                   "presets", "default_preset", "name", "description", "frontend", "state",
                                   "native_rates")}
    extra = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX) and k not in known}
    return ModelInfo(
        sample_rate=sample_rate,
        stems=stems,
        length_multiple=length_multiple,
        presets=presets,
        default_preset=default,
        channels=channels,
        name=props.get(PREFIX + "name", ""),
        description=props.get(PREFIX + "description", ""),
        extra=extra,
        frontend=frontend,
        state=state,
        native_rates=native_rates,
    )


def _native_rates(props: dict[str, str], version: str, sample_rate: int, source: str) -> tuple[int, ...]:
    """Version 4's ``native_rates``: comma-separated rates, none of them the model's own."""
    raw = props.get(PREFIX + "native_rates", "")
    if not raw:
        return ()
    if version in ("1", "2", "3"):
        raise ModelFormatError(f"{source}: metadata 'native_rates' needs format_version 4 (found {version}); "
                               "re-export the model")
    try:
        rates = tuple(int(r) for r in raw.split(","))
    except ValueError:
        raise ModelFormatError(f"{source}: metadata 'native_rates' must be comma-separated rates in Hz, "
                               f"got {raw!r}") from None
    if any(r <= 0 or r == sample_rate for r in rates) or len(set(rates)) != len(rates):
        raise ModelFormatError(f"{source}: metadata 'native_rates' must list distinct positive rates other than "
                               f"sample_rate {sample_rate}, got {raw!r}")
    return rates


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return int(math.floor(ms * sample_rate / 1000.0))
