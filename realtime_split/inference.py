"""Opening an ONNX model with ONNX Runtime: provider choice, low-latency threading, contract checks.

Every way a model file can be unusable becomes a ``UserError`` that names the
file and the fix, because users pass their own ``--model``. This module opens the file it is
given; which file a name means is ``registry``'s business, and ``model.Model`` joins the two.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import ModelFormatError, ParameterError
from .model_format import INPUT_NAME, MASK_INPUT, MASK_OUTPUT, OUTPUT_NAME, Geometry, ModelInfo, parse_metadata

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDERS = ("auto", "cpu", "cuda")
MAX_THREADS = 4


@dataclass(eq=False)
class LoadedModel:
    """An open, checked model file (``model.Model`` adds where it came from and the runner factory)."""

    session: ort.InferenceSession
    info: ModelInfo
    provider: str  # the provider that really runs the model, e.g. "CPUExecutionProvider"


def physical_cores() -> int:
    """Physical cores (hyper-threads share a core's units, so they add latency jitter, not speed)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cores, physical = set(), "0"
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


def default_threads() -> int:
    """Physical cores this process may use, at most MAX_THREADS: fastest on an otherwise idle machine."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(physical_cores(), usable, MAX_THREADS)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for small, frequent runs: a few intra-op threads, no inter-op parallelism, quiet logs.

    ``threads`` None picks ``default_threads()``. Live audio passes 1: ONNX Runtime's extra pool threads
    run at normal priority and, when another process wants the CPU, a run waits for the slowest of
    them (measured: p99 26 ms with 2 threads against 5 ms with 1 beside a busy core).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


def _providers(provider: str) -> list[str]:
    if provider not in PROVIDERS:
        raise ParameterError(f"provider={provider!r} is unknown; choose one of {', '.join(PROVIDERS)}", "provider")
    cuda_available = CUDA in ort.get_available_providers()
    if provider == "cuda" and not cuda_available:
        raise ParameterError(
            "provider='cuda' requested but this onnxruntime has no CUDA support; "
            "install it with `pip install realtime-split[gpu]` (needs an NVIDIA driver), or use provider='cpu'",
            "provider")
    if provider == "cpu" or not cuda_available:
        return [CPU]
    return [CUDA, CPU]


def _dim_ok(dim, want: int | None) -> bool:
    """A symbolic axis always fits; a fixed one only where the contract fixes it (``want`` not None)."""
    return dim is None or isinstance(dim, str) or (want is not None and dim == want)


def _check_io(session: ort.InferenceSession, info: ModelInfo, source: str) -> None:
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if info.frontend is not None:
        _check_spectral_io(inputs, outputs, info, source)
        return
    mix, stems = inputs.get(INPUT_NAME), outputs.get(OUTPUT_NAME)
    if len(inputs) != 1 or mix is None or len(mix) != 3 or not all(map(_dim_ok, mix, (None, 2, None))):
        raise ModelFormatError(
            f"{source}: model input must be {INPUT_NAME!r} float32 [batch, 2, time] with dynamic batch and time, "
            f"found {inputs}; see docs/model-format.md"
        )
    if stems is None or len(stems) != 4 or not all(map(_dim_ok, stems, (None, len(info.stems), 2, None))):
        raise ModelFormatError(
            f"{source}: model output must be {OUTPUT_NAME!r} float32 [batch, {len(info.stems)}, 2, time] with "
            f"dynamic batch and time (stems {','.join(info.stems)} in its metadata), found {outputs}; "
            "see docs/model-format.md"
        )


def _check_spectral_io(inputs: dict, outputs: dict, info: ModelInfo, source: str) -> None:
    assert info.frontend is not None  # _check_io calls this for spectral models only
    bins, n_stems = info.frontend.bins, len(info.stems)
    magnitude, masks = inputs.get(MASK_INPUT), outputs.get(MASK_OUTPUT)
    for t in info.state:
        want = (None, *t.shape)
        for kind, names in (("input", inputs), ("output", outputs)):
            name = t.input if kind == "input" else t.output
            shape = names.pop(name, None)
            if shape is None or len(shape) != len(want) or not all(map(_dim_ok, shape, want)):
                raise ModelFormatError(
                    f"{source}: state {kind} {name!r} must be float32 [batch, {', '.join(map(str, t.shape))}] "
                    f"as its metadata 'state' says, found {shape}; see docs/model-format.md")
    if len(inputs) != 1 or magnitude is None or len(magnitude) != 4 \
            or not all(map(_dim_ok, magnitude, (None, 2, None, bins))):
        raise ModelFormatError(
            f"{source}: a model with a 'frontend' must take {MASK_INPUT!r} float32 [batch, 2, frames, {bins}] "
            f"with dynamic batch and frames, found {inputs}; see docs/model-format.md")
    if masks is None or len(masks) != 5 or not all(map(_dim_ok, masks, (None, n_stems, 2, None, bins))):
        raise ModelFormatError(
            f"{source}: a model with a 'frontend' must give {MASK_OUTPUT!r} float32 "
            f"[batch, {n_stems}, 2, frames, {bins}], found {outputs}; see docs/model-format.md")


def _check_output_shapes(session: ort.InferenceSession, info: ModelInfo, source: str) -> None:
    """Run the model once on silence of its shortest window and compare every output's shape with what its
    metadata promises. A graph whose output length differs from its input (valid metadata, wrong graph) would
    otherwise fail inside ONNX Runtime at the first block of audio, in files and live alike."""
    n_stems, window = len(info.stems), min(g.window for g in info.presets.values())
    feed: dict[str, np.ndarray] = {}
    expected: dict[str, tuple[int, ...]] = {}
    if info.frontend is None:
        feed[INPUT_NAME] = np.zeros((1, 2, window), np.float32)
        expected[OUTPUT_NAME] = (1, n_stems, 2, window)
    else:
        f = info.frontend
        # A stateful model runs the new frames of one hop; a spectral one a whole window's frames.
        frames = info.geometry().hop // f.hop if info.state else window // f.hop
        feed[MASK_INPUT] = np.zeros((1, 2, frames, f.bins), np.float32)
        expected[MASK_OUTPUT] = (1, n_stems, 2, frames, f.bins)
        for t in info.state:
            feed[t.input] = np.full((1, *t.shape), t.init, np.float32)
            expected[t.output] = (1, *t.shape)
    inputs = ", ".join(f"{name!r} {list(value.shape)}" for name, value in feed.items())
    try:
        results = session.run(list(expected), feed)
    except Exception as exc:  # onnxruntime's own exception types: the graph cannot run on such input
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{source}: the model fails on input {inputs} as its metadata describes it "
                               f"({reason}); see docs/model-format.md") from None
    for (name, want), value in zip(expected.items(), results):
        if tuple(value.shape) != want:
            raise ModelFormatError(f"{source}: output {name!r} is {list(value.shape)} for input {inputs}, but its "
                                   f"metadata promises {list(want)} (stems {','.join(info.stems)}, output as long "
                                   "as the input); the graph does not match its metadata, see docs/model-format.md")


def load_model(path: str | os.PathLike, provider: str = "auto", threads: int | None = None) -> LoadedModel:
    """Open the model file ``path`` and check it against the model contract (``Model.load`` also takes names)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"model={str(path)!r}: file not found; pass an exported .onnx file", "model")
    providers = _providers(provider)
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(
            f"{str(path)!r} is not a readable ONNX model ({reason}); export one with `python -m export`", "model"
        ) from None
    source = str(path)
    info = parse_metadata(dict(session.get_modelmeta().custom_metadata_map), source=source)
    _check_io(session, info, source)
    _check_output_shapes(session, info, source)
    active = session.get_providers()[0]
    if provider == "cuda" and active != CUDA:
        raise ParameterError(
            "provider='cuda' requested but ONNX Runtime could not start CUDA (driver or CUDA/cuDNN libraries "
            "missing?); see `pip install realtime-split[gpu]`, or use provider='cpu'", "provider")
    return LoadedModel(session=session, info=info, provider=active)


