"""The one configuration object of a training run: architecture, streaming geometry, data, augmentation, training.

Loaded from a TOML file (``training/configs/*.toml``) plus command-line
overrides (``--set train.epochs=5``). The ``streaming`` part becomes the
``ModelInfo`` that export writes into the ONNX metadata, so the runtime streams
the model with exactly the window and kept regions the loss was computed on.
Every run saves its resolved config as ``runs/NAME/config.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

from realtime_split.errors import ModelFormatError, UserError
from realtime_split.model_format import (
    KNOWN_STEMS,
    OFFLINE,
    PRESET_NAMES,
    Geometry,
    ModelInfo,
    StftGeometry,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (declared in the train extra)
    import tomli as tomllib

CONFIG_DIR = Path(__file__).parent / "configs"
MASKS = ("sigmoid", "softmax")
FRONTENDS = ("none", "learned", "stft")
LOSSES = ("mae", "nmae", "mse", "sdr", "si-sdr", "mrstft")
STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(UserError):
    """A training configuration that cannot work; the message names the key."""


@dataclass
class ModelConfig:
    """The U-Net on the raw waveform (see training/model.py)."""

    stems: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    depth: int = 6                # strided encoder levels
    filters: int = 16             # filters of the first level, doubled per level...
    max_filters: int = 512        # ...up to this cap
    kernel_size: int = 15
    stride: int = 2               # per level; the total stride is (frontend hop *) stride ** depth
    dropout: float = 0.5
    dropout_stages: int = 3       # dropout after the first N upsampling stages
    mask: str = "sigmoid"         # "sigmoid": one mask per stem; "softmax": masks sum to 1, stems sum to the mix
    mask_overshoot: float = 0.0   # widen the masks' range to [-a, 1 + (n - 1) a] (softmax) or [-a, 1 + a]
                                  # (sigmoid): per-sample waveform masks inside [0, 1] cap SDR near 6 dB
    head_filters: int = 0         # 0: the last transposed conv gives the mask logits; N: it gives N
                                  # full-rate features that, with the mixture itself, feed a final conv
    head_kernel: int = 5          # kernel of that final full-rate conv
    frontend: str = "learned"     # "learned": Conv-TasNet-like filterbank; "none": the plain waveform U-Net
    frontend_filters: int = 256   # learned filterbank size N
    frontend_kernel: int = 64     # learned filter length L (hop L/2)
    n_fft: int = 4096             # "stft": the quality model's STFT (training/spectral_model.py) ...
    stft_hop: int = 1024
    bins: int = 1024              # ... of which the U-Nets see the lowest bins (Spleeter: 1024, to 11 kHz)

    def stft_geometry(self) -> StftGeometry | None:
        """The STFT the runtime computes for an ``stft`` model (its metadata ``frontend``), else None."""
        return StftGeometry(self.n_fft, self.stft_hop, self.bins) if self.frontend == "stft" else None

    @property
    def length_multiple(self) -> int:
        """The U-Net's total stride: input lengths must be multiples of it."""
        frontend_hop = {"learned": self.frontend_kernel // 2, "stft": self.stft_hop}.get(self.frontend, 1)
        return frontend_hop * self.stride ** self.depth


@dataclass
class PresetConfig:
    """One latency preset. Its window is the training crop (StreamingConfig.window) unless ``window`` names a
    shorter one: the network is fully convolutional, and a live preset that runs every few milliseconds may
    afford less past than the crop holds (the fast model: docs/model-card.md, "Why the live presets run on
    half the window")."""

    hop: int
    crossfade: int
    lookahead: int
    window: int = 0  # 0: streaming.window; else a shorter window (a multiple of the U-Net's total stride)


def _default_presets() -> dict[str, PresetConfig]:
    return {
        "low": PresetConfig(256, 64, 192),
        "balanced": PresetConfig(512, 128, 448),
        "quality": PresetConfig(1024, 256, 1024),
        "offline": PresetConfig(4096, 512, 1792),
    }


@dataclass
class StreamingConfig:
    """How the runtime streams the model: becomes the ONNX metadata (ModelInfo)."""

    sample_rate: int = 44100
    window: int = 8192
    default_preset: str = "balanced"
    name: str = "realtime-split-unet"
    description: str = "Waveform U-Net separating vocals, drums, bass and other"
    presets: dict[str, PresetConfig] = field(default_factory=_default_presets)


@dataclass
class DataConfig:
    """Where the audio comes from; ``KIND:PATH`` specs as for ``--data``."""

    sources: list[str] = field(default_factory=list)          # trained on their "train" split
    weights: list[float] = field(default_factory=list)        # sampling weight per source (default: equal)
    validation: list[str] = field(default_factory=list)       # default: the "valid" split of the sources
    cache_dir: str = "cache"                                  # decoded float16 audio at the model rate
    validation_windows: int = 256                             # fixed windows scored after every epoch


@dataclass
class AugmentConfig:
    """Random changes to the stems of each training window; the mixture is always their sum."""

    gain_db: tuple[float, float] = (-6.0, 3.0)   # per-stem gain range
    channel_swap: float = 0.5                    # probabilities, per stem...
    polarity: float = 0.5
    mono: float = 0.1
    remix: float = 0.5                           # ...per window: stems from different tracks of one source
    band_limit: float = 0.0                      # per window: low-pass every stem (match a 16 kHz dataset)
    band_limit_hz: float = 8000.0
    speed: float = 0.0                           # per window: play all stems faster or slower (tempo and
    speed_semitones: int = 2                     # pitch together) by whole semitones up to this many
    borrow_vocals: float = 0.0                   # per window: vocals from another source's track (its singing
                                                 # over this source's instruments), window band-limited


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 16
    steps_per_epoch: int = 200
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (decay to 1% over epochs * steps_per_epoch)
    loss: str = "mae"
    seed: int = 0
    deterministic: bool = True     # tf.config.experimental.enable_op_determinism
    strategy: str = "default"      # default | mirrored | multiworker (tf.distribute)
    stem_weights: list[float] = field(default_factory=list)  # training loss weight per model stem, [] = all 1
                                   # (validation stays unweighted, so runs compare); a sum target such as
                                   # accompaniment gets its parts' mean
    freeze_batch_norm: bool = False  # keep batch norm statistics and scales as initialized (fine-tuning)
    init_from: str = ""            # a .keras model whose weights start the run (fine-tuning a model
                                   # with the same layers; "" = random initialization)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def window(self) -> int:
        return self.streaming.window

    def model_info(self) -> ModelInfo:
        """The contract export writes: rate, stems, length multiple and the presets (with their windows)."""
        s = self.streaming
        presets = {
            name: Geometry(p.window or s.window, p.hop, p.crossfade, p.lookahead).validate(
                self.model.length_multiple, where=f"streaming.presets.{name}")
            for name, p in s.presets.items()
        }
        return ModelInfo(
            sample_rate=s.sample_rate,
            stems=tuple(self.model.stems),
            length_multiple=self.model.length_multiple,
            presets=presets,
            default_preset=s.default_preset,
            name=s.name,
            description=s.description,
            extra={"architecture": json.dumps(dataclasses.asdict(self.model), sort_keys=True)},
            frontend=self.model.stft_geometry(),
        )

    def loss_region(self) -> tuple[int, int]:
        return self.model_info().loss_region()

    def validate(self) -> Config:
        m, s, t, a = self.model, self.streaming, self.train, self.augment
        _check(len(m.stems) >= 1 and len(set(m.stems)) == len(m.stems), "model.stems must list distinct stems")
        unknown = [x for x in m.stems if x not in KNOWN_STEMS]
        _check(not unknown, f"model.stems: unknown stem {unknown[:1]}; choose from {', '.join(KNOWN_STEMS)}")
        _check(m.mask in MASKS, f"model.mask must be one of {', '.join(MASKS)}")
        _check(m.head_filters >= 0 and m.head_kernel >= 1, "model.head_filters must be >= 0, model.head_kernel >= 1")
        _check(m.mask_overshoot >= 0, "model.mask_overshoot must be >= 0")
        _check(m.frontend in FRONTENDS, f"model.frontend must be one of {', '.join(FRONTENDS)}")
        _check(m.frontend != "learned" or (m.frontend_kernel >= 2 and m.frontend_kernel % 2 == 0),
               "model.frontend_kernel must be an even number >= 2 (its hop is half of it)")
        for key in ("depth", "filters", "max_filters", "kernel_size", "stride", "frontend_filters"):
            _check(getattr(m, key) >= 1, f"model.{key} must be at least 1")
        _check(m.stride >= 2, "model.stride must be at least 2")
        if m.frontend == "stft":
            _check(m.stride == 2, "model.stride must be 2 for an stft model (Spleeter's layout)")
            try:
                m.stft_geometry().validate("model")
            except ModelFormatError as exc:
                raise ConfigError(f"config: {exc}".replace("model: frontend", "model.n_fft/stft_hop/bins:")) from None
            _check(m.bins % 2 ** m.depth == 0, f"model.bins must be a multiple of 2 ** depth = {2 ** m.depth}")
        _check(0 <= m.dropout < 1, "model.dropout must be in [0, 1)")
        _check(s.sample_rate > 0, "streaming.sample_rate must be positive")
        _check(s.window % m.length_multiple == 0,
               f"streaming.window {s.window} is not a multiple of the U-Net's total stride {m.length_multiple}")
        bad = [n for n in s.presets if n not in PRESET_NAMES + (OFFLINE,)]
        _check(not bad, f"streaming.presets: unknown preset {bad[:1]}; use {', '.join(PRESET_NAMES + (OFFLINE,))}")
        _check(s.default_preset in s.presets, f"streaming.default_preset {s.default_preset!r} is not a preset")
        for name, p in s.presets.items():
            _check(p.window == 0 or 0 < p.window <= s.window,
                   f"streaming.presets.{name}.window {p.window}: give 0 (the training window) or a shorter window "
                   f"up to streaming.window {s.window}")
        try:
            self.model_info()  # validates every preset geometry
        except ModelFormatError as exc:
            raise ConfigError(f"config: {exc}") from None
        _check(t.loss in LOSSES, f"train.loss must be one of {', '.join(LOSSES)}")
        _check(t.strategy in STRATEGIES, f"train.strategy must be one of {', '.join(STRATEGIES)}")
        for key in ("epochs", "batch_size", "steps_per_epoch"):
            _check(getattr(t, key) >= 1, f"train.{key} must be at least 1")
        _check(not t.stem_weights or (len(t.stem_weights) == len(m.stems) and min(t.stem_weights) > 0),
               f"train.stem_weights needs one positive weight per stem ({', '.join(m.stems)}), or [] for all 1")
        _check(t.learning_rate > 0, "train.learning_rate must be positive")
        _check(t.lr_schedule in LR_SCHEDULES, f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
        _check(a.gain_db[0] <= a.gain_db[1], "augment.gain_db must be [low, high]")
        for key in ("channel_swap", "polarity", "mono", "remix", "band_limit", "speed", "borrow_vocals"):
            _check(0 <= getattr(a, key) <= 1, f"augment.{key} is a probability in [0, 1]")
        _check(0 <= a.speed_semitones <= 6, "augment.speed_semitones must be 0..6")
        _check(not self.data.weights or len(self.data.weights) == len(self.data.sources),
               "data.weights needs one weight per data.sources entry")
        _check(all(w > 0 for w in self.data.weights), "data.weights must be positive")
        _check(self.data.validation_windows >= 1, "data.validation_windows must be at least 1")
        return self


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"config: {message}")


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a TOML config (None = the built-in defaults), apply ``section.key=value`` overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found (see training/configs/)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    for item in overrides:
        _apply_override(data, item)
    return _build(Config, data, str(path or "config")).validate()


def _apply_override(data: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=5")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set train.loss=mse
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = value


def _build(cls, data: dict, where: str):
    """A dataclass from TOML data, converting values to the annotated types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    values = {name: _convert(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return origin(_convert(args[0], v, where) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")


def to_toml(config: Config) -> str:
    """The config as TOML that ``load_config`` reads back to an equal Config."""
    lines: list[str] = []

    def table(name: str, obj) -> None:
        scalars = {k: v for k, v in _items(obj) if not isinstance(v, dict) and not dataclasses.is_dataclass(v)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        lines.append("")
        for k, v in _items(obj):
            if isinstance(v, dict) or dataclasses.is_dataclass(v):
                table(f"{name}.{k}", v)

    for f in dataclasses.fields(config):
        table(f.name, getattr(config, f.name))
    return "\n".join(lines)


def _items(obj):
    if isinstance(obj, dict):
        return list(obj.items())
    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


def toml_value(value) -> str:
    """One value as a TOML literal (also used to turn command-line flags into overrides)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
