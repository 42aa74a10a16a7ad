"""Small, real ONNX models that follow docs/model-format.md, built with the onnx helper API.

They are real files run by real ONNX Runtime sessions; only their weights are
simple, so a test can predict their output exactly.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from realtime_split.model_format import INPUT_NAME, OUTPUT_NAME, Geometry, ModelInfo

STEMS4 = ("vocals", "drums", "bass", "other")

# Small geometry, model rate 44.1 kHz; all presets share one window like a trained model.
TEST_PRESETS = {
    "low": Geometry(window=2048, hop=128, crossfade=32, lookahead=64),
    "balanced": Geometry(window=2048, hop=256, crossfade=64, lookahead=128),
    "quality": Geometry(window=2048, hop=512, crossfade=128, lookahead=256),
    "offline": Geometry(window=2048, hop=1024, crossfade=256, lookahead=384),
}


def test_info(stems=STEMS4, sample_rate=44100, presets=None, length_multiple=64, **extra) -> ModelInfo:
    return ModelInfo(
        sample_rate=sample_rate,
        stems=tuple(stems),
        length_multiple=length_multiple,
        presets=dict(presets or TEST_PRESETS),
        name="test-model",
        description="tiny test model",
        extra={k: str(v) for k, v in extra.items()},
    )


def _save(graph: onnx.GraphProto, path: Path, info: ModelInfo | None, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if info is not None:
        for key, value in info.to_metadata().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _io(n_stems: int):
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 2, "time"])
    y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", n_stems, 2, "time"])
    return x, y


def make_scaled_identity_model(path, scales=None, info: ModelInfo | None = None) -> Path:
    """stems[:, s] = scales[s] * mix. With all scales 1 this is the identity model."""
    info = info or test_info()
    n = len(info.stems)
    scales = np.ones(n, np.float32) if scales is None else np.asarray(scales, np.float32)
    x, y = _io(n)
    scale = numpy_helper.from_array(scales.reshape(1, n, 1, 1), "scales")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("Unsqueeze", [INPUT_NAME, "axes"], ["mix4"]),
        helper.make_node("Mul", ["mix4", "scales"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(nodes, "scaled_identity", [x], [y], initializer=[scale, axes])
    return _save(graph, path, info)


def make_short_output_model(path, info: ModelInfo | None = None, cut: int = 64) -> Path:
    """Valid metadata, wrong graph: every stem is the mix without its last ``cut`` samples, so the output is
    shorter than the input while the declared shapes (symbolic ``time``) still match the contract."""
    info = info or test_info()
    n = len(info.stems)
    x, y = _io(n)
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
             (("axes", [1]), ("starts", [0]), ("ends", [-cut]), ("time_axis", [3]), ("repeats", [1, n, 1, 1]))]
    nodes = [
        helper.make_node("Unsqueeze", [INPUT_NAME, "axes"], ["mix4"]),
        helper.make_node("Tile", ["mix4", "repeats"], ["tiled"]),
        helper.make_node("Slice", ["tiled", "starts", "ends", "time_axis"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(nodes, "short_output", [x], [y], initializer=inits)
    return _save(graph, path, info)


def make_identity_model(path, info: ModelInfo | None = None) -> Path:
    return make_scaled_identity_model(path, None, info)


def make_conv_model(path, kernel_size=33, seed=0, info: ModelInfo | None = None) -> Path:
    """stems[:, s, c] = conv(mix[:, c], k_s) with zero 'same' padding: output depends on the window edges,
    so streaming must reproduce the exact windows to match offline windowed processing."""
    info = info or test_info()
    n = len(info.stems)
    rng = np.random.default_rng(seed)
    x, y = _io(n)
    pad = kernel_size // 2
    # group=2 Conv: group 0 reads L and writes n filters, group 1 reads R and writes n filters;
    # every filter is its own random kernel, so each (stem, channel) output differs.
    w_grouped = (rng.standard_normal((2 * n, 1, kernel_size)) / kernel_size).astype(np.float32)
    init = [
        numpy_helper.from_array(w_grouped, "w"),
        numpy_helper.from_array(np.array([0, 2, n, -1], np.int64), "shape4"),  # [b, 2, n, t]
    ]
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "w"], ["conv"], group=2, pads=[pad, pad], kernel_shape=[kernel_size]),
        # conv: [b, 2n, t] ordered (channel, stem) -> [b, 2, n, t] -> [b, n, 2, t]
        helper.make_node("Reshape", ["conv", "shape4"], ["r4"]),
        helper.make_node("Transpose", ["r4"], [OUTPUT_NAME], perm=[0, 2, 1, 3]),
    ]
    graph = helper.make_graph(nodes, "conv", [x], [y], initializer=init)
    return _save(graph, path, info)


def conv_model_reference(window: np.ndarray, path) -> np.ndarray:
    """Run the saved model's math in numpy on one window [2, t] -> [n, 2, t] (for cross-checks)."""
    model = onnx.load(str(path))
    w = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "w"))
    n = w.shape[0] // 2
    out = np.zeros((n, 2, window.shape[-1]), np.float32)
    for c in range(2):
        for s in range(n):
            k = w[c * n + s, 0]
            out[s, c] = np.convolve(window[c], k[::-1], mode="same")
    return out


