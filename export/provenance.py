"""Free metadata keys that say where an exported model came from.

A model file travels alone (bundled, downloaded, passed with --model), so it
carries its own provenance: code version, export date, size and training data.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import onnx
import tf2onnx

REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO) -> str:
    """``<sha>`` of the exporting code, ``<sha>-dirty`` with uncommitted changes, ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def provenance(parameters: int, opset: int, checkpoint: Path, training_data: str) -> dict[str, str]:
    return {
        "training_data": training_data,
        "parameters": str(parameters),
        "checkpoint": Path(checkpoint).parent.name + "/" + Path(checkpoint).name,
        "git_commit": git_commit(),
        "exported_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "exporter": f"tf2onnx {tf2onnx.__version__}, onnx {onnx.__version__}, opset {opset}",
    }
