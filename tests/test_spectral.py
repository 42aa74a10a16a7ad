"""Spectral models (metadata ``frontend``): the runtime's STFT, the contract's checks, export parity.

The runtime computes the STFT; the ONNX graph maps magnitudes to masks. Small real ONNX files
(tests/onnx_models.py) whose masks are known constants make the expected stems exact, and a tiny
Keras model from training/ goes through the real ``python -m export`` in a subprocess (this test
process stays free of TensorFlow, like the runtime).
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
import pytest

from onnx_models import build_and_export, make_spectral_model, spectral_info
from realtime_split import StreamingSeparator
from realtime_split.errors import ModelFormatError
from realtime_split.model_format import MASK_INPUT, MASK_OUTPUT, StftGeometry, parse_metadata
from realtime_split.spectral import Stft

ROOT = Path(__file__).resolve().parents[1]
GAINS = (0.4, 0.3, 0.2, 0.1)


def test_stft_inverse_gives_back_any_region_of_the_window():
    stft = Stft(StftGeometry(4096, 1024, 1024), 65536)
    x = np.random.default_rng(0).standard_normal((2, 2, 65536)).astype(np.float32)
    spec = stft.forward(x)
    assert spec.shape == (2, 2, 64, 2049)
    for start, stop in ((0, 65536), (55296, 63488), (1000, 1001)):
        first, last = stft.frame_range(start, stop)
        back = stft.inverse(spec[..., first:last, :], first, start, stop)
        assert np.max(np.abs(back - x[..., start:stop])) < 1e-5


def test_streamed_spectral_model_gives_each_stem_its_mask_times_the_mix(tmp_path):
    model = make_spectral_model(tmp_path / "gains.onnx", GAINS)
    rng = np.random.default_rng(1)
    mix = (0.3 * rng.standard_normal((6000, 2))).astype(np.float32)
    for preset in ("quality", "offline"):
        sep = StreamingSeparator(str(model), latency=preset)
        assert sep.latency_samples == sep.geometry.latency
        blocks = [sep.process(mix[i:i + 333]) for i in range(0, len(mix), 333)] + [sep.flush()]
        out = np.concatenate(blocks, axis=1)[:, sep.latency_samples:]
        assert out.shape == (4, len(mix), 2)
        for s, gain in enumerate(GAINS):
            assert np.max(np.abs(out[s] - gain * mix)) < 1e-5, (preset, s)


def test_spectral_metadata_round_trips_and_bad_frontends_are_refused():
    info = spectral_info()
    props = info.to_metadata()
    assert parse_metadata(props) == info
    assert json.loads(props["realtime_split.frontend"])["n_fft"] == 64
    cases = {
        "not json": "must be a JSON object",
        json.dumps({"n_fft": 64, "hop": 16}): "must be a JSON object",
        json.dumps({"n_fft": 64, "hop": 16, "bins": 40}): "bins must be in 1..33",
        json.dumps({"n_fft": 63, "hop": 16, "bins": 8}): "even n_fft",
        json.dumps({"n_fft": 64, "hop": 16, "bins": 32, "type": "mel"}): "is not supported",
        json.dumps({"n_fft": 64, "hop": 48, "bins": 32}): "not a multiple of the frontend hop 48",
    }
    for text, message in cases.items():
        with pytest.raises(ModelFormatError, match=message):
            parse_metadata({**props, "realtime_split.frontend": text})
    with pytest.raises(ModelFormatError, match="needs format_version 2"):
        parse_metadata({**props, "realtime_split.format_version": "1"})


def test_a_spectral_model_with_waveform_io_is_refused_with_the_contract(tmp_path):
    from onnx_models import make_identity_model

    path = make_identity_model(tmp_path / "wave.onnx", dataclasses.replace(spectral_info(), presets={
        "quality": spectral_info().presets["quality"]}))
    with pytest.raises(ModelFormatError, match=f"must take '{MASK_INPUT}'"):
        StreamingSeparator(str(path))


BUILD_RUN = """
import sys
from pathlib import Path
import numpy as np
from training.config import load_config, to_toml
from training.models import build

