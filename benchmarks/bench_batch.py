"""Batch benchmark: a catalogue of files through one process (plain file mode) and through the batch job.

40 files of 30 s (the demo clip, looped) are separated by, each in a fresh process as a user runs them:

- one process: ``Separator.separate_files`` with the engine's default threads (plain file mode);
- the batch job on local processes: 1 worker x all the CPUs' threads, then one single-threaded worker per
  CPU (the default); with ``--ray``, the same on a Ray instance started here (``cluster='local'``).

For each: audio hours per wall hour, the scaling against one process, the overhead per file (worker time
not spent separating: start-up, scheduling, the wait at the end), and the peak memory per worker. From
the fastest row it prices a catalogue of 100,000 songs on N CPU workers. It prints a table and writes
it, with the command, into the "Batch: a catalogue" section of docs/benchmarks.md.

    python3 benchmarks/bench_batch.py                    # the quality model (files' default), ~15 min on 2 CPUs
    python3 benchmarks/bench_batch.py --ray              # also Ray on this machine (pip install -e '.[cluster]')
    python3 benchmarks/bench_batch.py --files 4 --seconds 5 --model test-conv --no-docs   # a quick check

Run it on a quiet machine: the figures are wall-clock throughput, so other work on the CPUs lowers them
(the script refuses to publish when the load average before the run says the machine is busy).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from docs_section import publish
from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECTION = "## Batch: a catalogue"
TEST_MODEL = "test-conv"
DEMO = REPO / "realtime_split" / "demo" / "demo.ogg"
SUBTYPE = "PCM_16"  # stems as PCM_16, like bench_engine's file mode: 40 x 4 stems of float would be 1.7 GB
BUSY_LOAD = 0.5  # load average per CPU above which the run is not published
SONGS, SONG_MINUTES = 100_000, 3.5  # the paper catalogue: 100,000 songs of 3.5 minutes on average
OVERHEAD_TARGET = 0.05  # issue 28: the batch engine within 5 % of plain file mode's throughput at equal cores


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_inputs(folder: Path, files: int, seconds: float) -> list[Path]:
    """``files`` copies of the demo clip looped to ``seconds``, as 16-bit wav (a catalogue's usual input)."""
    clip, rate = sf.read(DEMO, dtype="float32")
    n = int(seconds * rate)
    audio = np.resize(clip, (n, clip.shape[1]))
    paths = []
    for i in range(files):
        path = folder / f"song{i:03d}.wav"
        sf.write(path, audio, rate, subtype="PCM_16")
        paths.append(path)
    return paths


def child(config: dict) -> None:
    """One measured run, in a fresh process; prints its figures as JSON."""
    inputs, out = [Path(p) for p in config["inputs"]], Path(config["output"])
    if config["mode"] == "file":
        from realtime_split import Separator

        sep = Separator(config["model"], provider=config["provider"])
        results = sep.separate_files(inputs, out / "", subtype=SUBTYPE, subfolders=True)
        report = {"elapsed": [r.elapsed_seconds for r in results], "seconds": [r.seconds for r in results],
                  "workers": 1, "threads": config["threads"],
                  "peak_rss": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]}
    else:
        from realtime_split.catalogue.job import batch

        result = batch(inputs, out, model=config["model"], provider=config["provider"], subtype=SUBTYPE,
                       workers=config["workers"],
                       threads_per_worker=config["threads"], cluster=config.get("cluster"))
        if not result.ok:
            sys.exit(f"bench_batch: {len(result.failed)} files failed: {result.failed[0].error}")
        report = {"elapsed": [f.elapsed_seconds for f in result.done], "seconds": [f.seconds for f in result.done],
                  "workers": result.workers, "threads": result.threads_per_worker,
                  "peak_rss": list(result.peak_rss_bytes.values())}
    print(json.dumps(report))


