"""The embedding examples run as a user would run them (the karaoke monitor, which needs JACK,
is tested in test_live_jack.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
RATE = 44100


@pytest.mark.slow  # the example in a subprocess for a whole run: 2-4 s (CONTRIBUTING: the fast tier)
def test_file_in_chunks_example_writes_stems_aligned_with_the_input(scaled_model, tmp_path):
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (20000, 2)).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, RATE, subtype="FLOAT")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "file_in_chunks.py"), str(tmp_path / "in.wav"),
                           str(tmp_path / "stems"), "--model", str(scaled_model)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "latency 448 samples compensated" in done.stdout
    for stem, scale in (("vocals", 0.5), ("drums", 0.25), ("bass", 0.125), ("other", 0.125)):
        audio, rate = sf.read(tmp_path / "stems" / f"{stem}.wav", dtype="float32")
        assert rate == RATE and audio.shape == x.shape  # same length: the latency was compensated
        np.testing.assert_allclose(audio, scale * x, atol=1e-6)  # and sample-aligned
