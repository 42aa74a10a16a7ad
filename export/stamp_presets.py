"""``python -m export.stamp_presets MODEL.onnx CONFIG.toml``: give an exported model its config's latency presets.

A preset's geometry (window, hop, crossfade, lookahead) is how the runtime streams the network, not part of
it: the network is fully convolutional. So a preset can change after export, for example a shorter window
for a live preset once measurements show it separates as well for less inference (the fast model's 4096-sample
``low`` and ``balanced``: docs/model-card.md). The config must describe this model (same rate, stems,
stride and architecture); only the ``presets`` key changes, graph and weights stay byte-identical. The
per-preset ``scores`` then describe other geometries, so they are removed: measure the file again and
stamp them (``benchmarks/bench_quality.py``, ``python -m export.stamp_scores``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from export.convert import restamp
from realtime_split.errors import ModelFormatError
from realtime_split.model_format import ModelInfo
from training.config import ConfigError, load_config

SCORES = "scores"


def stamp(model: Path, config: Path) -> dict[str, dict]:
    """Rewrite ``model``'s presets with those of ``config``; returns the new presets."""
    wanted = load_config(config).model_info()

    def with_config_presets(info: ModelInfo) -> ModelInfo:
        mine = (info.sample_rate, info.stems, info.length_multiple, info.frontend)
        theirs = (wanted.sample_rate, wanted.stems, wanted.length_multiple, wanted.frontend)
        architecture = json.loads(info.extra.get("architecture", "{}"))
        config_architecture = json.loads(wanted.extra["architecture"])
        # Keys both name must agree; an older export's flat table also names keys its builder never read.
        if mine != theirs or any(architecture[k] != v for k, v in config_architecture.items() if k in architecture):
            raise ModelFormatError(f"{config} describes another model than {model} (rate, stems, stride or "
                                   "architecture differ); pass the config the model was trained with")
        extra = {k: v for k, v in info.extra.items() if k != SCORES}
        return dataclasses.replace(info, presets=wanted.presets, default_preset=wanted.default_preset, extra=extra)

    stamped = restamp(model, with_config_presets)
    return {name: dataclasses.asdict(g) for name, g in stamped.presets.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not Path(args[0]).is_file() or not Path(args[1]).is_file():
        print("usage: python -m export.stamp_presets MODEL.onnx CONFIG.toml (the config the model was trained with)",
              file=sys.stderr)
        return 2
    try:
        print(stamp(Path(args[0]), Path(args[1])))
    except (ModelFormatError, ConfigError) as exc:
        print(f"stamp_presets: {exc}", file=sys.stderr)
        return 2
    print("stamp_presets: per-preset scores removed; measure the file and stamp them again "
          "(benchmarks/bench_quality.py, python -m export.stamp_scores)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
