"""Soak benchmark: memory over time, missed deadlines, xruns and restarts in a long live run and a long file.

Live: starts ``jackd -d dummy -r 44100 -p 256`` (tests/jack_harness.py) and runs the real CLI
(``--input mic --stem all --blocksize 256``) for ``--live-minutes`` while a JACK client plays the
bundled demo clip into it in a loop (and records the last seconds of what it plays, to show it was
not silence), then reads the counters from the summary the CLI prints when it stops.
File: writes a ``--file-hours`` FLAC of the demo clip looped (block by block, never held in memory)
into a temporary folder, separates it with the real CLI and the same model at its offline preset, a
file's default (``--input long.flac --stem all --output DIR/``, stems as RF64 PCM_16: a WAV stops at
4 GiB; a streaming preset such as balanced runs one window per hop, about 2x real time per core here,
which would make 10 hours a session's work), checks that every stem has exactly the input's
frame count, and deletes it all. Both runs sample the CLI process's resident memory (VmRSS in
/proc/PID/status) every ``--interval`` seconds; its peak comes from the kernel (wait4's ru_maxrss).

Prints a Markdown table: RSS at 0 %, 10 %, ..., 100 % of each run, the slope of a line fitted after the
first 10 % (warm-up), peak and final RSS, speed, missed deadlines, xruns and restarts; each run's rows
also go to stderr as soon as it ends, so an interrupted soak keeps what it measured. Only a run
of the full default durations (60 minutes live, 10 hours of file, both runs) rewrites the "Soak"
section of docs/benchmarks.md; a shorter run prints only, so it cannot replace a published table.

    python3 benchmarks/bench_soak.py            # the full soak (1.5 to 2 h on 2 CPUs, ~33 GB in /tmp)
    python3 benchmarks/bench_soak.py --live-minutes 2 --file-hours 0.05  # a quick check of the script
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench_live import machine, parse_summary
from docs_section import publish

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from jack_harness import Harness, JackServer, jackd_path  # noqa: E402
from realtime_split import registry  # noqa: E402
from realtime_split.errors import UserError  # noqa: E402

SECTION = "## Soak"
RATE = 44100
PERIOD = 256
BLOCKSIZE = 256
DEFAULT_LIVE_MINUTES = 60.0
DEFAULT_FILE_HOURS = 10.0
DEFAULT_INTERVAL = 5.0
WARMUP = 0.1  # the first 10 % of a run is left out of the slope (model loading, JIT, first allocations)
DEMO = REPO / "realtime_split" / "demo" / "demo.ogg"
STEM_FORMAT = ("rf64", "PCM_16")  # the file run's stems: a WAV over 4 GiB (3.4 h of float stereo) is unreadable
FRAME_BYTES = 2 * 2  # stereo PCM_16
TAIL_SECONDS = 10.0  # the live run records this much of what the CLI plays, near its end
FRACTIONS = np.linspace(0.0, 1.0, 11)
# What the CLI prints when its work is done (the live summary, a file's speed line); RSS sampling stops there.
LIVE_DONE = re.compile(r"realtime-split: played [\d.]+ s live")
FILE_DONE = re.compile(r"x real time on ")


# --- helpers: resident memory, the long input ----------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (VmRSS), or None once it has exited (a zombie has none)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(found[1]) / 1024 if found else None


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds on its own thread, from ``start()`` until
    ``finished()`` says its work is done (then it only exits: its memory shrinks as it tears down)."""

    def __init__(self, pid: int, interval: float, finished: Callable[[], bool]):
        self.pid, self.interval, self.finished = pid, interval, finished
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._start = 0.0

    def start(self) -> RssSampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set() and not self.finished():
            mb = rss_mb(self.pid)
            if mb is not None:
                self.samples.append((time.monotonic() - self._start, mb))
            tick += 1
            self._stop.wait(max(0.0, self._start + tick * self.interval - time.monotonic()))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def demo_clip() -> np.ndarray:
    clip, rate = sf.read(DEMO, dtype="float32", always_2d=True)
    if rate != RATE or clip.shape[1] != 2:
        sys.exit(f"bench_soak: {DEMO} is {rate} Hz, {clip.shape[1]} channels; expected {RATE} Hz stereo")
    return clip


