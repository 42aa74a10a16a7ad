"""Quality benchmark: reproduces the model card's table with one command.

Runs ``training.evaluate`` (the runtime's StreamingSeparator, museval BSSEval
v4 SDR and SI-SDR) on the 14 MUSDB18 validation previews at every preset of the
model, prints the table and records it, with the exact command, between the
model's ``quality-table:NAME`` markers of docs/model-card.md (NAME: the bundled
model's name). Only a bundled model's full run is recorded: another file or a
partial run (``--max-tracks``) only prints, so it cannot replace a published table.
Runtime on the 2-core dev machine: about 10-15 min for the 14 tracks (mostly museval).

    python3 benchmarks/bench_quality.py --model fast           # each bundled model
    python3 benchmarks/bench_quality.py --model quality
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

from realtime_split import registry  # noqa: E402
from realtime_split.errors import UserError  # noqa: E402
from realtime_split.model_format import OFFLINE  # noqa: E402
from training import evaluate  # noqa: E402

MODEL_CARD = REPO / "docs" / "model-card.md"
DATA = REPO.parent / "shared" / "data" / "musdb18-preview"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- quality-table:{name}:start -->", f"<!-- quality-table:{name}:end -->"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_quality.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=registry.FAST, help="bundled model name or ONNX file (default: fast)")
    p.add_argument("--data", default=str(DATA), help=f"MUSDB18 (preview) folder (default: {DATA})")
    p.add_argument("--max-tracks", type=int, metavar="N", help="only N tracks; prints without touching the docs")
    p.add_argument("--out", type=Path, metavar="DIR", help="also keep DIR/evaluation.md and .json (per-track scores)")
    return p


def block(result: dict, command: str, name: str) -> str:
    s = result["seconds"]
    model = Path(result["model"]).name
    start, end = markers(name)
    return "\n".join([
        start,
        f"Measured {dt.date.today().isoformat()} with `{command}`: model `{result['model_name']}` ({model}), "
        f"{len(result['tracks'])} MUSDB18 validation previews (about 7 s each, mixture = sum of the stems), "
        f"separated by `StreamingSeparator` at each preset. {platform.machine()}, {os.cpu_count()} cores, "
        f"{s['total'] / 60:.1f} min (museval {s['museval'] / 60:.1f} min).",
        "",
        result["markdown"],
        end,
    ])


def record(text: str, name: str) -> Path:
    """Replace the model's marked block of the model card (or append it under a heading of its own)."""
    card = MODEL_CARD.read_text() if MODEL_CARD.is_file() else "# Model cards\n"
    start, end = markers(name)
    if start in card and end in card:
        head, rest = card.split(start, 1)
        card = head + text + rest.split(end, 1)[1]
    else:
        card = card.rstrip("\n") + f"\n\n## Quality of {name}\n\n" + text + "\n"
    MODEL_CARD.write_text(card)
    return MODEL_CARD


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        path = registry.resolve_model(args.model)
        info = registry.read_info(path)
        presets = sorted(info.presets.items(), key=lambda kv: (kv[0] == OFFLINE, kv[1].latency))
        if info.state:  # a stateful model runs the same frames with the same state at every preset: files
            presets = [(name, g) for name, g in presets if name != OFFLINE]  # get the streamed output
        eval_argv = ["--data", f"musdb:{args.data}", "--split", "valid", "--model", str(path),
                     "--presets", ",".join(name for name, _ in presets)]
        eval_argv += ["--max-tracks", str(args.max_tracks)] if args.max_tracks else []
        result = evaluate.run(evaluate.build_parser().parse_args(eval_argv))
    except UserError as exc:
        print(f"bench_quality: error: {exc}", file=sys.stderr)
        return exc.exit_code
    command = "python3 benchmarks/bench_quality.py" + (" " + shlex.join(argv) if argv else "")
    result = {"command": command, **result}
    evaluate.print_summary(result)
    if args.out:
        evaluate.save(result, args.out)
    bundled = args.model in registry.bundled_names()
    if args.max_tracks or not bundled:
        why = "partial run (--max-tracks)" if args.max_tracks else "not a bundled model"
        print(f"{why}: the model card was not changed", file=sys.stderr)
        return 0
    text = block(result, command, args.model)
    if info.state and OFFLINE in info.presets:
        note = ("The offline preset (files) gives the same stems as the streamed presets: a stateful model runs the "
                "same frames with the same state at every preset, only more of them per call "
                "(tests/test_stateful.py), so it is not scored twice.")
        text = text.replace(markers(args.model)[1], note + "\n" + markers(args.model)[1])
    path = record(text, args.model)
    print(f"recorded in {path.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
