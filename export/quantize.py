"""Smaller variants of an exported model: fp16 weights or int8 dynamic quantization.

Both keep float32 ``mix``/``stems`` so the runtime treats them like any model;
they are lossy, so the export reports their error instead of enforcing the
float32 tolerance.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from .optimize import keep_used_domains

KINDS = ("fp16", "int8")


def quantize(source: Path, destination: Path, kind: str) -> Path:
    if kind == "fp16":
        # ONNX Runtime ships onnxconverter-common's float16 converter, so no extra dependency is needed.
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
        onnx.save(model, str(destination))
    elif kind == "int8":
        # Dynamic quantization: int8 weights, activations quantized per run from their actual range, so
        # no calibration set is needed and loud and quiet passages both keep their resolution.
        # ConvTranspose has no dynamic int8 kernel in ONNX Runtime, so a U-Net decoder stays float.
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            # Symbolic shape inference cannot resolve the dynamic time axis; ONNX shape inference suffices.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(str(prepared), str(destination), weight_type=QuantType.QInt8)
        keep_used_domains(Path(destination))  # pre-processing saved through ONNX Runtime
    else:
        raise ValueError(f"unknown quantization {kind!r}; choose one of {', '.join(KINDS)}")
    return Path(destination)
