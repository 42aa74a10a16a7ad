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
    if m.frontend == "stream":
        from .streaming_model import build_streaming_model

        return build_streaming_model(config)
    if m.frontend == "stft":
        from .spectral_model import build_stft_model

        return build_stft_model(config)
    n_stems = len(m.stems)
    mix = keras.Input(shape=(None, 2), name="mix")
    if m.frontend == "learned":
        n = m.frontend_filters
        hop = m.frontend_kernel // 2
        basis = layers.Conv1D(n, m.frontend_kernel, strides=hop, padding="same", use_bias=False,
                              activation="relu", name="analysis")(mix)
        # The U-Net ends at ``filters`` channels; a pointwise head widens them to one mask per
        # stem and basis filter (a kernel-15 transposed conv straight to n_stems * N channels
        # would cost more than the rest of the network together).
        features = _unet(basis, m.filters, m)
        masks = _masks(layers.Conv1D(n_stems * n, 1, name="mask_head")(features), n_stems, n, m.mask,
                       m.mask_overshoot)
        masked = layers.Multiply(name="apply_masks")([masks, layers.Reshape((-1, 1, n))(basis)])
        # A (L, 1) kernel over (frames, stems) synthesizes every stem with the same filters.
        stems = layers.Conv2DTranspose(2, (m.frontend_kernel, 1), strides=(hop, 1), padding="same",
                                       use_bias=False, name="synthesis")(masked)
    else:
        if m.head_filters:
            # Wave-U-Net's output layer: full-rate features plus the mixture itself, so each sample's
            # mask can follow the waveform it scales (the U-Net alone resolves 1/stride of the rate).
            features = layers.ReLU(name="head_act")(_unet(mix, m.head_filters, m))
            features = layers.Concatenate(name="head_mix")([features, mix])
            logits = layers.Conv1D(n_stems * 2, m.head_kernel, padding="same", name="head_conv")(features)
        else:
            logits = _unet(mix, n_stems * 2, m)
        masks = _masks(logits, n_stems, 2, m.mask, m.mask_overshoot)
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


def _masks(logits, n_stems: int, channels: int, kind: str, overshoot: float = 0.0):
    """``(batch, time, n_stems * channels)`` logits -> ``(batch, time, n_stems, channels)`` masks.

    With ``overshoot`` a > 0 the masks are stretched affinely beyond [0, 1], softmax masks still
    summing to 1: a sample's stems often have opposite signs, so the true ratio stem / mix lies
    outside [0, 1] (on the validation previews the best [0, 1] masks reach only ~6 dB SNR,
    the best [-1, 4] masks ~11 dB).
    """
    logits = layers.Reshape((-1, n_stems, channels), name="mask_logits")(logits)
    if kind == "softmax":
        masks, width = layers.Softmax(axis=2, name="masks")(logits), n_stems
    else:
        masks, width = layers.Activation("sigmoid", name="masks")(logits), 2
    if overshoot > 0:
        masks = layers.Rescaling(1 + width * overshoot, -overshoot, name="masks_widened")(masks)
    return masks


def count_params(model: keras.Model) -> int:
    """Trainable parameters (batch-norm moving statistics excluded)."""
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
