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
from collections.abc import Sequence
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
FRONTENDS = ("none", "learned")  # the fast kind's; the quality kind's is its STFT
INIT_KINDS = ("none", "spleeter", "checkpoint")
LOSSES = ("mae", "nmae", "mse", "sdr", "si-sdr", "mrstft")
STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(UserError):
    """A training configuration that cannot work; the message names the key."""


@dataclass
class FastModelConfig:
    """``[model.fast]``: the fast model's design, a U-Net on the waveform (training/models/fast.py)."""

    depth: int = 6                # strided encoder levels
    filters: int = 16             # filters of the first level, doubled per level...
    max_filters: int = 512        # ...up to this cap
    kernel_size: int = 15
    stride: int = 2               # per level; the total stride is frontend hop * stride ** depth
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

    @property
    def length_multiple(self) -> int:
        return (self.frontend_kernel // 2 if self.frontend == "learned" else 1) * self.stride ** self.depth


@dataclass
class QualityModelConfig:
    """``[model.quality]``: the quality model's design, Spleeter-layout U-Nets on STFT magnitudes
    (training/models/quality.py); near.toml's student is a smaller one."""

    n_fft: int = 4096             # the runtime computes this STFT (metadata ``frontend``)...
    stft_hop: int = 1024
    bins: int = 1024              # ...of which the U-Nets see the lowest bins (Spleeter: 1024, to 11 kHz)
    depth: int = 6                # stride-2 Conv2D levels over time and frequency
    filters: int = 16
    max_filters: int = 512
    kernel_size: int = 5
    dropout: float = 0.5
    dropout_stages: int = 3

    @property
    def length_multiple(self) -> int:
        return self.stft_hop * 2 ** self.depth


MODEL_KINDS: dict[str, type] = {"fast": FastModelConfig, "quality": QualityModelConfig}


@dataclass
class ModelConfig:
    """The stems and exactly one model kind's section: ``[model.fast]`` (the default) or ``[model.quality]``."""

    stems: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    fast: FastModelConfig | None = field(default_factory=FastModelConfig)
    quality: QualityModelConfig | None = None

    @property
    def kind(self) -> str:
        return "quality" if self.quality is not None else "fast"

    @property
    def design(self) -> FastModelConfig | QualityModelConfig:
        """The kind's section."""
        design = self.quality if self.quality is not None else self.fast
        assert design is not None  # _build_model sets exactly one
        return design

    def stft_geometry(self) -> StftGeometry | None:
        """The STFT the runtime computes for a quality-kind model (its metadata ``frontend``), else None."""
        q = self.quality
        return StftGeometry(q.n_fft, q.stft_hop, q.bins) if q is not None else None

    @property
    def length_multiple(self) -> int:
        """The U-Net's total stride: input lengths must be multiples of it."""
        return self.design.length_multiple

    def architecture(self) -> dict:
        """The design in the flat vocabulary of the ``architecture`` metadata the bundled models carry
        (``frontend`` "learned"/"none" for the fast kind, "stft" with stride 2 for the quality kind)."""
        flat = {"stems": list(self.stems), **dataclasses.asdict(self.design)}
        if self.quality is not None:
            flat.update(frontend="stft", stride=2)
        return flat


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


@dataclass
class InitFromConfig:
    """``[init_from]``: where a new run's weights start (a resumed run starts from its checkpoint)."""

    kind: str = "none"  # "none": random; "spleeter": Spleeter's 2-stem U-Nets (quality kind);
                        # "checkpoint": the best.keras at ``path`` (fine-tuning a model with the same layers)
    path: str = ""


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: InitFromConfig = field(default_factory=InitFromConfig)

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
            extra={"architecture": json.dumps(self.model.architecture(), sort_keys=True)},
            frontend=self.model.stft_geometry(),
        )

    def loss_region(self) -> tuple[int, int]:
        return self.model_info().loss_region()

    def validate(self) -> Config:
        m, s, t, a, init = self.model, self.streaming, self.train, self.augment, self.init_from
        _check(len(m.stems) >= 1 and len(set(m.stems)) == len(m.stems), "model.stems must list distinct stems")
        unknown = [x for x in m.stems if x not in KNOWN_STEMS]
        _check(not unknown, f"model.stems: unknown stem {unknown[:1]}; choose from {', '.join(KNOWN_STEMS)}")
        if m.fast is not None:
            _validate_fast(m.fast)
        if m.quality is not None:
            _validate_quality(m.quality)
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
        _check(init.kind in INIT_KINDS, f"init_from.kind must be one of {', '.join(INIT_KINDS)}")
        _check((init.kind == "checkpoint") == bool(init.path),
               "init_from.path names the best.keras of a kind = \"checkpoint\" start, and only of that")
        _check(init.kind != "spleeter" or m.kind == "quality",
               "init_from.kind = \"spleeter\" needs a [model.quality] model (Spleeter's U-Net layout)")
        return self


