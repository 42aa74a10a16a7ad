"""``Model``: one loaded ONNX model, shared by every stream that separates with it.

Loading is the expensive part (the quality model is 79 MB; ONNX Runtime optimizes the graph and
``inference.load_model`` runs it once on silence to check its output shapes), so it happens once
here, and ``StreamingSeparator``\\ s at any sample rate and channel count are built from the loaded
model cheaply. This is also where a name becomes a file: ``registry`` turns ``model="fast"`` (or None
and a preset) into a path, so the engine below (``inference.py``, ``separator.py``) takes what it is
given and never looks in the catalogue of bundled models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import limits, registry
from .errors import ParameterError, UserError
from .inference import LoadedModel, load_model, make_runner
from .model_format import Geometry


@dataclass(eq=False)
class Model(LoadedModel):
    """A loaded, checked ONNX model: ``Model.load("quality")`` once, then as many streams as needed
    (``StreamingSeparator(model, sample_rate=48000, channels=1)``, ``Separator(model)``), each cheap.

    ``session`` is the ONNX Runtime session, ``info`` the ``ModelInfo`` its metadata declares,
    ``provider`` the execution provider that runs it, ``path`` the file, ``name`` what it was loaded
    by (a bundled name or the path as given, used in messages), ``threads`` ONNX Runtime's intra-op
    threads (None: the default). Streams share the session: several may run on separate threads,
    since ONNX Runtime's ``run`` may be called concurrently.
    """

    path: Path
    name: str
    threads: int | None
    requested_provider: str = field(default="auto")  # what load() was asked for: "auto", "cpu" or "cuda"

    @classmethod
    def load(cls, model: str | os.PathLike | Model | None = None, provider: str = "auto",
             threads: int | None = None, *, latency: str | None = None) -> Model:
        """Load ``model``: a bundled name (``"fast"``, ``"quality"``), an exported .onnx file, or None for the
        bundled model that serves the preset ``latency`` (``registry.default_model``). ``provider``: ``"auto"``
        (CUDA when available), ``"cpu"`` or ``"cuda"``; ``threads``: ONNX Runtime intra-op threads (None: the
        physical cores, at most 4). A ``Model`` is returned as it is, unless ``provider`` or ``threads`` ask for
        another session than it has (a ``ParameterError``: load another)."""
        if threads is not None:
            threads = limits.whole(threads, "threads", 1, 1)
        if isinstance(model, Model):
            model.check_settings(provider, threads)
            return model
        path = registry.default_model(latency) if model is None else registry.resolve_model(model)
        loaded = load_model(path, provider, threads)
        name = path.stem if model is None else os.fspath(model)
        return cls(loaded.session, loaded.info, loaded.provider, path, name, threads, provider)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, provider={self.provider!r}, threads={self.threads})"

    def check_settings(self, provider: str, threads: int | None) -> None:
        """Refuse a ``provider`` or ``threads`` other than this model's session has (``"auto"`` and None: any)."""
        if provider != "auto" and provider != self.requested_provider:
            raise ParameterError(f"provider={provider!r}, but the model {self.name!r} was loaded with "
                                 f"provider={self.requested_provider!r}; leave provider out, or load it again with "
                                 f"Model.load({self.name!r}, provider={provider!r})", "provider")
        if threads is not None and threads != self.threads:
            raise ParameterError(f"threads={threads}, but the model {self.name!r} was loaded with threads="
                                 f"{self.threads}; leave threads out, or load it again with Model.load("
                                 f"{self.name!r}, threads={threads})", "threads")

    def preset(self, latency: str | None) -> str:
        """The preset ``latency`` names (None: the model's default); a blank one is refused with the choices."""
        if latency is not None and (not isinstance(latency, str) or not latency.strip()):
            raise ParameterError(f"latency={latency!r} names no preset; pass one of "
                                 f"{', '.join(name for name, _ in registry.by_latency(self.info))}, or leave it out "
                                 f"for the model's default ({self.info.default_preset})", "latency")
        return latency or self.info.default_preset

    def geometry(self, preset: str, hop: int | None = None) -> Geometry:
        """The streaming geometry of ``preset`` (its hop overridden by ``hop``, model samples); a preset it lacks
        names its presets and, for the presets only the fast model streams at (low, balanced), points to it."""
        info = self.info
        if preset in info.presets:
            return info.geometry(preset, hop)
        presets = ", ".join(name for name, _ in registry.by_latency(info))
        if preset in registry.bundled_names():
            raise ParameterError(f"latency={preset!r} names a model, not a latency preset; pass model={preset!r} "
                                 f"for that model, and latency= one of {presets}", "latency")
        hint = ""
        if not registry.is_bundled(self.path, registry.FAST):
            try:
                if preset in registry.read_info(registry.resolve_model(registry.FAST)).presets:
                    hint = f", or pass model={registry.FAST!r}, which has it"
            except UserError:  # no fast model in this build: nothing to point to
                pass
        raise ParameterError(f"model {self.name!r} has no latency preset {preset!r}; choose one of {presets}{hint}",
                             "latency")

    def runner(self, geometry: Geometry, max_batch: int):
        """A new runner of this model's session at ``geometry`` (``inference.make_runner``): one per stream."""
        return make_runner(self, geometry, max_batch)
