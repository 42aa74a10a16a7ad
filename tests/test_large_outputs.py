"""Outputs past 4 GiB: every output is opened in a container that can hold it, or refused up front.

WAV, WAVEX and AIFF count their audio in 32 bits; libsndfile writes on past 4 GiB and caps or wraps
the header, so the file reads back short (537,311,912 stereo float frames as 536,870,911) or not at
all, without an error. A wav that may pass 4 GiB is written as RF64 (libsndfile keeps it a plain RIFF
WAV when it ends below 4 GiB); containers that cannot grow are refused, or stop at their limit.

The files past 4 GiB here are real libsndfile files, but sparse: the writer seeks past the end instead
of writing gigabytes of silence, and the file system leaves a hole, so each takes a few kilobytes of disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import fails, read, separate, write_music
from realtime_split import ParameterError, Separator
from realtime_split.audio_files import (
    HEADER_ROOM,
    NEAR_LIMIT,
    AudioWriter,
    Container,
    WriteError,
    _wav_declared_frames,
    open_input,
    plan_container,
)
from realtime_split.cli import _report

RATE = 44100
SOAK_FRAMES = 537_311_912  # the soak run's stereo float output: 4.003 GiB, read back as 536,870,911 frames
GIB4 = 2 ** 32


@pytest.fixture
def sparse_dir(tmp_path) -> Path:
    """``tmp_path``, once its file system has shown it keeps holes (else the tests would write gigabytes)."""
    probe = tmp_path / "hole"
    with open(probe, "wb") as f:
        f.truncate(2 * GIB4)
    allocated = os.stat(probe).st_blocks * 512
    probe.unlink()
    if allocated > 2 ** 20:
        pytest.skip("this file system has no sparse files; the tests past 4 GiB would write gigabytes")
    return tmp_path


def head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


def skip_ahead(writer: AudioWriter, frames: int) -> None:
    """Move ``writer`` on by ``frames`` without writing them: a hole the next write makes part of the file."""
    writer._file.seek(writer.frames + frames)
    writer.frames += frames


def write_sparse(writer: AudioWriter, frames: int) -> np.ndarray:
    """``frames`` in all through ``writer``: a marked first and last block around a hole of silence; closes it
    and returns the last block."""
    channels = writer._file.channels
    first = np.full((10, channels), 0.25, np.float32)
    last = np.linspace(-0.5, 0.5, 10 * channels, dtype=np.float32).reshape(10, channels)
    writer.write(first.copy())
    skip_ahead(writer, frames - 20)
    writer.write(last.copy())
    writer.close()
    return last


@pytest.fixture
def no_writers(monkeypatch):
    """An output that file mode opens fails the test at once: were a refusal to go, the sparse input's hours of
    silence would be separated into gigabytes of real files."""
    def opened(*args, **kwargs):
        raise AssertionError(f"an output was opened: {args[0]}")

    monkeypatch.setattr("realtime_split.file_mode.AudioWriter", opened)


def sparse_input(path: Path, frames: int) -> None:
    """An RF64 input file ``frames`` long (stereo float), silent but for its first block."""
    with sf.SoundFile(path, "w", RATE, 2, format="RF64", subtype="FLOAT") as f:
        f.write(np.full((4096, 2), 0.1, np.float32))
        f.seek(frames - 1)
        f.write(np.zeros((1, 2), np.float32))


# The decision, at the boundary ------------------------------------------------------------------------------------

@pytest.mark.parametrize("subtype, width", [("PCM_16", 2), ("PCM_24", 3), ("FLOAT", 4), ("DOUBLE", 8)])
@pytest.mark.parametrize("channels", [1, 2])
def test_a_wav_is_plain_up_to_near_4_gib_and_rf64_beyond(subtype, width, channels):
    room = GIB4 - HEADER_ROOM
    fits = int(NEAR_LIMIT * room) // (width * channels)  # the longest a plain WAV is chosen for

    assert plan_container("WAV", subtype, channels, fits) == Container("WAV", subtype, limit=room)
    assert plan_container("WAV", subtype, channels, fits + 1) == Container("RF64", subtype, downgrade=True)
    assert plan_container("WAV", subtype, channels, None) == Container("RF64", subtype, downgrade=True)
    assert plan_container("WAVEX", subtype, channels, fits + 1) == Container("RF64", subtype, downgrade=True)


def test_the_soak_runs_output_is_rf64_and_three_hours_stay_plain_wav():
    assert plan_container("WAV", "FLOAT", 2, SOAK_FRAMES).format == "RF64"
    assert plan_container("WAV", "FLOAT", 2, 3 * 3600 * RATE).format == "WAV"  # 3.55 GiB
    assert plan_container("WAV", "PCM_16", 2, 6 * 3600 * RATE).format == "WAV"  # 16 bits: 3.55 GiB in 6 h
    assert plan_container("WAV", "PCM_16", 2, 7 * 3600 * RATE).format == "RF64"


@pytest.mark.parametrize("fmt", ["WAV", "WAVEX", "AIFF"])
def test_a_container_that_may_not_grow_is_refused_only_past_its_limit(fmt):
    room = GIB4 - HEADER_ROOM
    last = room // 8  # stereo float frames that fit

    assert plan_container(fmt, "FLOAT", 2, last, explicit=True) == Container(fmt, "FLOAT", limit=room)
    assert plan_container(fmt, "FLOAT", 2, None, explicit=True) == Container(fmt, "FLOAT", limit=room)
    with pytest.raises(ParameterError) as refused:
        plan_container(fmt, "FLOAT", 2, last + 1, explicit=True, name="out/vocals.x")
    assert refused.value.parameter == "format"
    assert str(refused.value).startswith(f"format={fmt.lower()!r}: out/vocals.x would take 4.000 GiB, more than")


def test_aiff_has_no_successor_of_its_own_name_so_it_is_refused_even_when_not_named():
    with pytest.raises(ParameterError, match="caf") as refused:
        plan_container("AIFF", "FLOAT", 2, SOAK_FRAMES)
    assert refused.value.parameter == "output"


def test_a_wav_subtype_rf64_cannot_hold_keeps_wav_and_is_refused_past_it():
    assert plan_container("WAV", "IMA_ADPCM", 2, 10 ** 6) == Container("WAV", "IMA_ADPCM", limit=GIB4 - HEADER_ROOM)
    with pytest.raises(ParameterError, match="cannot hold subtype='IMA_ADPCM'") as refused:
        plan_container("WAV", "IMA_ADPCM", 2, 3 * 10 ** 9)
    assert refused.value.parameter == "subtype"


@pytest.mark.parametrize("fmt", ["AU", "W64", "CAF", "RF64", "FLAC", "OGG"])
def test_containers_that_count_past_4_gib_have_no_limit(fmt):
    subtype = {"FLAC": "PCM_24", "OGG": "VORBIS"}.get(fmt, "FLOAT")
    assert plan_container(fmt, subtype, 2, 10 * SOAK_FRAMES, explicit=True) == Container(fmt, subtype)


# The premise, against the real libsndfile ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, holds", [("WAV", False), ("WAVEX", False), ("AIFF", False),
                                        ("AU", True), ("W64", True), ("CAF", True), ("RF64", True)])
def test_which_containers_read_back_whole_past_4_gib(sparse_dir, fmt, holds):
    """The limits above match the library: the 32-bit containers lose audio past 4 GiB, the others do not."""
    path = sparse_dir / f"big.{fmt.lower()}"
    with sf.SoundFile(path, "w", RATE, 2, format=fmt, subtype="FLOAT") as f:
        f.write(np.zeros((10, 2), np.float32))
        f.seek(SOAK_FRAMES - 10)
        f.write(np.full((10, 2), 0.5, np.float32))
    try:
        frames = sf.info(str(path)).frames
    except sf.LibsndfileError:
        frames = None
    assert (frames == SOAK_FRAMES) is holds, frames


# Real files through the writer ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("planned", [True, False], ids=["length known", "length unknown"])
def test_a_wav_past_4_gib_is_rf64_and_reads_back_whole(sparse_dir, planned):
    path = sparse_dir / "vocals.wav"
    container = plan_container("WAV", "FLOAT", 2, SOAK_FRAMES) if planned else None
    writer = AudioWriter(path, RATE, 2, "WAV", "FLOAT", container)

    last = write_sparse(writer, SOAK_FRAMES)

    assert head(path) == b"RF64" and writer.rf64
    with sf.SoundFile(path) as f:
        assert (f.format, f.subtype, f.frames) == ("RF64", "FLOAT", SOAK_FRAMES)
        f.seek(SOAK_FRAMES - 10)
        np.testing.assert_array_equal(f.read(dtype="float32"), last)


def test_a_wav_of_unknown_length_that_stays_small_is_a_plain_riff_wav(tmp_path):
    path = tmp_path / "vocals.wav"
    audio = np.linspace(-0.5, 0.5, 2000, dtype=np.float32).reshape(1000, 2)
    writer = AudioWriter(path, RATE, 2, "WAV", "FLOAT")  # no container: the length counts as unknown
    assert writer.container.format == "RF64"

    writer.write(audio.copy())
    writer.close()

    assert head(path) == b"RIFF" and not writer.rf64
    assert _wav_declared_frames(path) == 1000
    data, info = read(path)
    assert (info.format, info.subtype, info.frames) == ("WAVEX", "FLOAT", 1000)
    np.testing.assert_array_equal(data, audio)


@pytest.mark.parametrize("fmt", ["WAV", "AIFF"])
def test_a_container_that_cannot_grow_stops_at_its_limit_and_stays_valid(sparse_dir, fmt):
    path = sparse_dir / f"vocals.{fmt.lower()}"
    container = plan_container(fmt, "FLOAT", 2, None, explicit=True)  # a stream: the length is unknown
    writer = AudioWriter(path, RATE, 2, fmt, "FLOAT", container)
    below = container.limit // 8 - 100  # stereo float frames: 100 short of the limit
    writer.write(np.zeros((10, 2), np.float32))
    skip_ahead(writer, below - 20)
    writer.write(np.full((10, 2), 0.5, np.float32))

    with pytest.raises(WriteError, match=rf"cannot write .*vocals\.{fmt.lower()} past 4\.0 GiB: "
                                         f"{fmt.lower()} files hold no more; "):
        writer.write(np.zeros((4096, 2), np.float32))
    writer.close()

    with sf.SoundFile(path) as f:
        assert f.frames == below
        f.seek(below - 10)
        np.testing.assert_array_equal(f.read(dtype="float32"), np.full((10, 2), 0.5, np.float32))
    if fmt == "WAV":
        assert _wav_declared_frames(path) == below


# Through the command line and the library ----------------------------------------------------------------------------

def test_a_short_song_still_gives_plain_wav_stems(tmp_path, scaled_model, capsys):
    write_music(tmp_path / "song.wav", seconds=0.5)

    assert separate("--input", tmp_path / "song.wav", "--output", f"{tmp_path}/out/", model=scaled_model) == 0

    for stem in ("vocals", "drums", "bass", "other"):
        assert head(tmp_path / f"out/{stem}.wav") == b"RIFF"
        assert sf.info(str(tmp_path / f"out/{stem}.wav")).format == "WAV"  # as before: not WAVEX, not RF64
    assert "RF64" not in capsys.readouterr().err


def test_a_pipe_of_unknown_length_gives_plain_riff_wav_stems(tmp_path, scaled_model, capsys):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes((tmp_path / "song.wav").read_bytes()), daemon=True)
    feeder.start()
    code = separate("--input", fifo, "--stem", "vocals", "--output", tmp_path / "vocals.wav", model=scaled_model)
    feeder.join(timeout=30)

    assert code == 0
    assert head(tmp_path / "vocals.wav") == b"RIFF"
    data, info = read(tmp_path / "vocals.wav")
    assert (info.format, info.frames) == ("WAVEX", len(mix))
    np.testing.assert_allclose(data, 0.5 * mix, atol=1e-5)
    assert "RF64" not in capsys.readouterr().err


def test_format_rf64_is_rf64_even_when_small(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.5)

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--format", "rf64",
                    "--output", tmp_path / "vocals.wav", model=scaled_model) == 0

    assert head(tmp_path / "vocals.wav") == b"RF64"


@pytest.mark.parametrize("options, contains", [
    (["--format", "wav", "--output", "{out}/"], "--format wav: each stem in {out}/ would take 4.023 GiB, more than "
                                                "wav files hold (4 GiB); pass --format rf64"),
    (["--output", "{out}/vocals.aiff", "--stem", "vocals"], "{out}/vocals.aiff would take 4.023 GiB, more than "
                                                            "aiff files hold (4 GiB); write caf"),
])
def test_an_output_its_container_cannot_hold_is_refused_before_anything_is_written(sparse_dir, scaled_model, capsys,
                                                                                   no_writers, options, contains):
    sparse_input(sparse_dir / "long.rf64", 540_000_000)  # 3.4 h of stereo float: 4.023 GiB
    out = sparse_dir / "out"
    args = ["--input", sparse_dir / "long.rf64", *[o.format(out=out) for o in options]]
    fails(capsys, *args, model=scaled_model, contains=contains.format(out=out))
    assert not out.exists()


def test_the_library_refuses_an_explicit_wav_too_long_for_it(sparse_dir, scaled_model, no_writers):
    sparse_input(sparse_dir / "long.rf64", 540_000_000)

    with pytest.raises(ParameterError, match="format='rf64'") as refused:
        Separator(scaled_model, stems="vocals").separate_file(sparse_dir / "long.rf64", sparse_dir / "v.wav",
                                                              format="wav")
    assert refused.value.parameter == "format"
    assert not (sparse_dir / "v.wav").exists()


def test_the_command_line_notes_each_output_written_as_rf64(tmp_path, scaled_model, capsys):
    write_music(tmp_path / "song.wav", seconds=0.3)
    result = Separator(scaled_model).separate_file(tmp_path / "song.wav", tmp_path / "out")
    assert result.rf64 == ()
    args = argparse.Namespace(hop=None)

    _report(dataclasses.replace(result, rf64=(tmp_path / "out/vocals.wav",)), args)
    _report(dataclasses.replace(result, rf64=tuple(result.outputs.values())), args)

    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == [f"realtime-split: note: {tmp_path}/out/vocals.wav is RF64 (WAV over 4 GiB)",
                     f"realtime-split: note: vocals.wav, drums.wav, bass.wav and other.wav in {tmp_path}/out/ "
                     "are RF64 (WAV over 4 GiB)"]


# Past 4 GiB on the way in ---------------------------------------------------------------------------------------------

def feed_wav_pipe(fifo: Path, frames: int) -> threading.Thread:
    """Write a stereo 64-bit float wav (the fewest samples per byte) of ``frames`` to the named pipe ``fifo`` with
    the sizes ffmpeg -f wav - writes to a pipe: "unknown" (0xFFFFFFFF). The frames are silent; the reader may stop
    early (a broken pipe here is fine)."""
    def run() -> None:
        fmt = (3).to_bytes(2, "little") + (2).to_bytes(2, "little") + RATE.to_bytes(4, "little") + \
            (RATE * 16).to_bytes(4, "little") + (16).to_bytes(2, "little") + (64).to_bytes(2, "little")
        unknown = (0xFFFFFFFF).to_bytes(4, "little")
        block, left = bytes(4 << 20), frames * 16
        try:
            with open(fifo, "wb") as f:
                f.write(b"RIFF" + unknown + b"WAVEfmt " + (16).to_bytes(4, "little") + fmt + b"data" + unknown)
                while left:
                    left -= f.write(block[:min(left, len(block))])
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=run, daemon=True)
    feeder.start()
    return feeder


@pytest.mark.parametrize("frames, warned", [
    (RATE, False),
    pytest.param(2 ** 28 + RATE, True, marks=pytest.mark.slow),  # 4 GiB through a pipe: seconds of copying
], ids=["1 s", "1.7 h"])
def test_a_wav_pipe_that_reaches_4_gib_warns_that_the_rest_is_out_of_reach(tmp_path, frames, warned):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    feeder = feed_wav_pipe(fifo, frames)
    block = np.empty((1 << 20, 2), np.float32)

    with open_input(fifo) as reader:
        while len(reader.read(block)):
            pass
    feeder.join(timeout=60)

    assert reader.frames is None  # a stream: its length is unknown
    if warned:  # libsndfile stops at 0xFFFFFFFF bytes of 16-byte frames: 268,435,455 frames, 1.7 h
        assert reader.frames_read == (2 ** 32 - 1) // 16 < frames
        assert reader.ended_early and "pipe au instead" in reader.ended_early
    else:
        assert (reader.frames_read, reader.ended_early) == (frames, None)