def make_model_without_metadata(path) -> Path:
    info = test_info()
    x, y = _io(len(info.stems))
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", [INPUT_NAME, "axes"], ["m"]),
         helper.make_node("Concat", ["m"] * len(info.stems), [OUTPUT_NAME], axis=1)],
        "no_metadata", [x], [y], initializer=[axes])
    return _save(graph, path, None)


def spectral_info(n_stems: int = 4, n_fft: int = 64, hop: int = 16, bins: int = 32, **kwargs) -> ModelInfo:
    """A spectral model's contract (metadata ``frontend``) at 8 kHz with windows of 32 frames."""
    from realtime_split.model_format import StftGeometry

    presets = {"quality": Geometry(window=512, hop=128, crossfade=32, lookahead=64),
               "offline": Geometry(window=512, hop=256, crossfade=32, lookahead=112)}
    info = test_info(stems=STEMS4[:n_stems], sample_rate=8000, presets=presets, length_multiple=128, **kwargs)
    return dataclasses.replace(info, default_preset="quality", frontend=StftGeometry(n_fft, hop, bins))


def make_spectral_model(path, gains, info: ModelInfo | None = None) -> Path:
    """masks[:, s] = gains[s] everywhere (magnitude * 0 + gain): with gains summing to 1 the stems add up to
    the mix, and stem s is exactly gains[s] times the mixture."""
    from realtime_split.model_format import MASK_INPUT, MASK_OUTPUT

    n = len(gains)
    info = info or spectral_info(n)
    bins = info.frontend.bins
    x = helper.make_tensor_value_info(MASK_INPUT, TensorProto.FLOAT, ["batch", 2, "frames", bins])
    y = helper.make_tensor_value_info(MASK_OUTPUT, TensorProto.FLOAT, ["batch", n, 2, "frames", bins])
    init = [numpy_helper.from_array(np.asarray(gains, np.float32).reshape(1, n, 1, 1, 1), "gains"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    nodes = [helper.make_node("Unsqueeze", [MASK_INPUT, "axes"], ["m5"]),
             helper.make_node("Mul", ["m5", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "gains"], [MASK_OUTPUT])]
    graph = helper.make_graph(nodes, "spectral_gains", [x], [y], initializer=init)
    return _save(graph, path, info)


def make_nonfinite_model(path, info: ModelInfo | None = None) -> Path:
    """A broken model: every stem is mix * inf, so NaN where the mix is 0 and +-Inf elsewhere."""
    info = info or test_info()
    n = len(info.stems)
    x, y = _io(n)
    init = [numpy_helper.from_array(np.full((1, n, 1, 1), np.inf, np.float32), "inf"),
            numpy_helper.from_array(np.array([1], np.int64), "axes")]
    nodes = [helper.make_node("Unsqueeze", [INPUT_NAME, "axes"], ["mix4"]),
             helper.make_node("Mul", ["mix4", "inf"], [OUTPUT_NAME])]
    graph = helper.make_graph(nodes, "nonfinite", [x], [y], initializer=init)
    return _save(graph, path, info)


def stateful_info(n_stems: int = 4, n_fft: int = 64, hop: int = 16, bins: int = 32, **kwargs) -> ModelInfo:
    """A stateful model's contract: 8 kHz, low-delay STFT 64 / hop 16, one float state ``count``."""
    from realtime_split.model_format import StateTensor, StftGeometry

    frontend = StftGeometry(n_fft, hop, bins, window="lowdelay", synthesis=2 * hop)
    presets = {name: frontend.stateful_geometry(k * hop) for name, k in (("low", 1), ("balanced", 2), ("offline", 16))}
    info = test_info(stems=STEMS4[:n_stems], sample_rate=8000, presets=presets, length_multiple=hop, **kwargs)
    return dataclasses.replace(info, frontend=frontend, state=(StateTensor("count", "next_count", (1,)),))


def make_stateful_model(path, before, after, switch: int, info: ModelInfo | None = None) -> Path:
    """A model with memory: masks ``before[s]`` while fewer than ``switch`` frames have been run since the
    stream began (state ``count``, advanced by the frames of each run), ``after[s]`` from then on."""
    from realtime_split.model_format import MASK_INPUT, MASK_OUTPUT

    n = len(before)
    info = info or stateful_info(n)
    bins = info.frontend.bins
    io = [helper.make_tensor_value_info(MASK_INPUT, TensorProto.FLOAT, ["batch", 2, "frames", bins]),
          helper.make_tensor_value_info("count", TensorProto.FLOAT, ["batch", 1])]
    out = [helper.make_tensor_value_info(MASK_OUTPUT, TensorProto.FLOAT, ["batch", n, 2, "frames", bins]),
           helper.make_tensor_value_info("next_count", TensorProto.FLOAT, ["batch", 1])]
    init = [numpy_helper.from_array(np.asarray(before, np.float32).reshape(1, n, 1, 1, 1), "before"),
            numpy_helper.from_array(np.asarray(after, np.float32).reshape(1, n, 1, 1, 1), "after"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array([2], np.int64), "frames_axis"),
            numpy_helper.from_array(np.array([0, 1, 1, -1, 1], np.int64), "shape5"),
            numpy_helper.from_array(np.full((1,), float(switch), np.float32), "switch"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
            numpy_helper.from_array(np.array(0.0, np.float32), "start"),
            numpy_helper.from_array(np.array(1.0, np.float32), "step")]
    nodes = [helper.make_node("Unsqueeze", [MASK_INPUT, "axes"], ["m5"]),
             helper.make_node("Mul", ["m5", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "before"], ["masks_before"]),
             helper.make_node("Add", ["zeros", "after"], ["masks_after"]),
             helper.make_node("Shape", [MASK_INPUT], ["shape"]),
             helper.make_node("Gather", ["shape", "frames_axis"], ["frames_i"]),
             helper.make_node("Cast", ["frames_i"], ["frames"], to=TensorProto.FLOAT),
             helper.make_node("Squeeze", ["frames"], ["frames0"]),
             helper.make_node("Range", ["start", "frames0", "step"], ["offsets"]),
             helper.make_node("Add", ["count", "offsets"], ["frame_index"]),  # (b, T): each frame's number
             helper.make_node("Less", ["frame_index", "switch"], ["early"]),
             helper.make_node("Reshape", ["early", "shape5"], ["early5"]),
             helper.make_node("Where", ["early5", "masks_before", "masks_after"], [MASK_OUTPUT]),
             helper.make_node("Add", ["count", "frames"], ["next_count"])]
    graph = helper.make_graph(nodes, "stateful_switch", io, out, initializer=init)
    return _save(graph, path, info)


def build_and_export(run: Path, build_code: str, *export_args: str) -> Path:
    """A Keras run from ``build_code`` (a script given ``run`` as its argument, in a subprocess so the test
    process stays free of TensorFlow), exported by the real ``python -m export`` to ``run/../tiny.onnx``."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", build_code, str(run)], cwd=root, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    output = run.parent / "tiny.onnx"
    proc = subprocess.run([sys.executable, "-m", "export", "--checkpoint", str(run / "best.keras"),
                           "--output", str(output), *export_args], cwd=root, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "optimized (ONNX Runtime, basic level): max abs error" in proc.stdout
    return output
