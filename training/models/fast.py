"""The fast model: a U-Net on the raw stereo waveform that predicts one mask per stem.

Input ``(batch, time, 2)``, output ``(batch, time, n_stems, 2)``: each stem is
its mask times the input mixture. Fully convolutional, so ``time`` can be any
multiple of the total stride (``FastModelConfig.length_multiple``), and built
from standard Keras layers only, so tf2onnx converts it for the runtime.

With ``frontend = "learned"`` (the bundled model) the U-Net runs on a learned
filterbank (Conv-TasNet: a Conv1D with kernel L and hop L/2), the masks are
applied in that domain and a transposed convolution, shared by all stems,
synthesizes the waveforms. ``frontend = "none"`` is the plain waveform U-Net
(the tiny test model).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers


def build(stems: Sequence[str], *, depth: int = 6, filters: int = 16, max_filters: int = 512, kernel_size: int = 15,
          stride: int = 2, dropout: float = 0.5, dropout_stages: int = 3, mask: str = "sigmoid",
          mask_overshoot: float = 0.0, head_filters: int = 0, head_kernel: int = 5, frontend: str = "learned",
          frontend_filters: int = 256, frontend_kernel: int = 64, name: str = "separator") -> keras.Model:
    """The waveform model; the defaults are the bundled fast model's design (training/configs/default.toml)."""
    n_stems = len(stems)

    def unet(x, out_channels: int):
        return _unet(x, out_channels, depth=depth, filters=filters, max_filters=max_filters, kernel_size=kernel_size,
                     stride=stride, dropout=dropout, dropout_stages=dropout_stages)

    mix = keras.Input(shape=(None, 2), name="mix")
    if frontend == "learned":
        n = frontend_filters
        hop = frontend_kernel // 2
        basis = layers.Conv1D(n, frontend_kernel, strides=hop, padding="same", use_bias=False,
                              activation="relu", name="analysis")(mix)
        # The U-Net ends at ``filters`` channels; a pointwise head widens them to one mask per
        # stem and basis filter (a kernel-15 transposed conv straight to n_stems * N channels
        # would cost more than the rest of the network together).
        features = unet(basis, filters)
        masks = _masks(layers.Conv1D(n_stems * n, 1, name="mask_head")(features), n_stems, n, mask, mask_overshoot)
        masked = layers.Multiply(name="apply_masks")([masks, layers.Reshape((-1, 1, n))(basis)])
        # A (L, 1) kernel over (frames, stems) synthesizes every stem with the same filters.
        stems_out = layers.Conv2DTranspose(2, (frontend_kernel, 1), strides=(hop, 1), padding="same",
                                           use_bias=False, name="synthesis")(masked)
    else:
        if head_filters:
            # Wave-U-Net's output layer: full-rate features plus the mixture itself, so each sample's
            # mask can follow the waveform it scales (the U-Net alone resolves 1/stride of the rate).
            features = layers.ReLU(name="head_act")(unet(mix, head_filters))
            features = layers.Concatenate(name="head_mix")([features, mix])
            logits = layers.Conv1D(n_stems * 2, head_kernel, padding="same", name="head_conv")(features)
        else:
            logits = unet(mix, n_stems * 2)
        masks = _masks(logits, n_stems, 2, mask, mask_overshoot)
        stems_out = layers.Multiply(name="apply_masks")(
            [masks, layers.Reshape((-1, 1, 2), name="mix_per_stem")(mix)])
    stems_out = layers.Activation("linear", name="stems", dtype="float32")(stems_out)
    return keras.Model(mix, stems_out, name=name)


def _unet(x, out_channels: int, *, depth: int, filters: int, max_filters: int, kernel_size: int, stride: int,
          dropout: float, dropout_stages: int):
    """Strided Conv1D encoder (BN, LeakyReLU 0.2), Conv1DTranspose decoder (BN, ReLU, dropout) with skips."""
    widths = [min(filters * 2 ** i, max_filters) for i in range(depth)]
    skips = []
    for i, width in enumerate(widths):
        x = layers.Conv1D(width, kernel_size, strides=stride, padding="same", name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"enc{i}_act")(x)
        skips.append(x)
    for stage, i in enumerate(range(depth - 1, 0, -1)):
        x = layers.Conv1DTranspose(widths[i - 1], kernel_size, strides=stride, padding="same",
                                   name=f"dec{i}_conv")(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        x = layers.ReLU(name=f"dec{i}_act")(x)
        if stage < dropout_stages and dropout > 0:
            x = layers.Dropout(dropout, name=f"dec{i}_dropout")(x)
        x = layers.Concatenate(name=f"dec{i}_skip")([x, skips[i - 1]])
    return layers.Conv1DTranspose(out_channels, kernel_size, strides=stride, padding="same", name="dec0_conv")(x)


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
