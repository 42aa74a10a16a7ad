"""A run owns its outputs (issue 31): written under temporary names and renamed at the end, one writer per file.

Two runs into one folder are refused instead of splicing their stems; a killed run leaves no file that looks
finished (a flac after SIGKILL claimed 2^63-1 frames) and does not block the next run; an output that existed
before a failed run is left as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime_split import AudioIOError, separate_file
from realtime_split.output_set import OutputSet
from test_cli_errors import command, partial_bytes, subprocess_env
from test_cli_files import music, read, write_music

STEMS = ("vocals", "drums", "bass", "other")


def long_song(path: Path, seconds: int = 120) -> Path:
    block = music(10.0, 44100, 2)
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


def start(song: Path, out: Path, model: Path, *options: str) -> subprocess.Popen:
    """The real command separating ``song`` into ``out/`` slowly enough (the low preset) to be caught running."""
    return subprocess.Popen([*command(), "--input", str(song), "--output", f"{out}/", "--model", str(model),
                             "--latency", "low", "--no-progress", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def wait_for_partial(proc: subprocess.Popen, path: Path, size: int = 200_000) -> None:
    deadline = time.monotonic() + 120
    while partial_bytes(path) <= size:
        assert proc.poll() is None, f"finished before it could be caught: {proc.communicate()}"
        assert time.monotonic() < deadline, "no output after 120 s"
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> tuple[int, str]:
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(tmp_path, conv_model):
    """Issue 31, 1: two runs into one folder used to both exit 0 with each stem spliced from both songs."""
    long_song(tmp_path / "a.wav")
    write_music(tmp_path / "b.wav", seconds=1.0)
    out = tmp_path / "out"
    first = start(tmp_path / "a.wav", out, conv_model)
    try:
        wait_for_partial(first, out / "vocals.wav")
        second = subprocess.run([*command(), "--input", str(tmp_path / "b.wav"), "--output", f"{out}/", "--model",
                                 str(conv_model), "--no-progress"], capture_output=True, text=True,
                                env=subprocess_env(), timeout=120)
    finally:
        code, err = stop(first, signal.SIGINT)
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith(f"realtime-split: error: another run (pid {first.pid}) is writing {out}/")
    assert "wait for it to finish, or pass another --output" in line
    assert code == 130, err
    lengths = {sf.info(str(out / f"{stem}.wav")).frames for stem in STEMS}  # the first run's alone, all one length
    assert len(lengths) == 1 and lengths.pop() > 0


def test_sigkill_leaves_no_finished_looking_flac_and_the_next_run_cleans_up(tmp_path, conv_model):
    """Issue 31, 6: a flac after SIGKILL reported 2^63-1 frames under its final name."""
    long_song(tmp_path / "a.wav")
    out = tmp_path / "out"
    proc = start(tmp_path / "a.wav", out, conv_model, "--format", "flac")
    wait_for_partial(proc, out / "vocals.flac", size=100_000)
    code, _ = stop(proc)
    assert code == -signal.SIGKILL
    left = sorted(p.name for p in out.iterdir())
    assert left and all(name.startswith(".") for name in left), left  # no name that looks finished

    mix = write_music(tmp_path / "b.wav", seconds=1.0)
    done = subprocess.run([*command(), "--input", str(tmp_path / "b.wav"), "--output", f"{out}/", "--format", "flac",
                           "--model", str(conv_model), "--no-progress"], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{stem}.flac" for stem in STEMS)  # leftovers gone
    for stem in STEMS:
        assert read(out / f"{stem}.flac")[0].shape == mix.shape


def test_a_lock_held_in_this_process_refuses_the_library_too(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.5)
    target = tmp_path / "v.wav"
    with OutputSet([target]):
        with pytest.raises(AudioIOError, match=r"another run in this process is writing .*v\.wav; wait for it") \
                as caught:
            separate_file(tmp_path / "song.wav", target, model=scaled_model, stems="vocals")
    assert caught.value.parameter == "output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]  # lock file gone with the set
    separate_file(tmp_path / "song.wav", target, model=scaled_model, stems="vocals")  # free again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav", "v.wav"]


def test_a_stem_written_through_a_symbolic_link_replaces_the_file_it_names(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)
    (tmp_path / "library").mkdir()
    sf.write(tmp_path / "library/v.wav", np.zeros((10, 2), np.float32), 44100)
    (tmp_path / "v.wav").symlink_to(tmp_path / "library/v.wav")
    separate_file(tmp_path / "song.wav", tmp_path / "v.wav", model=scaled_model, stems="vocals")
    assert (tmp_path / "v.wav").is_symlink()
    np.testing.assert_allclose(read(tmp_path / "library/v.wav")[0], 0.5 * mix, atol=1e-5)
    assert sorted(os.listdir(tmp_path / "library")) == ["v.wav"]