def measure(name: str, config: dict, workdir: Path) -> dict:
    """Run one configuration in a fresh Python; its wall time includes starting Python, the imports, the model
    loads and every worker's start-up, as a user sees them."""
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    config = {**config, "output": str(out)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench_batch: {name} failed:\n{proc.stderr.strip()}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    files, workers = len(report["elapsed"]), report["workers"]
    audio = sum(report["seconds"])
    row = {"name": name, "provider": config["provider"], "wall": wall, "audio": audio, "files": files,
           "workers": workers, "threads": report["threads"], "speed": audio / wall,
           "overhead": (wall * workers - sum(report["elapsed"])) / files,
           "per_file": sum(report["elapsed"]) / files, "peak_rss": max(report["peak_rss"])}
    print(f"{name}: {wall:.1f} s, {row['speed']:.1f} audio h per wall h", file=sys.stderr)
    return row


def table(rows: list[dict]) -> str:
    base = rows[0]["speed"]
    lines = ["| run | workers x threads | wall | audio h per wall h | vs one process | overhead per file | "
             "separation per file | peak RSS per worker |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['workers']} x {r['threads']} | {r['wall']:.1f} s | {r['speed']:.1f} | "
                     f"{r['speed'] / base:.2f}x | {1000 * r['overhead']:.0f} ms | {r['per_file']:.2f} s | "
                     f"{r['peak_rss'] / 2**20:.0f} MB |")
    return "\n".join(lines)


def estimate(rows: list[dict]) -> str:
    """100,000 songs on paper, from the fastest batch row's figures per worker CPU."""
    best = max(rows[1:], key=lambda r: r["speed"])
    if best.get("provider") == "cuda":
        per_gpu = best["speed"] / best["workers"]
        hours = SONGS * SONG_MINUTES / 60
        return (f"On paper: {SONGS:,} songs of {SONG_MINUTES:g} minutes ({hours:,.0f} h of audio) at this run's "
                f"{per_gpu:.1f} audio h per wall h per GPU take " + "; ".join(
                    f"{g} GPUs: {hours / (per_gpu * g):,.1f} hours" for g in (1, 8, 64)) + ".")
    per_cpu = best["speed"] / (best["workers"] * best["threads"])  # audio s per wall s per CPU, overhead included
    hours = SONGS * SONG_MINUTES / 60
    parts = []
    for n in (2, 64, 1024):
        days = hours / (per_cpu * n) / 24
        parts.append(f"{n} CPUs: {days:,.1f} days" if days >= 1 else f"{n} CPUs: {days * 24:,.1f} hours")
    return (f"On paper: {SONGS:,} songs of {SONG_MINUTES:g} minutes ({hours:,.0f} h of audio) at this run's best "
            f"figure per CPU ({per_cpu:.1f} audio h per wall h per CPU, {best['name']}, start-up and scheduling "
            f"included) take {'; '.join(parts)}, on CPUs like these and with the files on a disk that keeps up. "
            "GPUs were not measured (this machine has none): run this script with `--provider cuda` on one, and "
            "scale its per-GPU figure the same way (`--workers` = the GPUs).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="quality",
                        help=f"a bundled model or .onnx file (default: quality, the files' default; '{TEST_MODEL}' = "
                             "a tiny test model)")
    parser.add_argument("--files", type=int, default=40, help="files in the catalogue (default 40)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each file (default 30)")
    parser.add_argument("--provider", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: one worker per GPU (--gpus) instead of one per CPU")
    parser.add_argument("--gpus", type=int, default=1, help="with --provider cuda: the GPUs to use (default 1)")
    parser.add_argument("--ray", action="store_true", help="also the batch job on a Ray instance started here")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    load = os.getloadavg()[0]
    n = cpus()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        workdir = Path(tmp)
        model = args.model
        if model == TEST_MODEL:
            sys.path.insert(0, str(REPO / "tests"))
            from onnx_models import make_conv_model

            model = str(make_conv_model(workdir / "test-conv.onnx"))
        inputs = [str(p) for p in make_inputs(workdir, args.files, args.seconds)]
        from realtime_split.inference import default_threads

        common = {"inputs": inputs, "model": model, "provider": args.provider}
        # Equal cores: one worker with every CPU's threads, then the default (one single-threaded worker per CPU,
        # or with cuda one worker per GPU sharing the CPUs).
        spread = {"workers": args.gpus, "threads": max(1, n // args.gpus)} if args.provider == "cuda" else \
            {"workers": n, "threads": 1}
        rows = [measure("one process (file mode)", {**common, "mode": "file", "threads": default_threads()}, workdir),
                measure("batch, processes", {**common, "mode": "batch", "workers": 1, "threads": n}, workdir),
                measure("batch, processes (default)", {**common, "mode": "batch", **spread}, workdir)]
        if args.ray:
            rows.append(measure("batch, Ray here", {**common, "mode": "batch", **spread, "cluster": "local"},
                                workdir))

    command = "python3 benchmarks/bench_batch.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    best = max(rows[1:], key=lambda r: r["speed"])
    met = best["speed"] >= (1 - OVERHEAD_TARGET) * rows[0]["speed"]
    section = (
        f"{SECTION}\n\n"
        f"Model: {args.model} on {args.provider}; {describe(f'{cpus()} CPUs')}; "
        f"load average {load:.1f} before the run; "
        f"{time.strftime('%Y-%m-%d')}.\n"
        f"{args.files} files of {args.seconds:g} s (the demo clip looped, 16-bit wav), all four stems written as "
        f"{SUBTYPE}. Each run is a fresh Python process, timed from its start to its end (imports, model loads, "
        "worker start-up included). Overhead per file: worker time not spent separating a file (start-up, "
        "scheduling, waiting for the last file), per file. Peak RSS: the largest worker's (one process: its own).\n\n"
        f"```\n{command}\n```\n\n{table(rows)}\n\n"
        f"Target: the batch job within {100 * OVERHEAD_TARGET:g} % of one process's throughput at equal cores: "
        f"{'met' if met else '**not met**'} ({best['name']}: {best['speed'] / rows[0]['speed']:.2f}x).\n\n"
        f"{estimate(rows)}\n")
    reason = "--no-docs" if args.no_docs else "a test model" if args.model == TEST_MODEL else \
        f"the machine was busy (load average {load:.1f} on {n} CPUs)" if load > BUSY_LOAD * n else \
        "a smaller catalogue than the published one" if (args.files, args.seconds) != (40, 30.0) else None
    publish(SECTION, section, reason)


if __name__ == "__main__":
    main()
