"""``python -m export``: checkpoint -> verified, optimized ONNX model (+ optional quantized variants).

Steps: convert with tf2onnx, check parity with Keras, save ONNX Runtime's
portable optimizations and check parity again, read the file back through
``realtime_split`` (metadata round trip), then write ``--output``. Nothing is
written when a check fails: the command exits 1 and names the error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from realtime_split.errors import UserError
from realtime_split.model_format import ModelInfo

from .checkpoint import resolve
from .parity import (
    DEFAULT_TOLERANCE,
    ParityError,
    ParityResult,
    compare,
    onnx_runner,
    parity_signals,
    read_audio,
    require_parity,
    summary,
)
from .quantize import EXTRA_METADATA, KINDS, quantize


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="Keras checkpoint, e.g. runs/NAME/best.keras")
    p.add_argument("--config", type=Path, help="training config (default: config.toml beside the checkpoint)")
    p.add_argument("--output", type=Path, help="ONNX file to write, e.g. model.onnx")
    p.add_argument("--quantize", action="append", choices=KINDS, default=[],
                   help="also write a smaller variant OUTPUT's stem + .KIND.onnx and report its error, size and "
                        "(with --eval-data) SDR change; repeatable. fp16-weights: weights stored in float16, half "
                        "the file, float32 compute and speed (ONNX Runtime restores them at load); fp16: float16 "
                        "compute (smaller, but slower on most CPUs); int8: dynamic int8 quantization")
    p.add_argument("--parity-audio", type=Path, metavar="FILE",
                   help="real recording for the parity check (default: a generated music-like signal)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"max abs error allowed between Keras and ONNX (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--verify", type=Path, metavar="ONNX",
                   help="instead of exporting, check an existing ONNX file against the checkpoint")
    p.add_argument("--eval-data", metavar="KIND:PATH",
                   help="score the float and quantized files on this dataset (training.evaluate, default preset) "
                        "and report the SDR change")
    p.add_argument("--eval-split", default="valid", help="split of --eval-data: train, valid (default), test or all")
    p.add_argument("--eval-max-tracks", type=int, metavar="N", help="only the first N evaluation tracks")
    p.add_argument("--report", type=Path, metavar="JSON", help="also write the measurements as JSON")
    return p


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def round_trip(path: Path, expected: ModelInfo) -> ModelInfo:
    """Open ``path`` the way the runtime does and check it reads back exactly the metadata written."""
    from realtime_split.inference import load_model

    info = load_model(path, provider="cpu").info
    if info != expected:
        diff = [f.name for f in dataclasses.fields(ModelInfo) if getattr(info, f.name) != getattr(expected, f.name)]
        raise ParityError(f"metadata round trip failed for {path}: realtime_split read different {', '.join(diff)}")
    return info


def _log(message: str) -> None:
    print(message, flush=True)


def _parity(label: str, results: list[ParityResult]) -> dict:
    _log(f"{label}: max abs error {max(r.max_abs_error for r in results):.2e} ({summary(results)})")
    return {"max_abs_error": max(r.max_abs_error for r in results), "signals": [dataclasses.asdict(r) for r in results]}


def _sdr_changes(paths: dict[str, Path], info: ModelInfo, track_refs: list) -> dict:
    """Median SDR per stem of each file at the default preset, and each variant's change against float32."""
    from training.evaluate import Evaluator

    tracks = [(t.name, *t.load()) for t in track_refs]
    medians = {}
    for label, path in paths.items():
        evaluator = Evaluator(str(path), [info.default_preset])
        for name, rate, stems in tracks:
            evaluator.add_track(name, rate, stems)
        scores = evaluator.scores[info.default_preset]
        medians[label] = {s: scores.median(s, "sdr") for s in evaluator.stems()}
    result: dict[str, Any] = {"preset": info.default_preset, "tracks": len(tracks), "median_sdr": medians, "change": {}}
    for label in paths:
        if label != "float32":
            change = {s: medians[label][s] - medians["float32"][s] for s in medians["float32"]}
            result["change"][label] = change
            _log(f"{label}: SDR change vs float32 ({info.default_preset} preset, "
                 f"{len(tracks)} track{'s' * (len(tracks) != 1)}): "
                 + ", ".join(f"{s} {d:+.2f} dB" for s, d in change.items()))
    return result


