"""``python -m export.stamp_scores MODEL.onnx EVALUATION.json``: record measured scores in a model's metadata.

``realtime-split --list-models`` shows them. The scores are the median SDR per preset and stem from a
``training.evaluate`` / ``benchmarks/bench_quality.py --out`` report of this very file; only the metadata
changes (graph and weights stay byte-identical), so the report still describes the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx

from export.convert import save_in_place
from realtime_split.model_format import PREFIX

KEY = PREFIX + "scores"


def scores_from_report(report: dict) -> dict:
    """``{preset: {stem: median SDR}}`` rounded to 0.01 dB."""
    return {preset: {stem: round(m["sdr"], 2) for stem, m in p["median"].items()}
            for preset, p in report["presets"].items()}


def stamp(model: Path, report: Path) -> dict:
    scores = scores_from_report(json.loads(report.read_text()))
    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key != KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = KEY, json.dumps(scores)  # stems in the report's order
    save_in_place(proto, model)
    return scores


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not all(Path(a).is_file() for a in args):
        print("usage: python -m export.stamp_scores MODEL.onnx EVALUATION.json (both existing files)", file=sys.stderr)
        return 2
    print(json.dumps(stamp(Path(args[0]), Path(args[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
