"""File mode when something is wrong: one clear line, exit code 2, nothing half-done, nothing lost.

Also the installed command itself (a subprocess): no traceback on a user
error, and Ctrl-C leaves valid (shorter) output files and exits with 130.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from onnx_models import make_model_without_metadata
from test_cli_files import music, read, separate, write_music

REPO = Path(__file__).resolve().parents[1]


def fails(capsys, *args, model, contains: str) -> str:
    """Run the CLI, expect exit code 2 and a one-line error naming the problem; return the line."""
    assert separate(*args, model=model) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("realtime-split: error: ") and "\n" not in err, err
    assert contains.lower() in err.lower(), err
    return err


@pytest.fixture
def song(tmp_path) -> Path:
    write_music(tmp_path / "song.wav", seconds=0.5)
    return tmp_path / "song.wav"


def test_missing_input(tmp_path, capsys, scaled_model):
    fails(capsys, "--input", tmp_path / "nope.wav", "--output", tmp_path / "out", model=scaled_model,
          contains="not found")
    assert not (tmp_path / "out").exists()


def test_corrupt_wav(tmp_path, capsys, scaled_model):
    (tmp_path / "broken.wav").write_bytes(np.random.default_rng(0).bytes(20000))
    fails(capsys, "--input", tmp_path / "broken.wav", "--output", tmp_path / "out", model=scaled_model,
          contains="damaged")


def test_unsupported_format(tmp_path, capsys, scaled_model):
    (tmp_path / "notes.txt").write_text("not audio\n" * 200)
    fails(capsys, "--input", tmp_path / "notes.txt", "--output", tmp_path / "out", model=scaled_model,
          contains="not an audio file")


def test_a_bad_second_input_fails_before_the_first_is_separated(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, tmp_path / "missing.flac", "--output", tmp_path / "out", model=scaled_model,
          contains="missing.flac")
    assert not (tmp_path / "out").exists()


def test_unknown_stem(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--stem", "vocals,kazoo", "--output", tmp_path / "out", model=scaled_model,
          contains="kazoo")


def test_bad_gain(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--gain", "vocals=loud", "--output", tmp_path / "out", model=scaled_model,
          contains="'loud'")


def test_missing_model(tmp_path, capsys, song):
    fails(capsys, "--input", song, "--output", tmp_path / "out", model=tmp_path / "absent.onnx",
          contains="absent.onnx")


def test_model_without_metadata(tmp_path, capsys, song):
    model = make_model_without_metadata(tmp_path / "plain.onnx")
    fails(capsys, "--input", song, "--output", tmp_path / "out", model=model, contains="metadata")


def test_output_folder_not_writable(tmp_path, capsys, song, scaled_model):
    (tmp_path / "a_file").write_text("")
    fails(capsys, "--input", song, "--output", f"{tmp_path / 'a_file' / 'stems'}/", model=scaled_model,
          contains="cannot write")


def test_one_output_file_for_several_stems(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--stem", "all", "--output", tmp_path / "stems.wav", model=scaled_model,
          contains="pass a directory")


def test_invalid_subtype_lists_the_valid_ones(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--subtype", "VORBIS", "--output", tmp_path / "out", model=scaled_model,
          contains="PCM_24")


def test_unwritable_format(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--stem", "vocals", "--output", tmp_path / "v.m4a", model=scaled_model,
          contains="--format")


def test_offline_and_latency_together(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", song, "--offline", "--latency", "low", model=scaled_model, contains="--offline")


def test_more_than_two_channels_needs_a_choice(tmp_path, capsys, scaled_model):
    sf.write(tmp_path / "multi.wav", music(0.5, 44100, 6), 44100, subtype="FLOAT")
    fails(capsys, "--input", tmp_path / "multi.wav", "--output", tmp_path / "out", model=scaled_model,
          contains="--channels")


def test_chosen_channels_of_a_multichannel_file(tmp_path, scaled_model):
    six = music(0.5, 44100, 6)
    sf.write(tmp_path / "multi.wav", six, 44100, subtype="FLOAT")

    assert separate("--input", tmp_path / "multi.wav", "--channels", "3,4", "--stem", "vocals",
                    "--output", tmp_path / "v.wav", model=scaled_model) == 0

    np.testing.assert_allclose(read(tmp_path / "v.wav")[0], 0.5 * six[:, 2:4], atol=1e-5)


def test_nan_and_inf_input_samples_become_silence_and_are_counted(tmp_path, capsys, scaled_model):
    mix = music(0.5, 44100, 2)
    mix[1000:1005] = np.nan
    mix[9000, 1] = np.inf
    mix[9001, 0] = -np.inf
    sf.write(tmp_path / "nan.wav", mix, 44100, subtype="FLOAT")

    assert separate("--input", tmp_path / "nan.wav", "--stem", "vocals", "--output", tmp_path / "v.wav",
                    model=scaled_model) == 0

    out = read(tmp_path / "v.wav")[0]
    assert np.all(np.isfinite(out))
    clean = np.where(np.isfinite(mix), mix, 0)
    np.testing.assert_allclose(out, 0.5 * clean, atol=1e-5)
    assert "12 NaN/Inf samples" in capsys.readouterr().err


def command() -> list[str]:
    """The installed console script when present, else the same entry point through ``python -m``."""
    script = shutil.which("realtime-split")
    return [script] if script else [sys.executable, "-m", "realtime_split"]


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def test_the_command_reports_a_user_error_without_traceback(tmp_path):
    done = subprocess.run([*command(), "--input", str(tmp_path / "nope.wav")], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("realtime-split: error: input file not found")
    assert "Traceback" not in done.stderr


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


def test_ctrl_c_keeps_valid_partial_outputs(tmp_path, conv_model):
    """SIGINT while separating a long file: exit 130, every stem file so far is valid audio."""
    block = music(10.0, 44100, 2)
    with sf.SoundFile(tmp_path / "long.wav", "w", 44100, 2, subtype="PCM_16") as f:
        for _ in range(30):  # 5 minutes: takes ~10 s to separate here, we interrupt after ~1 s
            f.write(block)
    out = tmp_path / "out"
    returncode, stderr = interrupt_separation(tmp_path / "long.wav", out, conv_model, signal.SIGINT)
    assert returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    for stem in ("vocals", "drums", "bass", "other"):
        info = sf.info(str(out / f"{stem}.wav"))
        assert 0 < info.frames < 30 * 10 * 44100
