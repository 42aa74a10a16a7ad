"""``realtime-split batch IN... --output OUT``: the command line of ``realtime_split.batch``, a thin adapter.

It parses the options (the file mode's separation options, plus the job's), calls ``batch`` and shows
what it reports: a bar of files with the hours of audio and the throughput while a person watches,
then a summary (done, skipped, failed with their reasons, throughput), or ``--json`` for machines.
Exit codes: 0 when every input is done, 1 when any failed (the summary lists them), 2 for a bad option
or a job that cannot start, 128 + the signal when stopped (a rerun goes on where it stopped).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .cli import STDIO, _Parser, check_separation_options
from .errors import UserError

if TYPE_CHECKING:
    from .catalogue.job import BatchProgress, BatchResult

FAILED_EXIT = 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="realtime-split batch",
        description="Separate a catalogue: every audio file the inputs name, into a folder per input, resumably: "
                    "a rerun skips what is done and current.",
        epilog="examples:\n"
        "  realtime-split batch music/ --output stems/                  # every audio file under music/\n"
        "  realtime-split batch 'music/**/*.flac' --output stems/ --stem vocals --workers 4\n"
        "  realtime-split batch catalogue.csv --output /shared/stems --cluster auto   # on a Ray cluster\n"
        "  realtime-split batch music/ --output stems/ --retry-failed   # try the failures again",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="IN",
                   help="audio files, folders (searched recursively), globs (quoted: 'music/**/*.flac'), or lists: "
                        ".txt/.m3u with a path per line, .csv with a 'path' column")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the output folder: OUT/<path relative to its input folder, without suffix>/<stem>.<ext>, and "
                        "the job's manifest OUT/batch-manifest.sqlite")
    p.add_argument("-s", "--stem", metavar="STEMS", help="comma-separated stems or 'all' (default: all)")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="a bundled model or an ONNX model file (default: quality; fast for --latency low or balanced)")
    p.add_argument("--latency", metavar="PRESET", help="a streaming preset instead of offline (as live mode gives)")
    p.add_argument("--hop", type=int, metavar="SAMPLES", help="explicit hop in model samples instead of a preset")
    p.add_argument("--gain", action="append", default=[], metavar="STEM=DB", help="per-stem gain in dB, repeatable")
    p.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto",
                   help="ONNX Runtime provider; cuda asks for a GPU per worker (default: auto)")
    p.add_argument("--channels", metavar="N,M", help="1-based input channels of files with more than two")
    p.add_argument("--format", dest="file_format", metavar="FMT", help="output format (default: wav, 32-bit float)")
    p.add_argument("--subtype", metavar="SUBTYPE", help="output sample subtype (PCM_16, PCM_24, FLOAT...)")
    job = p.add_argument_group("the job")
    job.add_argument("--workers", type=int, metavar="N",
                     help="processes (or Ray actors) that each load the model once (default: fill the CPUs, one "
                          "per CPU; with --provider cuda, one per GPU)")
    job.add_argument("--threads-per-worker", type=int, metavar="T",
                     help="ONNX Runtime threads per worker (default: the CPUs left per worker, usually 1)")
    job.add_argument("--cluster", metavar="auto|ADDRESS|local",
                     help="run on Ray (pip install 'realtime-split[cluster]'): 'auto' or an address (ray://head:10001, "
                          "head:6379) joins a running cluster, 'local' starts one here; inputs and OUT must be on a "
                          "disk every node sees at the same path. Default: processes on this machine")
    job.add_argument("--retry-failed", action="store_true", help="try the inputs that failed before again")
    job.add_argument("--json", action="store_true", help="print the result as JSON on stdout (no bar, no summary)")
    job.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    """``realtime-split batch ...`` (``cli.main`` hands over when the first argument is ``batch``)."""
    from .catalogue.job import batch

    args = build_parser().parse_args(argv)
    check_separation_options(args)
    if STDIO in args.inputs:
        raise UserError("batch reads files, not standard input; use realtime-split --input - for a pipe")
    latency = args.latency or "offline" if args.hop is None else args.latency
    shown = _Bar(not args.no_progress and not args.json and sys.stderr.isatty())
    try:
        result = batch(args.inputs, args.output, model=args.model, stems=args.stem or "all", latency=latency,
                       hop=args.hop, gains=args.gain or None, provider=args.provider, format=args.file_format,
                       subtype=args.subtype, channels=args.channels, workers=args.workers,
                       threads_per_worker=args.threads_per_worker, cluster=args.cluster,
                       retry_failed=args.retry_failed, progress=shown.update)
    except KeyboardInterrupt:
        shown.close()
        done = f"; the {shown.finished} files finished are recorded" if shown.finished else ""
        print(f"realtime-split batch: stopped{done}; run the same command again to go on", file=sys.stderr)
        raise
    finally:
        shown.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(summary(result))
    return 0 if result.ok else FAILED_EXIT


class _Bar:
    """A tqdm bar of files (on a terminal only): the hours of audio done, the throughput, the ETA."""

    def __init__(self, show: bool):
        self.show = show
        self.bar: Any = None
        self.finished = 0

    def update(self, progress: BatchProgress) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=progress.total, unit="file", desc="batch", disable=not self.show, file=sys.stderr,
                            dynamic_ncols=True)
        self.finished = progress.finished
        self.bar.update(progress.finished - self.bar.n)
        self.bar.set_postfix_str(f"{progress.audio_seconds / 3600:.2f} h of audio, "
                                 f"{progress.audio_hours_per_hour:.1f} audio h/h, {progress.failed} failed",
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def summary(result: BatchResult) -> str:
    """What the job did, in a few lines: counts, throughput, workers, each failure with its reason, the manifest."""
    workers = f"{result.workers} worker{'s' if result.workers != 1 else ''} x {result.threads_per_worker} " \
              f"thread{'s' if result.threads_per_worker != 1 else ''} ({result.engine})" if result.workers else \
              "no worker needed"
    lines = [f"realtime-split batch: {len(result.done)} done, {len(result.skipped)} skipped (done before), "
             f"{len(result.failed)} failed in {result.elapsed_seconds:.1f} s: {result.audio_seconds / 3600:.2f} h of "
             f"audio, {result.audio_hours_per_hour:.1f} audio hours per wall hour; {workers}"]
    for file in result.failed:
        when = " (earlier run; --retry-failed tries it again)" if file.earlier else ""
        lines.append(f"  failed: {file.input}: {file.error}{when}")
    for file in result.done:
        if file.note:
            lines.append(f"  warning: {file.input}: {file.note}")
    lines.append(f"manifest: {result.manifest}")
    return "\n".join(lines)
