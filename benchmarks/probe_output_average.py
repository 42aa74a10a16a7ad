"""Stems averaged over several ONNX models, streamed at ``balanced`` (docs/model-card.md).

Averaging the outputs of separately trained models cancels the errors they do not share. The gain
shows whether the default model is held back by chance (each run's own errors) or by errors every
run makes. Every model streams through ``StreamingSeparator`` exactly as ``training.evaluate``
runs it. Each argument is one ONNX file, or comma-separated files whose stems are averaged:

    python3 benchmarks/probe_output_average.py realtime_split/models/default.onnx "realtime_split/models/default.onnx,b.onnx"
"""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_quality import DATA  # noqa: E402
from probe_postfilters import STEMS, print_header, print_row  # noqa: E402
from training.datasets import open_dataset  # noqa: E402
from training.evaluate import Evaluator, bsseval_sdr  # noqa: E402

PRESET = "balanced"


def main(specs: list[str]) -> None:
    tracks = []
    for track in open_dataset("musdb", DATA, "valid"):
        _, stems = track.load(44100)
        tracks.append(np.stack([stems[s] for s in STEMS]))
    print_header(f"`python3 benchmarks/probe_output_average.py ...`: median SDR over {len(tracks)} tracks, dB, "
                 f"streamed at {PRESET}", "models averaged")
    for spec in specs:
        members = [Evaluator(path, [PRESET]) for path in spec.split(",")]
        scores = []
        for references in tracks:
            mix = references.sum(axis=0)
            estimates = np.mean([m.separate(mix, 44100, PRESET, STEMS) for m in members], axis=0)
            scores.append(bsseval_sdr(references, estimates, 44100))
        print_row(spec, scores)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python3 benchmarks/probe_output_average.py MODEL.onnx[,MODEL2.onnx...] ...")
    main(sys.argv[1:])