def write_long_input(path: Path, frames: int, clip: np.ndarray) -> None:
    """``frames`` of the demo clip looped, as FLAC PCM_16, one clip at a time (memory flat at any length)."""
    with sf.SoundFile(path, "w", RATE, 2, format="FLAC", subtype="PCM_16") as f:
        left = frames
        while left:
            n = min(left, len(clip))
            f.write(clip[:n])
            left -= n


def file_run_bytes(frames: int, stems: int) -> int:
    """Disk the file run needs: the input (FLAC, at most its PCM size) and the stems (RF64 PCM_16), plus 1 GB."""
    return frames * FRAME_BYTES * (1 + stems) + 10**9


def check_disk(folder: Path, need: int, hours: float) -> None:
    free = shutil.disk_usage(folder).free
    if free < need:
        sys.exit(f"bench_soak: the {hours:g}-hour file run needs about {need / 1e9:.1f} GB in {folder} (the input "
                 f"and its stems) but only {free / 1e9:.1f} GB are free; free some space, point TMPDIR at a larger "
                 "disk, or pass a smaller --file-hours (or --no-file)")


# --- running the CLI -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One CLI process: its RSS samples, peak, wall time and output."""

    samples: list[tuple[float, float]]
    peak_mb: float
    seconds: float
    stdout: str
    stderr: str
    extra: dict = field(default_factory=dict)


