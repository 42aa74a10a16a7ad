"""The ceiling of masks on a trained model's learned filterbank: oracle masks from the true stems.

The model masks the ReLU coefficients ``a = relu(W * mix)`` of its analysis filterbank and turns
them back into waveforms with its shared synthesis filters. This script keeps those two layers of a
trained checkpoint and replaces the U-Net by masks computed from the true stems, on the 14 MUSDB18
validation previews:

- ratio masks ``clip((W * stem) / (W * mix), 0, 1)``, the filterbank's ideal ratio mask;
- least-squares masks: the [0, 1] masks whose synthesized stems are closest to the true stems,
  found by projected Adam from the ratio masks.

The least-squares SNR (dB, median over tracks) is a lower bound on the most any U-Net could reach
with that filterbank; compare it with the waveform masks' ceiling (``oracle_waveform_masks.py``)
and with the model's own scores. Quoted in docs/model-card.md.

    python3 tools/oracle_filterbank_masks.py runs/default/best.keras [STEPS]
"""

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # bench_quality (its DATA)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_quality import DATA  # noqa: E402
from oracle_waveform_masks import STEMS, print_table, snr  # noqa: E402
from training.datasets import open_dataset  # noqa: E402


def least_squares_masks(synthesis, start: np.ndarray, coeffs: np.ndarray, target: np.ndarray, steps: int):
    """[0, 1] masks minimizing the squared error of the synthesized stems (projected Adam)."""
    masks = tf.Variable(start)
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(synthesis(masks * coeffs) - target))
        optimizer.apply_gradients([(tape.gradient(loss, masks), masks)])
        masks.assign(tf.clip_by_value(masks, 0.0, 1.0))

    for _ in range(steps):
        step()
    return masks.numpy()


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python3 tools/oracle_filterbank_masks.py CHECKPOINT.keras [STEPS]")
    model = keras.saving.load_model(sys.argv[1], compile=False)
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    analysis, synthesis = model.get_layer("analysis"), model.get_layer("synthesis")
    kernel, hop = analysis.get_weights()[0], analysis.strides[0]
    variants = ["ratio masks", f"least-squares masks ({steps} steps)"]
    results = {v: {s: [] for s in STEMS} for v in variants}
    for track in open_dataset("musdb", DATA, "valid"):
        _, stems = track.load()
        s = np.stack([stems[n] for n in STEMS]).astype(np.float32)  # (stems, time, 2)
        length = s.shape[1]
        s = np.pad(s, [(0, 0), (0, -length % hop), (0, 0)])
        mix = s.sum(0)
        linear = tf.nn.conv1d(np.concatenate([mix[None], s]), kernel, hop, "SAME").numpy()  # W * x, no ReLU
        ratio = np.where(linear[0] > 1e-8, linear[1:] / np.maximum(linear[0], 1e-8), 0.0)
        ratio = np.clip(ratio, 0, 1).transpose(1, 0, 2)[None]  # (1, frames, stems, N), the layout of the model
        coeffs = np.maximum(linear[0], 0)[None, :, None, :]
        target = s.transpose(1, 0, 2)[None]  # (1, time, stems, 2)
        masks = {variants[0]: ratio, variants[1]: least_squares_masks(synthesis, ratio, coeffs, target, steps)}
        for v, m in masks.items():
            out = np.asarray(synthesis(m * coeffs))[0]
            for i, name in enumerate(STEMS):
                results[v][name].append(snr(s[i, :length], out[:length, i]))
        print(track.name, " ".join(f"{results[variants[1]][n][-1]:.2f}" for n in STEMS), file=sys.stderr, flush=True)
    print(f"checkpoint {sys.argv[1]}; SNR in dB, median over {len(results[variants[0]]['vocals'])} tracks")
    print_table("masks on the learned filterbank", results)


if __name__ == "__main__":
    main()
