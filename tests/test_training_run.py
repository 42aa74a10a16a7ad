"""The training command end to end on generated stems: loss drops, Ctrl-C + --resume, MirroredStrategy on 2 CPUs.

Runs that touch TensorFlow go through subprocesses (fresh TF state: op
determinism, logical devices); command-line errors run in-process because
they are raised before TensorFlow is imported.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.config import CONFIG_DIR, load_config
from training.train import main

pytestmark = pytest.mark.slow  # TensorFlow training runs, in-process and in subprocesses

pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}


def write_song(folder: Path, k: int) -> None:
    """Four stems a tiny model can tell apart: noise bursts, a low tone, a mid chord, a vibrato tone."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(k)
    t = np.arange(2 * RATE) / RATE
    stems = {
        "drums": (np.sin(2 * np.pi * 2 * t) > 0.7) * rng.normal(0, 0.3, len(t)),
        "bass": 0.4 * np.sin(2 * np.pi * (55 + 10 * k) * t),
        "other": 0.2 * np.sin(2 * np.pi * (440 + 30 * k) * t) + 0.1 * np.sin(2 * np.pi * 660 * t),
        "vocals": 0.3 * np.sin(2 * np.pi * (1200 + 100 * k) * t + 3 * np.sin(2 * np.pi * 5 * t)),
    }
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", np.stack([audio, 0.8 * audio], 1).astype(np.float32), RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stems")
    for k in range(4):
        write_song(root / "train" / f"song{k}", k)
    write_song(root / "valid" / "song9", 9)
    return root


def command(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(CONFIG_DIR / "tiny.toml"), "--data", f"folder:{data / 'train'}",
            "--validation", f"folder:{data / 'valid'}", "--out", str(out), "--cache-dir", str(data / "cache"),
            "--no-progress", *extra]


def train_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def history(out: Path) -> list[dict]:
    with (out / "history.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_model_trains_and_its_loss_drops(data, tmp_path):
    out = tmp_path / "run"
    result = train_cli(command(data, out, "--epochs", "3", "--steps-per-epoch", "15", "--seed", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    train = [float(r["train_loss"]) for r in rows]
    valid = [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.9 * train[0]
    assert min(valid[1:]) < valid[0]
    # What export reads: the best model and the exact config it was trained with.
    assert zipfile.is_zipfile(out / "best.keras")
    saved = load_config(out / "config.toml")
    assert saved.model_info() == load_config(CONFIG_DIR / "tiny.toml").model_info()
    assert saved.data.sources == [f"folder:{(data / 'train').resolve()}"] and saved.train.seed == 1
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loss on window[56:232]" in result.stdout


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_from_it(data, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "training",
                             *command(data, out, "--epochs", "2", "--steps-per-epoch", "120")],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch 1/2"):
            proc.send_signal(signal.SIGINT)
            break
    stdout = "".join(lines) + proc.stdout.read()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, stdout + stderr[-3000:]
    assert "interrupted at epoch 2" in stdout and "--resume" in stdout
    assert [r["epoch"] for r in history(out)] == ["1"]

    resumed = train_cli(["--out", str(out), "--resume", "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "at epoch 2, step " in resumed.stdout
    assert "epoch 1/2" not in resumed.stdout and "epoch 2/2: train loss" in resumed.stdout
    rows = history(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(math.isfinite(float(r["val_loss"])) for r in rows)


def test_mirrored_strategy_trains_on_two_logical_cpu_devices(data, tmp_path):
    out = tmp_path / "run"
    script = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from training.train import main\n"
        f"sys.exit(main({command(data, out, '--epochs', '1', '--steps-per-epoch', '4', '--strategy', 'mirrored')!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replica(s)" in result.stdout
    assert math.isfinite(float(history(out)[0]["train_loss"]))
    assert zipfile.is_zipfile(out / "best.keras")


# ---- command-line errors: one line, exit 2, raised before TensorFlow starts ----

def test_no_training_data(tmp_path, capsys):
    assert main(["--config", str(CONFIG_DIR / "tiny.toml"), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "python -m training: error: no training data: pass --data KIND:PATH "
        "(e.g. --data musdb:../shared/data/musdb18-preview)")


def test_missing_data_folder(tmp_path, capsys):
    assert main(["--data", f"musdb:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "run")]) == 2
    assert "nowhere: dataset folder not found" in capsys.readouterr().err


def test_resume_without_a_run_and_reusing_a_run_dir(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert main(["--data", f"folder:{tmp_path}", "--out", str(tmp_path / "run")]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err


def test_bad_override(tmp_path, capsys):
    assert main(["--data", f"folder:{tmp_path}", "--out", str(tmp_path / "run"), "--set", "model.depht=3"]) == 2
    assert "unknown key 'depht'" in capsys.readouterr().err


def test_cosine_schedule_decays_to_one_percent_over_the_run():
    import keras

    from training.train import _learning_rate

    t = load_config(CONFIG_DIR / "tiny.toml", ["train.lr_schedule=cosine", "train.epochs=4",
                                                "train.steps_per_epoch=10"]).train
    schedule = _learning_rate(keras, t)
    rates = [float(schedule(step)) for step in (0, 20, 40)]
    assert rates[0] == pytest.approx(t.learning_rate) and rates[1] < rates[0]
    assert rates[2] == pytest.approx(0.01 * t.learning_rate)
    assert _learning_rate(keras, load_config(CONFIG_DIR / "tiny.toml").train) == t.learning_rate


def test_a_validation_source_can_name_its_split(tmp_path):
    from training.datasets import _is_validation, open_dataset
    from training.train import _absolute_spec, load_data

    names = [f"song{k}" for k in range(200)]
    held_out = [n for n in names if _is_validation("folder", n)][:1]
    kept = [n for n in names if not _is_validation("folder", n)][:2]
    for k, name in enumerate(held_out + kept):
        write_song(tmp_path / "songs" / name, k)
    spec = f"folder:{tmp_path / 'songs'}"
    config = load_config(CONFIG_DIR / "tiny.toml", [f"data.sources=['{spec}']", f"data.validation=['{spec}#valid']",
                                                     f"data.cache_dir='{tmp_path / 'cache'}'"])
    assert _absolute_spec(f"{spec}#valid") == f"folder:{(tmp_path / 'songs').resolve()}#valid"

    sampler, valid, layout, n_train, n_valid = load_data(config, progress=False)

    assert (n_train, n_valid) == (2, 1)
    assert [t.name for t in open_dataset("folder", tmp_path / "songs", "valid")] == held_out


def test_init_from_starts_a_run_from_an_earlier_runs_weights(data, tmp_path):
    first = tmp_path / "first"
    assert train_cli(command(data, first, "--epochs", "2", "--steps-per-epoch", "15")).returncode == 0
    best = min(float(r["val_loss"]) for r in history(first))
    # A learning rate of ~0 keeps the weights: validation must match where the first run ended.
    tuned = tmp_path / "tuned"
    result = train_cli(command(data, tuned, "--epochs", "1", "--steps-per-epoch", "1", "--lr", "1e-12",
                               "--set", f"train.init_from={first / 'best.keras'}", "--set", "model.dropout=0"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"initialized from {first / 'best.keras'}" in result.stdout
    assert float(history(tuned)[0]["val_loss"]) == pytest.approx(best, rel=0.02)

    other = train_cli(command(data, tmp_path / "other", "--set", "model.depth=2",
                              "--set", f"train.init_from={first / 'best.keras'}"))
    assert other.returncode == 2
    assert "train.init_from:" in other.stderr and "does not fit this model" in other.stderr
