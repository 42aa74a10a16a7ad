"""``python -m export.stamp_rates MODEL.onnx RATE[,RATE...]``: let the runtime run a model at other rates unresampled.

Writes the metadata key ``native_rates`` (format version 4, docs/model-format.md): in live and streamed
audio at one of those rates the runtime feeds the network directly, with no resampler's delay (the
windows and hops are the same numbers of samples, so shorter in time). Stamp a rate only after measuring
the model there against resampling (``python -m training.evaluate --sample-rate RATE``, with and without
the stamp) and recording both in the model card. Only the metadata changes; graph and weights stay
byte-identical.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from export.convert import restamp
from realtime_split.errors import ModelFormatError
from realtime_split.model_format import PREFIX


def stamp(model: Path, rates: tuple[int, ...]) -> dict[str, str]:
    """Rewrite ``model``'s metadata with ``rates`` as its native rates (empty: none), in the current format version."""
    # restamp checks the rates like any file's: not the model's own rate, no duplicates.
    written = restamp(model, lambda info: dataclasses.replace(info, native_rates=rates)).to_metadata()
    return {key: written[PREFIX + key] for key in ("native_rates", "format_version") if PREFIX + key in written}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m export.stamp_rates MODEL.onnx RATE[,RATE...] (e.g. 48000; an empty list removes them)"
    if len(args) != 2 or not Path(args[0]).is_file():
        print(usage, file=sys.stderr)
        return 2
    try:
        rates = tuple(int(r) for r in args[1].split(",") if r.strip())
    except ValueError:
        print(usage, file=sys.stderr)
        return 2
    try:
        print(stamp(Path(args[0]), rates))
    except ModelFormatError as exc:
        print(f"stamp_rates: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
