"""Live-mode benchmark through a real JACK server: missed deadlines, xruns, inference load, delay between the ports.

For each latency preset (low, balanced) and JACK period (128, 256 frames) it starts ``jackd -d dummy``
at 44.1 kHz (tests/jack_harness.py) and runs the real CLI with JACK ports of its own
(``--input jack --output jack --stem all``) for ``--seconds``, while a JACK client plays noise bursts
into its input ports and records all its output ports in the same process cycle; once on the machine as
it is and once with a process keeping one more core busy. Each row reports:

- missed deadlines: blocks the separation did not deliver in time (played as the dry mix with a short
  crossfade), against the 0.1 % target; restarts: the worker fell 16 hops behind and skipped ahead;
- xruns: every xrun the JACK server reported (anywhere in its graph), and those this program caused: the
  cycles in which its own process callback ran longer than the period (it times itself), with its
  longest run;
- inference load: one hop's inference time over the hop's duration, p50 / p99;
- machine stalls: how late the machine woke a real-time thread that only sleeps (stall_monitor.py,
  alongside): time no program can use, which tells the machine's misses from the program's;
- the delay measured between the ports (the sum of the stem ports, every burst) against the delay the
  program reports, and against the budget of the model's latency + one period + 1 ms.

It prints a Markdown table. Only a full run (60 s per row) on a quiet machine rewrites the "Live audio"
section of docs/benchmarks.md: a shorter run, or one started while the load average is above a quarter
of the CPUs (a training job, another benchmark), prints the table and leaves the docs alone.

    python3 benchmarks/bench_live.py                                    # bundled model, 8 rows of 60 s
    python3 benchmarks/bench_live.py --model test-scaled --seconds 10   # tiny test model (script check)
    python3 benchmarks/bench_live.py --rate 48000 --no-docs             # the same at 48 kHz
    python3 benchmarks/bench_live.py --inference-budget 0.016 --no-docs # another worker budget (more delay)
"""

from __future__ import annotations

import argparse
import json
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
from stall_monitor import THRESHOLDS_MS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from jack_harness import Harness, JackServer, click_train, find, jackd_path, parse_latency_line  # noqa: E402

SECTION = "## Live audio"
RATE = 44100
PERIOD = 256  # the period of the PortAudio runs other tools make (tools/live_xrun_sources.py)
PRESETS = ("low", "balanced")
PERIODS = (128, 256)
TEST_MODEL = "test-scaled"
CLICK_EVERY = 0.5  # seconds between noise bursts
FULL_SECONDS = 60.0
QUIET_LOAD = 0.25  # load average per CPU above which a run does not replace the published figures
PAIRS = ("vocals", "drums", "bass", "other", "dry")
CLIENT = "realtime-split"


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


def measure_delays(recording: np.ndarray, harness: Harness, signal: np.ndarray, rate: int) -> list[int]:
    """Delay of every burst in ``recording`` (one channel), each found near where it was played (a local
    search keeps 60 s cheap)."""
    starts = np.flatnonzero(np.diff((signal != 0).astype(np.int8)) == 1) + 1
    burst = int(0.005 * rate)
    window = int(CLICK_EVERY * rate / 2)
    loop = harness.loop_periods * harness.period
    delays = []
    for s in starts:
        at = harness.play_start + s + loop - harness.record_start  # recording index with zero delay
        if at < 0 or at + window + burst > len(recording):
            continue
        lag, corr = find(signal[s:s + burst], recording[at:at + window + burst])
        if corr > 0.5:  # the stems of a real model sum to roughly the mix, so bursts stay recognizable
            delays.append(lag)
    return delays


def cli_command(seconds: float, model: Path | None = None, preset: str = "balanced", jack: bool = False) -> list[str]:
    """A live run: all stems, ``preset``; with ``jack`` on the program's own JACK ports, else microphone to
    speakers through PortAudio with a 256-frame block (what tools/live_xrun_sources.py and bench_soak.py run)."""
    devices = ["--input", "jack", "--output", "jack"] if jack else ["--input", "mic", "--blocksize", str(PERIOD)]
    command = [sys.executable, "-m", "realtime_split", *devices, "--stem", "all", "--latency", preset,
               "--duration", str(seconds), "--no-progress"]
    return command + ["--model", str(model)] if model is not None else command


def bursts(seconds: float, rate: int = RATE) -> np.ndarray:
    """The harness's input: noise bursts every CLICK_EVERY seconds, ending a second before the run."""
    return click_train(rate, max(1.0, seconds - 1.0), every=CLICK_EVERY)


