"""Smaller variants of an exported model: fp16 compute, fp16 weight storage, or int8 dynamic quantization.

All keep float32 ``mix``/``stems`` so the runtime treats them like any model;
they are lossy, so the export reports their error instead of enforcing the
float32 tolerance. ``fp16-weights`` only halves the file: ONNX Runtime folds
its Casts back to float32 weights when the session loads, so it runs exactly
as fast as the float32 file, whereas ``fp16`` computes in float16, which is
slower on CPUs without native float16 arithmetic.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from realtime_split.model_format import PREFIX

from .optimize import keep_used_domains

KINDS = ("fp16", "fp16-weights", "int8")
# Free metadata keys a variant adds to the float32 file's, so a model file says how its weights are stored.
EXTRA_METADATA = {"fp16-weights": {"weight_storage": "float16"}}
# Scalars and short vectors (epsilons, constant scales) stay float32: they weigh nothing and stay exact.
MIN_HALF_ELEMENTS = 16


def store_weights_in_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store each float32 initializer as float16 feeding a ``Cast(to=FLOAT)`` named like the original tensor.

    The nodes that read the weight are untouched, and ONNX Runtime's constant folding (BASIC level) turns
    every Cast back into a float32 initializer at session load, so compute and speed are float32's.
    """
    graph, casts = model.graph, []
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or int(np.prod(tensor.dims)) < MIN_HALF_ELEMENTS:
            continue
        half = numpy_helper.to_array(tensor).astype(np.float16)
        if not np.isfinite(half).all():  # beyond float16's range (65504): keep it float32
            continue
        name = tensor.name
        tensor.CopyFrom(numpy_helper.from_array(half, f"{name}_fp16"))
        casts.append(helper.make_node("Cast", [f"{name}_fp16"], [name], name=f"{name}_cast", to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)  # Casts first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    for key, value in EXTRA_METADATA["fp16-weights"].items():
        entry = model.metadata_props.add()
        entry.key, entry.value = PREFIX + key, value
    onnx.checker.check_model(model)
    return model


def quantize(source: Path, destination: Path, kind: str) -> Path:
    if kind == "fp16":
        # ONNX Runtime ships onnxconverter-common's float16 converter, so no extra dependency is needed.
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
        onnx.save(model, str(destination))
    elif kind == "fp16-weights":
        onnx.save(store_weights_in_fp16(onnx.load(str(source))), str(destination))
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
