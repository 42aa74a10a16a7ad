"""Nothing lost, no traceback: the inputs and signals a user can produce (issue 18).

Inputs destroyed through another name, one job writing over a later job's input, SIGTERM and SIGHUP,
a full disk, absurd gains, a model that outputs NaN, truncated files, nonsense option values, and
standard input and output. Each ends with one line on stderr that names the problem, a non-zero
exit where the user must act, valid output files and untouched inputs.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import onnx_models
from realtime_split.audio_files import _wav_declared_frames
from realtime_split.cli import main
from test_cli_errors import command, fails, interrupt_separation, subprocess_env
from test_cli_files import music, read, separate, write_music
from test_live_jack import jack_server  # noqa: F401  (the fixture: a JACK server for the live test; F811 below)
from test_output_set import start, stop, wait_for_partial


def run_cli(*args, stdin=None, timeout: float = 120, preexec_fn=None, **kwargs) -> subprocess.CompletedProcess:
    """The real command; stdout and stderr captured unless ``stdout=`` says where standard output goes."""
    streams = {"stderr": subprocess.PIPE} if "stdout" in kwargs else {"capture_output": True}
    return subprocess.run([*command(), *map(str, args)], stdin=stdin, timeout=timeout, env=subprocess_env(),
                          preexec_fn=preexec_fn, **streams, **kwargs)


def valid_wav(path: Path) -> int:
    """Frames of a WAV whose header agrees with its data (what an interrupted write must leave)."""
    info = sf.info(str(path))
    declared = _wav_declared_frames(path)
    assert declared is None or declared == info.frames, (path, declared, info.frames)
    assert os.path.getsize(path) >= info.frames * info.channels * 4
    return info.frames


# 1, 2: an output is never an input, under any name, in any job -------------------------------------------------

def test_a_hard_link_to_the_input_is_not_overwritten(tmp_path, capsys, scaled_model):
    (tmp_path / "in").mkdir()
    write_music(tmp_path / "in/a.wav", seconds=0.5)
    os.link(tmp_path / "in/a.wav", tmp_path / "in/b.wav")
    before = (tmp_path / "in/a.wav").read_bytes()

    fails(capsys, "--input", tmp_path / "in/b.wav", "--stem", "vocals", "--output", tmp_path / "in/a.wav",
          model=scaled_model, contains="same file as the input")

    assert (tmp_path / "in/a.wav").read_bytes() == before


def test_a_symbolic_link_to_the_input_is_not_overwritten(tmp_path, capsys, scaled_model):
    write_music(tmp_path / "a.wav", seconds=0.5)
    (tmp_path / "link.wav").symlink_to(tmp_path / "a.wav")
    before = (tmp_path / "a.wav").read_bytes()

    fails(capsys, "--input", tmp_path / "a.wav", "--stem", "vocals", "--output", tmp_path / "link.wav",
          model=scaled_model, contains="destroy")

    assert (tmp_path / "a.wav").read_bytes() == before


def test_one_job_never_writes_over_a_later_jobs_input(tmp_path, capsys, scaled_model):
    (tmp_path / "e/song").mkdir(parents=True)
    write_music(tmp_path / "e/song.wav", seconds=0.5)
    write_music(tmp_path / "e/song/vocals.wav", seconds=0.5, seed=3)
    before = (tmp_path / "e/song/vocals.wav").read_bytes()

    err = fails(capsys, "--input", tmp_path / "e/song.wav", tmp_path / "e/song/vocals.wav",
                "--output", f"{tmp_path / 'e'}/", model=scaled_model, contains="destroy")

    assert str(tmp_path / "e/song/vocals.wav") in err
    assert (tmp_path / "e/song/vocals.wav").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "e").rglob("*")) == ["song", "song.wav", "vocals.wav"]  # nothing new


# 3: SIGTERM and SIGHUP finalize like Ctrl-C -------------------------------------------------------------------------

def long_song(path: Path, minutes: int = 5) -> Path:
    block = music(10.0, 44100, 2)
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
        for _ in range(6 * minutes):
            f.write(block)
    return path


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_keep_valid_partial_outputs(tmp_path, conv_model, sig, code):
    if signal.getsignal(sig) is signal.SIG_IGN:  # the command inherits it ignored and, by design, keeps it so
        pytest.skip(f"{sig.name} is ignored in this environment (started under nohup?), so the command ignores it")
    song = long_song(tmp_path / "long.wav")
    out = tmp_path / "out"
    returncode, stderr = interrupt_separation(song, out, conv_model, sig)
    assert returncode == code, stderr
    assert f"interrupted by {sig.name}" in stderr and "Traceback" not in stderr
    lengths = {valid_wav(out / f"{stem}.wav") for stem in ("vocals", "drums", "bass", "other")}
    assert len(lengths) == 1
    frames = lengths.pop()
    assert 0 < frames < 5 * 60 * 44100
    assert f"the partial output in {out}/ holds its first {frames / 44100:.1f} s" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
def test_a_stop_signal_leaves_compressed_stems_of_one_length_and_says_what_they_hold(tmp_path, conv_model, ext):
    """Issue 31, 2: SIGTERM left ogg stems 1,894,144 and 1,959,680 frames long, and the message gave the input's
    time (29.7 s), not what the stems hold."""
    song = long_song(tmp_path / "long.wav", minutes=2)
    out = tmp_path / "out"
    proc = start(song, out, conv_model, "--format", ext)
    wait_for_partial(proc, out / f"other.{ext}", size=40_000)
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    lengths = set()
    for stem in ("vocals", "drums", "bass", "other"):
        data, _ = sf.read(out / f"{stem}.{ext}", dtype="float32", always_2d=True)
        lengths.add(len(data))
    assert len(lengths) == 1, lengths
    frames = lengths.pop()
    assert 0 < frames < 2 * 60 * 44100
    assert f"the partial output in {out}/ holds its first {frames / 44100:.1f} s" in err, err
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{ext}" for s in ("vocals", "drums", "bass", "other"))


# 4: a full disk --------------------------------------------------------------------------------------------------

def file_size_limit(limit: int):
    """For preexec_fn: files may grow to ``limit`` bytes; past it a write fails with EFBIG (not SIGXFSZ)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_is_one_line_and_leaves_stems_of_one_length(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=6.0, subtype="PCM_16")  # 1 MB; each float stem would be 2 MB
    out = tmp_path / "out"

    done = run_cli("--input", tmp_path / "song.wav", "--output", f"{out}/", "--model", scaled_model,
                   "--no-progress", preexec_fn=file_size_limit(1_200_000), text=True)

    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith(f"realtime-split: error: cannot write {out / 'vocals.wav'}: File too large; ")
    lengths = {valid_wav(out / f"{stem}.wav") for stem in ("vocals", "drums", "bass", "other")}
    assert len(lengths) == 1  # vocals failed in the third block, after the others had written two
    frames = lengths.pop()
    assert 65536 < frames < 3 * 65536
    assert line.endswith(f"the partial output in {out}/ holds the first {frames / 44100:.1f} s")


