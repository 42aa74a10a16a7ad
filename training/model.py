"""The separation network: a U-Net on the raw stereo waveform that predicts one mask per stem.

Input ``(batch, time, 2)``, output ``(batch, time, n_stems, 2)``: each stem is
its mask times the input mixture. Fully convolutional, so ``time`` can be any
multiple of ``config.model.length_multiple`` (the total stride), and built
from standard Keras layers only, so tf2onnx converts it for the runtime.

With ``frontend = "learned"`` the U-Net runs on a learned filterbank
(Conv-TasNet: a Conv1D with kernel L and hop L/2), the masks are applied in
that domain and a transposed convolution, shared by all stems, synthesizes
the waveforms.
"""

from __future__ import annotations

import keras
from keras import layers

from .config import Config, ModelConfig


def build_model(config: Config) -> keras.Model:
    m = config.model
    n_stems = len(m.stems)
    mix = keras.Input(shape=(None, 2), name="mix")
    if m.frontend == "learned":
        n = m.frontend_filters
        hop = m.frontend_kernel // 2
        basis = layers.Conv1D(n, m.frontend_kernel, strides=hop, padding="same", use_bias=False,
                              activation="relu", name="analysis")(mix)
        masks = _masks(_unet(basis, n_stems * n, m), n_stems, n, m.mask)
        masked = layers.Multiply(name="apply_masks")([masks, layers.Reshape((-1, 1, n))(basis)])
        # A (L, 1) kernel over (frames, stems) synthesizes every stem with the same filters.
        stems = layers.Conv2DTranspose(2, (m.frontend_kernel, 1), strides=(hop, 1), padding="same",
                                       use_bias=False, name="synthesis")(masked)
    else:
        masks = _masks(_unet(mix, n_stems * 2, m), n_stems, 2, m.mask)
        stems = layers.Multiply(name="apply_masks")([masks, layers.Reshape((-1, 1, 2), name="mix_per_stem")(mix)])
    stems = layers.Activation("linear", name="stems", dtype="float32")(stems)
    return keras.Model(mix, stems, name=config.streaming.name or "separator")


def _unet(x, out_channels: int, m: ModelConfig):
    """Strided Conv1D encoder (BN, LeakyReLU 0.2), Conv1DTranspose decoder (BN, ReLU, dropout) with skips."""
    widths = [min(m.filters * 2 ** i, m.max_filters) for i in range(m.depth)]
    skips = []
    for i, width in enumerate(widths):
        x = layers.Conv1D(width, m.kernel_size, strides=m.stride, padding="same", name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"enc{i}_act")(x)
        skips.append(x)
    for stage, i in enumerate(range(m.depth - 1, 0, -1)):
        x = layers.Conv1DTranspose(widths[i - 1], m.kernel_size, strides=m.stride, padding="same",
                                   name=f"dec{i}_conv")(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        x = layers.ReLU(name=f"dec{i}_act")(x)
        if stage < m.dropout_stages and m.dropout > 0:
            x = layers.Dropout(m.dropout, name=f"dec{i}_dropout")(x)
        x = layers.Concatenate(name=f"dec{i}_skip")([x, skips[i - 1]])
    return layers.Conv1DTranspose(out_channels, m.kernel_size, strides=m.stride, padding="same",
                                  name="dec0_conv")(x)


def _masks(logits, n_stems: int, channels: int, kind: str):
    """``(batch, time, n_stems * channels)`` logits -> ``(batch, time, n_stems, channels)`` masks."""
    logits = layers.Reshape((-1, n_stems, channels), name="mask_logits")(logits)
    if kind == "softmax":
        return layers.Softmax(axis=2, name="masks")(logits)
    return layers.Activation("sigmoid", name="masks")(logits)


def count_params(model: keras.Model) -> int:
    """Trainable parameters (batch-norm moving statistics excluded)."""
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
