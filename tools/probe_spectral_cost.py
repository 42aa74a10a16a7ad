"""Per-hop cost of candidate spectral students before training them (issue 29: the near preset).

Builds each variant from a config plus ``--set``-style overrides with random weights, exports it as a
real model file (tf2onnx, the config's metadata) and times it the way ``benchmarks/bench_engine.py``
does: one ``StreamingSeparator.process`` call per hop of the config's default preset, ONNX Runtime on
one thread (live mode's setting), p50 / p99 of N hops after a warm-up. The figure includes the
runtime's numpy STFT and inverse, so it is what live mode pays per hop.

    python3 tools/probe_spectral_cost.py training/configs/near.toml \
        "f8|model.quality.filters=8;model.quality.max_filters=256" ...
    python3 tools/probe_spectral_cost.py --model realtime_split/models/quality.onnx --preset quality

Writes the candidate files to ``$PROBE_DIR`` (default: a temporary folder).
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

HOPS = int(os.environ.get("HOPS", "60"))


def export_candidate(config_path: str, name: str, overrides: list[str], folder: Path) -> Path:
    from export.convert import keras_to_onnx
    from training.config import load_config
    from training.models import build, count_params

    config = load_config(config_path, overrides)
    estimator = build(config).estimator
    out = folder / f"{name}.onnx"
    keras_to_onnx(estimator, config.model_info(), out)
    print(f"{name}: {count_params(estimator):,} parameters ({';'.join(overrides) or 'config as is'})", flush=True)
    return out


def time_hops(model: Path, preset: str | None) -> None:
    from bench_engine import hop_timings

    r = hop_timings(model, preset or "", HOPS, threads=1, warmup=5) if preset else None
    if r is None:
        from realtime_split.registry import read_info

        r = hop_timings(model, read_info(model).default_preset, HOPS, threads=1, warmup=5)
    load = os.getloadavg()[0]
    print(f"  {model.name}: latency {r['latency_ms']:.1f} ms, hop {r['hop_ms']:.1f} ms, 1 thread p50 "
          f"{r['p50']:.1f} ms / p99 {r['p99']:.1f} ms = {r['p50_pct']:.0f} / {r['p99_pct']:.0f} % of the hop "
          f"(load {load:.2f})", flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--model"]:
        preset = argv[3] if argv[2:3] == ["--preset"] else None
        time_hops(Path(argv[1]), preset)
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(os.environ.get("PROBE_DIR") or tempfile.mkdtemp(prefix="probe-spectral-"))
    folder.mkdir(parents=True, exist_ok=True)
    for spec in argv[1:]:
        name, _, sets = spec.partition("|")
        overrides = [s for s in sets.split(";") if s]
        time_hops(export_candidate(argv[0], name, overrides, folder), None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