def _validate_fast(f: FastModelConfig) -> None:
    _check(f.mask in MASKS, f"model.fast.mask must be one of {', '.join(MASKS)}")
    _check(f.head_filters >= 0 and f.head_kernel >= 1,
           "model.fast.head_filters must be >= 0, model.fast.head_kernel >= 1")
    _check(f.mask_overshoot >= 0, "model.fast.mask_overshoot must be >= 0")
    _check(f.frontend in FRONTENDS, f"model.fast.frontend must be one of {', '.join(FRONTENDS)}")
    _check(f.frontend != "learned" or (f.frontend_kernel >= 2 and f.frontend_kernel % 2 == 0),
           "model.fast.frontend_kernel must be an even number >= 2 (its hop is half of it)")
    for key in ("depth", "filters", "max_filters", "kernel_size", "stride", "frontend_filters"):
        _check(getattr(f, key) >= 1, f"model.fast.{key} must be at least 1")
    _check(f.stride >= 2, "model.fast.stride must be at least 2")
    _check(0 <= f.dropout < 1, "model.fast.dropout must be in [0, 1)")


def _validate_quality(q: QualityModelConfig) -> None:
    for key in ("depth", "filters", "max_filters", "kernel_size"):
        _check(getattr(q, key) >= 1, f"model.quality.{key} must be at least 1")
    try:
        StftGeometry(q.n_fft, q.stft_hop, q.bins).validate("model")
    except ModelFormatError as exc:
        raise ConfigError(f"config: {exc}".replace("model: frontend", "model.quality.n_fft/stft_hop/bins:")) from None
    _check(q.bins % 2 ** q.depth == 0, f"model.quality.bins must be a multiple of 2 ** depth = {2 ** q.depth}")
    _check(0 <= q.dropout < 1, "model.quality.dropout must be in [0, 1)")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"config: {message}")


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML config (None = the built-in defaults), apply ``section.key=value`` overrides, validate."""
    data: dict = _read(Path(path)) if path is not None else {}
    for item in overrides:
        _apply_override(data, item)
    where = str(path or "config")
    return _build(Config, _migrate(data, where), where).validate()


def _read(path: Path, including: tuple[Path, ...] = ()) -> dict:
    """A TOML file's tables; ``extends = "OTHER.toml"`` (beside it) reads that file first and lays this one
    over it, table by table, so a recipe holds only what differs from the design it builds on."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (see training/configs/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends must name a TOML file, e.g. extends = \"default.toml\"")
    base_path = path.parent / base
    if base_path.resolve() in including or base_path.resolve() == path.resolve():
        raise ConfigError(f"{path}: extends {base!r} includes itself")
    return _merge(_read(base_path, (*including, path.resolve())), data)


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


# The [model] keys before issue 30 (one flat table for every architecture, ``frontend`` choosing the builder).
_STREAM_KEYS = ("time_kernel", "units", "gate_skips", "skip_dropout", "skip_dropout_together", "warmup_frames")
_FLAT_MODEL_KEYS = {f.name for cls in MODEL_KINDS.values() for f in dataclasses.fields(cls)} | {*_STREAM_KEYS}


