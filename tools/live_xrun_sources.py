"""Who causes the live xruns? Timestamps every xrun a JACK server reports during a live CLI run.

A second JACK client with only an xrun callback (no process callback) watches the server while
``realtime-split --input mic`` runs for ``--seconds``, either alone (``--with alone``), next to the
benchmark's harness client connected to it as in bench_live.py (``connected``), or next to the
harness running but not connected (``unconnected``). Prints the CLI's own counters and the xrun
times; the findings are in docs/benchmarks.md ("The last xruns came from the measuring harness").

The monitor's xrun callback may be Python: JACK calls it on the client's notification thread
(SCHED_OTHER), never on the real-time process thread, and a client without a process callback
is not part of the process graph. The harness's process callback is compiled
(tests/jack_harness.py), so neither client takes the GIL on JACK's real-time thread.

    python3 tools/live_xrun_sources.py --with alone --seconds 60
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))  # bench_live

from bench_live import PERIOD, RATE, bursts, cli_command  # noqa: E402
from jack_harness import PORTAUDIO_IN, Harness, JackServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with", dest="company", choices=("alone", "connected", "unconnected"), default="alone")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    import jack

    with JackServer(RATE, PERIOD) as server:
        monitor = jack.Client("xrun-monitor", no_start_server=True, servername=server.name)
        xruns: list[float] = []
        t0 = time.monotonic()
        monitor.set_xrun_callback(lambda delayed_usecs: xruns.append(time.monotonic() - t0))
        monitor.activate()
        harness = None if args.company == "alone" else Harness(server, record_seconds=args.seconds + 5)
        try:
            proc = subprocess.Popen(cli_command(args.seconds), stderr=subprocess.PIPE, text=True, cwd=REPO)
            if args.company == "connected":
                harness.connect_portaudio(process=proc)
                harness.start_recording()
                harness.play(bursts(args.seconds))
            elif harness is not None:
                harness.wait_for_ports(PORTAUDIO_IN, 2, process=proc)
            _, err = proc.communicate(timeout=args.seconds + 120)
        finally:
            if harness is not None:
                harness.close()
            monitor.deactivate()
            monitor.close()
    summary = [line for line in err.splitlines() if "xruns:" in line]
    print(summary[0] if summary else err)
    print(f"xruns the server reported (s after start; callbacks may repeat per xrun): {[round(t, 2) for t in xruns]}")


if __name__ == "__main__":
    main()
