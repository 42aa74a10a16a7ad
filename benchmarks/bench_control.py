"""Control-to-sound delay of the live mixer through a real JACK server: how long after a change is asked for does
the output port carry it, per control path (the library's ``set_gain``, MIDI on ``midi_in``, OSC over UDP on
127.0.0.1) at the ``low`` and ``balanced`` presets.

A ``LiveSession`` with JACK ports (``--input jack --output jack --midi``, and an ``OscControl``) runs in this
process on ``jackd -d dummy`` at 44.1 kHz (tests/jack_harness.py). Every change is timed in JACK's own frame
clock: from the frame time when it was asked for (``jack_frame_time`` just before ``set_gain`` or the UDP send;
for MIDI, the frame time of the cycle whose ``midi_in`` buffer held the message) to the first frame of the
period after the one whose process cycle took it (the callback notes that cycle's frame time, ``MIX_TIME``;
JACK plays what a cycle wrote one period later). The ramp (5 ms) starts there. Figures are p50 / p99 over
``--changes`` changes per row, in ms.

Only a run on a quiet machine rewrites the "Live mixer" section of docs/benchmarks.md; ``--no-docs`` (or a
load average above a quarter of the CPUs) prints the table alone.

    python3 benchmarks/bench_control.py                                  # bundled model, 200 changes per row
    python3 benchmarks/bench_control.py --model test-scaled --changes 20 --no-docs   # script check
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from docs_section import publish

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bench_live import busy_machine, machine, resolve_model  # noqa: E402
from jack_harness import JackServer, MidiSender  # noqa: E402

SECTION = "## Live mixer"
RATE = 44100
PERIOD = 256
PRESETS = ("low", "balanced")
PATHS = ("library", "midi", "osc")
CLIENT = "rs-control"
SPACING = 0.03  # seconds between changes (plus up to a period at random, so changes fall anywhere in a cycle)


def osc_message(address: str, value: float) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    message = OscMessageBuilder(address)
    message.add_arg(float(value))
    return message.build().dgram


def wait_taken(bridge, version: int, timeout: float = 5.0) -> int:
    """The JACK frame time of the cycle that took mix version ``version`` (or a later one)."""
    from realtime_split.live.slots import MIX_SEEN, MIX_TIME

    deadline = time.monotonic() + timeout
    while bridge.counters[MIX_SEEN] < version:
        if time.monotonic() > deadline:
            raise TimeoutError("the callback did not take the change")
        time.sleep(0.0002)
    return int(bridge.counters[MIX_TIME])


def run_preset(server: JackServer, model: Path | None, preset: str, changes: int) -> dict[str, list[float]]:
    from realtime_split import LiveSession
    from realtime_split.live.osc import OscControl
    from realtime_split.live.slots import MIX_VERSION

    delays: dict[str, list[float]] = {path: [] for path in PATHS}
    probe = server.client("rs-bench-probe")
    sender = MidiSender(server, "rs-bench-midi")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with LiveSession(model, input="jack", output="jack", stems="all", latency=preset, jack_name=CLIENT,
                     midi=True) as session, OscControl(session, "127.0.0.1:0") as osc:
        sender.client.connect(sender.port, f"{CLIENT}:midi_in")
        bridge = session._bridge
        time.sleep(0.3)
        rng = np.random.default_rng(0)
        for k in range(changes):
            db = -6.0 if k % 2 == 0 else 0.0
            for path in PATHS:
                version = int(bridge.counters[MIX_VERSION]) + 1
                if path == "library":
                    asked = probe.frame_time
                    session.set_gain("vocals", db)
                elif path == "osc":
                    asked = probe.frame_time
                    sock.sendto(osc_message("/stem/vocals/gain", db), ("127.0.0.1", osc.port))
                else:
                    sender.send(bytes([0xB0, 7, 64 if db < 0 else 127]))
                taken = wait_taken(bridge, version)
                if path == "midi":
                    asked = sender.sent_at.popleft()
                heard = taken + PERIOD  # JACK plays what the cycle at ``taken`` wrote one period later
                frames = (heard - asked) & 0xFFFFFFFF  # JACK's frame clock is 32 bits and wraps
                frames -= (1 << 32) if frames >= 1 << 31 else 0  # an estimate off by an xrun can be late
                delays[path].append(1000.0 * frames / RATE)
                time.sleep(SPACING + rng.uniform(0, PERIOD / RATE))
        stats = session.stats()
    sock.close()
    sender.client.deactivate()
    delays["_xruns"] = [float(stats.xruns)]
    delays["_latency"] = [stats.latency.total_ms]
    return delays


def table(results: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| preset | session latency | library p50 / p99 | MIDI on JACK p50 / p99 | OSC p50 / p99 | xruns |",
             "|---|---|---|---|---|---|"]
    for preset, delays in results.items():
        cells = [f"{np.percentile(delays[p], 50):.1f} / {np.percentile(delays[p], 99):.1f} ms" for p in PATHS]
        lines.append(f"| {preset} | {delays['_latency'][0]:.1f} ms | {' | '.join(cells)} | "
                     f"{int(delays['_xruns'][0])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="ONNX model (default: the bundled model; 'test-scaled' = tiny test model)")
    parser.add_argument("--changes", type=int, default=200, help="changes per path and preset (default 200)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated (default low,balanced)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model(args.model, Path(tmp))
        before = machine()
        busy = busy_machine()
        results = {}
        with JackServer(rate=RATE, period=PERIOD) as server:
            for preset in args.presets.split(","):
                results[preset] = run_preset(server, model, preset, args.changes)
    command = "python3 benchmarks/bench_control.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    section = (f"{SECTION}\n\nControl-to-sound delay: from asking for a gain change to the first frame the output "
               f"port plays with it (the 5 ms ramp starts there), JACK dummy driver at {RATE} Hz with {PERIOD}-frame "
               f"periods, {args.changes} changes per path; {before}.\n\n{table(results)}\n\n"
               f"Made by `{command}`.\n")
    skip = "--no-docs" if args.no_docs else busy
    if args.model and not skip:
        skip = "a model other than the bundled one"
    publish(SECTION, section, skip)


if __name__ == "__main__":
    main()