def _migrate(data: dict, where: str) -> dict:
    """A config in the layout before issue 30 (a flat ``[model]`` table, ``train.init_from = "..."``), e.g. an
    older run's config.toml, read with the same meaning: the keys its builder read move to the kind's
    section, the keys it ignored are dropped. A streaming U-Net config is refused (its code is elsewhere)."""
    model, train = data.get("model"), data.get("train")
    flat = (isinstance(model, dict) and not any(kind in model for kind in MODEL_KINDS)
            and any(key in _FLAT_MODEL_KEYS for key in model))
    old_init = isinstance(train, dict) and "init_from" in train
    if not (flat or old_init):
        return data
    data = dict(data)
    read_as = []
    if flat:
        assert isinstance(model, dict)
        model = dict(model)
        frontend = model.pop("frontend", "learned")
        if frontend == "stream":
            raise ConfigError(f"{where}: model.frontend = \"stream\" is the streaming U-Net, whose training code "
                              "is on branch experiments/streaming-unet (docs/experiments.md)")
        kind = "quality" if frontend == "stft" else "fast"
        if kind == "quality" and model.pop("stride", 2) != 2:
            raise ConfigError(f"{where}: model.stride must be 2 for an stft model (Spleeter's layout)")
        if kind == "fast":
            model["frontend"] = frontend
        section = {key: model.pop(key) for key in list(model) if key in _keys(MODEL_KINDS[kind])}
        for key in [key for key in model if key in _FLAT_MODEL_KEYS]:
            del model[key]  # a key this kind's builder never read
        model[kind] = section
        data["model"] = model
        read_as.append(f"[model.{kind}]")
    if old_init:
        assert isinstance(train, dict)
        train = dict(train)
        source = train.pop("init_from")
        if "init_from" in data:
            raise ConfigError(f"{where}: give [init_from] only (train.init_from is its old spelling)")
        data["init_from"] = ({"kind": "none"} if source == "" else {"kind": "spleeter"} if source == "spleeter"
                             else {"kind": "checkpoint", "path": source})
        data["train"] = train
        read_as.append(f"[init_from] kind = {data['init_from']['kind']!r}")
    print(f"note: {where}: read in the layout before issue 30 as {' and '.join(read_as)} "
          "(see training/configs/ for the current layout)", file=sys.stderr)
    return data


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


def _keys(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _build_model(data, where: str) -> ModelConfig:
    """``[model]``: ``stems`` and one kind's section, whose keys are those that kind's builder reads."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in data:
        if key != "stems" and key not in MODEL_KINDS:
            owners = [f"[model.{k}]" for k, cls in MODEL_KINDS.items() if key in _keys(cls)]
            place = f"it belongs in {' or '.join(owners)}" if owners else f"known: stems, {', '.join(MODEL_KINDS)}"
            raise ConfigError(f"{where}: unknown key {key!r} ({place})")
    kinds = [kind for kind in MODEL_KINDS if kind in data]
    if len(kinds) > 1:
        raise ConfigError(f"{where}: give one model kind's section, not {' and '.join(f'[model.{k}]' for k in kinds)}")
    kind = kinds[0] if kinds else "fast"
    sections: dict = dict.fromkeys(MODEL_KINDS)
    section = data.get(kind, {})
    if isinstance(section, dict):
        for key in section:
            owners = [k for k, cls in MODEL_KINDS.items() if k != kind and key in _keys(cls)]
            if owners and key not in _keys(MODEL_KINDS[kind]):
                raise ConfigError(f"{where}.{kind}: {key!r} is not read by the {kind} model "
                                  f"(a [model.{owners[0]}] key)")
    sections[kind] = _build(MODEL_KINDS[kind], section, f"{where}.{kind}")
    stems = _convert(tuple[str, ...], data["stems"], f"{where}: stems") if "stems" in data else ModelConfig.stems
    return ModelConfig(stems=stems, **sections)


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is ModelConfig:
        return _build_model(value, where)
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
        if obj is None:  # the model kinds not chosen
            return
        scalars = {k: v for k, v in _items(obj)
                   if not isinstance(v, dict) and not dataclasses.is_dataclass(v) and v is not None}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        lines.append("")
        for k, v in _items(obj):
            if isinstance(v, dict) or dataclasses.is_dataclass(v) or v is None:
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
