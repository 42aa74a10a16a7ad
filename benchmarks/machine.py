"""How the benchmarks name the machine they ran on, in the tables they publish."""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        return cpu


def describe(cpus: str) -> str:
    """The CPU model, ``cpus`` (how the script counts them, e.g. "2 CPUs"), and the Python and ONNX Runtime
    versions."""
    import onnxruntime

    return f"{cpu_model()}, {cpus}, Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}"
