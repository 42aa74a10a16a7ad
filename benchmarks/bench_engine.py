"""Engine and file-mode benchmark: latency, per-hop inference time, file speed, peak memory, launch time.

Prints a Markdown table with the targets next to the figures and writes it into
the "Engine and file mode" section of docs/benchmarks.md together with the
exact command that produced it. Heavy parts run in subprocesses so each
measures a fresh process (peak RSS, launch time) like a user would see.

    python3 benchmarks/bench_engine.py                    # bundled fast model, 1-minute file
    python3 benchmarks/bench_engine.py --model quality    # the bundled quality model (its own section)
    python3 benchmarks/bench_engine.py --long             # also the 60-minute file (several minutes)
    python3 benchmarks/bench_engine.py --model test-conv  # smoke test on a tiny test model; docs untouched

Each bundled model has its own section and targets: the fast model's balanced preset must take at
most 30 % of its hop at p99 on one thread (as live mode runs it), low must run in real time, and its
file mode must run at 20x real time; the quality model's listening preset must run live (p99 under
70 % of its hop) and its file mode at 8x real time in under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from docs_section import publish
from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_split import StreamingSeparator, registry  # noqa: E402
from realtime_split.inference import default_threads  # noqa: E402
from realtime_split.model_format import OFFLINE  # noqa: E402

RATE = 44100
LAUNCH_TARGET_S = 2.0
TEST_MODEL = "test-conv"


@dataclass(frozen=True)
class Targets:
    section: str
    latency_ms: dict  # preset -> at most this latency
    live_preset: str  # the preset live mode runs by default, also timed with 1 thread as live mode runs it
    p99_percent: dict  # row ("low", "balanced, 1 thread (live mode)") -> its p99 must fit this % of the hop
    speed: float  # file mode, x real time
    rss_mb: float


FAST = Targets("## Engine and file mode", {"low": 12.0, "balanced": 25.0}, "balanced",
               {"low": 100.0, "balanced, 1 thread (live mode)": 30.0}, 20.0, 500.0)
LIVE = Targets("## Engine and file mode: live model", {"balanced": 25.0}, "balanced",
               {"balanced, 1 thread (live mode)": 30.0}, 20.0, 500.0)  # issue 16's bars for the stateful model
QUALITY = Targets("## Engine and file mode: quality model", {"quality": 250.0}, "quality", {"quality": 70.0},
                  8.0, 1000.0)


def resolve_model(arg: str | None, workdir: Path) -> Path:
    if arg == TEST_MODEL:
        sys.path.insert(0, str(REPO / "tests"))
        from onnx_models import make_conv_model

        return make_conv_model(workdir / "test-conv.onnx")
    try:
        return registry.resolve_model(arg or registry.FAST)
    except Exception as exc:
        sys.exit(f"bench_engine: {exc} (or --model {TEST_MODEL} to try the script on a tiny test model)")


def hop_timings(model: Path, preset: str, hops: int, threads: int | None, warmup: int = 50) -> dict:
    """Feed one hop per process() call, as live mode's worker does, and time each call."""
    sep = StreamingSeparator(model=model, latency=preset, sample_rate=RATE, stems="all", threads=threads)
    hop = max(1, round(sep.geometry.hop * RATE / sep.model_sample_rate))
    rng = np.random.default_rng(0)
    block = (0.1 * rng.standard_normal((hop, 2))).astype(np.float32)
    out = np.empty((len(sep.stems), hop, 2), np.float32)
    times = np.empty(hops)
    for i in range(warmup + hops):
        start = time.perf_counter()
        sep.process(block, out=out)
        if i >= warmup:
            times[i - warmup] = time.perf_counter() - start
    hop_ms = 1000 * hop / RATE
    p50, p99 = (1000 * np.percentile(times, q) for q in (50, 99))
    return {"latency_ms": 1000 * sep.latency_seconds, "hop": hop, "hop_ms": hop_ms, "p50": p50, "p99": p99,
            "p50_pct": 100 * p50 / hop_ms, "p99_pct": 100 * p99 / hop_ms, "provider": sep.provider,
            "name": sep.info.name}


def write_test_file(path: Path, minutes: float) -> None:
    """Generated stereo music-like noise, PCM_16, written in 10-second blocks (memory flat)."""
    rng = np.random.default_rng(1)
    t = np.arange(10 * RATE) / RATE
    tones = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 3300 * t)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as f:
        for _ in range(int(round(minutes * 6))):
            f.write((0.1 * rng.standard_normal((len(t), 2)) + tones[:, None]).astype(np.float32))


