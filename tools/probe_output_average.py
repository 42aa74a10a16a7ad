"""Stems averaged over several ONNX models, streamed at ``balanced`` (docs/model-card.md).

Averaging the outputs of separately trained models cancels the errors they do not share. The gain
shows whether the default model is held back by chance (each run's own errors) or by errors every
run makes. Every model streams through ``StreamingSeparator`` exactly as ``training.evaluate``
runs it. Each argument is one ONNX file, or comma-separated files whose stems are averaged:

    python3 tools/probe_output_average.py realtime_split/models/fast.onnx "realtime_split/models/fast.onnx,b.onnx"
"""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from probe_postfilters import STEMS, print_spec_table  # noqa: E402
from training.evaluate import Evaluator  # noqa: E402

PRESET = "balanced"


def main(specs: list[str]) -> None:
    def separator_for(spec: str):
        members = [Evaluator(path, [PRESET]) for path in spec.split(",")]
        return lambda mix: np.mean([m.separate(mix, 44100, PRESET, STEMS) for m in members], axis=0)

    print_spec_table(f"`python3 tools/probe_output_average.py ...`: median SDR over {{n}} tracks, dB, "
                     f"streamed at {PRESET}", "models averaged", specs, separator_for)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python3 tools/probe_output_average.py MODEL.onnx[,MODEL2.onnx...] ...")
    main(sys.argv[1:])