def test_a_full_disk_removes_a_flac_that_cannot_be_finished(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=6.0, subtype="PCM_16")
    out = tmp_path / "out"

    done = run_cli("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", out / "v.flac",
                   "--model", scaled_model, "--no-progress", preexec_fn=file_size_limit(300_000), text=True)

    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert "cannot write" in line and "File too large" in line
    if (out / "v.flac").exists():  # kept only when it decodes
        sf.read(out / "v.flac", frames=1000)
    else:
        assert line.endswith("File too large; it could not be finished, so nothing was kept")
    assert sorted(p.name for p in out.iterdir()) == (["v.flac"] if (out / "v.flac").exists() else [])


@contextlib.contextmanager
def small_disk(folder: Path, free: int):
    """A file system with ``free`` bytes left: a tmpfs mounted here (root only), filled but for ``free`` bytes.
    Yields (folder, preexec_fn): without the mount, the folder is plain and preexec_fn limits each file to
    ``free`` bytes (RLIMIT_FSIZE) instead."""
    folder.mkdir()
    size = free + 256 * 1024
    mounted = shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        yield folder, file_size_limit(free)
        return
    try:
        with open(folder / ".filler", "wb") as f:  # hidden: what a test lists of the folder is the run's
            f.write(b"\0" * (size - free))
        yield folder, None
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def assert_the_message_tells_what_is_left(stderr: str, out: Path, ext: str, stems: tuple[str, ...]) -> None:
    """One line naming the full disk; each output it says is kept decodes and holds the seconds it says; nothing
    it says was not kept exists; no temporary or lock file is left."""
    line = stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith("realtime-split: error: cannot write ") and \
        ("No space left on device" in line or "File too large" in line), line
    names = sorted(p.name for p in out.iterdir() if p.name != ".filler")
    assert all(name in {f"{stem}.{ext}" for stem in stems} for name in names), names  # only final names
    held = re.search(r"holds the first ([\d.]+)(?: to ([\d.]+))? s", line)
    if not names:
        assert held is None and ("nothing was" in line or "not kept" in line), line
        return
    assert held is not None, line
    seconds = []
    for name in names:
        data, _ = sf.read(out / name, dtype="float32", always_2d=True)  # decodes to its end
        assert len(data) == sf.info(str(out / name)).frames > 0
        seconds.append(f"{len(data) / 44100:.1f}")
    assert (min(seconds, key=float), max(seconds, key=float)) == (held.group(1), held.group(2) or held.group(1))
    if len(names) < len(stems):
        missing = [f"{stem}.{ext}" for stem in stems if f"{stem}.{ext}" not in names]
        assert all(name in line for name in missing) and "not kept" in line, line


