"""Keras -> ONNX in the layout of the model contract, with the contract's metadata.

Keras models see audio as ``(batch, time, 2)`` and return ``(batch, time, S, 2)``;
the contract is ``mix [batch, 2, time] -> stems [batch, S, 2, time]`` with batch
and time dynamic. The transposes live inside the exported graph, so the runtime
never reshapes anything.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import onnx

from realtime_split.model_format import INPUT_NAME, MASK_INPUT, MASK_OUTPUT, OUTPUT_NAME, ModelInfo, parse_metadata

DEFAULT_OPSET = 17


def contract_function(model, spectral: bool = False):
    """A tf.function in the contract layout wrapping ``model`` in inference mode.

    ``spectral``: ``model`` is a mask estimator, ``(b, F, bins, 2) -> (b, F, bins, 2, S)`` in Keras,
    ``magnitude [b, 2, F, bins] -> masks [b, S, 2, F, bins]`` in the contract. (Training on main builds no
    stateful model; the streaming U-Net's export lives on branch experiments/streaming-unet.)
    """
    import tensorflow as tf

    if spectral:
        @tf.function
        def masks(magnitude):
            out = model(tf.transpose(magnitude, [0, 2, 3, 1]), training=False)
            return tf.transpose(out, [0, 4, 3, 1, 2])

        return masks

    @tf.function
    def separate(mix):
        stems = model(tf.transpose(mix, [0, 2, 1]), training=False)  # (b, t, S, 2)
        return tf.transpose(stems, [0, 2, 3, 1])  # [b, S, 2, t]

    return separate


def keras_reference(model, info: ModelInfo | None = None):
    """numpy ``[b, 2, t] -> [b, S, 2, t]`` through Keras, for parity checks.

    A spectral model (``info.frontend``) runs inside training's STFT, so the check also covers the
    runtime's own STFT against TensorFlow's.
    """
    import tensorflow as tf

    if info is not None and info.frontend is not None:
        from training.models.quality import wrap_estimator

        model = wrap_estimator(model, info.frontend, info.length_multiple)
    separate = contract_function(model)
    return lambda mix: separate(tf.constant(mix)).numpy()


def _name_io(proto: onnx.ModelProto, spectral: bool = False) -> None:
    """tf2onnx names the output after TF's Identity op and the dynamic axes ``unk__N``; use contract names."""
    graph = proto.graph
    old, new = graph.output[0].name, MASK_OUTPUT if spectral else OUTPUT_NAME
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    graph.output[0].name = new
    for value, axes in ((graph.input[0], (0, 2)), (graph.output[0], (0, 3))):  # the same axes in both layouts
        dims = value.type.tensor_type.shape.dim
        dims[axes[0]].dim_param, dims[axes[1]].dim_param = "batch", "frames" if spectral else "time"


def set_metadata(proto: onnx.ModelProto, info: ModelInfo) -> None:
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_in_place(proto: onnx.ModelProto, path: Path) -> None:
    """Write ``proto`` over ``path`` through a temporary file, so an interrupted write never leaves half a model."""
    tmp = path.with_name(".tmp-" + path.name)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)


def restamp(path: Path, change: Callable[[ModelInfo], ModelInfo]) -> ModelInfo:
    """Rewrite the metadata of the exported model at ``path`` as ``change`` makes it from the stored ``ModelInfo``;
    graph and weights stay byte-identical. The new metadata is written and read back before the file is touched,
    so it passes the same checks as any file's (a ``ModelFormatError`` leaves the file as it was)."""
    proto = onnx.load(str(path))
    info = parse_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
    stamped = parse_metadata(change(info).to_metadata(), str(path))
    set_metadata(proto, stamped)
    save_in_place(proto, path)
    return stamped


def keras_to_onnx(model, info: ModelInfo, output: Path, extra: dict[str, str] | None = None,
                  opset: int = DEFAULT_OPSET) -> Path:
    """Convert ``model`` with tf2onnx and write it to ``output`` with ``info`` (plus ``extra`` keys) as metadata."""
    import tensorflow as tf
    import tf2onnx

    spectral = info.frontend is not None
    if info.frontend is not None:
        signature = [tf.TensorSpec([None, 2, None, info.frontend.bins], tf.float32, name=MASK_INPUT)]
    else:
        signature = [tf.TensorSpec([None, 2, None], tf.float32, name=INPUT_NAME)]
    proto, _ = tf2onnx.convert.from_function(contract_function(model, spectral), input_signature=signature,
                                             opset=opset)
    _name_io(proto, spectral)
    if extra:
        info = dataclasses.replace(info, extra={**info.extra, **{k: str(v) for k, v in extra.items()}})
    set_metadata(proto, info)
    proto.doc_string = info.description
    onnx.checker.check_model(proto)
    output = Path(output)
    onnx.save(proto, str(output))
    return output