def cli_env() -> dict[str, str]:
    """The environment at call time (JackServer exports its server name) with this checkout first on the path,
    unbuffered so the end-of-run line reaches its file when it is printed, not at exit."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1"}


def run_cli(command: list[str], workdir: Path, interval: float, timeout: float | None, done: re.Pattern,
            during=None) -> Run:
    """Run the CLI, sampling its RSS until its output matches ``done`` (its end-of-run line);
    ``during(proc, elapsed)`` is called about every 20 ms while it runs."""
    out_path, err_path = workdir / "cli.stdout", workdir / "cli.stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=cli_env(), cwd=REPO)
    def finished() -> bool:
        return any(done.search(path.read_text(errors="replace")) for path in (out_path, err_path))

    sampler = RssSampler(proc.pid, interval, finished).start()
    usage = None
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            elapsed = time.monotonic() - start
            if timeout is not None and elapsed > timeout:
                proc.kill()
                sys.exit(f"bench_soak: the CLI did not finish within {timeout:.0f} s: {shlex.join(command)}")
            if during is not None:
                during(proc, elapsed)
            time.sleep(0.02)
    finally:
        samples = sampler.stop()
        if proc.returncode is None:  # interrupted (Ctrl-C) or failed above: do not leave it running
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - start
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if proc.returncode != 0:
        sys.exit(f"bench_soak: the CLI failed ({proc.returncode}): {shlex.join(command)}\n{stderr.strip()[-2000:]}")
    return Run(samples, usage.ru_maxrss / 1024, seconds, stdout, stderr)


def base_command(model: Path, latency: str | None) -> list[str]:
    """The CLI separating all stems with ``model``; ``latency`` None: a file's default, the model's offline preset."""
    command = [sys.executable, "-m", "realtime_split", "--stem", "all", "--model", str(model), "--no-progress"]
    return command + ["--latency", latency] if latency else command


def finished_playing(harness: Harness) -> bool:
    """Whether the harness has played all of the last signal (``wait_played`` with no wait)."""
    try:
        harness.wait_played(timeout=0)
    except TimeoutError:
        return False
    return True


def live_run(args, model: Path, clip: np.ndarray, workdir: Path) -> Run:
    seconds = 60 * args.live_minutes
    command = base_command(model, args.latency) + ["--input", "mic", "--blocksize", str(BLOCKSIZE),
                                                   "--duration", f"{seconds:g}"]
    with JackServer(RATE, PERIOD) as server, Harness(server, record_seconds=TAIL_SECONDS) as harness:
        state = {"connected": False, "recording": False}

        def during(proc, elapsed: float) -> None:
            if not state["connected"]:
                try:
                    harness.connect_portaudio(process=proc)  # waits for the CLI's ports (model loading)
                except (RuntimeError, TimeoutError) as exc:
                    err = (workdir / "cli.stderr").read_text().strip()[-2000:]
                    sys.exit(f"bench_soak: the live CLI never opened its JACK ports ({exc}):\n{err}")
                harness.play(clip)
                state["connected"] = True
            elif finished_playing(harness):
                harness.play(clip)  # the loop: a gap of at most one poll and one period between repeats
            if not state["recording"] and elapsed > max(0.0, seconds - TAIL_SECONDS - 2):
                harness.start_recording()
                state["recording"] = True

        run = run_cli(command, workdir, args.interval, timeout=seconds + 180, done=LIVE_DONE, during=during)
        tail = harness.take()
    peak = float(np.max(np.abs(tail))) if len(tail) else 0.0
    run.extra = {**parse_summary(run.stderr), "command": command, "tail_seconds": len(tail) / RATE,
                 "tail_dbfs": 20 * np.log10(peak) if peak > 0 else -np.inf}
    return run


def file_run(args, model: Path, clip: np.ndarray, frames: int, stems: tuple[str, ...], workdir: Path) -> Run:
    source, out = workdir / "long.flac", workdir / "stems"
    started = time.monotonic()
    write_long_input(source, frames, clip)
    print(f"bench_soak: wrote {frames / RATE / 3600:g} h of input ({source.stat().st_size / 1e9:.2f} GB) in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    fmt, subtype = STEM_FORMAT
    command = base_command(model, None) + ["--input", str(source), "--output", f"{out}/", "--format", fmt,
                                           "--subtype", subtype]
    run = run_cli(command, workdir, args.interval, timeout=None, done=FILE_DONE)
    found = re.search(r"([\d.]+)x real time", run.stdout)
    lengths = {stem: sf.info(out / f"{stem}.{fmt}").frames if (out / f"{stem}.{fmt}").is_file() else None
               for stem in stems}
    disk = sum(p.stat().st_size for p in out.iterdir()) + source.stat().st_size
    run.extra = {"command": command, "frames": frames, "speed": float(found[1]) if found else float("nan"),
                 "wall_speed": frames / RATE / run.seconds, "lengths": lengths, "disk_gb": disk / 1e9,
                 "warnings": [line for line in run.stderr.splitlines() if "warning" in line]}
    return run


# --- the report ------------------------------------------------------------------------------------------


def rss_at(samples: list[tuple[float, float]], fraction: float) -> float:
    """The sample nearest to ``fraction`` of the run (the last sample's time counts as 100 %)."""
    times = np.array([t for t, _ in samples])
    return samples[int(np.argmin(np.abs(times - fraction * times[-1])))][1]


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(slope of a least-squares line in MB/h, min MB, max MB) over the samples after the warm-up."""
    t = np.array([t for t, _ in samples])
    mb = np.array([m for _, m in samples])
    kept = t >= WARMUP * t[-1]
    if kept.sum() < 2:
        return float("nan"), float(mb.min()), float(mb.max())
    return float(np.polyfit(t[kept] / 3600, mb[kept], 1)[0]), float(mb[kept].min()), float(mb[kept].max())


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


def rss_table(runs: dict[str, Run]) -> str:
    head = "| RSS (MB) at | " + " | ".join(f"{100 * f:.0f} %" for f in FRACTIONS) + " |"
    rows = [head, "|---|" + "---|" * len(FRACTIONS)]
    for name, run in runs.items():
        rows.append(f"| {name} | " + " | ".join(f"{rss_at(run.samples, f):.0f}" for f in FRACTIONS) + " |")
    return "\n".join(rows)


def results_table(runs: dict[str, Run]) -> str:
    rows = ["| Run | Length | Speed | Peak RSS | Final RSS | RSS after warm-up | Slope after warm-up | "
            "Missed deadlines | Xruns (in/out) | Restarts | Output |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        slope, low, high = slope_mb_per_hour(run.samples)
        memory = (f"{run.peak_mb:.0f} MB | {run.samples[-1][1]:.0f} MB | {low:.0f}..{high:.0f} MB | "
                  f"{slope:+.1f} MB/h")
        x = run.extra
        if "missed" in x:  # live
            blocks = x["played"] * RATE / BLOCKSIZE
            rows.append(f"| {name} | {x['played'] / 60:.1f} min played | - | {memory} | "
                        f"{x['missed']} of {blocks:.0f} blocks ({100 * x['missed'] / blocks:.2f} %) | "
                        f"{x['xruns']} ({x['overflows']}/{x['underflows']}) | {x['skips']} | "
                        f"last {x['tail_seconds']:.0f} s peak {x['tail_dbfs']:.1f} dBFS |")
        else:
            good = [s for s, n in x["lengths"].items() if n == x["frames"]]
            bad = ", ".join(f"{s} {'missing' if n is None else f'{n} frames'}" for s, n in x["lengths"].items()
                            if n != x["frames"])
            check = (f"all {len(good)} stems {x['frames']} frames, as the input" if not bad
                     else f"**{bad}** (input {x['frames']} frames)")
            rows.append(f"| {name} | {duration(x['frames'] / RATE)} of audio in {duration(run.seconds)} | "
                        f"{x['speed']:.1f}x real time ({x['wall_speed']:.1f}x with launch) | {memory} | - | - | - | "
                        f"{check} |")
    return "\n".join(rows)


def report_so_far(runs: dict[str, Run]) -> None:
    """The finished runs' tables on stderr at once, so an interrupted soak keeps the hour it already ran."""
    print(f"{rss_table(runs)}\n\n{results_table(runs)}", file=sys.stderr, flush=True)


def publish_skip_reason(args) -> str | None:
    """Why this run must not replace the published section, or None for the full soak."""
    if args.no_docs:
        return "--no-docs"
    if args.no_live or args.no_file:
        return "only one of the two runs (--no-live/--no-file)"
    if args.live_minutes != DEFAULT_LIVE_MINUTES or args.file_hours != DEFAULT_FILE_HOURS:
        return (f"a short validation run ({args.live_minutes:g} min live, {args.file_hours:g} h of file; the "
                f"published soak is {DEFAULT_LIVE_MINUTES:g} min and {DEFAULT_FILE_HOURS:g} h)")
    if args.model and args.model not in registry.bundled_names():
        return "not a bundled model"
    return None


def section(args, runs: dict[str, Run], model: str, name: str, host: str) -> str:
    """The published section; ``model`` describes the model, ``name`` is what ``--model`` was given."""
    fmt, subtype = STEM_FORMAT
    command = "python3 benchmarks/bench_soak.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    live = (f"Live: a {args.live_minutes:g}-minute run of `realtime-split --input mic --stem all --model {name} "
            f"--latency {args.latency} --blocksize {BLOCKSIZE}` on a JACK dummy server (44.1 kHz, period "
            f"{PERIOD}), fed the demo clip in a loop by a JACK client that records the last seconds the CLI plays "
            "(their peak level shows the output was not silence); missed deadlines, xruns and restarts are the "
            "CLI's own summary (see \"Live audio\"); its RSS can rise in steps the first times the worker catches "
            "up with a larger batch (up to 16 hops; ONNX Runtime keeps memory per input shape) and stops once "
            "every size has run. ")
    file = (f"File: `realtime-split --input long.flac --stem all --model {name} --output DIR/ --format {fmt} "
            f"--subtype {subtype}` (the model's offline preset, a file's default) on a generated "
            f"{args.file_hours:g}-hour FLAC (PCM_16) of the demo clip looped; stems as {fmt.upper()} because a WAV "
            "file stops at 4 GiB; speed as the CLI reports it; every stem's frame count is checked against the "
            "input's. ")
    return (
        f"{SECTION}\n\n"
        f"Produced by `benchmarks/bench_soak.py` (it rewrites this section). Model: {model}; {host}; "
        f"{time.strftime('%Y-%m-%d')}.\n"
        + (live if "live" in runs else "") + (file if "file" in runs else "")
        + f"RSS is the CLI process's VmRSS, sampled every {args.interval:g} s from its start; peak RSS is the "
        f"kernel's high-water mark (ru_maxrss); the slope is a least-squares line through the samples after the "
        f"first {100 * WARMUP:.0f} % of the run.\n\n"
        f"```\n{command}\n```\n\n{rss_table(runs)}\n\n{results_table(runs)}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="bundled model name or ONNX file (default: the bundled model for --latency)")
    parser.add_argument("--latency", default="balanced",
                        help="latency preset of the live run (default balanced); the file run uses the same model's "
                             "offline preset, as a file does by default")
    parser.add_argument("--live-minutes", type=float, default=DEFAULT_LIVE_MINUTES,
                        help=f"length of the live run (default {DEFAULT_LIVE_MINUTES:g})")
    parser.add_argument("--file-hours", type=float, default=DEFAULT_FILE_HOURS,
                        help=f"length of the generated input of the file run (default {DEFAULT_FILE_HOURS:g})")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                        help=f"seconds between RSS samples (default {DEFAULT_INTERVAL:g})")
    parser.add_argument("--no-live", action="store_true", help="skip the live run")
    parser.add_argument("--no-file", action="store_true", help="skip the file run")
    parser.add_argument("--no-docs", action="store_true", help="print the tables only, leave docs/benchmarks.md")
    args = parser.parse_args()
    if args.no_live and args.no_file:
        sys.exit("bench_soak: --no-live and --no-file leave nothing to run")
    if args.live_minutes <= 0 or args.file_hours <= 0 or args.interval <= 0:
        sys.exit("bench_soak: --live-minutes, --file-hours and --interval must be positive")
    if not args.no_live and jackd_path() is None:
        sys.exit("bench_soak: jackd not found; install jackd2 (or pass --no-live)")
    try:
        path = registry.resolve_model(args.model) if args.model else registry.default_model(args.latency)
        info = registry.read_info(path)
    except UserError as exc:
        sys.exit(f"bench_soak: {exc}")
    model = f"{path.stem}" + (f" ({info.name})" if info.name else "")
    frames = round(args.file_hours * 3600 * RATE)
    if not args.no_file:  # before the hour of live audio, not after it
        check_disk(Path(tempfile.gettempdir()), file_run_bytes(frames, len(info.stems)), args.file_hours)

    host = machine()
    clip = demo_clip()
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        if not args.no_live:
            print(f"bench_soak: live run, {args.live_minutes:g} min", file=sys.stderr)
            runs["live"] = live_run(args, path, clip, Path(tmp))
            report_so_far(runs)
        if not args.no_file:
            print(f"bench_soak: file run, {args.file_hours:g} h of audio", file=sys.stderr)
            runs["file"] = file_run(args, path, clip, frames, info.stems, Path(tmp))
            report_so_far(runs)
            print(f"bench_soak: the file run used {runs['file'].extra['disk_gb']:.1f} GB in {tmp} (now deleted)",
                  file=sys.stderr)
    for run in runs.values():
        for line in run.extra.get("warnings", []):
            print(f"bench_soak: the CLI said: {line}", file=sys.stderr)
    publish(SECTION, section(args, runs, model, args.model or path.stem, host), publish_skip_reason(args))


if __name__ == "__main__":
    main()
