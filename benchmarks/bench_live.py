"""Live-mode benchmark through a real JACK server: missed deadlines, xruns, inference load, delay.

Starts ``jackd -d dummy -r 44100 -p 256`` (tests/jack_harness.py), runs the real CLI
(``--input mic --blocksize 256 --latency balanced``) for ``--seconds`` while a JACK client plays
noise bursts into it and records what it plays, once on the machine as it is and once with a
CPU-burning process keeping one more core busy. Prints a Markdown table and writes it into the
"Live audio" section of docs/benchmarks.md with the exact command.

    python3 benchmarks/bench_live.py                          # bundled model, 60 s per scenario
    python3 benchmarks/bench_live.py --model test-scaled --seconds 10   # tiny test model (script check)
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from docs_section import publish

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from jack_harness import Harness, JackServer, click_train, find, jackd_path, parse_latency_line  # noqa: E402

SECTION = "## Live audio"
RATE = 44100
PERIOD = 256
BLOCKSIZE = 256
TEST_MODEL = "test-scaled"
CLICK_EVERY = 0.5  # seconds between noise bursts


def resolve_model(arg: str | None, workdir: Path) -> Path | None:
    """None means the bundled model (the CLI's default)."""
    if arg == TEST_MODEL:
        from onnx_models import make_scaled_identity_model

        return make_scaled_identity_model(workdir / "test-scaled.onnx", [0.5, 0.25, 0.125, 0.125])
    if arg and not Path(arg).is_file():
        sys.exit(f"bench_live: no model at {arg}")
    return Path(arg) if arg else None


def burn_cpu() -> subprocess.Popen:
    """A process that keeps one core at 100 % until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure_delays(harness: Harness, signal: np.ndarray) -> list[int]:
    """Delay of every burst, each found near where it was played (a local search keeps 60 s cheap)."""
    rec = harness.take()[:, 0]
    starts = np.flatnonzero(np.diff((signal != 0).astype(np.int8)) == 1) + 1
    burst = int(0.005 * RATE)
    window = int(CLICK_EVERY * RATE / 2)
    loop = harness.loop_periods * harness.period
    delays = []
    for s in starts:
        at = harness.play_start + s + loop - harness.record_start  # recording index with zero delay
        if at < 0 or at + window + burst > len(rec):
            continue
        lag, corr = find(signal[s:s + burst], rec[at:at + window + burst])
        if corr > 0.5:  # the stems of a real model sum to roughly the mix, so bursts stay recognizable
            delays.append(lag)
    return delays


def cli_command(seconds: float, model: Path | None = None) -> list[str]:
    """The live run every scenario measures: microphone in, all stems out, balanced, blocksize 256."""
    command = [sys.executable, "-m", "realtime_split", "--input", "mic", "--stem", "all", "--latency", "balanced",
               "--blocksize", str(BLOCKSIZE), "--duration", str(seconds), "--no-progress"]
    return command + ["--model", str(model)] if model is not None else command


def bursts(seconds: float) -> np.ndarray:
    """The harness's input: noise bursts every CLICK_EVERY seconds, ending a second before the run."""
    return click_train(RATE, max(1.0, seconds - 1.0), every=CLICK_EVERY)


def run_scenario(model: Path | None, seconds: float, busy: bool, server: JackServer) -> dict:
    burner = burn_cpu() if busy else None
    try:
        command = cli_command(seconds, model)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        signal = bursts(seconds)
        with Harness(server, record_seconds=seconds + 5) as harness:
            proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
            harness.connect_portaudio(process=proc)
            harness.start_recording()
            harness.play(signal)
            _, err = proc.communicate(timeout=seconds + 120)
            if proc.returncode != 0:
                sys.exit(f"bench_live: the CLI failed ({proc.returncode}):\n{err}")
            delays = measure_delays(harness, signal)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    return {"stderr": err, "delays": delays, "seconds": seconds, **parse_summary(err)}


def parse_summary(err: str) -> dict:
    found = {
        "missed": re.search(r"missed deadlines: (\d+) blocks of (\d+)", err),
        "skips": re.search(r"(\d+) restarts after falling", err),
        "xruns": re.search(r"xruns: (\d+) \((\d+) input overflows, (\d+) output underflows\)", err),
        "load": re.search(r"inference load p50 (\S+) p99 (\S+) of the hop budget", err),
        "device": re.search(r"\+ device ([\d.]+) ms", err),
        "played": re.search(r"played ([\d.]+) s live", err),
        "model": re.search(r"realtime-split: live (.+?) from", err),
    }
    if not all(found.values()):
        sys.exit(f"bench_live: could not read the CLI's summary:\n{err}")
    return {"missed": int(found["missed"][1]), "skips": int(found["skips"][1]),
            "xruns": int(found["xruns"][1]), "overflows": int(found["xruns"][2]),
            "underflows": int(found["xruns"][3]), "p50": found["load"][1], "p99": found["load"][2],
            "device_ms": float(found["device"][1]), "played": float(found["played"][1]),
            **parse_latency_line(err)}


def table(results: dict[str, dict]) -> str:
    rows = ["| Scenario | Missed deadlines | Xruns (in/out) | Inference load p50 / p99 | "
            "Delay measured | Delay formula | Mic to speakers |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        blocks = r["played"] * RATE / BLOCKSIZE
        formula = r["separator"] + r["buffers"] + BLOCKSIZE
        delays = r["delays"]
        measured = (f"{int(np.median(delays))} samples = {1000 * np.median(delays) / RATE:.1f} ms "
                    f"({len(delays)} bursts, spread {min(delays)}..{max(delays)})" if delays else "not found")
        total = 1000 * (r["separator"] + r["buffers"]) / RATE + r["device_ms"]
        rows.append(
            f"| {name} | {r['missed']} of {blocks:.0f} blocks ({100 * r['missed'] / blocks:.2f} %), "
            f"{r['skips']} restarts | {r['xruns']} ({r['overflows']}/{r['underflows']}) | {r['p50']} / {r['p99']} | "
            f"{measured} | {r['separator']} + {r['buffers']} + {BLOCKSIZE} = {formula} samples | {total:.1f} ms |")
    return "\n".join(rows)


def machine() -> str:
    """The hardware and how busy it already was: live results depend on both."""
    load = f", load average {os.getloadavg()[0]:.1f} before the run" if hasattr(os, "getloadavg") else ""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}, "
            f"Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help=f"ONNX model (default: the bundled model; '{TEST_MODEL}' = tiny test model)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each live run (default 60)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md")
    args = parser.parse_args()
    if jackd_path() is None:
        sys.exit("bench_live: jackd not found; install jackd2")

    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, JackServer(RATE, PERIOD) as server:
        model = resolve_model(args.model, Path(tmp))
        results = {}
        for name, busy in (("machine as it was", False), ("plus a busy core", True)):
            results[name] = run_scenario(model, args.seconds, busy, server)
            print(f"{name}: done", file=sys.stderr)

    first = next(iter(results.values()))
    pending = ("For the bundled model, run `python3 benchmarks/bench_live.py` (it replaces this section).\n\n"
               if args.model == TEST_MODEL else "")
    command = "python3 benchmarks/bench_live.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    model_name = ("tiny test model (stems = fixed fractions of the mix: checks the script, says nothing about a "
                  "real model)" if args.model == TEST_MODEL else (args.model or "the bundled model"))
    section = (
        f"{SECTION}\n\n"
        f"Produced by `benchmarks/bench_live.py` (it rewrites this section). Model: "
        f"{model_name}; "
        f"{host}; {time.strftime('%Y-%m-%d')}.\n"
        f"Each row is a {args.seconds:g} s run of `realtime-split --input mic --stem all --latency balanced "
        f"--blocksize {BLOCKSIZE}` on a JACK dummy server (44.1 kHz, period {PERIOD}), fed noise bursts every "
        f"{CLICK_EVERY:g} s by a JACK client that records the output; \"plus a busy core\" adds a process "
        "spinning at 100 %. Missed deadlines are blocks the separation did not deliver in time (played as the "
        "dry mix with a short crossfade); restarts are the times the worker fell so far behind (16 hops) that it "
        "skipped ahead and restarted the separator. "
        "Xruns are blocks PortAudio flagged as an overflow or underflow: its JACK host API flags every JACK xrun "
        "(anywhere in the JACK graph) as both an input overflow and an output underflow, shown in parentheses. "
        "Load is one hop's inference time over the hop's duration. "
        "Delay is measured between the program's JACK ports and matches separator latency + bridge buffers + "
        "one block that PortAudio's JACK host API buffers; "
        f"\"mic to speakers\" adds the device latency PortAudio reports ({first['device_ms']:.1f} ms here).\n\n"
        f"```\n{command.strip()}\n```\n\n{table(results)}\n\n{pending}"
    )
    publish(SECTION, section, "--no-docs" if args.no_docs else None)


if __name__ == "__main__":
    main()