class BatchRunner:
    """Runs up to ``max_batch`` windows in one ORT call, reading and writing preallocated buffers.

    ``inputs[:n]`` is filled by the caller; ``run(n)`` leaves the result in ``outputs[:n]``. IO
    bindings over numpy memory are prepared for every batch size, so a run allocates no arrays.
    """

    def __init__(self, model: LoadedModel, window: int, max_batch: int):
        n_stems = len(model.info.stems)
        self.session = model.session
        self.inputs = np.zeros((max_batch, 2, window), np.float32)
        self.outputs = np.zeros((max_batch, n_stems, 2, window), np.float32)
        self._bindings = [None]
        for n in range(1, max_batch + 1):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(self.inputs[:n]))
            binding.bind_ortvalue_output(OUTPUT_NAME, ort.OrtValue.ortvalue_from_numpy(self.outputs[:n]))
            self._bindings.append(binding)

    def reset(self) -> None:
        """Nothing to forget: every window is separated on its own."""

    def run(self, n: int) -> float:
        """Run the model on ``inputs[:n]`` into ``outputs[:n]``; returns the seconds the call took."""
        start = time.perf_counter()
        self.session.run_with_iobinding(self._bindings[n])
        return time.perf_counter() - start


def make_runner(model: LoadedModel, geometry: Geometry, max_batch: int):
    """The runner for ``model`` at ``geometry``: waveform models run as they are, spectral ones
    behind the runtime's STFT (``spectral.SpectralRunner``, the same ``inputs``/``outputs``/``run``/``reset``),
    stateful ones behind a runner that carries their state (``spectral.StatefulRunner``)."""
    if model.info.frontend is None:
        return BatchRunner(model, geometry.window, max_batch)
    from .spectral import SpectralRunner, StatefulRunner

    if model.info.state:
        return StatefulRunner(model.session, model.info.frontend, model.info.state, len(model.info.stems),
                              geometry.window, max_batch, geometry.keep_start, geometry.keep_length)
    return SpectralRunner(model.session, model.info.frontend, len(model.info.stems), geometry.window, max_batch,
                          geometry.keep_start, geometry.keep_length)
