"""File mode through the real CLI: real audio files in, real ONNX Runtime sessions, real files out.

The scaled test model makes every stem a known multiple of the mix
(vocals 0.5, drums 0.25, bass 0.125, other 0.125), so each output can be
compared with the input it came from, sample by sample.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import MODEL_RATE, STEMS4, read, separate, write_music
from realtime_split.cli import main

SCALES = {"vocals": 0.5, "drums": 0.25, "bass": 0.125, "other": 0.125, "accompaniment": 0.5}


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@pytest.mark.parametrize(
    "ext, samplerate, channels",
    [
        ("wav", 44100, 2),
        ("flac", 44100, 1),
        ("ogg", 44100, 2),
        ("mp3", 44100, 1),
        ("wav", 48000, 1),
        ("flac", 22050, 2),
        ("ogg", 48000, 1),
        ("mp3", 22050, 2),
    ],
)
def test_every_stem_is_written_aligned_and_as_long_as_the_input(tmp_path, scaled_model, ext, samplerate, channels):
    src = tmp_path / f"song.{ext}"
    mix = write_music(src, samplerate=samplerate, channels=channels)
    out = tmp_path / "stems"

    assert separate("--input", src, "--stem", "all", "--output", f"{out}/", model=scaled_model) == 0

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.wav" for s in STEMS4)
    for stem in STEMS4:
        data, info = read(out / f"{stem}.wav")
        assert (info.samplerate, info.channels, info.frames) == (samplerate, channels, len(mix))
        expected = SCALES[stem] * mix
        if samplerate == MODEL_RATE:
            # No resampling: the decoded input (lossy or not) comes back exactly, scaled and aligned.
            np.testing.assert_allclose(data, expected, atol=1e-5)
        else:
            # Resampled in and out: band-limited noise survives, and any misalignment would decorrelate it.
            assert correlation(data, expected) > 0.99
            assert np.std(data) == pytest.approx(np.std(expected), rel=0.05)


def test_several_inputs_get_one_folder_each(tmp_path, scaled_model):
    a = write_music(tmp_path / "first.wav", seed=1)
    b = write_music(tmp_path / "second.flac", seconds=1.0, seed=2)

    assert separate("--input", tmp_path / "first.wav", tmp_path / "second.flac", "--stem", "vocals,bass",
                    "--output", tmp_path / "out", model=scaled_model) == 0

    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav")) == [
        "first/bass.wav", "first/vocals.wav", "second/bass.wav", "second/vocals.wav"]
    np.testing.assert_allclose(read(tmp_path / "out/first/vocals.wav")[0], 0.5 * a, atol=1e-5)
    np.testing.assert_allclose(read(tmp_path / "out/second/bass.wav")[0], 0.125 * b, atol=1e-5)


def test_inputs_with_the_same_name_do_not_overwrite_each_other(tmp_path, scaled_model):
    for album in ("album1", "album2"):
        (tmp_path / album).mkdir()
        write_music(tmp_path / album / "mixture.wav", seconds=0.5)

    assert separate("--input", tmp_path / "album1/mixture.wav", tmp_path / "album2/mixture.wav",
                    "--stem", "vocals", "--output", tmp_path / "out", model=scaled_model) == 0

    assert (tmp_path / "out/album1-mixture/vocals.wav").is_file()
    assert (tmp_path / "out/album2-mixture/vocals.wav").is_file()


def test_default_output_is_a_folder_per_song_and_one_summary_line(tmp_path, scaled_model, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_music(tmp_path / "song.wav", seconds=1.0)

    assert separate("--input", "song.wav", model=scaled_model) == 0

    assert sorted(p.name for p in (tmp_path / "separated/song").iterdir()) == sorted(f"{s}.wav" for s in STEMS4)
    out = capsys.readouterr()
    summary = out.out.strip().splitlines()
    assert len(summary) == 1
    assert "CPUExecutionProvider" in summary[0] and "x real time" in summary[0] and "ms" in summary[0]
    assert out.err == ""  # no progress bar when stderr is not a terminal, no warnings


def test_karaoke_accompaniment_to_a_single_file(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav")

    assert separate("--input", tmp_path / "song.wav", "--stem", "accompaniment",
                    "--output", tmp_path / "karaoke.wav", model=scaled_model) == 0

    np.testing.assert_allclose(read(tmp_path / "karaoke.wav")[0], 0.5 * mix, atol=1e-5)


def test_gain_minus_inf_mutes_a_stem(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav")

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals,drums", "--gain", "vocals=-inf",
                    "--gain", "drums=-6", "--output", tmp_path / "out", model=scaled_model) == 0

    assert not np.any(read(tmp_path / "out/vocals.wav")[0])
    np.testing.assert_allclose(read(tmp_path / "out/drums.wav")[0], 0.25 * 10 ** (-6 / 20) * mix, atol=1e-5)


@pytest.mark.parametrize("options", [["--offline"], ["--latency", "low"], ["--latency", "quality"], ["--hop", "300"]])
def test_latency_options_keep_the_output_aligned(tmp_path, scaled_model, options):
    mix = write_music(tmp_path / "song.wav", seconds=1.0)

    assert separate("--input", tmp_path / "song.wav", "--stem", "drums", "--output", tmp_path / "drums.wav",
                    *options, model=scaled_model) == 0

    np.testing.assert_allclose(read(tmp_path / "drums.wav")[0], 0.25 * mix, atol=1e-5)


@pytest.mark.parametrize("options, preset", [([], "offline"), (["--latency", "balanced"], "balanced"),
                                             (["--latency", "low"], "low")])
def test_files_are_separated_offline_unless_a_latency_is_asked_for(tmp_path, scaled_model, capsys, options, preset):
    write_music(tmp_path / "song.wav", seconds=0.5)

    assert separate("--input", tmp_path / "song.wav", "--output", tmp_path / "out", *options,
                    model=scaled_model) == 0

    assert f"latency {preset} " in capsys.readouterr().out


def test_input_shorter_than_the_latency(tmp_path, scaled_model):
    mix = write_music(tmp_path / "blip.wav", seconds=0.002)  # 88 samples, latency is 448

    assert separate("--input", tmp_path / "blip.wav", "--stem", "vocals", "--output", tmp_path / "v.wav",
                    model=scaled_model) == 0

    np.testing.assert_allclose(read(tmp_path / "v.wav")[0], 0.5 * mix, atol=1e-5)


def test_format_and_subtype(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav")

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals,other", "--format", "flac",
                    "--subtype", "PCM_24", "--output", tmp_path / "out", model=scaled_model) == 0

    data, info = read(tmp_path / "out/vocals.flac")
    assert (info.format, info.subtype, info.frames) == ("FLAC", "PCM_24", len(mix))
    np.testing.assert_allclose(data, 0.5 * mix, atol=1e-6)


def test_default_subtypes_float_wav_and_24_bit_flac(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.5, subtype="PCM_16")

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / "v.wav",
                    model=scaled_model) == 0
    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / "v.flac",
                    model=scaled_model) == 0

    assert sf.info(str(tmp_path / "v.wav")).subtype == "FLOAT"
    assert sf.info(str(tmp_path / "v.flac")).subtype == "PCM_24"


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
def test_lossy_output_formats(tmp_path, scaled_model, ext):
    mix = write_music(tmp_path / "song.wav", samplerate=48000)

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / f"v.{ext}",
                    model=scaled_model) == 0

    data, info = read(tmp_path / f"v.{ext}")
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, len(mix))
    assert correlation(data, 0.5 * mix) > 0.95  # lossy codec at its default quality, aligned


def test_gain_beyond_full_scale_is_clipped_and_counted_in_integer_files(tmp_path, scaled_model, capsys):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)

    assert separate("--input", tmp_path / "song.wav", "--stem", "vocals", "--gain", "vocals=+24",
                    "--output", tmp_path / "loud.flac", model=scaled_model) == 0

    data, _ = read(tmp_path / "loud.flac")
    loud = 0.5 * 10 ** (24 / 20) * mix
    over = int(np.count_nonzero(np.abs(loud) > 1.0))
    assert over > 0 and np.abs(data).max() <= 1.0
    assert f"{over} samples beyond full scale were clipped" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed; m4a input needs it")
def test_m4a_input_is_decoded_through_ffmpeg(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=1.0)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "song.wav"), "-c:a", "aac",
                    str(tmp_path / "song.m4a")], check=True)
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "song.m4a"), "-f", "f32le", "-"],
                             check=True, capture_output=True).stdout
    mix = np.frombuffer(decoded, np.float32).reshape(-1, 2)

    assert separate("--input", tmp_path / "song.m4a", "--stem", "bass", "--output", tmp_path / "out",
                    model=scaled_model) == 0

    data, info = read(tmp_path / "out/bass.wav")
    assert (info.samplerate, info.frames) == (44100, len(mix))
    np.testing.assert_allclose(data, 0.125 * mix, atol=1e-5)


@pytest.mark.slow  # the bundled model on the whole demo
def test_readme_first_command_separates_the_bundled_demo_with_the_bundled_model(tmp_path, monkeypatch):
    demo = Path(__file__).resolve().parents[1] / "realtime_split" / "demo" / "demo.ogg"
    monkeypatch.chdir(tmp_path)

    assert main(["--input", str(demo), "--stem", "all", "--output", "stems/", "--no-progress"]) == 0

    mix, rate = sf.read(demo, dtype="float32")
    stems = {name: sf.read(tmp_path / "stems" / f"{name}.wav", dtype="float32") for name in
             ("vocals", "drums", "bass", "other")}
    assert all(r == rate and len(a) == len(mix) for a, r in stems.values())
    # The four stems add up to the clip again, up to the model's error (at least 10 dB below it).
    residual = sum(a for a, _ in stems.values()) - mix
    assert 10 * np.log10(np.sum(mix ** 2) / np.sum(residual ** 2)) > 10
    assert all(np.sqrt(np.mean(a ** 2)) > 1e-3 for a, _ in stems.values())  # every stem gets something
