"""Does the live model use its deep path? Replace the bottleneck GRU's output by its mean and score again.

Issue 16's check: a U-Net whose deep levels can be replaced by a constant is a shallow masker. This
runs a trained streaming U-Net (training/streaming_model.py) on each MUSDB18 validation track as
one long pass (what the runtime's streaming computes, see export's parity check), once as trained
and once with the GRU's output sequence replaced by its mean over all validation frames, and
prints the median museval SDR of both. The layers are called by name, mirroring
``build_stream_estimator``.

    python3 tools/probe_deep_path.py runs/live/best.keras --data musdb:../shared/data/musdb18-preview
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def forward(est, mag, bottleneck=None):
    """The estimator's masks for ``mag`` (b, T, bins, 2) from zero state; ``bottleneck`` replaces the GRU output."""
    import tensorflow as tf

    cfg_depth = len([layer for layer in est.layers if layer.name.endswith("_act") and layer.name.startswith("enc")])
    k = est.get_layer("frames_state").output.shape[1]
    units = est.get_layer("gru_state").output.shape[1]
    b = tf.shape(mag)[0]
    x = tf.concat([tf.zeros((b, k, mag.shape[2], 2)), mag], axis=1)
    x = est.get_layer("enc0_pad")(x)
    skips = []
    for i in range(cfg_depth):
        x = est.get_layer(f"enc{i}_act")(est.get_layer(f"enc{i}_bn")(est.get_layer(f"enc{i}_conv")(x), training=False))
        skips.append(x)
    z = est.get_layer("bottleneck_in")(est.get_layer("bottleneck_flat")(x))
    z, _ = est.get_layer("bottleneck_gru")(z, initial_state=tf.zeros((b, units)))
    if bottleneck is not None:
        z = tf.zeros_like(z) + bottleneck
    gru_out = z
    x = est.get_layer("bottleneck_act")(est.get_layer("bottleneck_unflat")(est.get_layer("bottleneck_out")(z)))
    for i in range(cfg_depth - 1, 0, -1):
        x = est.get_layer(f"dec{i}_act")(est.get_layer(f"dec{i}_bn")(est.get_layer(f"dec{i}_conv")(x), training=False))
        skip = skips[i - 1]
        names = {layer.name for layer in est.layers}
        if f"dec{i}_gate" in names:
            skip = skip * est.get_layer(f"dec{i}_gate")(x)
        x = tf.concat([x, skip], axis=-1)
    logits = est.get_layer("mask_logits")(est.get_layer("dec0_conv")(x))
    return est.get_layer("masks")(logits), gru_out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", default="musdb:../shared/data/musdb18-preview")
    p.add_argument("--split", default="valid")
    p.add_argument("--max-tracks", type=int, help="only the first N tracks (a quick look)")
    args = p.parse_args()
    import keras
    import tensorflow as tf

    import training.streaming_model  # noqa: F401  registers LastFrames
    from training.config import load_config
    from training.datasets import open_dataset, parse_spec
    from training.evaluate import bsseval_sdr
    from training.streaming_model import StreamingStftSeparator

    cfg = load_config(args.checkpoint.parent / "config.toml")
    est = keras.saving.load_model(str(args.checkpoint), compile=False)
    wrapper = StreamingStftSeparator(est, cfg.model.stft_geometry())
    g = cfg.model.stft_geometry()
    tracks = open_dataset(*parse_spec(args.data), args.split)[:args.max_tracks]
    stems_order = list(cfg.model.stems)
    loaded = []
    for t in tracks:
        rate, stems = t.load(cfg.streaming.sample_rate)
        n = len(next(iter(stems.values()))) // g.hop * g.hop
        loaded.append((t.name, {s: v[:n] for s, v in stems.items()}))

    class Replaced:
        """Stands in for the estimator inside the wrapper's STFT and synthesis."""

        def __init__(self, bottleneck):
            self.bottleneck = bottleneck

        def get_layer(self, name):
            return est.get_layer(name)

        def __call__(self, inputs, training=False):
            return forward(est, inputs[0], self.bottleneck)[0], None, None

    def separate(mix, bottleneck=None):
        """Stems (S, n, 2) of ``mix`` (n, 2): the wrapper's STFT and synthesis around ``forward``."""
        fake = SimpleNamespace(estimator=Replaced(bottleneck), geometry=g, _analysis=wrapper._analysis,
                               _synthesis=wrapper._synthesis)
        out = StreamingStftSeparator.call(fake, tf.constant(mix[None]), training=False)
        return out.numpy()[0].transpose(1, 0, 2)

    # The GRU output's mean over every validation frame.
    total, frames = None, 0
    for _, stems in loaded:
        mix = sum(stems[s] for s in stems_order)
        spec = tf.signal.rfft(tf.signal.frame(tf.pad(tf.constant(mix.T), [[0, 0], [g.n_fft - g.hop, 0]]), g.n_fft,
                                              g.hop) * g.lowdelay_windows()[0])
        mag = tf.transpose(tf.abs(spec[..., :g.bins]), [1, 2, 0])[None]
        masks, z = forward(est, mag)
        if frames == 0:  # the rebuilt forward pass must be the estimator's own
            from training.streaming_model import zero_states

            want = est([mag, *zero_states(est, 1)], training=False)[0]
            assert float(tf.reduce_max(tf.abs(masks - want))) < 1e-5, "forward() does not match the estimator"
        total = z.numpy()[0].sum(axis=0) if total is None else total + z.numpy()[0].sum(axis=0)
        frames += z.shape[1]
    mean = (total / frames).astype(np.float32)

    scores = {"as trained": [], "GRU output -> its mean": []}
    for name, stems in loaded:
        mix = sum(stems[s] for s in stems_order)
        refs = np.stack([stems[s] for s in stems_order])
        end = len(mix) - g.hop
        for label, bottleneck in (("as trained", None), ("GRU output -> its mean", mean)):
            est_stems = separate(mix, bottleneck)
            scores[label].append(bsseval_sdr(refs[:, :end], est_stems[:, :end], cfg.streaming.sample_rate))
        print(name, {k: np.round(v[-1], 2).tolist() for k, v in scores.items()}, flush=True)
    print(f"\nmedian SDR over {len(loaded)} tracks ({', '.join(stems_order)}):")
    for label, values in scores.items():
        print(f"| {label} | " + " | ".join(f"{x:.2f}" for x in np.nanmedian(np.array(values), axis=0)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