@pytest.mark.parametrize("ext, free", [("wav", 1_200_000), ("flac", 600_000), ("ogg", 120_000), ("mp3", 120_000)])
def test_a_full_disk_in_every_format_says_truly_what_is_left(tmp_path, scaled_model, ext, free):
    """Issue 31, 3: a full disk left 0-byte files, flac blamed "the flac decoder", flac and mp3 named seconds
    of stems they then removed."""
    write_music(tmp_path / "song.wav", seconds=8.0, subtype="PCM_16")
    with small_disk(tmp_path / "disk", free) as (disk, preexec_fn):
        done = run_cli("--input", tmp_path / "song.wav", "--output", f"{disk / 'o'}/", "--format", ext, "--model",
                       scaled_model, "--no-progress", preexec_fn=preexec_fn, text=True)
        assert done.returncode == 2, done.stderr
        assert "flac decoder" not in done.stderr
        assert_the_message_tells_what_is_left(done.stderr, disk / "o", ext, ("vocals", "drums", "bass", "other"))


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_a_full_disk_leaves_an_earlier_output_as_it_was(tmp_path, scaled_model, ext):
    """Issue 31, 3: a full disk replaced an existing output with an empty one."""
    write_music(tmp_path / "song.wav", seconds=8.0, subtype="PCM_16")
    with small_disk(tmp_path / "disk", 40_000) as (disk, preexec_fn):
        write_music(disk / f"new.{ext}", seconds=0.2)
        before = (disk / f"new.{ext}").read_bytes()
        done = run_cli("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", disk / f"new.{ext}",
                       "--model", scaled_model, "--no-progress", preexec_fn=preexec_fn, text=True)
        assert done.returncode == 2, done.stderr
        line = done.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        assert line.endswith("; the file from before this run is left as it was"), line
        assert (disk / f"new.{ext}").read_bytes() == before
        assert sorted(p.name for p in disk.iterdir() if p.name != ".filler") == [f"new.{ext}"]


# 5: gains ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gain", ["7000", "1e308", "1000", "40.5", "1e999"])
def test_huge_gains_are_refused(tmp_path, capsys, scaled_model, gain):
    write_music(tmp_path / "song.wav", seconds=0.2)
    fails(capsys, "--input", tmp_path / "song.wav", "--stem", "vocals", "--gain", f"vocals={gain}",
          "--output", tmp_path / "v.wav", model=scaled_model, contains="vocals")
    assert not (tmp_path / "v.wav").exists()


@pytest.mark.parametrize("gain, factor", [("40", 100.0), ("-1e308", 0.0), ("-inf", 0.0)])
def test_the_largest_and_smallest_gains_give_finite_output(tmp_path, scaled_model, gain, factor):
    mix = write_music(tmp_path / "song.wav", seconds=0.3)

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--gain", f"vocals={gain}",
                    "--output", tmp_path / "v.wav", model=scaled_model) == 0

    out = read(tmp_path / "v.wav")[0]
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, 0.5 * factor * mix, rtol=1e-5, atol=1e-5)


