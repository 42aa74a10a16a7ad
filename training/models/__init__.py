"""The networks training builds, one module per shipped model: ``fast`` (the waveform U-Net) and ``quality``
(Spleeter-layout U-Nets on STFT magnitudes).

Each builder takes its design as explicit keyword arguments, so a model can be built, read and tested
without a config; ``build`` is the one place a training config (its ``[model.fast]`` or ``[model.quality]``
section) becomes those arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import keras

from ..config import Config
from . import fast, quality


def build(config: Config) -> keras.Model:
    """The Keras model ``(batch, time, 2) -> (batch, time, stems, 2)`` a config describes."""
    m = config.model
    if m.quality is not None:
        return quality.build(m.stems, window=config.window, **dataclasses.asdict(m.quality))
    assert m.fast is not None
    return fast.build(m.stems, name=config.streaming.name or "separator", **dataclasses.asdict(m.fast))


def export_part(model: keras.Model) -> keras.Model:
    """What a run saves as best.keras and export converts: a quality model's mask estimator (the STFT is
    the runtime's), else the model itself."""
    return getattr(model, "estimator", model)


def batch_norm_layers(model: keras.Model) -> Iterator[keras.layers.BatchNormalization]:
    """Every batch norm layer, nested models included (a quality model's sit in its estimator)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from batch_norm_layers(layer)


def count_params(model: keras.Model) -> int:
    """Trainable parameters (batch-norm moving statistics excluded)."""
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
