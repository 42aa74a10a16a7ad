"""Operating-system scheduling for the inference worker thread."""

import os


def raise_priority() -> bool:
    """Put the calling (worker) thread in the lowest real-time class where the system allows it
    (root, or an rtprio limit as audio users have): above every ordinary process, still below the
    audio threads of PortAudio and JACK. On a loaded machine this is what keeps inference on time
    (measured: p99 of one run 5 ms instead of 13-67 ms next to a CPU hog). Not on a single CPU,
    where an overloaded worker would starve everything else; there, and where it is not allowed,
    the worker keeps normal scheduling. Returns whether it got real-time scheduling."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if cpus < 2:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    return True