# 6: a model that outputs NaN/Inf ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nonfinite_model(tmp_path_factory) -> Path:
    return onnx_models.make_nonfinite_model(tmp_path_factory.mktemp("bad") / "nan.onnx")


def test_nan_model_output_is_silenced_and_reported_in_file_mode(tmp_path, capsys, nonfinite_model):
    write_music(tmp_path / "song.wav", seconds=0.5)

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals,drums", "--output", tmp_path / "out",
                    model=nonfinite_model) == 0

    for stem in ("vocals", "drums"):
        out = read(tmp_path / f"out/{stem}.wav")[0]
        assert np.all(np.isfinite(out)) and not np.any(out)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "NaN/Inf" in line]
    assert len(warnings) == 1, warnings
    count = int(warnings[0].split("the model produced ")[1].split()[0])
    assert count > 0 and "try another --model" in warnings[0]


def test_nan_model_output_is_reported_in_the_live_summary(nonfinite_model):
    from realtime_split.live import BridgeReadings
    from realtime_split.status import Latency, summary
    from test_live_bridge import RATE, bridge_for, run_live, sine

    bridge = bridge_for(nonfinite_model)
    played = run_live(bridge, sine(0.5))
    assert np.all(np.isfinite(played))
    count = bridge.sep.stats.nonfinite_outputs
    text = summary(BridgeReadings(bridge, Latency(bridge.latency, bridge.buffers, 0.0, RATE)).stats())
    assert count > 0 and f"the model produced {count} NaN/Inf samples" in text and "\n" not in text


# 7: truncated inputs ----------------------------------------------------------------------------------------------

def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", None), ("mp3", None)])
def test_a_truncated_input_is_separated_as_far_as_it_goes_with_a_warning(tmp_path, capsys, scaled_model, ext,
                                                                           subtype):
    src = tmp_path / f"song.{ext}"
    write_music(src, seconds=3.0, **({"subtype": subtype} if subtype else {}))
    truncate(src)

    assert separate("--input", src, "--stem", "vocals,drums", "--output", tmp_path / "out", model=scaled_model) == 0

    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "ended early" in line]
    assert len(warning) == 1, err
    seconds = float(warning[0].split("ended early, at ")[1].split(" s")[0])
    assert 0.5 < seconds < 2.5 and "the stems cover what was read" in warning[0]
    lengths = {read(tmp_path / f"out/{stem}.wav")[1].frames for stem in ("vocals", "drums")}
    assert len(lengths) == 1 and abs(lengths.pop() / 44100 - seconds) < 0.06


def test_a_complete_input_gives_no_truncation_warning(tmp_path, capsys, scaled_model):
    for ext in ("wav", "flac", "mp3", "ogg"):
        write_music(tmp_path / f"song.{ext}", seconds=1.0)
        assert separate("--input", tmp_path / f"song.{ext}", "--stem", "vocals", "--output",
                        tmp_path / f"v_{ext}.wav", model=scaled_model) == 0
    assert "ended early" not in capsys.readouterr().err


# 8: option values that parse but make no sense --------------------------------------------------------------------

@pytest.mark.parametrize("options, contains", [
    (["--hop", "1"], "--hop 1"),
    (["--hop", "31"], "at least 32"),
    (["--hop", "-5"], "--hop -5"),
    (["--duration", "nan"], "--duration nan"),
    (["--duration", "-1"], "positive"),
    (["--duration", "0"], "positive"),
    (["--duration", "inf"], "--duration inf"),
    (["--blocksize", "0"], "--blocksize 0"),
    (["--blocksize", "100000"], "between 16 and 16384"),
    (["--stem", ""], "names no stem"),
    (["--stem", " , "], "names no stem"),
    (["--stem", ",,"], "names no stem"),
])
def test_nonsense_option_values_are_refused(tmp_path, capsys, scaled_model, options, contains):
    write_music(tmp_path / "song.wav", seconds=0.2)
    fails(capsys, "--input", tmp_path / "song.wav", *options, "--output", tmp_path / "out", model=scaled_model,
          contains=contains)
    assert not (tmp_path / "out").exists()


