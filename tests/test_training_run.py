"""The training command end to end on generated stems: loss drops, Ctrl-C + --resume, MirroredStrategy on 2 CPUs,
MultiWorkerMirroredStrategy with two worker processes on the loopback interface.

Runs that touch TensorFlow go through subprocesses (fresh TF state: op
determinism, logical devices); command-line errors run in-process because
they are raised before TensorFlow is imported.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
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


def free_ports(n: int) -> list[int]:
    """n loopback ports nothing listens on (the OS picks them; closed again just before the workers bind them)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(args: list[list[str]], logs: list[Path]) -> list[subprocess.Popen]:
    """One ``python -m training`` process per worker, the cluster in TF_CONFIG as on separate machines."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(len(args))]}
    procs = []
    for index, (worker_args, log) in enumerate(zip(args, logs)):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        with log.open("w") as f:
            procs.append(subprocess.Popen([sys.executable, "-m", "training", *worker_args], cwd=ROOT,
                                          env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=f,
                                          stderr=subprocess.STDOUT, text=True))
    return procs


def wait_all(procs: list[subprocess.Popen], logs: list[Path], timeout: float = 120) -> list[str]:
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()  # a worker whose peer died waits on its collectives; do not leave it behind
                proc.wait()
    return [log.read_text() for log in logs]


def test_two_workers_on_loopback_train_as_one_process_does_and_stop_together(data, tmp_path):
    """--strategy multiworker: two worker processes (TF_CONFIG, gRPC over localhost) each take 2 windows of the
    global batch of 4, interrupted by a Ctrl-C to worker 1 and resumed; the chief's history must equal a plain
    one-process run's with the same global batch.

    Tolerance: both runs train on the same examples (each worker draws the global batch and keeps its half) and
    batch norm uses the global batch's statistics, so they differ only in float32 rounding (gradients summed as
    two halves by the all-reduce, batch norm moments from all-reduced sums): in repeated runs they agreed to all 6
    digits history.csv keeps. 1e-4 relative is far above that and far below the faults this guards against:
    per-replica batch norm statistics moved the losses by 1e-3 relative, those plus each worker drawing its own
    examples (the code before) by 5 %. Dropout is off: its masks are drawn per replica, so with dropout the runs
    agree only statistically.
    """
    args = ["--epochs", "3", "--steps-per-epoch", "10", "--batch-size", "4", "--seed", "3",
            "--set", "model.fast.dropout=0"]
    # The one-process run alongside the workers' first part: they spend much of their time in the all-reduces.
    with (tmp_path / "one.log").open("w") as f:
        one = subprocess.Popen([sys.executable, "-m", "training", *command(data, tmp_path / "one", *args)],
                               cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT, text=True)
    outs = [tmp_path / f"worker{i}" for i in range(2)]  # separate run directories, as on separate machines
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = start_workers([command(data, out, *args, "--strategy", "multiworker") for out in outs], logs)
    try:
        deadline = time.monotonic() + 90
        while "epoch 1/3:" not in logs[1].read_text():  # worker 1 finished epoch 1: stop it in epoch 2 or 3
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, logs[1].read_text()[-3000:]
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGINT)
    finally:
        *stopped, one_output = wait_all([*procs, one], [*logs, tmp_path / "one.log"])
    assert one.returncode == 0 and "1 replica(s)" in one_output, one_output[-3000:]
    assert [p.returncode for p in procs] == [130, 130], stopped[0][-2000:] + stopped[1][-2000:]
    assert "2 replica(s)" in stopped[0] and "2 replica(s)" in stopped[1]
    where = [line.split(";")[0] for text in stopped for line in text.splitlines() if line.startswith("interrupted")]
    assert len(where) == 2 and where[0] == where[1] + " (Ctrl-C on another worker)", where  # the same step
    assert where[1].startswith(("interrupted at epoch 2, step ", "interrupted at epoch 3, step ")), where

    procs = start_workers([["--out", str(out), "--resume", "--no-progress"] for out in outs], logs)
    resumed = wait_all(procs, logs)
    assert [p.returncode for p in procs] == [0, 0], resumed[0][-2000:] + resumed[1][-2000:]
    assert "resuming" in resumed[0] and "epoch 3/3: train loss" in resumed[0]

    single, chief = history(tmp_path / "one"), history(outs[0])
    assert [r["epoch"] for r in chief] == ["1", "2", "3"]
    for key in ("train_loss", "val_loss"):
        assert [float(r[key]) for r in chief] == pytest.approx([float(r[key]) for r in single], rel=1e-4), key
    assert float(single[2]["val_loss"]) < 0.98 * float(single[0]["val_loss"])  # the weights did move
    # The chief writes the run; worker 1 only what it needs to resume.
    assert zipfile.is_zipfile(outs[0] / "best.keras") and (outs[0] / "checkpoints").is_dir()
    assert sorted(p.name for p in outs[1].iterdir()) == ["checkpoints-worker1", "config.toml"]


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


@pytest.mark.parametrize("config, kind", [([], "fast"), (["--config", str(CONFIG_DIR / "tiny-stft.toml")], "quality")],
                         ids=["fast", "quality"])  # a quality run's best.keras holds only its estimator
def test_init_from_starts_a_run_from_an_earlier_runs_weights(data, tmp_path, config, kind):
    def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return train_cli(command(data, out, *extra) + config)

    first = tmp_path / "first"
    assert run(first, "--epochs", "1", "--steps-per-epoch", "4").returncode == 0
    best = min(float(r["val_loss"]) for r in history(first))
    # A learning rate of ~0 keeps the weights: validation must match where the first run ended.
    tuned = tmp_path / "tuned"
    result = run(tuned, "--epochs", "1", "--steps-per-epoch", "1", "--lr", "1e-12",
                 "--set", "init_from.kind=checkpoint", "--set", f"init_from.path={first / 'best.keras'}",
                 "--set", f"model.{kind}.dropout=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"initialized from {first / 'best.keras'}" in result.stdout
    assert float(history(tuned)[0]["val_loss"]) == pytest.approx(best, rel=0.02)

    other = run(tmp_path / "other", "--set", f"model.{kind}.depth=2", "--set", "init_from.kind=checkpoint",
                "--set", f"init_from.path={first / 'best.keras'}")
    assert other.returncode == 2
    assert "init_from.path:" in other.stderr and "does not fit this model" in other.stderr
