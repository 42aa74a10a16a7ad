"""Nothing lost, no traceback: the inputs and signals a user can produce (issue 18).

Inputs destroyed through another name, one job writing over a later job's input, SIGTERM and SIGHUP,
a full disk, absurd gains, a model that outputs NaN, truncated files, nonsense option values, and
standard input and output. Each ends with one line on stderr that names the problem, a non-zero
exit where the user must act, valid output files and untouched inputs.
"""

from __future__ import annotations

import os
import resource
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


def run_cli(*args, stdin=None, timeout: float = 120, preexec_fn=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*command(), *map(str, args)], stdin=stdin, capture_output=True, timeout=timeout,
                          env=subprocess_env(), preexec_fn=preexec_fn, **kwargs)


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