def test_a_model_directory_says_it_is_a_directory(tmp_path, capsys):
    write_music(tmp_path / "song.wav", seconds=0.2)
    (tmp_path / "models").mkdir()
    fails(capsys, "--input", tmp_path / "song.wav", "--output", tmp_path / "out", model=tmp_path / "models",
          contains="is a directory")


def test_a_malformed_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--input", "x.wav", "--hop", "many"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("realtime-split: error: argument --hop") and "\n" not in err and "--help" in err


# 9: standard input and output -------------------------------------------------------------------------------------

def test_stdin_to_stdout_through_pipes(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav", seconds=1.0)
    with open(tmp_path / "song.wav", "rb") as f:
        feed = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)  # a pipe, not a file
    try:
        done = subprocess.run([*command(), "--input", "-", "--stem", "vocals", "--output", "-", "--model",
                               str(scaled_model)], stdin=feed.stdout, capture_output=True,
                              env=subprocess_env(), timeout=120)
    finally:
        feed.stdout.close()
        feed.wait()
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "out.au").write_bytes(done.stdout)
    data, info = read(tmp_path / "out.au")
    assert (info.format, info.samplerate, info.channels) == ("AU", 44100, 2)
    np.testing.assert_allclose(data, 0.5 * mix, atol=1e-5)
    assert "standard input -> standard output (vocals)" in done.stderr.decode()


@pytest.mark.parametrize("path", ["-", "/dev/stdin"])
def test_a_piped_ogg_on_stdin_is_separated_to_a_folder(tmp_path, scaled_model, path):
    mix = write_music(tmp_path / "song.ogg", seconds=1.0)
    feed = subprocess.Popen(["cat", str(tmp_path / "song.ogg")], stdout=subprocess.PIPE)
    try:
        done = run_cli("--input", path, "--stem", "vocals,bass", "--output", f"{tmp_path / 'out'}/", "--model",
                       scaled_model, stdin=feed.stdout, text=True)
    finally:
        feed.stdout.close()
        feed.wait()
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(read(tmp_path / "out/bass.wav")[0], 0.125 * mix, atol=1e-5)


def test_a_piped_flac_says_what_a_pipe_can_carry(tmp_path, scaled_model):
    write_music(tmp_path / "song.flac", seconds=0.5)
    feed = subprocess.Popen(["cat", str(tmp_path / "song.flac")], stdout=subprocess.PIPE)
    try:
        done = run_cli("--input", "-", "--output", tmp_path / "out", "--model", scaled_model, stdin=feed.stdout,
                       text=True)
    finally:
        feed.stdout.close()
        feed.wait()
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.startswith("realtime-split: error: cannot read standard input") and "\n" not in line
    assert "wav, ogg or au" in line and "ffmpeg -i song.flac -f wav -" in line


@pytest.mark.parametrize("options, contains", [
    (["--stem", "all"], "carries one stem"),
    (["--stem", "vocals", "--format", "wav"], "--output - cannot be wav"),
])
def test_stdout_takes_one_stem_in_a_streamable_format(tmp_path, capsys, scaled_model, options, contains):
    write_music(tmp_path / "song.wav", seconds=0.2)
    fails(capsys, "--input", tmp_path / "song.wav", *options, "--output", "-", model=scaled_model, contains=contains)


def test_a_truncated_input_through_the_command_has_no_traceback(tmp_path, scaled_model):
    write_music(tmp_path / "song.flac", seconds=2.0)
    truncate(tmp_path / "song.flac", 0.3)
    done = run_cli("--input", tmp_path / "song.flac", "--stem", "vocals", "--output", tmp_path / "v.wav",
                   "--model", scaled_model, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "ended early" in done.stderr and sf.info(str(tmp_path / "v.wav")).frames > 0


@pytest.mark.skipif(sys.platform != "linux", reason="/dev/full is Linux")
def test_writing_to_a_full_device_through_stdout(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.5)
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*command(), "--input", str(tmp_path / "song.wav"), "--stem", "vocals", "--output", "-",
                               "--model", str(scaled_model)], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=subprocess_env(), timeout=120)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("realtime-split: error: cannot write standard output") and line.count("\n") == 0
    assert "No space left on device" in line
    assert "Traceback" not in done.stderr


