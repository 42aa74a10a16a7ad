"""Separation quality measured through the runtime users run, streaming and offline.

Every track is separated by ``realtime_split.StreamingSeparator`` fed block by
block at each latency preset, exactly as the CLI and apps do, so the table shows
what a user hears and what low latency costs against the ``offline`` preset.
The mixture is the sum of the reference stems (MUSDB's coded mixture differs
from it). Scores: BSSEval v4 SDR from museval (1 s frames, median over frames,
then median over tracks) and SI-SDR over the whole track (median over tracks).
museval is slow: about 10 s per 7-second four-stem track and preset on one core.

    python -m training.evaluate --model model.onnx --data musdb:../shared/data/musdb18-preview \
        --split valid --presets low,balanced,quality,offline --out results/
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import soxr

from realtime_split import StreamingSeparator, registry
from realtime_split.errors import UserError

DEFAULT_PRESETS = ("balanced", "offline")
BLOCK = 4096  # samples per process() call, like a file-mode read


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR (Le Roux et al. 2019) in dB over all samples and channels; NaN for a silent reference."""
    r = np.asarray(reference, np.float64).ravel()
    e = np.asarray(estimate, np.float64).ravel()
    energy = r @ r
    if energy <= 1e-10:
        return float("nan")
    target = (e @ r) / energy * r
    noise = e - target
    eps = np.finfo(np.float64).eps  # like museval: a perfect estimate gives a large finite number, not inf
    return float(10 * np.log10((target @ target + eps) / (noise @ noise + eps)))


def bsseval_sdr(references: np.ndarray, estimates: np.ndarray, sample_rate: int) -> np.ndarray:
    """museval BSSEval v4 SDR per source, 1 s frames, median over frames; ``(S, n, 2)`` in, ``(S,)`` out."""
    import museval

    sdr, _isr, _sir, _sar = museval.evaluate(references, estimates, win=sample_rate, hop=sample_rate)
    with warnings.catch_warnings():  # a stem silent in every frame (no bass in a track) is NaN, not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(sdr, axis=1)