def check_arguments(args: argparse.Namespace) -> tuple[Path, Path, list]:
    """Every path the command needs, checked before TensorFlow loads (seconds) and the export runs (minutes)."""
    checkpoint, config = resolve(args.checkpoint, args.config)
    if args.verify is None and args.output is None:
        raise UserError("no --output given; pass --output model.onnx (or --verify FILE to check an existing export)")
    for flag, path in (("--verify", args.verify), ("--parity-audio", args.parity_audio)):
        if path is not None and not path.is_file():
            raise UserError(f"{flag} {path}: file not found")
    eval_tracks = []
    if args.eval_data:
        from training.evaluate import open_tracks

        eval_tracks = open_tracks(args.eval_data, args.eval_split, args.eval_max_tracks)
    return checkpoint, config, eval_tracks


def verify(path: Path, info: ModelInfo, reference, signals, args: argparse.Namespace) -> dict:
    """Check an existing file against the checkpoint: same outputs, same contract metadata."""
    results = compare(reference, onnx_runner(path), signals)
    report = _parity(str(path), results)
    require_parity(results, args.tolerance, str(path))
    written = parse_written(path)
    if dataclasses.replace(written, extra={}) != dataclasses.replace(info, extra={}):
        raise ParityError(f"{path}: its metadata (stems, rate, presets...) differs from the training config")
    round_trip(path, written)
    _log(f"{path}: matches the checkpoint and realtime_split reads its metadata back unchanged")
    return report


def convert_and_check(model, info: ModelInfo, extra: dict, reference, signals, args: argparse.Namespace) -> dict:
    """Convert, optimize, check both and the metadata round trip; only then write ``--output``."""
    from .convert import keras_to_onnx
    from .optimize import optimize_offline

    report = {}
    expected = dataclasses.replace(info, extra={**info.extra, **extra})
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        converted = keras_to_onnx(model, info, Path(tmp) / "converted.onnx", extra=extra, opset=args.opset)
        results = compare(reference, onnx_runner(converted), signals)
        report["converted"] = _parity(f"converted (tf2onnx, opset {args.opset})", results)
        require_parity(results, args.tolerance, "the tf2onnx conversion")
        optimized = optimize_offline(converted, Path(tmp) / "optimized.onnx")
        results = compare(reference, onnx_runner(optimized), signals)
        report["optimized"] = _parity("optimized (ONNX Runtime, basic level)", results)
        require_parity(results, args.tolerance, "the optimized file")
        round_trip(optimized, expected)
        _log(f"metadata round trip: realtime_split reads {info.name or 'the model'} with stems "
             f"{','.join(info.stems)} and presets {','.join(info.presets)}")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(optimized, args.output)
    report["output"] = {"path": str(args.output), "bytes": args.output.stat().st_size, "metadata": extra}
    _log(f"wrote {args.output} ({_mb(args.output):.2f} MB, {extra['parameters']} parameters)")
    return report


def export(args: argparse.Namespace) -> dict:
    checkpoint, config, eval_tracks = check_arguments(args)
    from .checkpoint import load_run  # imports TensorFlow
    from .convert import keras_reference
    from .provenance import provenance

    model, info, training_data, parameters = load_run(checkpoint, config)
    audio = read_audio(args.parity_audio, info.sample_rate) if args.parity_audio else None
    signals = parity_signals(info, audio)
    reference = keras_reference(model, info)
    report: dict = {"checkpoint": str(checkpoint), "config": str(config), "tolerance": args.tolerance}
    if args.verify is not None:
        report["verify"] = verify(args.verify, info, reference, signals, args)
        return report

    extra = provenance(parameters, args.opset, checkpoint, training_data)
    report.update(convert_and_check(model, info, extra, reference, signals, args))
    expected = dataclasses.replace(info, extra={**info.extra, **extra})
    variants = {"float32": args.output}
    for kind in dict.fromkeys(args.quantize):
        path = args.output.with_name(f"{args.output.name.removesuffix('.onnx')}.{kind}.onnx")
        quantize(args.output, path, kind)
        results = compare(reference, onnx_runner(path), signals)
        round_trip(path, dataclasses.replace(expected, extra={**expected.extra, **EXTRA_METADATA.get(kind, {})}))
        report[kind] = {"path": str(path), "bytes": path.stat().st_size,
                        **_parity(f"{kind} ({path}, {_mb(path):.2f} MB)", results)}
        variants[kind] = path
    if eval_tracks:
        report["sdr"] = _sdr_changes(variants, info, eval_tracks)
    return report


def parse_written(path: Path) -> ModelInfo:
    """The metadata as stored in ``path`` (read with onnx, independently of ONNX Runtime)."""
    import onnx

    from realtime_split.model_format import parse_metadata

    proto = onnx.load(str(path), load_external_data=False)
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, source=str(path))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        report = export(args)
    except UserError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ParityError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
