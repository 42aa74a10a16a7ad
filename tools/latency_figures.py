"""The latency figures the docs quote, per sample rate: separator, resampler, live bridge, and soxr's hold-back.

Nothing here is timed: every figure follows from the models' geometry, the resampling filters and the
bridge's rule, so it is the same on any machine (the live delays are what tests/test_jack_ports.py
measures between JACK ports). Prints Markdown tables:

1. ``StreamingSeparator.latency_samples`` per bundled model and preset at each rate, with the
   low-delay ("LD") resampler that streams and live audio use, against soxr's "LQ" and "HQ";
2. the live delay between JACK ports (separator + bridge buffers) with periods of 128 and 256 frames
   and the default 8 ms inference budget;
3. soxr's hold-back per direction for its recipes, linear and minimum phase (python-soxr accepts only
   the recipe names, so the phase bits go through its extension module's ``CSoxr``): why live audio
   does not use soxr.

    python3 tools/latency_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_split import StreamingSeparator, registry  # noqa: E402
from realtime_split.live.bridge import RealtimeBridge  # noqa: E402

RATES = (44100, 48000, 88200, 96000)
PERIODS = (128, 256)
SOXR_RECIPES = {"LQ": 1, "MQ": 2, "HQ": 4, "LQ, minimum phase": 1 | 0x30, "MQ, minimum phase": 2 | 0x30,
                "HQ, minimum phase": 4 | 0x30}


def ms(samples: int, rate: int) -> str:
    return f"{1000 * samples / rate:.1f}"


def separator_table() -> str:
    rows = ["| model, preset | " + " | ".join(f"{r / 1000:g} kHz" for r in RATES) + " | 48 kHz with soxr LQ / HQ |",
            "|---|" + "---|" * (len(RATES) + 1)]
    for model in registry.bundled_models():
        for preset, _ in registry.by_latency(model.info):
            if preset == "offline":
                continue
            cells = [f"{ms(StreamingSeparator(model.name, latency=preset, sample_rate=r).latency_samples, r)} ms"
                     for r in RATES]
            soxr = [StreamingSeparator(model.name, latency=preset, sample_rate=48000, resample_quality=q)
                    for q in ("LQ", "HQ")]
            rows.append(f"| {model.name}, {preset} | " + " | ".join(cells) + " | "
                        + " / ".join(f"{ms(s.latency_samples, 48000)} ms" for s in soxr) + " |")
    return "\n".join(rows)


def live_table() -> str:
    rows = ["| preset (fast model) | rate | period | budget | separator + buffers | delay between the ports |",
            "|---|---|---|---|---|---|"]
    for preset in ("low", "balanced"):
        for rate in (44100, 48000, 96000):
            sep = StreamingSeparator("fast", latency=preset, sample_rate=rate)
            for period in PERIODS:
                bridge = RealtimeBridge(sep, rate, period, 2, live_input=True)
                rows.append(f"| {preset} | {rate / 1000:g} kHz | {period} | {bridge.budget_blocks} blocks "
                            f"({ms(bridge.budget_blocks * period, rate)} ms) | {bridge.latency} + {bridge.buffers} | "
                            f"{bridge.delay} samples = {ms(bridge.delay, rate)} ms |")
    return "\n".join(rows)


def soxr_table() -> str:
    from soxr import soxr_ext

    def hold_back(in_rate: int, out_rate: int, recipe: int) -> float:
        stream = soxr_ext.CSoxr(in_rate, out_rate, 1, soxr_ext.SOXR_FLOAT32_I, recipe, False)
        one, produced, worst = np.zeros((1, 1), np.float32), 0, 0.0
        for t in range(1, int(0.1 * in_rate) + 1):
            produced += len(stream.process_float32(one, False))
            worst = max(worst, t * out_rate / in_rate - produced)
        return 1000 * worst / out_rate

    rows = ["| soxr recipe | 48 -> 44.1 kHz | 44.1 -> 48 kHz |", "|---|---|---|"]
    for name, recipe in SOXR_RECIPES.items():
        rows.append(f"| {name} | {hold_back(48000, 44100, recipe):.1f} ms | {hold_back(44100, 48000, recipe):.1f} ms |")
    return "\n".join(rows)


if __name__ == "__main__":
    print("Separator latency (LD resampling unless said):\n")
    print(separator_table())
    print("\nLive, JACK ports, default inference budget (8 ms):\n")
    print(live_table())
    print("\nsoxr's hold-back per direction (what a fixed-delay FIFO must cover):\n")
    print(soxr_table())