def file_mode_run(model: Path, minutes: float, workdir: Path) -> dict:  # the model's offline preset
    """Separate a generated file with the real CLI in a fresh process; peak RSS from wait4."""
    src = workdir / f"bench-{minutes:g}min.wav"
    write_test_file(src, minutes)
    out = workdir / f"out-{minutes:g}min"
    cmd = [sys.executable, "-m", "realtime_split", "--input", str(src), "--stem", "all", "--output", f"{out}/",
           "--subtype", "PCM_16", "--model", str(model), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if proc.returncode:
        sys.exit(f"bench_engine: file mode failed ({proc.returncode}): {stderr.strip()}")
    speed = re.search(r"([\d.]+)x real time", stdout)
    for f in out.iterdir():
        f.unlink()
    src.unlink()
    return {"speed": float(speed.group(1)) if speed else float("nan"), "wall_speed": minutes * 60 / wall,
            "rss_mb": usage.ru_maxrss / 1024}


LAUNCH_SCRIPT = """
import sys, time
import numpy as np
from realtime_split import StreamingSeparator
sep = StreamingSeparator(model=sys.argv[1], sample_rate=44100)
block = np.zeros((sep.latency_samples + 1, 2), np.float32)
sep.process(block)
print(time.time())
"""


def launch_time(model: Path) -> float:
    """Seconds from starting a Python process to the first separated block (imports, JIT, session)."""
    start = time.time()
    done = subprocess.run([sys.executable, "-c", LAUNCH_SCRIPT, str(model)], capture_output=True, text=True,
                          env=_env(), check=True)
    return float(done.stdout.split()[-1]) - start


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(hops: dict, files: dict, launch: float, t: Targets, live_row: str) -> str:
    rows = ["| measure | value | target | met |", "|---|---|---|---|"]
    for preset, h in hops.items():
        if preset == live_row:
            continue
        target = t.latency_ms.get(preset)
        rows.append(f"| latency, {preset} (hop {h['hop']}) | {h['latency_ms']:.1f} ms | "
                    f"{f'<= {target:g} ms' if target else '-'} | "
                    f"{verdict(h['latency_ms'] <= target) if target else '-'} |")
    for preset, h in hops.items():
        limit = t.p99_percent.get(preset)
        rows.append(f"| inference per hop, {preset}: p50 / p99 | {h['p50']:.2f} / {h['p99']:.2f} ms "
                    f"({h['p50_pct']:.0f}% / {h['p99_pct']:.0f}% of {h['hop_ms']:.1f} ms) | "
                    f"{f'p99 <= {limit:g}% of hop' if limit else '-'} | "
                    f"{verdict(h['p99_pct'] <= limit) if limit else '-'} |")
    for minutes, f in files.items():
        rows.append(f"| file mode, {minutes:g}-minute file: speed | {f['speed']:.1f}x real time "
                    f"({f['wall_speed']:.1f}x including launch) | >= {t.speed:g}x | "
                    f"{verdict(f['speed'] >= t.speed)} |")
        rows.append(f"| file mode, {minutes:g}-minute file: peak RSS | {f['rss_mb']:.0f} MB | "
                    f"< {t.rss_mb:g} MB | {verdict(f['rss_mb'] < t.rss_mb)} |")
    rows.append(f"| launch to first separated block | {launch:.2f} s | < {LAUNCH_TARGET_S:g} s | "
                f"{verdict(launch < LAUNCH_TARGET_S)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help=f"ONNX model (default: the bundled model; '{TEST_MODEL}' = tiny test model)")
    parser.add_argument("--hops", type=int, default=500, help="timed process() calls per preset (default 500)")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime threads for the per-hop timings (default: the engine's default, the "
                             "physical cores); balanced is also timed with 1 thread, as live mode runs it")
    parser.add_argument("--long", action="store_true", help="also separate a 60-minute file (takes minutes)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        model = resolve_model(args.model, workdir)
        info = registry.read_info(model)
        # By the model's kind: a stateful model is a live model, any other spectral one the quality model.
        targets = LIVE if info.state else QUALITY if info.frontend is not None else FAST
        live_row = f"{targets.live_preset}, 1 thread (live mode)"
        hops = {}
        for preset in (p for p in info.presets if p != OFFLINE):
            hops[preset] = hop_timings(model, preset, args.hops, args.threads)
            print(f"{preset}: done", file=sys.stderr)
        hops[live_row] = hop_timings(model, targets.live_preset, args.hops, 1)
        files = {}
        for minutes in (1, 60) if args.long else (1,):
            files[minutes] = file_mode_run(model, minutes, workdir)
            print(f"{minutes}-minute file: done", file=sys.stderr)
        launch = launch_time(model)

    result = table(hops, files, launch, targets, live_row)
    first = next(iter(hops.values()))
    command = "python3 benchmarks/bench_engine.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = (
        f"{targets.section}\n\n"
        f"Model: `{first['name'] or model.name}` on {first['provider']}; {describe(f'{os.cpu_count()} logical CPUs')}; "
        f"{time.strftime('%Y-%m-%d')}.\n"
        f"Inference per hop: one `process()` call per hop of 44.1 kHz stereo after 50 warm-up calls, "
        f"{args.threads or default_threads()} ONNX Runtime thread(s), the engine's default, and once with 1 thread "
        f"for {targets.live_preset}, as live mode runs it (steadier when another process wants the CPU; see "
        "docs/architecture.md). "
        "File mode: the real CLI in a fresh process on a generated PCM_16 file (offline preset), all four stems "
        "written as PCM_16; speed as the CLI reports it (separation and file I/O), peak RSS of that process. "
        "Launch: from starting Python to the first block out of `StreamingSeparator`.\n\n"
        f"```\n{command.strip()}\n```\n\n{result}\n"
    )
    publish(targets.section, section, "test model or --no-docs" if args.model == TEST_MODEL or args.no_docs else None)


if __name__ == "__main__":
    main()
