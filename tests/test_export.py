"""Export: a real tiny Keras U-Net from training/ becomes an ONNX file that matches it and that the runtime plays.

TensorFlow runs only in subprocesses (the real ``python -m export`` command), so
this test process stays free of it like the runtime.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
from onnx import numpy_helper

from realtime_split import StreamingSeparator
from realtime_split.model_format import INPUT_NAME, OUTPUT_NAME, parse_metadata

pytestmark = pytest.mark.slow  # TensorFlow and tf2onnx in subprocesses

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4

# Builds the tiny config's model (random weights are as good as trained ones for parity), widened so its
# weights dominate the file as in a real model, saves a run folder like training does, and records Keras
# outputs for inputs in the contract layout.
BUILD_RUN = """
import sys
from pathlib import Path
import numpy as np
from training.config import load_config, to_toml
from training.models import build

run = Path(sys.argv[1])
run.mkdir(parents=True)
config = load_config("training/configs/tiny.toml", ["data.sources=['musdb:/data/musdb18-preview']",
                                                    "model.fast.filters=16", "model.fast.max_filters=64"])
model = build(config)
model.save(run / "best.keras")
(run / "config.toml").write_text(to_toml(config))
rng = np.random.default_rng(7)
for name, shape in (("window", (1, 2, 256)), ("long", (2, 2, 1024))):
    mix = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    stems = model(np.transpose(mix, (0, 2, 1)), training=False).numpy()  # (b, t, S, 2)
    np.save(run / f"{name}_mix.npy", mix)
    np.save(run / f"{name}_stems.npy", np.transpose(stems, (0, 2, 3, 1)))
