"""Quality evaluation: the metrics give known answers, and the CLI scores a real run of the runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import onnx_models
from extras import MUSEVAL
from training.evaluate import bsseval_sdr, si_sdr

ROOT = Path(__file__).resolve().parents[1]
RATE = 44100


def with_noise(reference: np.ndarray, snr_db: float, rng) -> np.ndarray:
    noise = rng.standard_normal(reference.shape)
    noise *= np.sqrt(np.sum(reference**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return reference + noise


def noisy(snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Two stems at different levels and each with noise ``snr_db`` below it: (references, estimates)."""
    rng = np.random.default_rng(1)
    references = rng.standard_normal((2, 2 * RATE, 2)) * np.array([[[0.3]], [[0.05]]])  # (stems, n, ch)
    return references, np.stack([with_noise(r, snr_db, rng) for r in references])


@pytest.mark.parametrize("snr_db", [5.0, 20.0])
def test_si_sdr_of_reference_plus_noise_is_the_snr(snr_db):
    for r, e in zip(*noisy(snr_db)):
        assert si_sdr(r, e) == pytest.approx(snr_db, abs=0.5)


@MUSEVAL
@pytest.mark.parametrize("snr_db", [5.0, 20.0])
def test_bsseval_sdr_of_reference_plus_noise_is_the_snr(snr_db):
    assert bsseval_sdr(*noisy(snr_db), RATE) == pytest.approx([snr_db, snr_db], abs=0.5)


def test_si_sdr_ignores_gain_and_is_nan_for_silent_reference():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((RATE, 2))
    estimate = with_noise(reference, 12.0, rng)
    assert si_sdr(reference, 0.1 * estimate) == pytest.approx(si_sdr(reference, estimate), abs=1e-9)
    assert np.isnan(si_sdr(np.zeros((RATE, 2)), estimate))


def write_track(folder: Path, stems: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio.astype(np.float32), RATE, subtype="FLOAT")


@pytest.mark.slow  # museval on every preset, in a subprocess
def test_evaluate_cli_scores_the_scaled_model_as_predicted(scaled_model, tmp_path):
    """The scaled model's vocals are 0.5 x the mix, so its accompaniment (mix - vocals) is too.

    Tracks hold vocals + accompaniment (like MIR-1K), so the scores follow from the stems alone.
    Track "copies": both stems are 0.5 x one signal, so the model is perfect (very high SDR).
    Track "independent": independent noises of powers p_k; stem k's estimate is 0.5 (s_k + s_other).
    BSSEval v4 SDR compares with the reference itself: SDR = 10 log10(p_k / (0.25 p_k + 0.25 p_other));
    SI-SDR forgives the gain: SI-SDR = 10 log10(p_k / p_other).
    """
    rng = np.random.default_rng(3)
    x = 0.3 * rng.standard_normal((RATE, 2))
    write_track(tmp_path / "data" / "copies", {"vocals": 0.5 * x, "accompaniment": 0.5 * x})
    stds = {"vocals": 0.2, "accompaniment": 0.1}
    write_track(tmp_path / "data" / "independent", {s: std * rng.standard_normal((RATE, 2)) for s, std in stds.items()})
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(scaled_model), "--data",
         f"folder:{tmp_path / 'data'}", "--split", "all", "--presets", "low,offline", "--out", str(out),
         "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    markdown = (out / "evaluation.md").read_text()
    assert markdown.splitlines()[0].startswith("| preset | latency | vocals SDR | vocals SI-SDR | accompaniment SDR |")
    assert [line.split("|")[1].strip() for line in markdown.splitlines()[2:4]] == ["low", "offline"]
    assert markdown.strip() in proc.stdout
    result = json.loads((out / "evaluation.json").read_text())
    assert result["tracks"] == ["copies", "independent"]
    power = {s: std**2 for s, std in stds.items()}
    for preset in ("low", "offline"):
        scores = result["presets"][preset]
        for stem, other in (("vocals", "accompaniment"), ("accompaniment", "vocals")):
            assert scores["per_track"]["copies"][stem]["sdr"] > 60
            assert scores["per_track"]["copies"][stem]["si_sdr"] > 60
            independent = scores["per_track"]["independent"][stem]
            p, q = power[stem], power[other]
            assert independent["sdr"] == pytest.approx(10 * np.log10(p / (0.25 * p + 0.25 * q)), abs=0.5)
            assert independent["si_sdr"] == pytest.approx(10 * np.log10(p / q), abs=0.5)
    assert 0 < result["presets"]["low"]["latency_ms"] < result["presets"]["offline"]["latency_ms"]


@MUSEVAL
def test_evaluate_at_a_native_rate_scores_the_model_fed_at_that_rate(scaled_native48_model, tmp_path):
    """``--sample-rate 48000`` resamples the references and feeds the model at 48 kHz; the scaled model
    stamped to run there unresampled (native_rates) is then exact: a perfect track stays perfect."""
    model = scaled_native48_model
    x = 0.3 * np.random.default_rng(4).standard_normal((RATE, 2))
    write_track(tmp_path / "data" / "copies", {"vocals": 0.5 * x, "accompaniment": 0.5 * x})
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(model), "--data", f"folder:{tmp_path / 'data'}",
         "--split", "all", "--presets", "balanced", "--sample-rate", "48000", "--out", str(out), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "evaluation.json").read_text())
    assert result["sample_rate"] == 48000
    balanced = result["presets"]["balanced"]
    assert balanced["per_track"]["copies"]["vocals"]["sdr"] > 60
    # The preset's latency in 48 kHz samples: shorter in time than at the trained 44.1 kHz.
    assert balanced["latency_ms"] == pytest.approx(1000 * onnx_models.TEST_PRESETS["balanced"].latency / 48000)


def test_evaluate_cli_rejects_bad_data_spec_in_one_line(scaled_model):
    proc = subprocess.run([sys.executable, "-m", "training.evaluate", "--model", str(scaled_model),
                           "--data", "nowhere"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("evaluate: error: --data 'nowhere'")
    assert len(proc.stderr.strip().splitlines()) == 1
