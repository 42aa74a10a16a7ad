"""Would int8 weights make the fast model's live hop cheaper? ONNX Runtime static quantization, timed.

The shipped file stores float16 weights behind Cast nodes; they are folded to float32 first, then quantized
with ``onnxruntime.quantization.quantize_static`` (QDQ, per-channel int8 weights, uint8 activations calibrated
on 80 windows of MUSDB18 training previews), once for Conv and ConvTranspose and once for Conv alone. Each
variant is timed on one window of the live presets, one thread (as live mode runs it), its runs interleaved
with the float file's, and compared with it on the same input. Result and reading in docs/experiments.md
("Cheaper live hops"); not shipped.

    python3 tools/probe_int8.py [--data ../shared/data/musdb18-preview] [--window 4096] [--runs 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_split import registry  # noqa: E402
from realtime_split.inference import session_options  # noqa: E402
from realtime_split.model_format import INPUT_NAME  # noqa: E402

DEFAULT_MODEL = registry.resolve_model(registry.FAST)  # the shipped fast model

VARIANTS = {"Conv and ConvTranspose": ["Conv", "ConvTranspose"], "Conv only": ["Conv"]}


def float32_weights(source: Path, destination: Path) -> Path:
    """The model with its float16 initializers (each behind a Cast to float32) stored as float32 instead."""
    model = onnx.load(str(source))
    inits = {i.name: i for i in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        init = inits.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if init is not None and init.data_type == onnx.TensorProto.FLOAT16:
            model.graph.initializer.append(numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    used = {name for node in model.graph.node for name in node.input}
    initializers = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    onnx.save(model, str(destination))
    return destination


def calibration_windows(data: Path, window: int, tracks: int = 40, per_track: int = 2) -> list[np.ndarray]:
    import stempeg

    rng = np.random.default_rng(0)
    windows = []
    for path in sorted((data / "train").glob("*.stem.mp4"))[:tracks]:
        audio, _ = stempeg.read_stems(str(path), stem_id=0)
        audio = np.ascontiguousarray(audio.T, np.float32)
        for _ in range(per_track):
            start = int(rng.integers(0, audio.shape[1] - window))
            windows.append(audio[None, :, start:start + window])
    return windows


def quantized(fp32: Path, destination: Path, ops: list[str], windows: list[np.ndarray]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter({INPUT_NAME: w} for w in windows)

        def get_next(self):
            return next(self.items, None)

    prepared = destination.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(destination), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "musdb18-preview")
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    windows = calibration_windows(args.data, args.window)
    with tempfile.TemporaryDirectory(prefix="probe-int8-") as tmp:
        fp32 = float32_weights(DEFAULT_MODEL, Path(tmp) / "fp32.onnx")
        files = {"float (shipped)": DEFAULT_MODEL}
        for i, (name, ops) in enumerate(VARIANTS.items()):
            files[name] = quantized(fp32, Path(tmp) / f"int8-{i}.onnx", ops, windows)
        sessions = {name: ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
                    for name, path in files.items()}
        x = windows[0]
        outputs = {name: s.run(None, {INPUT_NAME: x})[0] for name, s in sessions.items()}
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.runs):
            for name, s in sessions.items():
                start = time.perf_counter()
                s.run(None, {INPUT_NAME: x})
                times[name].append(time.perf_counter() - start)
    reference = outputs["float (shipped)"]
    base = np.median(times["float (shipped)"])
    print(f"| quantized ops | p50 / p99 ({args.window} samples, 1 thread) | against the float file | "
          "output error (relative RMS) |\n|---|---|---|---|")
    for name, t in times.items():
        error = np.sqrt(np.mean((outputs[name] - reference) ** 2) / np.mean(reference ** 2))
        print(f"| {name} | {1e3 * np.median(t):.2f} / {1e3 * np.percentile(t, 99):.2f} ms | "
              f"{np.median(t) / base:.2f}x | {100 * error:.1f} % |")


if __name__ == "__main__":
    main()