def test_a_truncated_wav_on_standard_input_warns_like_the_same_file(tmp_path, scaled_model):
    """Issue 31, 4: a truncated wav through a pipe was separated without a word."""
    write_music(tmp_path / "song.wav", seconds=2.0)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "song.wav").read_bytes()[:100_000])
    feed = subprocess.Popen(["cat", str(tmp_path / "cut.wav")], stdout=subprocess.PIPE)
    try:
        done = run_cli("--input", "-", "--output", f"{tmp_path / 'out'}/", "--model", scaled_model, "--no-progress",
                       stdin=feed.stdout, text=True)
    finally:
        feed.stdout.close()
        feed.wait()
    assert done.returncode == 0, done.stderr
    frames = sf.info(str(tmp_path / "out/vocals.wav")).frames
    assert f"standard input ended early, at {frames / 44100:.1f} s (its header promises 2.0 s: the file is " \
           "truncated); the stems cover what was read" in done.stderr


def reader_gone() -> int:
    """The write end of a pipe whose reader has exited (like ``| true``): writing to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize("stdout, reason", [("closed pipe", "Broken pipe"), ("/dev/full", "No space left on device"),
                                            ("closed", "it is closed")])
def test_a_standard_output_that_takes_no_summary_does_not_stop_the_run(tmp_path, scaled_model, stdout, reason):
    """Issue 31, 9: `R -i a b -o o/ | true` exited 1 with a BrokenPipeError traceback before the second input;
    `> /dev/full` gave a traceback after the stems were written."""
    write_music(tmp_path / "a.wav", seconds=0.5)
    write_music(tmp_path / "b.wav", seconds=0.5, seed=1)
    out = tmp_path / "out"
    target = {"closed pipe": reader_gone, "/dev/full": lambda: os.open("/dev/full", os.O_WRONLY)}.get(stdout)
    fd = target() if target else None
    try:
        done = run_cli("--input", tmp_path / "a.wav", tmp_path / "b.wav", "--output", f"{out}/", "--model",
                       scaled_model, "--no-progress", text=True,
                       stdout=fd, preexec_fn=(lambda: os.close(1)) if stdout == "closed" else None)
    finally:
        if fd is not None:
            os.close(fd)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"realtime-split: note: standard output does not take the summary ({reason}); it goes here " \
                       "instead"
    assert [line.split(" -> ")[0] for line in lines[1:]] == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    for name in ("a", "b"):
        assert sf.info(str(out / name / "vocals.wav")).frames == 22050


def test_audio_to_a_closed_standard_output_says_it_is_closed(tmp_path, scaled_model):
    """Issue 31, 9: `-o - >&-` said standard output "is a terminal"."""
    write_music(tmp_path / "song.wav", seconds=0.2)
    done = run_cli("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", "-", "--model", scaled_model,
                   text=True, stdout=None, preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    assert done.stderr.strip() == "realtime-split: error: --output - writes audio to standard output, which is " \
        "closed; pipe it into a program (e.g. | ffmpeg -i - vocals.mp3) or write a file (--output FILE)"


def test_audio_into_a_pipe_nobody_reads_ends_with_one_line(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=2.0)
    fd = reader_gone()
    try:
        done = run_cli("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", "-", "--model", scaled_model,
                       text=True, stdout=fd)
    finally:
        os.close(fd)
    assert done.returncode == 2
    assert done.stderr.strip() == "realtime-split: error: cannot write standard output: Broken pipe (the program " \
        "reading it has exited)"


# 10, 11: names the system cannot take, outputs that cannot be folders ----------------------------------------------

@pytest.mark.parametrize("where", ["input", "output file", "output folder"])
def test_a_name_too_long_for_the_system_is_one_line(tmp_path, capsys, scaled_model, where):
    """Issue 31, 10: names over 255 bytes gave `OSError: File name too long` tracebacks."""
    write_music(tmp_path / "song.wav", seconds=0.2)
    long = "n" * 300
    args = {"input": ["--input", tmp_path / f"{long}.wav", "--output", f"{tmp_path / 'out'}/"],
            "output file": ["--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / f"{long}.wav"],
            "output folder": ["--input", tmp_path / "song.wav", "--output", f"{tmp_path / long}/"]}[where]
    err = fails(capsys, *args, model=scaled_model, contains="more than the 255 a file name can hold")
    assert "--input" in err if where == "input" else "--output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_the_library_raises_audio_io_errors_for_names_too_long(tmp_path, scaled_model):
    from realtime_split import AudioIOError, separate_file

    write_music(tmp_path / "song.wav", seconds=0.2)
    with pytest.raises(AudioIOError, match="more than the 255") as caught:
        separate_file(tmp_path / ("n" * 300 + ".wav"), tmp_path / "v.wav", model=scaled_model, stems="vocals")
    assert caught.value.parameter == "input"
    with pytest.raises(AudioIOError, match="more than the 255") as caught:
        separate_file(tmp_path / "song.wav", tmp_path / ("n" * 300 + ".wav"), model=scaled_model, stems="vocals")
    assert caught.value.parameter == "output"


def test_a_name_of_255_bytes_is_written_through_a_shorter_temporary(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav", seconds=0.2)
    name = "n" * 251 + ".wav"
    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / name,
                    model=scaled_model) == 0
    np.testing.assert_allclose(read(tmp_path / name)[0], 0.5 * mix, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["song.wav", name])


@pytest.mark.parametrize("make, output, contains", [
    (lambda d: (d / "afile.txt").write_text("x"), "afile.txt/", "afile.txt is a file, not a folder"),
    (lambda d: (d / "afile.txt").write_text("x"), "afile.txt/x/", "afile.txt is a file, not a folder"),
    (lambda d: (d / "loop").symlink_to(d / "loop"), "loop/", "loop is a symbolic link that cannot be followed"),
    (lambda d: (d / "loop.wav").symlink_to(d / "loop.wav"), "loop.wav", "is a symbolic link that leads back to itself"),
])
def test_an_output_that_cannot_be_a_folder_or_file_says_why(tmp_path, capsys, scaled_model, make, output, contains):
    """Issue 31, 11: these said "File exists"."""
    write_music(tmp_path / "song.wav", seconds=0.2)
    make(tmp_path)
    err = fails(capsys, "--input", tmp_path / "song.wav", "--stem", "vocals", "--output", f"{tmp_path}/{output}",
                model=scaled_model, contains=contains)
    assert "File exists" not in err


def test_dev_null_takes_one_stem_and_refuses_four_with_a_folder_to_use(tmp_path, capsys, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.2)
    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", "/dev/null",
                    model=scaled_model) == 0
    fails(capsys, "--input", tmp_path / "song.wav", "--output", "/dev/null", model=scaled_model,
          contains="need one file each; pass a directory such as --output stems/")


def test_a_folder_name_that_is_not_utf8_is_written(tmp_path, scaled_model):
    """Issue 31, 11: a non-UTF-8 output folder gave "surrogates not allowed" and left an empty folder."""
    mix = write_music(tmp_path / "song.wav", seconds=0.2)
    out = tmp_path / os.fsdecode(b"st\xffems")
    done = run_cli("--input", tmp_path / "song.wav", "--output", f"{out}/", "--model", scaled_model, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    with open(out / "drums.wav", "rb") as f:  # (soundfile encodes a name it is given strictly as UTF-8)
        np.testing.assert_allclose(sf.read(f, dtype="float32", always_2d=True)[0], 0.25 * mix, atol=1e-5)


# 3 (live): SIGTERM during a live recording ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.jack
def test_sigterm_during_a_live_recording_keeps_a_valid_recording(jack_server, scaled_model, tmp_path):  # noqa: F811
    from jack_harness import Harness
    from test_live_jack import RATE, finish, launch, sine

    recording = tmp_path / "monitor.wav"
    with Harness(jack_server, record_seconds=10) as harness:
        proc = launch("--input", "mic", "--stem", "vocals", "--model", scaled_model, "--output", recording,
                      "--no-progress")
        harness.connect_portaudio(process=proc)
        harness.play(sine(2.0))
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    assert code == 143, err
    assert "Traceback" not in err and err.rstrip().endswith("realtime-split: interrupted by SIGTERM")
    assert "recorded " in err and str(recording) in err
    assert valid_wav(recording) > 0.5 * RATE
