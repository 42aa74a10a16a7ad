"""Score training checkpoints, or weight averages of them ("model soups"), in one piece (docs/model-card.md).

Each argument is a checkpoint or comma-separated checkpoints of one architecture whose weights (and
batch-norm statistics) are averaged. Every validation preview goes through the model whole: a quick
screen in a fraction of bench_quality's time, not its verdict. For the shipped model it matches
streaming at ``balanced`` within 0.12 dB, but a fine-tuned checkpoint scored 0.4 dB more on drums in
one piece than streamed, so decide with bench_quality (or ``training.evaluate --presets balanced``):

    python3 benchmarks/probe_checkpoints.py runs/default/best.keras "runs/default/best.keras,runs/other/best.keras"
"""

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402

from bench_quality import DATA  # noqa: E402
from probe_postfilters import PAD, STEMS, padded, print_header, print_row  # noqa: E402
from training.datasets import open_dataset  # noqa: E402
from training.evaluate import bsseval_sdr  # noqa: E402


def averaged(paths: list[str]) -> keras.Model:
    """The first checkpoint with every layer's weights replaced by the mean over all of them."""
    models = [keras.saving.load_model(p, compile=False) for p in paths]
    for layers in zip(*(m.layers for m in models)):
        weights = [layer.get_weights() for layer in layers]
        if weights[0]:
            layers[0].set_weights([np.mean(same, axis=0) for same in zip(*weights)])
    return models[0]


def main(specs: list[str]) -> None:
    tracks = []
    for track in open_dataset("musdb", DATA, "valid"):
        _, stems = track.load(44100)
        tracks.append(np.stack([stems[s] for s in STEMS]))
    print_header(f"`python3 benchmarks/probe_checkpoints.py ...`: median SDR over {len(tracks)} tracks, dB, "
                 "in one piece", "checkpoints")
    for spec in specs:
        model = averaged(spec.split(","))
        scores = []
        for references in tracks:
            mix = references.sum(axis=0)
            estimates = np.asarray(model(padded(mix), training=False))[0, PAD:PAD + len(mix)].transpose(1, 0, 2)
            scores.append(bsseval_sdr(references, estimates, 44100))
        print_row(spec, scores)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python3 benchmarks/probe_checkpoints.py RUN/best.keras[,RUN2/best.keras...] ...")
    main(sys.argv[1:])