def start_stall_monitor(seconds: float) -> subprocess.Popen:
    """benchmarks/stall_monitor.py for ``seconds``: how late this machine wakes a real-time thread meanwhile."""
    return subprocess.Popen([sys.executable, str(Path(__file__).with_name("stall_monitor.py")), str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def run_scenario(model: Path | None, preset: str, seconds: float, busy: bool, server: JackServer,
                 budget: float | None = None) -> dict:
    burner = burn_cpu() if busy else None
    monitor = None
    rate = server.rate
    try:
        command = cli_command(seconds, model, preset, jack=True)
        if budget is not None:
            command += ["--inference-budget", str(budget)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        signal = bursts(seconds, rate)
        with Harness(server, record_channels=2 * len(PAIRS), record_seconds=seconds + 5) as harness:
            proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
            try:
                inputs = harness.wait_for_ports(f"{CLIENT}:in_", 2, process=proc)
                outputs = []
                for pair in PAIRS:
                    outputs += harness.wait_for_ports(f"{CLIENT}:{pair}_", 2, process=proc)
            except (RuntimeError, TimeoutError) as exc:
                proc.kill()
                _, err = proc.communicate()
                sys.exit(f"bench_live: the CLI opened no JACK ports ({exc}):\n{err}")
            harness.connect(inputs, outputs)
            harness.start_recording()
            harness.play(signal)
            monitor = start_stall_monitor(seconds)
            _, err = proc.communicate(timeout=seconds + 120)
            stalls = json.loads(monitor.communicate(timeout=seconds + 10)[0])
            if proc.returncode != 0:
                sys.exit(f"bench_live: the CLI failed ({proc.returncode}):\n{err}")
            recording = harness.take()
            stems = recording[:, 0:8:2].sum(axis=1)  # the four stems' left ports: the separated mix
            delays = measure_delays(stems, harness, signal, rate)
            dry = measure_delays(recording[:, 8], harness, signal, rate)
    finally:
        for helper in (burner, monitor):
            if helper is not None and helper.poll() is None:
                helper.kill()
                helper.wait()
    return {"stderr": err, "delays": delays, "dry_delays": dry, "seconds": seconds, "preset": preset,
            "period": server.period, "rate": rate, "busy": busy, "stalls": stalls, **parse_summary(err)}


def parse_summary(err: str) -> dict:
    """The CLI's summary: counters, load, and the latency line (PortAudio's or JACK ports')."""
    found = {
        "missed": re.search(r"missed deadlines: (\d+) blocks of (\d+)", err),
        "skips": re.search(r"(\d+) restarts after falling", err),
        "load": re.search(r"inference load p50 (\S+) p99 (\S+) of the hop budget", err),
        "played": re.search(r"played ([\d.]+) s live", err),
        "model": re.search(r"realtime-split: live (.+?) from", err),
    }
    portaudio = re.search(r"xruns: (\d+) \((\d+) input overflows, (\d+) output underflows\)", err)
    jack = re.search(r"xruns: (\d+) reported by JACK, (\d+) caused by this program's callback \(its longest run "
                     r"([\d.]+) ms", err)
    device = re.search(r"\+ device ([\d.]+) ms", err)
    if not all(found.values()) or not (portaudio or jack):
        sys.exit(f"bench_live: could not read the CLI's summary:\n{err}")
    counters = ({"xruns": int(portaudio[1]), "overflows": int(portaudio[2]), "underflows": int(portaudio[3]),
                 "overruns": None, "longest_ms": None} if portaudio else
                {"xruns": int(jack[1]), "overflows": 0, "underflows": 0, "overruns": int(jack[2]),
                 "longest_ms": float(jack[3])})
    return {"missed": int(found["missed"][1]), "skips": int(found["skips"][1]), **counters,
            "p50": found["load"][1], "p99": found["load"][2], "device_ms": float(device[1]) if device else 0.0,
            "played": float(found["played"][1]), **parse_latency_line(err)}


def model_latency(r: dict) -> int:
    """The model's own latency at the stream's rate: what the separator reports at the model's rate."""
    return r["separator"]


def table(results: list[dict]) -> str:
    rows = ["| Preset | Period | Load | Missed deadlines | Xruns: reported / caused by us (longest callback) | "
            f"Inference load p50 / p99 | Machine stalls {' / '.join(f'> {t}' for t in THRESHOLDS_MS)} ms (longest) | "
            "Delay measured | Reported | Budget: model + period + 1 ms |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rate, period = r["rate"], r["period"]
        blocks = r["played"] * rate / period
        delays = r["delays"]
        reported = r["separator"] + r["buffers"]
        measured = (f"{int(np.median(delays))} samples = {1000 * np.median(delays) / rate:.1f} ms "
                    f"({len(delays)} bursts, spread {min(delays)}..{max(delays)})" if delays else "not found")
        budget = model_latency(r) + period + int(0.001 * rate)
        met = "yes" if reported <= budget else f"no: +{reported - budget} samples"
        share = 100 * r["missed"] / blocks if blocks else 0.0
        late = r["stalls"]["late"]
        stalls = f"{' / '.join(str(late[str(t)]) for t in THRESHOLDS_MS)} ({r['stalls']['longest_ms']:.1f} ms)"
        rows.append(
            f"| {r['preset']} | {period} | {'plus a busy core' if r['busy'] else 'machine as it was'} | "
            f"{r['missed']} of {blocks:.0f} blocks ({share:.2f} %{', over 0.1 %' if share > 0.1 else ''}), "
            f"{r['skips']} restarts | {r['xruns']} / {r['overruns']} ({r['longest_ms']:.2f} ms) | "
            f"{r['p50']} / {r['p99']} | {stalls} | {measured} | {r['separator']} + {r['buffers']} = {reported} samples "
            f"({1000 * reported / rate:.1f} ms) | {budget} samples: {met} |")
    return "\n".join(rows)


def machine() -> str:
    """The hardware and how busy it already was: live results depend on both."""
    load = f", load average {os.getloadavg()[0]:.1f} before the run" if hasattr(os, "getloadavg") else ""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pinned = f" ({usable} of them usable by this run: taskset)" if usable != os.cpu_count() else ""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{pinned}{load}, "
            f"Python {platform.python_version()}")


def busy_machine() -> str | None:
    """Why this machine is too busy for figures to publish, or None."""
    if not hasattr(os, "getloadavg"):
        return None
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > QUIET_LOAD * cpus:
        return f"the load average was {load:.1f} on {cpus} CPUs before the run; publish from a quiet machine"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help=f"ONNX model (default: the bundled model; '{TEST_MODEL}' = tiny test model)")
    parser.add_argument("--seconds", type=float, default=FULL_SECONDS, help="length of each live run (default 60)")
    parser.add_argument("--rate", type=int, default=RATE, help="the JACK server's rate (default 44100)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated (default low,balanced)")
    parser.add_argument("--periods", default=",".join(map(str, PERIODS)), help="comma-separated (default 128,256)")
    parser.add_argument("--inference-budget", type=float, metavar="SECONDS",
                        help="the CLI's --inference-budget (default: its own, the published one)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md")
    args = parser.parse_args()
    if jackd_path() is None:
        sys.exit("bench_live: jackd not found; install jackd2")
    presets = [p for p in args.presets.split(",") if p]
    periods = [int(p) for p in args.periods.split(",") if p]

    host = machine()
    too_busy = busy_machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        model = resolve_model(args.model, Path(tmp))
        for period in periods:
            with JackServer(args.rate, period) as server:
                for preset in presets:
                    for busy in (False, True):
                        results.append(run_scenario(model, preset, args.seconds, busy, server, args.inference_budget))
                        print(f"{preset}, period {period}, {'busy core' if busy else 'as it was'}: done",
                              file=sys.stderr)

    command = "python3 benchmarks/bench_live.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    model_name = ("tiny test model (stems = fixed fractions of the mix: checks the script, says nothing about a "
                  "real model)" if args.model == TEST_MODEL else (args.model or "the bundled model"))
    full = (args.seconds >= FULL_SECONDS and args.model != TEST_MODEL and args.rate == RATE
            and presets == list(PRESETS) and periods == list(PERIODS) and args.inference_budget is None)
    skip = ("--no-docs" if args.no_docs else None) or too_busy or (
        None if full else "only the full run (bundled model, 60 s, 44.1 kHz, every preset and period, the CLI's own "
                          "budget) is published")
    section = (
        f"{SECTION}\n\n"
        f"Produced by `benchmarks/bench_live.py` (it rewrites this section). Model: {model_name}; "
        f"{host}; {time.strftime('%Y-%m-%d')}.\n"
        f"Each row is a {args.seconds:g} s run of `realtime-split --input jack --output jack --stem all --latency "
        f"PRESET` on a JACK dummy server ({args.rate / 1000:g} kHz, the period given), fed noise bursts every "
        f"{CLICK_EVERY:g} s by a JACK client that records all its ports in the same cycle; \"plus a busy core\" adds "
        "a process spinning at 100 %. Missed deadlines are blocks the separation did not deliver in time (played as "
        "the dry mix with a 1 ms crossfade; target at most 0.1 %); restarts are the times the worker fell so far "
        "behind (16 hops) that it skipped ahead and restarted the separator. Xruns: every xrun the JACK server "
        "reported, anywhere in its graph, then those the program caused (cycles in which its own process callback, "
        "which times itself, ran longer than the period), with its longest run. Load is one hop's inference time "
        "over the hop's duration. Machine stalls: wake-ups of a thread at the worker's real-time priority that only "
        "sleeps 1 ms (`benchmarks/stall_monitor.py`, run alongside) that came more than 5 / 10 ms late, and the "
        "latest; no program can use that time, so a stall longer than the worker's slack misses deadlines whatever "
        "the separation costs. The delay is measured on the sum of the four stem ports and equals the delay the "
        "program reports (separator latency + bridge buffers) and sets as its ports' latency; the budget is the "
        "model's latency + one period + 1 ms.\n\n"
        f"```\n{command.strip()}\n```\n\n{table(results)}\n"
    )
    publish(SECTION, section, skip)


if __name__ == "__main__":
    main()
