"""The live model: a causal, stateful U-Net on low-delay STFT frames, one frame at a time.

The network maps the magnitudes of new STFT frames, plus the state it left after the
previous frames, to one mask per stem and the next state::

    (magnitude (b, T, bins, 2), frames_state (b, K-1, bins, 2), gru_state (b, units))
        -> (masks (b, T, bins, 2, S), frames_state', gru_state')

so the same graph trains on crops of seconds (``T`` in the hundreds, zero states) and streams
(``T`` = 1 or 2 frames per call, the states carried by the runtime: docs/model-format.md,
``state``). Only the bottleneck and the first convolution look across time:

* the encoder is the seed's U-Net in 2D over (time, frequency): six stride-2 levels over the
  frequency axis, 16 to 512 filters, batch norm and LeakyReLU(0.2). The first level's kernel
  spans ``K`` frames (the ``K - 1`` past frames are the ``frames_state``), the others one;
* the bottleneck is a GRU over time whose hidden state is ``gru_state``: it carries seconds
  of past music from hop to hop, while each hop computes only its new frames;
* the decoder: stride-2 transposed convolutions over frequency, batch norm, ReLU, dropout,
  skips from the encoder. The skips are *gated by the bottleneck* (multiplied by a sigmoid of
  the deep features at their level), so the per-frame path cannot reach the masks without
  the recurrent path: replacing the GRU's output by its mean changes every gate;
* a softmax over the stems: the masks sum to one, the stems to the mixture.
"""

from __future__ import annotations

import keras
from keras import layers

FRAMES_STATE = "frames_state"
GRU_STATE = "gru_state"


@keras.saving.register_keras_serializable(package="realtime_split")
class SkipDrop(layers.Layer):
    """Training only: the whole skip of an example is zeroed with probability ``rate`` (kept as is otherwise).

    A decoder that sometimes gets no skip at a level must be able to make the masks from the deep
    path alone, so the network cannot separate frame by frame through its skips and leave the
    recurrent bottleneck unused (the first run's failure, docs/experiments.md). Identity at inference.
    """

    def __init__(self, rate: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.rate <= 0:
            return x
        keep = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 1), seed=self.generator) >= self.rate
        return x * keras.ops.cast(keep, x.dtype)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="realtime_split")
