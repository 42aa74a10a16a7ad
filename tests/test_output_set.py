"""A run owns its outputs (issue 31): written under temporary names and renamed at the end, one writer per file.

Two runs into one folder are refused instead of splicing their stems; a killed run leaves no file that looks
finished (a flac after SIGKILL claimed 2^63-1 frames) and does not block the next run; an output that existed
before a failed run is left as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import command, read, subprocess_env, write_music
from output_helpers import long_song, start, stop, wait_for_partial
from realtime_split import AudioIOError, separate_file
from realtime_split.output_set import OutputSet

STEMS = ("vocals", "drums", "bass", "other")


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


def test_a_live_recording_is_owned_like_a_file_output(tmp_path, scaled_model):
    """A live session's recording (record=) is written under a temporary name and locked: a second session
    recording to the same file is refused, and the file takes its name, whole, when the session stops."""
    from realtime_split import LiveSession

    recording = tmp_path / "monitor.flac"
    first = LiveSession(scaled_model, record=recording, open_stream=False, sample_rate=44100, blocksize=256)
    with first:
        with pytest.raises(AudioIOError, match=r"another run in this process is writing .*monitor\.flac.*record=") \
                as caught:
            LiveSession(scaled_model, record=recording, open_stream=False, sample_rate=44100, blocksize=256).start()
        assert caught.value.parameter == "record"
        block, play = np.zeros((256, 2), np.float32), first.callback
        for _ in range(40):
            play(block, block.copy(), 256, None, None)  # what the app's own audio callback does
        assert not recording.exists() and any(p.name.startswith(".monitor.flac.partial-") for p in tmp_path.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.flac"]
    sf.read(recording)
