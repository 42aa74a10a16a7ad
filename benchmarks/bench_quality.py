"""Quality benchmark: reproduces the model card's table with one command.

Runs ``training.evaluate`` (the runtime's StreamingSeparator, museval BSSEval
v4 SDR and SI-SDR) on the 14 MUSDB18 validation previews at every latency
preset and the offline preset, prints the table and records it, with the exact
command, between the ``quality-table`` markers of docs/model-card.md
(docs/model-card-table.md while the model card does not exist). A partial run
(``--max-tracks``) only prints: it must not replace the published table.
Runtime on the 2-core dev machine with the default model: about 30 s per track for the four
presets (a fifth separation, the rest museval), so 7-8 min for the 14 tracks.

    python3 benchmarks/bench_quality.py                       # bundled model
    python3 benchmarks/bench_quality.py --model model.onnx
    python3 benchmarks/bench_quality.py --model model.onnx --max-tracks 2   # quick look, docs untouched
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_split.errors import UserError  # noqa: E402
from training import evaluate  # noqa: E402

MODEL_CARD = REPO / "docs" / "model-card.md"
FALLBACK = REPO / "docs" / "model-card-table.md"
START, END = "<!-- quality-table:start -->", "<!-- quality-table:end -->"
DATA = REPO.parent / "shared" / "data" / "musdb18-preview"
PRESETS = "low,balanced,quality,offline"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_quality.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="ONNX model (default: the bundled realtime_split/models/default.onnx)")
    p.add_argument("--data", default=str(DATA), help=f"MUSDB18 (preview) folder (default: {DATA})")
    p.add_argument("--max-tracks", type=int, metavar="N", help="only N tracks; prints without touching the docs")
    p.add_argument("--out", type=Path, metavar="DIR", help="also keep DIR/evaluation.md and .json (per-track scores)")
    return p


def block(result: dict, command: str) -> str:
    s = result["seconds"]
    model = result["model"] if result["model"] == "bundled default" else Path(result["model"]).name
    return "\n".join([
        START,
        f"Measured {dt.date.today().isoformat()} with `{command}`: model `{result['model_name']}` ({model}), "
        f"{len(result['tracks'])} MUSDB18 validation previews (about 7 s each, mixture = sum of the stems), "
        f"separated by `StreamingSeparator` at each preset. {platform.machine()}, {os.cpu_count()} cores, "
        f"{s['total'] / 60:.1f} min (museval {s['museval'] / 60:.1f} min).",
        "",
        result["markdown"],
        END,
    ])


def record(text: str) -> Path:
    """Replace the marked block of the model card (or append it); docs/model-card-table.md if there is no card."""
    if not MODEL_CARD.is_file():
        FALLBACK.write_text("# Model card quality table\n\nMove this block into docs/model-card.md "
                            "(it is written here until that file exists).\n\n" + text + "\n")
        return FALLBACK
    card = MODEL_CARD.read_text()
    if START in card and END in card:
        head, rest = card.split(START, 1)
        card = head + text + rest.split(END, 1)[1]
    else:
        card = card.rstrip("\n") + "\n\n## Quality\n\n" + text + "\n"
    MODEL_CARD.write_text(card)
    return MODEL_CARD


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    eval_argv = ["--data", f"musdb:{args.data}", "--split", "valid", "--presets", PRESETS]
    eval_argv += ["--model", args.model] if args.model else []
    eval_argv += ["--max-tracks", str(args.max_tracks)] if args.max_tracks else []
    try:
        result = evaluate.run(evaluate.build_parser().parse_args(eval_argv))
    except UserError as exc:
        print(f"bench_quality: error: {exc}", file=sys.stderr)
        return exc.exit_code
    command = "python3 benchmarks/bench_quality.py" + (" " + shlex.join(argv) if argv else "")
    result = {"command": command, **result}
    evaluate.print_summary(result)
    if args.out:
        evaluate.save(result, args.out)
    if args.max_tracks:
        print("partial run (--max-tracks): the model card was not changed", file=sys.stderr)
        return 0
    path = record(block(result, command))
    print(f"recorded in {path.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