def _median(values: list[float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(values)) if values else float("nan")


@dataclass
class PresetScores:
    latency_ms: float
    tracks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # track -> stem -> metric

    def median(self, stem: str, metric: str) -> float:
        return _median([scores[stem][metric] for scores in self.tracks.values() if stem in scores])


class Evaluator:
    """Separates tracks at several presets with one StreamingSeparator per preset and scores them."""

    def __init__(self, model: str | None, presets: list[str], block: int = BLOCK):
        # One model for every preset, so the table compares presets of the same model (None = the
        # bundled model for the first preset).
        model = str(registry.resolve_model(model) if model else registry.default_model(presets[0]))
        self.model, self.presets, self.block = model, presets, block
        probe = StreamingSeparator(model, latency=presets[0])
        self.info = probe.info
        unknown = [p for p in presets if p not in self.info.presets]
        if unknown:
            raise UserError(f"model has no preset {', '.join(unknown)}; choose from {', '.join(self.info.presets)}")
        self._separators: dict[tuple[str, int, tuple[str, ...]], StreamingSeparator] = {}
        self.scores = {p: PresetScores(latency_ms=float("nan")) for p in presets}
        self.seconds = {"separation": 0.0, "museval": 0.0}

    def stems_for(self, available: list[str]) -> list[str]:
        """The reference stems this model can estimate (``accompaniment`` is derived from vocals)."""
        model_stems = self.info.stems
        derived = ["accompaniment"] if "accompaniment" in available and "vocals" in model_stems else []
        return [s for s in model_stems if s in available] + [s for s in derived if s not in model_stems]

    def separate(self, mix: np.ndarray, sample_rate: int, preset: str, stems: list[str]) -> np.ndarray:
        """``(S, n, 2)`` stems time-aligned with ``mix``: the reported latency dropped, the tail flushed."""
        key = (preset, sample_rate, tuple(stems))
        sep = self._separators.get(key)
        if sep is None:
            sep = self._separators[key] = StreamingSeparator(self.model, stems=stems, latency=preset,
                                                             sample_rate=sample_rate)
        sep.reset()
        self.scores[preset].latency_ms = 1000.0 * sep.latency_seconds
        parts = [sep.process(mix[i:i + self.block]) for i in range(0, len(mix), self.block)]
        parts.append(sep.flush())
        out = np.concatenate(parts, axis=1)
        delay = sep.latency_samples
        return out[:, delay:delay + len(mix)]

    def add_track(self, name: str, sample_rate: int, references: dict[str, np.ndarray]) -> None:
        """Score one track; ``references`` are its stems as ``TrackRef.load`` returns them (no coded mixture)."""
        mix = cast(np.ndarray, np.sum(list(references.values()), axis=0, dtype=np.float32))
        if "accompaniment" not in references and all(p in references for p in ("drums", "bass", "other")):
            # The karaoke stem (mix - vocals) is scored too: its reference is the sum of the others.
            references = {**references, "accompaniment": mix - references["vocals"]} if "vocals" in references \
                else references
        stems = self.stems_for(list(references))
        if not stems:
            raise UserError(f"track {name!r} has none of the model's stems ({', '.join(self.info.stems)})")
        refs = np.stack([references[s] for s in stems])
        for preset in self.presets:
            start = time.perf_counter()
            estimates = self.separate(mix, sample_rate, preset, stems)
            middle = time.perf_counter()
            sdr = bsseval_sdr(refs, estimates, sample_rate)
            self.seconds["separation"] += middle - start
            self.seconds["museval"] += time.perf_counter() - middle
            self.scores[preset].tracks[name] = {
                s: {"sdr": float(sdr[i]), "si_sdr": si_sdr(refs[i], estimates[i])} for i, s in enumerate(stems)
            }

    def stems(self) -> list[str]:
        seen: dict[str, None] = {}
        for scores in self.scores.values():
            for track in scores.tracks.values():
                seen.update(dict.fromkeys(track))
        return list(seen)


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


def markdown(evaluator: Evaluator, n_tracks: int) -> str:
    stems = evaluator.stems()
    head = ["preset", "latency"] + [f"{s} {m}" for s in stems for m in ("SDR", "SI-SDR")] + ["mean SDR"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for preset, scores in evaluator.scores.items():
        cells = [preset, f"{scores.latency_ms:.1f} ms"]
        sdrs = []
        for stem in stems:
            sdr = scores.median(stem, "sdr")
            sdrs.append(sdr)
            cells += [_fmt(sdr), _fmt(scores.median(stem, "si_sdr"))]
        finite = [v for v in sdrs if np.isfinite(v)]
        cells.append(_fmt(float(np.mean(finite)) if finite else float("nan")))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"dB, higher is better. SDR: museval BSSEval v4, 1 s frames, median over frames then over "
                 f"{n_tracks} tracks. SI-SDR: whole track, median over tracks. Latency: the separator's fixed delay.")
    return "\n".join(lines)


def _json_safe(value):
    """NaN (a stem silent in every track) becomes null: strict JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def report(evaluator: Evaluator, args: argparse.Namespace, track_names: list[str], seconds: float) -> dict:
    return _json_safe({
        "model": str(args.model) if args.model else "bundled default",
        "model_name": evaluator.info.name,
        "data": args.data,
        "split": args.split,
        "sample_rate": getattr(args, "sample_rate", None) or "the data's",
        "tracks": track_names,
        "metrics": {"sdr": "museval BSSEval v4, win=hop=1 s, nanmedian over frames, median over tracks",
                    "si_sdr": "whole track, all channels, median over tracks"},
        "presets": {
            preset: {
                "latency_ms": scores.latency_ms,
                "median": {s: {m: scores.median(s, m) for m in ("sdr", "si_sdr")} for s in evaluator.stems()},
                "per_track": scores.tracks,
            }
            for preset, scores in evaluator.scores.items()
        },
        "seconds": {"total": seconds, **evaluator.seconds},
    })


def open_tracks(data: str, split: str, max_tracks: int | None) -> list:
    """``KIND:PATH`` through the training dataset readers, so evaluation reads data exactly as training does."""
    from training.datasets import open_dataset, parse_spec

    tracks = open_dataset(*parse_spec(data), split=None if split == "all" else split)
    return tracks[:max_tracks] if max_tracks else tracks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="bundled model name or ONNX file (default: the bundled model for the first preset)")
    p.add_argument("--data", required=True, metavar="KIND:PATH",
                   help="dataset, e.g. musdb:../shared/data/musdb18-preview")
    p.add_argument("--split", default="valid", help="dataset split: train, valid (default), test or all")
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS),
                   help="comma-separated latency presets (default: balanced,offline)")
    p.add_argument("--max-tracks", type=int, metavar="N", help="only the first N tracks (quick runs)")
    p.add_argument("--sample-rate", type=int, metavar="HZ",
                   help="score at this rate: the references are resampled to it (soxr HQ) and the model is fed "
                        "at it, as a device at that rate would (default: the data's rate)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write DIR/evaluation.md and DIR/evaluation.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    start = time.perf_counter()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if not presets:
        raise UserError("--presets is empty; pass e.g. balanced,offline")
    tracks = open_tracks(args.data, args.split, args.max_tracks)
    evaluator = Evaluator(args.model, presets)
    names = []
    rate = getattr(args, "sample_rate", None)  # bench_quality's namespace has none
    for track in tqdm(tracks, desc="evaluating", unit="track", disable=args.no_progress, file=sys.stderr):
        sample_rate, stems = track.load()
        if rate and rate != sample_rate:
            stems = {k: soxr.resample(v, sample_rate, rate, quality="HQ").astype(np.float32) for k, v in stems.items()}
            sample_rate = rate
        evaluator.add_track(track.name, sample_rate, stems)
        names.append(track.name)
    result = report(evaluator, args, names, time.perf_counter() - start)
    result["markdown"] = markdown(evaluator, len(names))
    return result


def print_summary(result: dict) -> None:
    print(result["markdown"])
    s = result["seconds"]
    print(f"\n{len(result['tracks'])} tracks in {s['total']:.1f} s "
          f"(separation {s['separation']:.1f} s, museval {s['museval']:.1f} s)", file=sys.stderr)


def save(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.md").write_text(result["markdown"] + "\n")
    (out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        result = {"command": "python -m training.evaluate " + shlex.join(argv), **run(args)}
    except UserError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print_summary(result)
    if args.out:
        save(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
