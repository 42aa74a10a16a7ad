"""Helpers of the tests that run the CLI: test music written to real files, the CLI in-process (``separate``,
``fails``) and the installed command in a subprocess (``command``, ``subprocess_env``, ``interrupt_separation``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from realtime_split.cli import main

REPO = Path(__file__).resolve().parents[1]
STEMS4 = ("vocals", "drums", "bass", "other")
MODEL_RATE = 44100


def music(seconds: float, samplerate: int, channels: int, seed: int = 0) -> np.ndarray:
    """A few sines over band-limited noise, below full scale: (frames, channels) float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * samplerate)
    t = np.arange(n) / samplerate
    out = np.empty((n, channels), np.float32)
    for c in range(channels):
        noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
        tones = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(80, 4000, 3))
        out[:, c] = 0.08 * tones + 0.2 * noise
    return out


def write_music(path: Path, seconds: float = 2.0, samplerate: int = MODEL_RATE, channels: int = 2,
                seed: int = 0, **kwargs) -> np.ndarray:
    """Write test music to ``path`` and return what a reader decodes from it (lossy formats differ)."""
    sf.write(path, music(seconds, samplerate, channels, seed), samplerate, **kwargs)
    decoded, _ = sf.read(path, dtype="float32", always_2d=True)
    return decoded


def read(path: Path) -> tuple[np.ndarray, sf._SoundFileInfo]:
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    return data, sf.info(str(path))


def separate(*args, model) -> int:
    return main([*map(str, args), "--model", str(model), "--no-progress"])


def fails(capsys, *args, model, contains: str) -> str:
    """Run the CLI, expect exit code 2 and a one-line error naming the problem; return the line."""
    assert separate(*args, model=model) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("realtime-split: error: ") and "\n" not in err, err
    assert contains.lower() in err.lower(), err
    return err


def command() -> list[str]:
    """The installed console script when present, else the same entry point through ``python -m``."""
    script = shutil.which("realtime-split")
    return [script] if script else [sys.executable, "-m", "realtime_split"]


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def partial_bytes(path: Path) -> int:
    """How much of ``path`` a running separation has written: outputs grow under hidden temporary names
    (``.other.wav.partial-<pid>``) until the run ends."""
    size = 0
    for partial in path.parent.glob(f".{path.name}.partial-*"):
        try:
            size = max(size, partial.stat().st_size)
        except FileNotFoundError:  # renamed meanwhile
            pass
    return size


def interrupt_separation(song: Path, out: Path, model: Path, sig: int) -> tuple[int, str]:
    """Separate ``song`` into ``out/`` with the real command, send ``sig`` once a stem file passes 1 MB;
    returns the exit code and stderr."""
    proc = subprocess.Popen([*command(), "--input", str(song), "--output", f"{out}/", "--model", str(model),
                             "--latency", "low", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 120
        while partial_bytes(out / "other.wav") <= 1_000_000:
            assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
            assert time.monotonic() < deadline, "no output after 120 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr
