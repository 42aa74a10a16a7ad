"""Save ONNX Runtime's graph optimizations into the file, so sessions start faster.

Only the BASIC level is saved: its rewrites (constant folding, redundant node
removal) use standard ONNX ops and run on every execution provider. EXTENDED and
higher insert CPU-specific fused ops, which would tie the file to one provider.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort


def optimize_offline(source: Path, destination: Path) -> Path:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(destination)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return keep_used_domains(Path(destination))


def keep_used_domains(path: Path) -> Path:
    """ONNX Runtime saves every domain it knows (com.microsoft, org.pytorch.aten...) as an opset import; keep only
    those the graph uses, so other runtimes and older ONNX Runtime versions need nothing beyond standard ONNX."""
    model = onnx.load(str(path))
    used = {node.domain for node in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
