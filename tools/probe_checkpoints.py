"""Score training checkpoints, or weight averages of them ("model soups"), in one piece (docs/model-card.md).

Each argument is a checkpoint or comma-separated checkpoints of one architecture whose weights (and
batch-norm statistics) are averaged. Every validation preview goes through the model whole: a quick
screen in a fraction of bench_quality's time, not its verdict. For the shipped model it matches
streaming at ``balanced`` within 0.12 dB, but a fine-tuned checkpoint scored 0.4 dB more on drums in
one piece than streamed, so decide with bench_quality (or ``training.evaluate --presets balanced``):

    python3 tools/probe_checkpoints.py runs/default/best.keras "runs/default/best.keras,runs/other/best.keras"
"""

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402

from probe_postfilters import PAD, padded, print_spec_table  # noqa: E402


def averaged(paths: list[str]) -> keras.Model:
    """The first checkpoint with every layer's weights replaced by the mean over all of them."""
    models = [keras.saving.load_model(p, compile=False) for p in paths]
    for layers in zip(*(m.layers for m in models)):
        weights = [layer.get_weights() for layer in layers]
        if weights[0]:
            layers[0].set_weights([np.mean(same, axis=0) for same in zip(*weights)])
    return models[0]


def main(specs: list[str]) -> None:
    def separator_for(spec: str):
        model = averaged(spec.split(","))
        return lambda mix: np.asarray(model(padded(mix), training=False))[0, PAD:PAD + len(mix)].transpose(1, 0, 2)

    print_spec_table("`python3 tools/probe_checkpoints.py ...`: median SDR over {n} tracks, dB, in one piece",
                     "checkpoints", specs, separator_for)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python3 tools/probe_checkpoints.py RUN/best.keras[,RUN2/best.keras...] ...")
    main(sys.argv[1:])