"""


def run_python(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("export") / "runs" / "tiny"
    proc = run_python("-c", BUILD_RUN, str(run))
    assert proc.returncode == 0, proc.stderr
    return run


@pytest.fixture(scope="module")
def exported(run_dir) -> tuple[Path, dict, str]:
    """One export with every quantized variant, scored on a one-track vocals + accompaniment dataset."""
    output = run_dir.parent.parent / "models" / "tiny.onnx"
    report = output.parent / "report.json"
    song = run_dir.parent.parent / "data" / "song"
    song.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for stem in ("vocals", "accompaniment"):
        sf.write(song / f"{stem}.wav", (0.2 * rng.standard_normal((8000, 2))).astype(np.float32), 8000)
    recording = song.parent.parent / "recording.flac"  # mono at 44.1 kHz: export resamples and duplicates it
    t = np.arange(22050) / 44100
    sf.write(recording, 0.4 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size), 44100)
    proc = run_python("-m", "export", "--checkpoint", str(run_dir / "best.keras"), "--output", str(output),
                      "--quantize", "int8", "--quantize", "fp16", "--quantize", "fp16-weights", "--report", str(report),
                      "--eval-data", f"folder:{song.parent}", "--eval-split", "all", "--parity-audio", str(recording))
    assert proc.returncode == 0, proc.stderr
    return output, json.loads(report.read_text()), proc.stdout


def onnx_run(path: Path, mix: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: mix})[0]


def test_exported_model_matches_keras_at_any_batch_and_length(exported, run_dir):
    output, report, stdout = exported
    for name in ("window", "long"):
        mix, want = np.load(run_dir / f"{name}_mix.npy"), np.load(run_dir / f"{name}_stems.npy")
        got = onnx_run(output, mix)
        assert got.shape == want.shape == (mix.shape[0], 4, 2, mix.shape[2])
        assert np.max(np.abs(got - want)) <= TOLERANCE
    assert report["converted"]["max_abs_error"] <= TOLERANCE
    assert report["optimized"]["max_abs_error"] <= TOLERANCE
    assert {s["signal"] for s in report["optimized"]["signals"]} == {"random", "audio"}
    assert {s["length"] for s in report["optimized"]["signals"]} == {256, 896}  # the window and longer
    assert "optimized (ONNX Runtime, basic level): max abs error" in stdout


def test_exported_model_follows_the_contract_and_carries_provenance(exported):
    output, _, _ = exported
    proto = onnx.load(str(output))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", 2, "time"], ["batch", 4, 2, "time"]]
    # standard ONNX only (opset 17+), so any ONNX Runtime build or provider can run it
    assert [(o.domain, o.version >= 17) for o in proto.opset_import] == [("", True)]
    info = parse_metadata({p.key: p.value for p in proto.metadata_props})
    assert (info.name, info.sample_rate, info.length_multiple) == ("tiny-test", 8000, 8)
    assert info.stems == ("vocals", "drums", "bass", "other")
    assert set(info.presets) == {"low", "balanced", "quality", "offline"}
    assert info.extra["training_data"] == "musdb:musdb18-preview (train split)"
    assert info.extra["checkpoint"] == "tiny/best.keras"
    assert int(info.extra["parameters"]) > 0
    assert info.extra["exported_at"].startswith("20")
    assert info.extra["git_commit"]
    assert "architecture" in info.extra


def test_runtime_streams_the_exported_model(exported):
    output, _, _ = exported
    sep = StreamingSeparator(str(output), latency="low")
    assert sep.stems == ("vocals", "drums", "bass", "other") and sep.model_sample_rate == 8000
    block = (0.3 * np.random.default_rng(0).standard_normal((4000, 2))).astype(np.float32)
    out = np.concatenate([sep.process(block), sep.flush()], axis=1)
    assert out.shape == (4, 4000 + sep.latency_samples, 2)
    assert np.isfinite(out).all() and np.abs(out).max() > 0


@pytest.mark.parametrize("kind", ["int8", "fp16", "fp16-weights"])
def test_quantized_variants_run_and_report_their_error(exported, run_dir, kind):
    output, report, stdout = exported
    path = output.with_name(f"tiny.{kind}.onnx")
    assert report[kind]["path"] == str(path) and report[kind]["bytes"] == path.stat().st_size
    assert 0 < report[kind]["max_abs_error"] < 0.05
    assert f"{kind} ({path}" in stdout
    mix, want = np.load(run_dir / "long_mix.npy"), np.load(run_dir / "long_stems.npy")
    assert [o.domain for o in onnx.load(str(path)).opset_import] == [""]
    got = onnx_run(path, mix)
    assert got.dtype == np.float32 and np.max(np.abs(got - want)) < 0.05
    assert set(report["sdr"]["change"][kind]) == {"vocals", "accompaniment"}
    assert all(abs(change) < 1.0 for change in report["sdr"]["change"][kind].values())
    assert f"{kind}: SDR change vs float32 (balanced preset, 1 track): vocals " in stdout
    sep = StreamingSeparator(str(path), latency="balanced")
    assert sep.process(np.zeros((512, 2), np.float32)).shape == (4, 512, 2)


def test_fp16_weights_variant_halves_the_file_and_computes_in_float32(exported, run_dir, tmp_path):
    output, report, _ = exported
    path = output.with_name("tiny.fp16-weights.onnx")
    ratio = path.stat().st_size / output.stat().st_size
    print(f"fp16-weights file: {ratio:.2f} of the float32 file")
    assert ratio < 0.65  # weights are ~85% of this file; the default U-Net goes from 23.65 to 11.86 MB
    # ONNX Runtime folds every Cast at session load: the graph it runs holds float32 weights only, like the
    # float32 file's, so the variant computes in float32 at float32 speed.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    stored = onnx.load(str(path)).graph.initializer
    loaded = onnx.load(options.optimized_model_filepath).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in stored)
    assert not any(t.data_type == onnx.TensorProto.FLOAT16 for t in loaded)
    # the float32 file's metadata plus the storage note, read back by the runtime
    float_info = StreamingSeparator(str(output)).info
    sep = StreamingSeparator(str(path), latency="low")
    assert sep.info == dataclasses.replace(float_info, extra={**float_info.extra, "weight_storage": "float16"})
    # float16 rounds each weight by at most 2**-11 relative: far below audible at the output
    mix, want = np.load(run_dir / "long_mix.npy"), np.load(run_dir / "long_stems.npy")
    relative = np.max(np.abs(onnx_run(path, mix) - want)) / np.sqrt(np.mean(want.astype(np.float64) ** 2))
    print(f"fp16-weights: max abs error {relative:.2e} of the output RMS")
    assert relative < 1e-2
    block = (0.3 * np.random.default_rng(1).standard_normal((2000, 2))).astype(np.float32)
    out = np.concatenate([sep.process(block), sep.flush()], axis=1)
    assert out.shape == (4, 2000 + sep.latency_samples, 2) and np.isfinite(out).all()


def test_tampered_weights_fail_the_parity_check_loudly(exported, run_dir, tmp_path):
    output, _, _ = exported
    proto = onnx.load(str(output))
    weights = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weights).copy()
    values.flat[: values.size // 10] += 0.05
    weights.CopyFrom(numpy_helper.from_array(values, weights.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    proc = run_python("-m", "export", "--checkpoint", str(run_dir / "best.keras"), "--verify", str(tampered))
    assert proc.returncode == 1
    assert "music-like@256" in proc.stdout  # without --parity-audio a generated music-like signal is used
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(f"export: error: parity check failed for {tampered}: max abs error ")
    assert float(message.split("max abs error ")[1].split()[0]) > TOLERANCE


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "runs/missing/best.keras", "--output", "x.onnx"],
     "export: error: checkpoint runs/missing/best.keras not found; pass --checkpoint"),
    (["--checkpoint", "{run}/best.keras", "--config", "{run}/nope.toml", "--output", "x.onnx"],
     "export: error: training config {run}/nope.toml not found; pass --config"),
    (["--checkpoint", "{run}/config.toml", "--output", "x.onnx"],
     "export: error: {run}/config.toml is not a Keras .keras archive"),
])
def test_unusable_paths_fail_in_one_line(run_dir, args, message):
    proc = run_python("-m", "export", *[a.format(run=run_dir) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(message.format(run=run_dir))
    assert "Traceback" not in proc.stderr
