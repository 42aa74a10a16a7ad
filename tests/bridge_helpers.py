"""Helpers of the tests that drive the real-time bridge without a sound card: a bridge on a test model and its
duplex callback played block by block, the worker catching up after each block or stalled where a test says."""

from __future__ import annotations

import numpy as np

from realtime_split import StreamingSeparator
from realtime_split.live.bridge import RealtimeBridge

RATE = 44100
F = 256  # blocksize; also the balanced test preset's hop


def sine(seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


def bridge_for(model, blocksize: int = F, **options) -> RealtimeBridge:
    sep = StreamingSeparator(model, stems="vocals", sample_rate=RATE)
    return RealtimeBridge(sep, RATE, blocksize, 2, live_input=True, **options)


def run_live(bridge: RealtimeBridge, x: np.ndarray, worker_idle=range(0)) -> np.ndarray:
    """Play ``x`` through the duplex callback; after each block the worker catches up, except
    during the blocks in ``worker_idle`` (inference stalled)."""
    callback = bridge.duplex_callback()
    n = bridge.blocksize
    out = np.zeros_like(x[:len(x) // n * n])
    for k in range(len(x) // n):
        block = slice(k * n, (k + 1) * n)
        callback(x[block], out[block], n, None, None)
        if k not in worker_idle:
            while bridge.step():
                pass
    return out
