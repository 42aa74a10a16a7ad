"""Inference cost of candidate architectures before training them (the model card's probe table).

Builds each variant from training/configs/default.toml plus ``--set``-style overrides, converts it
with tf2onnx and times ONNX Runtime on one window (p50/p99 of 40 runs) and on a batch of 16.

    THREADS=1 python3 tools/probe_architecture_cost.py "name|model.fast.key=value;model.fast.key=value|8192|512" ...
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from training.config import CONFIG_DIR, load_config  # noqa: E402
from training.models import build, count_params  # noqa: E402


def probe(name: str, overrides: list[str], window: int, hop: int) -> None:
    model = build(load_config(CONFIG_DIR / "default.toml", overrides + [f"streaming.window={window}"]))
    spec = (tf.TensorSpec((None, None, 2), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x, training=False), input_signature=spec),
                                             input_signature=spec, opset=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("THREADS", "2"))
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.randn(1, window, 2).astype(np.float32)
    for _ in range(5):
        session.run(None, {"x": x})
    times = []
    for _ in range(40):
        t = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - t)
    batch = np.random.randn(16, window, 2).astype(np.float32)
    t = time.perf_counter()
    session.run(None, {"x": batch})
    per_window = (time.perf_counter() - t) / 16
    hop_ms = 1000 * hop / 44100
    print(f"| {name} | {count_params(model) / 1e6:.2f} M | {1e3 * np.median(times):.2f} ms | "
          f"{1e3 * np.percentile(times, 99):.2f} ms | {100 * 1e3 * np.median(times) / hop_ms:.0f} % of hop {hop} | "
          f"{1e3 * per_window:.2f} ms |", flush=True)


if __name__ == "__main__":
    print("| variant | parameters | p50 per window | p99 | share of the hop | batched, per window |")
    print("|---|---|---|---|---|---|")
    for spec in sys.argv[1:]:
        name, overrides, window, hop = spec.split("|")
        probe(name, [o for o in overrides.split(";") if o], int(window), int(hop))
