"""File mode: ``realtime-split --input FILE [FILE ...] --stem ... --output FILE|DIR/``.

Each input streams through a StreamingSeparator in fixed-size blocks, so memory
stays flat for any length, and every stem is written as it comes out. Outputs
are time-aligned with the input (the separator's latency is cut off the front
and its flushed tail appended), exactly as long as the input and at its sample
rate. Every check that can fail (inputs, format, model, stems, output folder,
an output that is the same file as any input of the run, by device and inode)
runs before the first sample is written; writers are closed in ``finally``
(with SIGINT, SIGTERM and SIGHUP held back meanwhile) so an interrupted run
leaves valid, shorter files. A failed write (a full disk) stops the run with one
line; the job's stems are cut to one common length where the format allows and
any that would not decode is removed. A truncated input is separated as far as
it goes, with a warning that says where it ended; the stems cover what was read.

With ``--gain`` and one output file (or ``--output -``), the selected stems are not refused as
"one file each" but summed, gains applied, into that file: ``--gain vocals=-inf --output k.wav``
is the karaoke mix, like ``--stem accompaniment`` but with every stem's level under control.
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

from .audio_files import (
    STDIO,
    AudioReader,
    AudioWriter,
    WriteError,
    default_extension,
    file_identity,
    is_stream,
    label,
    open_input,
    output_format,
    readable,
)
from .cli import announce_model
from .errors import UserError, signals_deferred
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
    mix: bool = False  # one output holding the sum of the (gained) stems instead of one output per stem
    reader: AudioReader | None = None  # a stream (standard input, a pipe) stays open: it can be read only once


def run(args: argparse.Namespace) -> int:
    if args.offline and (args.latency or args.hop):
        raise UserError("--offline excludes --latency and --hop; files are separated offline unless you pick a "
                        "latency preset to hear what live mode gives")
    jobs: list[Job] = []
    try:
        for p in args.input:
            jobs.append(_probe(Path(p), args.channels))
        return _run(args, jobs)
    finally:
        for job in jobs:
            if job.reader is not None:
                job.reader.close()


def _run(args: argparse.Namespace, jobs: list[Job]) -> int:
    target = Path(args.output or DEFAULT_OUTPUT_DIR)
    to_dir = args.output != STDIO and _is_directory_target(args.output or DEFAULT_OUTPUT_DIR)
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
        # With a gain, several stems into one file is the re-balanced mix (karaoke: --gain vocals=-inf).
        mix = len(stems) > 1 and bool(args.gain)
        if len(jobs) > 1 or (len(stems) > 1 and not mix):
            what = f"{len(jobs)} inputs" if len(jobs) > 1 else f"{len(stems)} stems ({', '.join(stems)})"
            mix_hint = "" if len(jobs) > 1 else ", or add --gain STEM=DB (e.g. vocals=-inf) to write their mix"
            if args.output == STDIO:
                raise UserError(f"--output - (standard output) carries one stem of one input, but {what} need "
                                f"one file each; pick one with --stem, or pass a directory such as --output "
                                f"stems/{mix_hint}")
            raise UserError(
                f"--output {target} is one file, but {what} need one file each; "
                f"pass a directory such as --output {target.with_suffix('')}/{mix_hint}"
            )
        jobs[0].outputs = [target]
        jobs[0].mix = mix
    _check_writable(jobs)

    for job in jobs:
        sep = _separator(args, job, separators)
        preset = sep.preset + (f", hop {sep.geometry.hop}" if args.hop else "")
        _separate(job, sep, fmt, subtype, preset, show_progress=_show_progress(args))
    return 0


def _probe(path: Path, channels: str | None) -> Job:
    """Open an input and read its first block so a bad file fails before any separation starts; close it
    again unless it is a stream, which cannot be reopened."""
    reader = open_input(path, channels)
    if is_stream(path):
        return Job(path, reader.samplerate, reader.channels, channels, reader=reader)
    with reader:
        reader.read(np.empty((4096, reader.channels), np.float32))
        if reader.frames_read == 0 and reader.ended_early:
            raise UserError(f"cannot read {path}: it holds no audio ({reader.ended_early})")
        return Job(path, reader.samplerate, reader.channels, channels)


def _is_directory_target(output: str) -> bool:
    path = Path(output)
    return output.endswith(("/", os.sep)) or path.is_dir() or not path.suffix


def _output_names(inputs: list[Path]) -> list[str]:
    """One folder name per input: its file name, prefixed by its folder when two inputs share a name."""
    names = ["stdin" if str(p) == STDIO else p.stem for p in inputs]
    names = [f"{p.resolve().parent.name}-{n}" if names.count(n) > 1 else n for p, n in zip(inputs, names)]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"two inputs would both be written to the folder {name!r}; rename one of them")
    return names


def _check_writable(jobs: list[Job]) -> None:
    """Before anything is written: no output of any job may be any job's input (compared as files, by device
    and inode, so hard links, symbolic links and other spellings count), then every folder must be writable."""
    inputs: dict[tuple[int, int], Path] = {}
    for job in jobs:
        identity = file_identity(job.input)
        if identity is not None:
            inputs.setdefault(identity, job.input)
    for job in jobs:
        for out in job.outputs:
            identity = file_identity(out)
            source = inputs.get(identity) if identity is not None else None
            if source is not None:
                name = "the input file" if str(source) == str(out) else f"the same file as the input {source}"
                raise UserError(f"the output {out} is {name}; writing it would destroy that input, so choose "
                                "another --output")
    for job in jobs:
        if job.outputs == [Path(STDIO)]:
            continue
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


def _separate(job: Job, sep: StreamingSeparator, fmt: str, subtype: str, preset: str, show_progress: bool) -> None:
    reader = job.reader or open_input(job.input, job.channel_selection)
    job.reader = None
    writers: list[AudioWriter] = []
    frames = 0
    bar = _progress_bar(label(job.input), reader.duration, show_progress)
    start, before = time.perf_counter(), (sep.stats.nonfinite_samples, sep.stats.nonfinite_outputs)
    try:
        for path in job.outputs:
            writers.append(AudioWriter(path, job.samplerate, job.channels, fmt, subtype))
        block_in = np.empty((BLOCK_FRAMES, job.channels), np.float32)
        block_out = np.empty((len(sep.stems), BLOCK_FRAMES, job.channels), np.float32)
        skip = sep.latency_samples  # the first output samples are the separator's delay, not audio
        while len(block := reader.read(block_in)):
            stems = sep.process(block, out=block_out if len(block) == BLOCK_FRAMES else None)
            skip = _write(writers, _mixed(stems) if job.mix else stems, skip)
            frames += len(block)
            bar.update(len(block) / job.samplerate)
        tail = sep.flush()
        _write(writers, _mixed(tail) if job.mix else tail, skip)
    except KeyboardInterrupt:
        bar.close()
        print(f"realtime-split: {label(job.input)}: stopped after {frames / job.samplerate:.1f} s; "
              f"kept the partial output in {_where(job)}", file=sys.stderr)
        raise
    except UserError as exc:  # a write failed (a full disk), or the input could not be read on
        bar.close()
        with signals_deferred():
            kept = _settle(writers)
        raise UserError(f"{exc}; {kept}") from None
    finally:
        bar.close()
        with signals_deferred():  # a second Ctrl-C or SIGTERM must not cut finalizing the headers short
            reader.close()
            _close_all(writers)
    _report(job, sep, preset, frames, time.perf_counter() - start, sep.stats.nonfinite_samples - before[0],
            sep.stats.nonfinite_outputs - before[1] + sum(w.nonfinite for w in writers),
            sum(w.clipped for w in writers), reader.ended_early)


def _close_all(writers: list[AudioWriter]) -> None:
    """Close every writer even when one fails; the first failure is raised afterwards."""
    failure = None
    for writer in writers:
        try:
            writer.close()
        except WriteError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _settle(writers: list[AudioWriter]) -> str:
    """After a failed write or read: cut the stems to the length all of them reached, close them, remove
    any that would not decode; say what is left, for the error message."""
    if not writers:
        return "nothing was written"
    common = min(w.frames for w in writers)
    even = all([w.cut(common) for w in writers])  # every writer, not just up to the first that cannot
    for writer in writers:
        try:
            writer.close()
        except WriteError:
            pass
    paths = [w.path for w in writers]
    removed = [p for p in paths if not readable(p)]
    for path in removed:
        path.unlink(missing_ok=True)
    where = label(paths[0], output=True) if len(paths) == 1 else f"{paths[0].parent}/"
    message = (f"the partial output in {where} holds the first {common / writers[0].samplerate:.1f} s"
               + ("" if even else " (compressed stems may run a little longer)"))
    if removed:
        message += f"; removed {', '.join(p.name for p in removed)}, which could not be finished"
    return message


def _write(writers: list[AudioWriter], stems: np.ndarray, skip: int) -> int:
    """Write ``stems`` (n_stems, n, channels) after dropping ``skip`` leading frames; return what is left to skip."""
    dropped = min(skip, stems.shape[1])
    if dropped < stems.shape[1]:
        for writer, stem in zip(writers, stems):
            writer.write(stem[dropped:])
    return skip - dropped


def _mixed(stems: np.ndarray) -> np.ndarray:
    """The stems (n_stems, n, channels), gains already applied by the separator, summed into one (1, n, channels)."""
    return stems.sum(axis=0, keepdims=True, dtype=np.float32)


def _contents(job: Job, sep: StreamingSeparator) -> str:
    """What the summary says is in the output: the stems, or their mix with the gains that shaped it."""
    if not job.mix:
        return ", ".join(sep.stems)
    gains = sep.gains_db
    return "mix of " + ", ".join(f"{s} {gains[s]:+g} dB" if s in gains else s for s in sep.stems)


def _where(job: Job) -> str:
    return label(job.outputs[0], output=True) if len(job.outputs) == 1 else f"{job.outputs[0].parent}/"


def _report(job: Job, sep: StreamingSeparator, preset: str, frames: int, seconds: float, nonfinite_in: int,
            nonfinite_out: int, clipped: int, ended_early: str | None) -> None:
    audio_seconds = frames / job.samplerate
    speed = audio_seconds / seconds if seconds > 0 else float("inf")
    name = label(job.input)
    # With --output - the audio is on stdout, so the summary goes with the messages.
    print(f"{name} -> {_where(job)} ({_contents(job, sep)}): {audio_seconds:.1f} s of audio, "
          f"{speed:.1f}x real time on {sep.provider}, latency {preset} {sep.latency_seconds * 1000:.1f} ms",
          file=sys.stderr if job.outputs == [Path(STDIO)] else sys.stdout)
    if ended_early:
        print(f"realtime-split: warning: {name} ended early, at {audio_seconds:.1f} s ({ended_early}); "
              "the stems cover what was read", file=sys.stderr)
    if nonfinite_in:
        print(f"realtime-split: warning: {name}: {nonfinite_in} NaN/Inf samples in the input were replaced "
              "by silence", file=sys.stderr)
    if nonfinite_out:
        print(f"realtime-split: warning: {name}: the model produced {nonfinite_out} NaN/Inf samples, replaced by "
              "silence; the model may be broken (try another --model)", file=sys.stderr)
    if clipped:
        print(f"realtime-split: warning: {name}: {clipped} samples beyond full scale were clipped; "
              "write float wav (the default) or lower --gain to keep them", file=sys.stderr)
