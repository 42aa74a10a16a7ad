"""``--gain`` with one output file: the file holds the mix of the stems with the gains applied.

Karaoke in one file two ways: ``--gain vocals=-inf --output k.wav`` (drums + bass + other) and
``--stem accompaniment --output k.wav`` (mix - vocals). Real files through the real CLI: the scaled
test model, whose stems are known multiples of the mix, and the bundled fast model on a short clip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import STEMS4, command, fails, read, separate, subprocess_env, write_music
from realtime_split.cli import main

DEMO = Path(__file__).resolve().parents[1] / "realtime_split" / "demo" / "demo.ogg"
FAST = Path(__file__).resolve().parents[1] / "realtime_split" / "models" / "fast.onnx"


def test_gain_minus_inf_to_one_file_writes_the_karaoke_mix(tmp_path, scaled_model, capsys):
    mix = write_music(tmp_path / "song.wav")
    out = tmp_path / "k" / "karaoke.wav"

    assert separate("--input", tmp_path / "song.wav", "--output", out, "--gain", "vocals=-inf",
                    model=scaled_model) == 0

    assert [p.name for p in out.parent.iterdir()] == ["karaoke.wav"]  # one file, not four
    data, info = read(out)
    assert info.frames == len(mix)
    np.testing.assert_allclose(data, (0.25 + 0.125 + 0.125) * mix, atol=1e-5)
    assert "(mix of vocals -inf dB, drums, bass, other)" in capsys.readouterr().out


def test_several_gains_shape_the_mix(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.flac", channels=1)

    assert separate("--input", tmp_path / "song.flac", "--output", tmp_path / "remix.flac", "--gain", "vocals=-6",
                    "--gain", "drums=+6,bass=-inf", model=scaled_model) == 0

    expected = (0.5 * 10 ** (-6 / 20) + 0.25 * 10 ** (6 / 20) + 0.125) * mix
    np.testing.assert_allclose(read(tmp_path / "remix.flac")[0], expected, atol=1e-4)  # 24-bit flac


def test_gain_mixes_only_the_stems_asked_for(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav")

    assert separate("--input", tmp_path / "song.wav", "--stem", "drums,bass", "--gain", "drums=-inf",
                    "--output", tmp_path / "bass.wav", model=scaled_model) == 0

    np.testing.assert_allclose(read(tmp_path / "bass.wav")[0], 0.125 * mix, atol=1e-5)


def test_gain_with_a_directory_still_writes_one_file_per_stem(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav")

    assert separate("--input", tmp_path / "song.wav", "--gain", "vocals=-inf", "--output", f"{tmp_path / 'out'}/",
                    model=scaled_model) == 0

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{s}.wav" for s in STEMS4)
    assert not np.any(read(tmp_path / "out" / "vocals.wav")[0])
    np.testing.assert_allclose(read(tmp_path / "out" / "drums.wav")[0], 0.25 * mix, atol=1e-5)


def test_several_stems_to_one_file_without_a_gain_names_both_ways_out(tmp_path, capsys, scaled_model):
    write_music(tmp_path / "song.wav", seconds=0.2)
    line = fails(capsys, "--input", tmp_path / "song.wav", "--stem", "all", "--output", tmp_path / "stems.wav",
                 model=scaled_model, contains="pass a directory")
    assert "--gain STEM=DB" in line
    assert not (tmp_path / "stems.wav").exists()


def test_several_inputs_to_one_file_are_still_refused_with_a_gain(tmp_path, capsys, scaled_model):
    write_music(tmp_path / "a.wav", seconds=0.2)
    write_music(tmp_path / "b.wav", seconds=0.2)
    fails(capsys, "--input", tmp_path / "a.wav", tmp_path / "b.wav", "--gain", "vocals=-inf",
          "--output", tmp_path / "k.wav", model=scaled_model, contains="2 inputs need one file each")


@pytest.mark.slow  # the command in a subprocess for a whole run: 2-4 s each (CONTRIBUTING: the fast tier)
def test_karaoke_mix_to_standard_output(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)

    done = subprocess.run([*command(), "--input", str(tmp_path / "song.wav"), "--gain", "vocals=-inf", "--output",
                           "-", "--model", str(scaled_model)], capture_output=True, env=subprocess_env(), timeout=120)

    assert done.returncode == 0, done.stderr
    (tmp_path / "k.au").write_bytes(done.stdout)
    np.testing.assert_allclose(read(tmp_path / "k.au")[0], 0.5 * mix, atol=1e-5)


@pytest.mark.skipif(not FAST.exists(), reason="this build has no bundled fast model")
@pytest.mark.slow  # the bundled model, three runs
def test_both_karaoke_forms_with_the_bundled_model(tmp_path):
    clip, rate = sf.read(DEMO, dtype="float32", frames=3 * 44100, always_2d=True)
    sf.write(tmp_path / "clip.wav", clip, rate)

    def cli(*args) -> None:
        assert main(["--input", str(tmp_path / "clip.wav"), "--model", "fast", "--no-progress", *args]) == 0

    cli("--output", f"{tmp_path / 'stems'}/")
    cli("--gain", "vocals=-inf", "--output", str(tmp_path / "k" / "karaoke.wav"))
    cli("--stem", "accompaniment", "--output", str(tmp_path / "k" / "accompaniment.wav"))

    stems = {s: read(tmp_path / "stems" / f"{s}.wav")[0] for s in STEMS4}
    karaoke, accompaniment = read(tmp_path / "k" / "karaoke.wav")[0], read(tmp_path / "k" / "accompaniment.wav")[0]
    assert len(karaoke) == len(accompaniment) == len(clip)
    # The gained mix is exactly the sum of the other stems; accompaniment is the input minus the vocals.
    np.testing.assert_allclose(karaoke, stems["drums"] + stems["bass"] + stems["other"], atol=1e-5)
    np.testing.assert_allclose(accompaniment, clip - stems["vocals"], atol=1e-4)