run = Path(sys.argv[1])
run.mkdir(parents=True)
config = load_config("training/configs/tiny-stft.toml", ["data.sources=['musdb:/data/musdb18-preview']"])
model = build(config)
model.estimator.get_layer("vocals_mask").bias.assign(np.full(2, 0.5, np.float32))  # not all stems alike
model.estimator.save(run / "best.keras")
(run / "config.toml").write_text(to_toml(config))
mix = (0.3 * np.random.default_rng(3).standard_normal((1, 2048, 2))).astype(np.float32)
np.save(run / "mix.npy", mix[0])
np.save(run / "stems.npy", model(mix, training=False).numpy()[0])  # (t, S, 2), whole signal at once
"""


@pytest.fixture(scope="module")
def exported_spectral(tmp_path_factory) -> tuple[Path, Path]:
    run = tmp_path_factory.mktemp("spectral") / "tiny"
    output = build_and_export(run, BUILD_RUN, "--quantize", "fp16-weights")
    return run, output


@pytest.mark.slow  # TensorFlow and tf2onnx in subprocesses
def test_exported_spectral_model_follows_the_contract(exported_spectral):
    _, output = exported_spectral
    proto = onnx.load(str(output))
    assert [i.name for i in proto.graph.input] == [MASK_INPUT]
    assert [o.name for o in proto.graph.output] == [MASK_OUTPUT]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", 2, "frames", 32], ["batch", 4, 2, "frames", 32]]
    info = parse_metadata({p.key: p.value for p in proto.metadata_props})
    assert info.frontend == StftGeometry(64, 16, 32)
    assert info.default_preset == "quality"


@pytest.mark.slow  # TensorFlow and tf2onnx in subprocesses
def test_streaming_the_exported_model_equals_keras_on_each_window(exported_spectral):
    """Stream the file block by block; every output sample must equal the Keras model (training's own
    TensorFlow STFT) run on the window that produced it, crossfaded like the engine."""
    run, output = exported_spectral
    mix = np.load(run / "mix.npy")
    sep = StreamingSeparator(str(output), latency="quality")
    g = sep.geometry
    out = np.concatenate([sep.process(mix[i:i + 100]) for i in range(0, len(mix), 100)] + [sep.flush()], axis=1)
    out = out[:, sep.latency_samples:]
    # The engine's windows end on multiples of the hop. For those inside the signal, compare the
    # unfaded middle of each kept region with Keras on that window, computed in a subprocess.
    starts = [k * g.hop - g.window for k in range(1, 100) if g.window <= k * g.hop <= len(mix)]
    np.save(run / "starts.npy", np.array(starts))
    code = f"""
import numpy as np, keras
from training.config import load_config
from training.models.quality import wrap_estimator
cfg = load_config("{run}/config.toml")
model = wrap_estimator(keras.saving.load_model("{run}/best.keras", compile=False), cfg.model.stft_geometry(), 512)
mix = np.load("{run}/mix.npy"); starts = np.load("{run}/starts.npy")
np.save("{run}/windows.npy", model(np.stack([mix[s:s + 512] for s in starts]), training=False).numpy())
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr
    windows = np.load(run / "windows.npy")  # (k, 512, S, 2)
    assert len(starts) >= 3
    for start, want in zip(starts, windows):
        lo, hi = start + g.keep_start + g.crossfade, start + g.keep_start + g.hop
        region = want[g.keep_start + g.crossfade:g.keep_start + g.hop].transpose(1, 0, 2)
        assert np.max(np.abs(out[:, lo:hi] - region)) < 1e-4
    assert np.abs(out).max() > 1e-3


@pytest.mark.slow  # TensorFlow and tf2onnx in subprocesses
def test_fp16_weights_variant_of_a_spectral_model_streams(exported_spectral):
    _, output = exported_spectral
    half = output.with_name("tiny.fp16-weights.onnx")
    assert half.stat().st_size < output.stat().st_size
    sep = StreamingSeparator(str(half), latency="offline")
    out = sep.process(np.full((3000, 2), 0.1, np.float32))
    assert np.isfinite(out).all()
