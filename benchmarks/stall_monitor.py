"""How late the machine wakes a real-time thread that does nothing but sleep: the stalls no program can avoid.

bench_live.py runs it beside each live run. A thread at the live worker's scheduling class (SCHED_FIFO 1,
see raise_priority in realtime_split/live/bridge.py) sleeps 1 ms at a time and records by how much each wake-up was
late. On bare metal that is tens of microseconds; on a virtual machine whose host deschedules its virtual
CPUs it can be tens of milliseconds. A stall longer than the live worker's slack makes it miss a deadline
whatever it computes, so the benchmark shows these beside the missed deadlines (what cyclictest from
rt-tests measures, kept here in a few lines so the benchmark needs nothing more than Python).

    python3 benchmarks/stall_monitor.py SECONDS      # prints one JSON line: wake-ups, late counts, longest
"""

from __future__ import annotations

import json
import os
import sys
import time

SLEEP = 0.001
THRESHOLDS_MS = (5, 10)  # late wake-ups counted past each (bench_live.py shows them)


def monitor(seconds: float) -> dict:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        realtime = True
    except (AttributeError, OSError):
        realtime = False
    late = {t: 0 for t in THRESHOLDS_MS}
    wakeups, longest = 0, 0.0
    end = time.monotonic() + seconds
    now = time.monotonic()
    while now < end:
        time.sleep(SLEEP)
        then, now = now, time.monotonic()
        over = (now - then - SLEEP) * 1000.0
        wakeups += 1
        longest = max(longest, over)
        for t in THRESHOLDS_MS:
            if over > t:
                late[t] += 1
    return {"wakeups": wakeups, "late": {str(t): n for t, n in late.items()}, "longest_ms": round(longest, 2),
            "realtime": realtime}


if __name__ == "__main__":
    print(json.dumps(monitor(float(sys.argv[1]))))
