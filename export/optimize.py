"""Save ONNX Runtime's graph optimizations into the file, so sessions start faster.

Only the BASIC level is saved: its rewrites (constant folding, redundant node
removal) use standard ONNX ops and run on every execution provider. EXTENDED and
higher insert CPU-specific fused ops, which would tie the file to one provider.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def optimize_offline(source: Path, destination: Path) -> Path:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(destination)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return Path(destination)
