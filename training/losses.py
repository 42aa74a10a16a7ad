"""Training losses, computed only where the runtime keeps the output.

The runtime overlap-adds only the kept region of each window, so the loss
looks only at ``ModelInfo.loss_region()`` (the union of the presets' kept
regions): the samples at the window edges, which the network sees with
little context, never count. Losses are per target (see sampler.TargetLayout)
and averaged over the targets the track defines (the presence mask).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

EPS = 1e-8
STFT_SIZES = (2048, 1024, 512)

LossFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def make_loss(name: str, matrix: np.ndarray, region: tuple[int, int], stem_weights=()) -> LossFn:
    """``loss(pred, targets, presence) -> (batch,)``.

    ``pred`` ``(B, W, S, 2)`` model output; ``targets`` ``(B, W, G, 2)``;
    ``presence`` ``(B, G)``; ``matrix`` ``(S, G)`` maps predicted stems to targets.
    ``stem_weights`` ``(S,)`` (empty = all 1) weights each target, a sum target by its parts' mean.
    """
    per_target = {"mae": _mae, "nmae": _mae, "mse": _mse, "sdr": _neg_sdr, "si-sdr": _neg_si_sdr,
                  "mrstft": _mrstft}[name]
    normalize = name == "nmae"
    start, stop = region
    stems = np.asarray(stem_weights if len(stem_weights) else np.ones(matrix.shape[0]), np.float32)
    weights = tf.constant(stems @ matrix / matrix.sum(axis=0), tf.float32)  # (G,)
    matrix = tf.constant(matrix, tf.float32)

    def loss(pred, targets, presence):
        pred = pred[:, start:stop]
        # "nmae": each window's errors over its mixture's mean level (the stems' sum), so quiet and
        # loud windows weigh the same and the gradients stay far above Adam's epsilon.
        level = tf.stop_gradient(tf.reduce_mean(tf.abs(tf.reduce_sum(pred, axis=2)), axis=[1, 2])) + 1e-4
        pred = tf.einsum("btsc,sg->btgc", pred, matrix)
        targets = targets[:, start:stop]
        errors = per_target(pred, targets)  # (B, G)
        if normalize:
            errors = errors / level[:, None]
        counted = presence * weights
        return tf.reduce_sum(errors * counted, axis=1) / tf.maximum(tf.reduce_sum(counted, axis=1), 1e-6)

    return loss


def _mae(pred, target):
    return tf.reduce_mean(tf.abs(pred - target), axis=[1, 3])


def _mse(pred, target):
    return tf.reduce_mean(tf.square(pred - target), axis=[1, 3])


def _neg_sdr(pred, target):
    signal = tf.reduce_sum(tf.square(target), axis=[1, 3])
    noise = tf.reduce_sum(tf.square(target - pred), axis=[1, 3])
    return -10.0 * _log10((signal + EPS) / (noise + EPS))


def _neg_si_sdr(pred, target):
    """Scale-invariant SDR (Le Roux et al. 2019), per channel, averaged over both channels."""
    dot = tf.reduce_sum(pred * target, axis=1, keepdims=True)
    scale = dot / (tf.reduce_sum(tf.square(target), axis=1, keepdims=True) + EPS)
    projection = scale * target
    signal = tf.reduce_sum(tf.square(projection), axis=1)
    noise = tf.reduce_sum(tf.square(pred - projection), axis=1)
    return -10.0 * tf.reduce_mean(_log10((signal + EPS) / (noise + EPS)), axis=-1)


def _mrstft(pred, target):
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1 at several FFT sizes."""
    length = pred.shape[1]
    sizes = [n for n in STFT_SIZES if n <= length] or [2 ** int(np.log2(length))]
    # (B, T, G, C) -> (B, G, C, T) so tf.signal.stft runs along time.
    pred, target = (tf.transpose(x, [0, 2, 3, 1]) for x in (pred, target))
    total = 0.0
    for n in sizes:
        p, t = (_magnitudes(x, n) for x in (pred, target))
        convergence = _norm(t - p) / (_norm(t) + EPS)
        log_mag = tf.reduce_mean(tf.abs(tf.math.log(t + 1e-5) - tf.math.log(p + 1e-5)), axis=[-2, -1])
        total += tf.reduce_mean(convergence + log_mag, axis=2)
    return total / len(sizes)


def _magnitudes(x, n: int):
    """Centered STFT magnitudes (zero padding of n/2 both sides), so every sample of the region counts."""
    x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [n // 2, n // 2]])
    return tf.abs(tf.signal.stft(x, n, n // 4, fft_length=n, pad_end=True))


def _norm(x):
    """Frobenius norm over the last two axes, with a gradient defined at zero."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=[-2, -1]) + EPS)


def _log10(x):
    return tf.math.log(x) / tf.math.log(10.0)
