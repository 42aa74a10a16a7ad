"""File mode: ``realtime-split --input FILE [FILE ...] --stem ... --output FILE|DIR/``.

Each input streams through a StreamingSeparator in fixed-size blocks, so memory
stays flat for any length, and every stem is written as it comes out. Outputs
are time-aligned with the input (the separator's latency is cut off the front
and its flushed tail appended), exactly as long as the input and at its sample
rate. Every check that can fail (inputs, format, model, stems, output folder)
runs before the first sample is separated; writers are closed in ``finally``
so an interrupted run leaves valid, shorter files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio_files import AudioWriter, default_extension, open_input, output_format
from .cli import announce_model
from .errors import UserError
from .separator import StreamingSeparator

DEFAULT_OUTPUT_DIR = "separated/"
# Large enough that the separator batches many hops per ONNX Runtime call, small enough to keep memory flat.
BLOCK_FRAMES = 65536


@dataclass
class Job:
    """One input file and where its stems go."""

    input: Path
    samplerate: int
    channels: int
    channel_selection: str | None  # --channels, applied again when the file is reopened
    outputs: list[Path] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    if args.offline and (args.latency or args.hop):
        raise UserError("--offline excludes --latency and --hop; files are separated offline unless you pick a "
                        "latency preset to hear what live mode gives")
    jobs = [_probe(Path(p), args.channels) for p in args.input]
    target = Path(args.output or DEFAULT_OUTPUT_DIR)
    to_dir = _is_directory_target(args.output or DEFAULT_OUTPUT_DIR)
    ext = default_extension(args.file_format) if to_dir else None
    fmt, subtype = output_format(Path(f"stem.{ext}") if to_dir else target, args.file_format, args.subtype)

    separators: dict[tuple[int, int], StreamingSeparator] = {}
    first = _separator(args, jobs[0], separators)  # loads the model: a bad model, preset or stem fails here
    announce_model(args, first)
    stems = first.stems
    if to_dir:
        # Without --output every song gets its own folder, so separating another song never overwrites.
        per_input = len(jobs) > 1 or args.output is None
        for job, name in zip(jobs, _output_names([job.input for job in jobs])):
            folder = target / name if per_input else target
            job.outputs = [folder / f"{stem}.{ext}" for stem in stems]
    else:
        if len(jobs) > 1 or len(stems) > 1:
            what = f"{len(jobs)} inputs" if len(jobs) > 1 else f"{len(stems)} stems ({', '.join(stems)})"
            raise UserError(
                f"--output {target} is one file, but {what} need one file each; "
                f"pass a directory such as --output {target.with_suffix('')}/"
            )
        jobs[0].outputs = [target]
    _check_writable(jobs)

    for job in jobs:
        sep = _separator(args, job, separators)
        label = sep.preset + (f", hop {sep.geometry.hop}" if args.hop else "")
        _separate(job, sep, fmt, subtype, label, show_progress=_show_progress(args))
    return 0


def _probe(path: Path, channels: str | None) -> Job:
    """Open and close an input so a bad file fails before any separation starts."""
    with open_input(path, channels) as reader:
        return Job(path, reader.samplerate, reader.channels, channels)


def _is_directory_target(output: str) -> bool:
    path = Path(output)
    return output.endswith(("/", os.sep)) or path.is_dir() or not path.suffix


def _output_names(inputs: list[Path]) -> list[str]:
    """One folder name per input: its file name, prefixed by its folder when two inputs share a name."""
    names = [p.stem for p in inputs]
    names = [f"{p.resolve().parent.name}-{n}" if names.count(n) > 1 else n for p, n in zip(inputs, names)]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"two inputs would both be written to the folder {name!r}; rename one of them")
    return names


def _check_writable(jobs: list[Job]) -> None:
    for job in jobs:
        for out in job.outputs:
            if out.exists() and out.resolve() == job.input.resolve():
                raise UserError(f"the output {out} is the input file; choose another --output")
        folder = job.outputs[0].parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise UserError(f"cannot write to {folder}: {exc.strerror or exc}; choose another --output") from None


def _separator(args: argparse.Namespace, job: Job, cache: dict) -> StreamingSeparator:
    """One separator per (sample rate, channels), reused across inputs after a reset."""
    key = (job.samplerate, job.channels)
    if key in cache:
        cache[key].reset()
        return cache[key]
    cache[key] = StreamingSeparator(
        model=args.model,  # None: the bundled model for the preset (registry.default_model)
        stems=args.stem or "all",
        provider=args.provider,
        latency=_preset(args),
        hop=args.hop,
        sample_rate=job.samplerate,
        channels=job.channels,
        gains=args.gain or None,  # "STEM=DB" strings, parsed by the separator against its output stems
    )
    return cache[key]


def _preset(args: argparse.Namespace) -> str | None:
    """Files are separated offline (full context, fastest) unless --latency or --hop asks for streaming.

    The latency of a file's output is compensated anyway, so only a user who wants to reproduce
    what live mode gives at a preset needs the streaming geometry.
    """
    if args.offline or (args.latency is None and args.hop is None):
        return "offline"
    return args.latency


def _show_progress(args: argparse.Namespace) -> bool:
    """A bar only for a person watching a terminal: logs and pipes get the summary lines alone."""
    return not args.no_progress and sys.stderr.isatty()


def _progress_bar(name: str, seconds: float | None, show: bool) -> tqdm:
    """Seconds of audio done; the rate reads as "x real time" in s/s. Some ffmpeg streams have no duration."""
    known = "{percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}, {rate_fmt}]"
    unknown = "{n:.0f} s [{elapsed}, {rate_fmt}]"
    return tqdm(total=seconds, unit="s", desc=name, disable=not show, file=sys.stderr, leave=False,
                bar_format="{desc}: " + (known if seconds else unknown))


def _separate(job: Job, sep: StreamingSeparator, fmt: str, subtype: str, label: str, show_progress: bool) -> None:
    reader = open_input(job.input, job.channel_selection)
    writers: list[AudioWriter] = []
    frames = 0
    bar = _progress_bar(job.input.name, reader.duration, show_progress)
    start, nonfinite_before = time.perf_counter(), sep.stats.nonfinite_samples
    try:
        for path in job.outputs:
            writers.append(AudioWriter(path, job.samplerate, job.channels, fmt, subtype))
        block_in = np.empty((BLOCK_FRAMES, job.channels), np.float32)
        block_out = np.empty((len(sep.stems), BLOCK_FRAMES, job.channels), np.float32)
        skip = sep.latency_samples  # the first output samples are the separator's delay, not audio
        while len(block := reader.read(block_in)):
            stems = sep.process(block, out=block_out if len(block) == BLOCK_FRAMES else None)
            skip = _write(writers, stems, skip)
            frames += len(block)
            bar.update(len(block) / job.samplerate)
        _write(writers, sep.flush(), skip)
    except KeyboardInterrupt:
        bar.close()
        print(f"realtime-split: {job.input}: stopped after {frames / job.samplerate:.1f} s; "
              f"kept the partial output in {_where(job)}", file=sys.stderr)
        raise
    finally:
        bar.close()
        reader.close()
        for writer in writers:
            writer.close()
    _report(job, sep, label, frames, time.perf_counter() - start, sep.stats.nonfinite_samples - nonfinite_before,
            sum(w.clipped for w in writers))


def _write(writers: list[AudioWriter], stems: np.ndarray, skip: int) -> int:
    """Write ``stems`` (n_stems, n, channels) after dropping ``skip`` leading frames; return what is left to skip."""
    dropped = min(skip, stems.shape[1])
    if dropped < stems.shape[1]:
        for writer, stem in zip(writers, stems):
            writer.write(stem[dropped:])
    return skip - dropped


def _where(job: Job) -> str:
    return str(job.outputs[0]) if len(job.outputs) == 1 else f"{job.outputs[0].parent}/"


def _report(job: Job, sep: StreamingSeparator, label: str, frames: int, seconds: float, nonfinite: int,
            clipped: int) -> None:
    audio_seconds = frames / job.samplerate
    speed = audio_seconds / seconds if seconds > 0 else float("inf")
    print(f"{job.input} -> {_where(job)} ({', '.join(sep.stems)}): {audio_seconds:.1f} s of audio, "
          f"{speed:.1f}x real time on {sep.provider}, latency {label} {sep.latency_seconds * 1000:.1f} ms")
    if nonfinite:
        print(f"realtime-split: warning: {job.input}: {nonfinite} NaN/Inf samples in the input were replaced "
              "by silence", file=sys.stderr)
    if clipped:
        print(f"realtime-split: warning: {job.input}: {clipped} samples beyond full scale were clipped; "
              "write float wav (the default) or lower --gain to keep them", file=sys.stderr)