class LastFrames(layers.Layer):
    """The last ``count`` frames of ``(b, T, ...)``: the first conv's past for the next call."""

    def __init__(self, count: int, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def call(self, x):
        return x[:, -self.count:]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count, *input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def build_stream_estimator(stems, bins: int = 512, depth: int = 6, filters: int = 16, max_filters: int = 512,
                           kernel: int = 5, time_kernel: int = 3, units: int = 256, dropout: float = 0.3,
                           dropout_stages: int = 2, gate_skips: bool = True, skip_dropout: float = 0.0,
                           skip_dropout_together: bool = False, name: str = "stream_estimator") -> keras.Model:
    n_stems = len(stems)
    magnitude = keras.Input(shape=(None, bins, 2), name="magnitude")
    frames_state = keras.Input(shape=(time_kernel - 1, bins, 2), name=FRAMES_STATE)
    gru_state = keras.Input(shape=(units,), name=GRU_STATE)

    widths = [min(filters * 2 ** i, max_filters) for i in range(depth)]
    # Causal in time: the first conv sees the K-1 frames before this call's first frame.
    history = layers.Concatenate(axis=1, name="with_past_frames")([frames_state, magnitude])
    next_frames = LastFrames(time_kernel - 1, name="next_frames_state")(history)
    x = layers.ZeroPadding2D(((0, 0), (kernel // 2, kernel // 2)), name="enc0_pad")(history)
    skips = []
    for i, width in enumerate(widths):
        kt = time_kernel if i == 0 else 1
        x = layers.Conv2D(width, (kt, kernel), strides=(1, 2), padding="valid" if i == 0 else "same",
                          name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"enc{i}_act")(x)
        skips.append(x)

    low = bins // 2 ** depth
    flat = layers.Reshape((-1, low * widths[-1]), name="bottleneck_flat")(x)
    z = layers.Dense(units, name="bottleneck_in")(flat)
    z, next_gru = layers.GRU(units, return_sequences=True, return_state=True, name="bottleneck_gru")(
        z, initial_state=gru_state)
    z = layers.Dense(low * widths[-1], name="bottleneck_out")(z)
    x = layers.Reshape((-1, low, widths[-1]), name="bottleneck_unflat")(z)
    x = layers.LeakyReLU(0.2, name="bottleneck_act")(x)

    for stage, i in enumerate(range(depth - 1, 0, -1)):
        x = layers.Conv2DTranspose(widths[i - 1], (1, kernel), strides=(1, 2), padding="same",
                                   name=f"dec{i}_conv")(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        x = layers.ReLU(name=f"dec{i}_act")(x)
        if stage < dropout_stages and dropout > 0:
            x = layers.Dropout(dropout, name=f"dec{i}_dropout")(x)
        skip = skips[i - 1]
        if skip_dropout > 0:
            # Together: every level's layer draws from the same seed, once per step, so a crop keeps all
            # its skips or none of them.
            seed = 0 if skip_dropout_together else i
            skip = SkipDrop(skip_dropout, seed=seed, name=f"dec{i}_skip_drop")(skip)
        if gate_skips:
            gate = layers.Conv2D(widths[i - 1], 1, activation="sigmoid", name=f"dec{i}_gate")(x)
            skip = layers.Multiply(name=f"dec{i}_gated")([skip, gate])
        x = layers.Concatenate(name=f"dec{i}_skip")([x, skip])
    logits = layers.Conv2DTranspose(2 * n_stems, (1, kernel), strides=(1, 2), padding="same", name="dec0_conv")(x)
    logits = layers.Reshape((-1, bins, 2, n_stems), name="mask_logits")(logits)
    masks = layers.Softmax(axis=-1, name="masks", dtype="float32")(logits)
    return keras.Model([magnitude, frames_state, gru_state], [masks, next_frames, next_gru], name=name)


def state_tensors(estimator: keras.Model):
    """The model contract's ``state`` entries (realtime_split.model_format.StateTensor) of ``estimator``."""
    from realtime_split.model_format import StateTensor

    return tuple(StateTensor(name, "next_" + name, tuple(int(d) for d in estimator.get_layer(name).output.shape[1:]))
                 for name in (FRAMES_STATE, GRU_STATE))


def zero_states(estimator: keras.Model, batch):
    """The initial states for a batch: zeros, as the runtime starts every stream."""
    import tensorflow as tf

    return [tf.zeros(tf.concat([[batch], t.shape], 0)) for t in state_tensors(estimator)]


class StreamingStftSeparator(keras.Model):
    """Waveform crop in, stems out, computed exactly as the runtime streams it (spectral.StatefulRunner).

    The crop starts a stream: zeros before it, zero states; its ``T = length / hop`` low-delay frames
    run through the estimator in one pass (the states flow through the GRU as they would hop by
    hop), the masked frames are synthesized and overlap-added. Output sample ``t`` is the stems at
    input sample ``t``; the last ``hop`` samples miss the next frame's share, so the loss ends before.
    """

    def __init__(self, estimator: keras.Model, geometry, **kwargs):
        super().__init__(**kwargs)
        import tensorflow as tf

        self.estimator = estimator
        self.geometry = geometry
        analysis, synthesis = geometry.lowdelay_windows()
        self._analysis = tf.constant(analysis)
        self._synthesis = tf.constant(synthesis[geometry.n_fft - geometry.synthesis:])

    def call(self, mix, training=False):
        import tensorflow as tf

        g = self.geometry
        length = tf.shape(mix)[1]
        x = tf.pad(tf.transpose(mix, [0, 2, 1]), [[0, 0], [0, 0], [g.n_fft - g.hop, 0]])  # (b, 2, pad + t)
        spec = tf.signal.rfft(tf.signal.frame(x, g.n_fft, g.hop) * self._analysis)  # (b, 2, T, n_freq)
        mag = tf.transpose(tf.abs(spec[..., :g.bins]), [0, 2, 3, 1])  # (b, T, bins, 2)
        masks, _, _ = self.estimator([mag, *zero_states(self.estimator, tf.shape(mix)[0])], training=training)
        masks = tf.transpose(masks, [0, 4, 3, 1, 2])  # (b, S, 2, T, bins)
        high = tf.reduce_mean(masks, axis=-1, keepdims=True)
        masks = tf.concat([masks, tf.repeat(high, g.n_fft // 2 + 1 - g.bins, axis=-1)], axis=-1)
        frames = tf.signal.irfft(spec[:, None] * tf.cast(masks, tf.complex64), fft_length=[g.n_fft])
        frames = frames[..., g.n_fft - g.synthesis:] * self._synthesis  # (b, S, 2, T, 2 * hop)
        wave = tf.signal.overlap_and_add(frames, g.hop)[..., g.hop:g.hop + length]  # frame 0 starts at -hop
        return tf.transpose(wave, [0, 3, 1, 2])  # (b, t, S, 2)


def build_streaming_model(config) -> StreamingStftSeparator:
    import tensorflow as tf

    m = config.model
    estimator = build_stream_estimator(m.stems, bins=m.bins, depth=m.depth, filters=m.filters,
                                       max_filters=m.max_filters, kernel=m.kernel_size, time_kernel=m.time_kernel,
                                       units=m.units, dropout=m.dropout, dropout_stages=m.dropout_stages,
                                       gate_skips=m.gate_skips, skip_dropout=m.skip_dropout,
                                       skip_dropout_together=m.skip_dropout_together)
    model = StreamingStftSeparator(estimator, m.stft_geometry(), name="streaming_stft_separator")
    model(tf.zeros((1, config.window, 2)))  # build
    return model
