"""The models bundled with the package, in ``realtime_split/models/``, each named by its file stem.

Two ship: ``fast`` (the low-latency waveform model: presets low, balanced, quality, offline) and
``quality`` (a slower spectral model that separates better: presets quality and offline only). A
build may lack ``quality``; then everything falls back to ``fast``. Which model serves a request
when the user names none is decided here, once, for the command line and the library alike.

Every function takes an optional ``directory`` (default: the package's models folder) so tests can
point it at a folder of their own. Nothing here imports ONNX Runtime until a model's metadata is read,
so the command line's help and error paths stay quick.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFormatError, ParameterError
from .model_format import OFFLINE, Geometry, ModelInfo, parse_metadata

MODELS_DIR = Path(__file__).resolve().parent / "models"
SUFFIX = ".onnx"
FAST = "fast"
QUALITY = "quality"
# Presets the quality model serves better than the fast one; the others (low, balanced) need the fast one.
QUALITY_PRESETS = ("quality", OFFLINE)


@dataclass(frozen=True)
class BundledModel:
    """One bundled model: its name (file stem), its file and what its metadata says."""

    name: str
    path: Path
    info: ModelInfo

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _folder(directory: str | os.PathLike | None) -> Path:
    return MODELS_DIR if directory is None else Path(directory)


def bundled_names(directory: str | os.PathLike | None = None) -> list[str]:
    """The bundled model names, sorted, without opening any file: for help texts and error messages."""
    folder = _folder(directory)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if p.is_file())


def _listing(directory: str | os.PathLike | None) -> str:
    return f"bundled: {', '.join(bundled_names(directory)) or 'none'}"


def read_info(path: str | os.PathLike) -> ModelInfo:
    """A model's metadata without preparing it to run (no graph optimization), so listing models stays cheap."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{str(path)!r} is not a readable ONNX model ({reason}); reinstall realtime-split "
                               "or remove the file") from None
    return parse_metadata(dict(session.get_modelmeta().custom_metadata_map), source=str(path))


def bundled_models(directory: str | os.PathLike | None = None) -> list[BundledModel]:
    """Every bundled model with its metadata, sorted by name: what ``--list-models`` shows."""
    folder = _folder(directory)
    return [BundledModel(name, folder / f"{name}{SUFFIX}", read_info(folder / f"{name}{SUFFIX}"))
            for name in bundled_names(folder)]


def resolve_model(name_or_path: str | os.PathLike, directory: str | os.PathLike | None = None) -> Path:
    """The file behind ``model=``: a bundled name (``fast``) or the path of an existing model file.

    A bundled name wins over a same-named file in the current folder, so ``model="fast"`` always
    means the shipped model. Anything else is a ``ParameterError`` that lists the bundled names.
    """
    text = os.fspath(name_or_path)
    if text in bundled_names(directory):
        return _folder(directory) / f"{text}{SUFFIX}"
    if not text:
        raise ParameterError(f"the model name is empty; pass a bundled name or a .onnx file ({_listing(directory)})",
                             "model")
    path = Path(text)
    try:
        if path.is_file():
            return path
        if path.is_dir():
            raise ParameterError(f"model {text!r} is a directory, not a model file; pass a .onnx file in it or a "
                                 f"bundled name ({_listing(directory)})", "model")
    except OSError as exc:  # a name over 255 bytes, a path too deep to look up
        raise ParameterError(f"model {text!r} cannot be looked up ({exc.strerror}); pass a shorter path to the "
                             f".onnx file or a bundled name ({_listing(directory)})", "model") from None
    raise ParameterError(f"model {text!r} not found: not a file and not a bundled model ({_listing(directory)})",
                         "model")


def default_model(preset: str | None, directory: str | os.PathLike | None = None) -> Path:
    """The bundled model that serves ``preset`` when the user names no model.

    ``quality`` and ``offline`` get the quality model when it is bundled: it separates better and
    has those presets. ``low``, ``balanced`` and None (= balanced) get the fast model, the only one
    that streams that quickly. Any other name goes to the fast model, whose error lists its presets.
    """
    folder = _folder(directory)
    quality = folder / f"{QUALITY}{SUFFIX}"
    if preset in QUALITY_PRESETS and quality.is_file():
        return quality
    fast = folder / f"{FAST}{SUFFIX}"
    if not fast.is_file():
        raise ParameterError(f"no bundled default model in this build (no {fast.name} in {folder}; "
                             f"{_listing(folder)}); pass model='PATH.onnx', an exported model file", "model")
    return fast


def is_bundled(path: str | os.PathLike, name: str, directory: str | os.PathLike | None = None) -> bool:
    """Whether ``path`` is the bundled model ``name`` (so an error does not suggest the model in use)."""
    bundled = _folder(directory) / f"{name}{SUFFIX}"
    return bundled.is_file() and Path(path).resolve() == bundled.resolve()


def by_latency(info: ModelInfo) -> list[tuple[str, Geometry]]:
    """A model's presets from the shortest latency to the longest (the metadata keeps them sorted by name)."""
    return sorted(info.presets.items(), key=lambda item: (item[1].latency, item[0]))


def describe(model: BundledModel) -> str:
    """The ``--list-models`` block of one model: what it is, its stems, presets with their latency, size, scores."""
    info = model.info
    presets = ", ".join(
        f"{name} {1000 * g.latency / info.sample_rate:.1f} ms" + (" (default)" if name == info.default_preset else "")
        for name, g in by_latency(info))
    lines = [f"{model.name}" + (f" ({info.name})" if info.name else ""),
             f"  {info.description or 'no description'}",
             f"  stems: {', '.join(info.stems)} at {info.sample_rate} Hz" + _native_note(info),
             f"  presets: {presets}",
             f"  size: {model.size_bytes / 1e6:.1f} MB ({model.path})"]
    lines += [f"  {line}" for line in _score_lines(info.extra.get("scores"))]
    return "\n".join(lines)


def _native_note(info: ModelInfo) -> str:
    if not info.native_rates:
        return ""
    rates = " and ".join(f"{r} Hz" for r in info.native_rates)
    return f" (live and streamed audio at {rates}: unresampled, so the same samples take less time)"


def score(value) -> str:
    """A stamped SDR as ``--list-models`` shows it (one decimal, Python's rounding); the README quotes these."""
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _score_lines(text: str | None) -> list[str]:
    """Median SDR per preset from the metadata key ``scores`` (``{"offline": {"vocals": 7.1, ...}}``)."""
    if not text:
        return []
    try:
        scores = json.loads(text)
    except json.JSONDecodeError:
        scores = None
    if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
        return ["median SDR: unreadable (metadata 'scores' is not a JSON object of presets)"]

    return [f"median SDR at {preset}: " + ", ".join(f"{stem} {score(v)} dB" for stem, v in stems.items())
            for preset, stems in scores.items()]
