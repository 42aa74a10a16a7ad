"""Dataset readers on small generated fixtures in their real formats (.stem.mp4, wav folders, ogg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from extras import STEMPEG
from training.datasets import (
    MUSDB_VALIDATION_TRACKS,
    DatasetError,
    _is_validation,
    open_dataset,
    parse_spec,
)

RATE = 44100
# A distinct tone per stem lets a test tell the stems apart after lossy coding.
TONES = {"mixture": 220.0, "drums": 330.0, "bass": 110.0, "other": 550.0, "vocals": 880.0}


def tone(freq: float, n: int, rate: int = RATE, channels: int = 2) -> np.ndarray:
    t = np.arange(n) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


def dominant_freq(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    return float(np.argmax(spectrum) * rate / len(audio))


def write_stem_mp4(path: Path, n: int = RATE // 2) -> Path:
    """A real NI-stems style file: 5 AAC streams (mixture, drums, bass, other, vocals), encoded by ffmpeg."""
    wavs = []
    for name in ("mixture", "drums", "bass", "other", "vocals"):
        wav = path.parent / f".{path.name}.{name}.wav"
        sf.write(wav, tone(TONES[name], n), RATE)
        wavs.append(wav)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for wav in wavs:
        cmd += ["-i", str(wav)]
    for i in range(len(wavs)):
        cmd += ["-map", f"{i}:a"]
    cmd += ["-c:a", "aac", "-b:a", "128k", "-f", "mp4", str(path)]
    subprocess.run(cmd, check=True)
    for wav in wavs:
        wav.unlink()
    return path


def write_hq_track(folder: Path, n: int = 4410, stems=("mixture", "drums", "bass", "other", "vocals")) -> Path:
    folder.mkdir(parents=True)
    for name in stems:
        sf.write(folder / f"{name}.wav", tone(TONES[name], n), RATE, subtype="FLOAT")
    return folder


def write_ogg_clip(folder: Path, n: int = 16000, rate: int = 16000, stems=("vocals", "accompaniment")) -> Path:
    folder.mkdir(parents=True)
    for i, name in enumerate(stems):
        sf.write(folder / f"{name}.ogg", tone(300.0 * (i + 1), n, rate, channels=1)[:, 0], rate)
    return folder


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("musdb")
    (root / "train").mkdir()
    (root / "test").mkdir()
    write_stem_mp4(root / "train" / "Leaf - Summerghost.stem.mp4")  # a validation track
    write_stem_mp4(root / "train" / "Some Band - Training Song.stem.mp4")
    write_stem_mp4(root / "test" / "Other Band - Test Song.stem.mp4")
    return root


@STEMPEG
def test_musdb_reads_the_four_stems_in_stream_order_and_ignores_the_coded_mixture(musdb_root):
    tracks = open_dataset("musdb", musdb_root)
    assert [t.name for t in tracks] == ["Leaf - Summerghost", "Other Band - Test Song", "Some Band - Training Song"]
    rate, stems = tracks[0].load()
    assert rate == RATE
    assert set(stems) == {"drums", "bass", "other", "vocals"}
    lengths = {len(a) for a in stems.values()}
    assert len(lengths) == 1 and abs(lengths.pop() - RATE // 2) < 2048  # AAC frames pad the end
    for name, audio in stems.items():
        assert audio.dtype == np.float32 and audio.shape[1] == 2
        assert dominant_freq(audio, rate) == pytest.approx(TONES[name], abs=3.0)


def test_musdb_standard_split(musdb_root):
    names = lambda split: [t.name for t in open_dataset("musdb", musdb_root, split)]  # noqa: E731
    assert names("valid") == ["Leaf - Summerghost"]
    assert names("train") == ["Some Band - Training Song"]
    assert names("test") == ["Other Band - Test Song"]


def test_validation_list_matches_the_musdb_package_when_installed():
    musdb = pytest.importorskip("musdb", reason="musdb package not installed; the hard-coded list stands alone")
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    config = Path(musdb.__file__).parent / "configs" / "mus.yaml"
    assert sorted(yaml.safe_load(config.read_text())["validation_tracks"]) == sorted(MUSDB_VALIDATION_TRACKS)


@STEMPEG
def test_load_resamples_with_soxr(musdb_root):
    track = open_dataset("musdb", musdb_root, "train")[0]
    rate, stems = track.load(sample_rate=22050)
    assert rate == 22050
    assert dominant_freq(stems["vocals"], rate) == pytest.approx(TONES["vocals"], abs=3.0)


def test_musdb_hq_folders(tmp_path):
    write_hq_track(tmp_path / "train" / "Young Griffo - Pennies")
    write_hq_track(tmp_path / "train" / "A - B")
    tracks = open_dataset("musdb-hq", tmp_path, "train")
    assert [t.name for t in tracks] == ["A - B"]
    rate, stems = tracks[0].load()
    assert rate == RATE and set(stems) == {"drums", "bass", "other", "vocals"}
    np.testing.assert_allclose(stems["bass"], tone(TONES["bass"], 4410), atol=1e-6)


def test_folder_of_mono_16k_ogg_stems_gives_stereo(tmp_path):
    write_ogg_clip(tmp_path / "amy_1_01")
    write_ogg_clip(tmp_path / "amy_1_02", stems=("vocals",))
    (tmp_path / "notes").mkdir()  # folders without stems are not tracks
    tracks = open_dataset("folder", tmp_path)
    assert [(t.name, t.stems) for t in tracks] == [("amy_1_01", ("vocals", "accompaniment")),
                                                    ("amy_1_02", ("vocals",))]
    rate, stems = tracks[0].load()
    assert rate == 16000 and set(stems) == {"vocals", "accompaniment"}
    for audio in stems.values():
        assert audio.shape == (16000, 2) and audio.dtype == np.float32
        np.testing.assert_array_equal(audio[:, 0], audio[:, 1])


def test_folder_split_keeps_clips_of_one_song_together(tmp_path):
    for song in range(12):
        for clip in (1, 2):
            write_ogg_clip(tmp_path / f"singer_{song}_0{clip}", n=1600, stems=("vocals",))
    valid = {t.name for t in open_dataset("folder", tmp_path, "valid")}
    train = {t.name for t in open_dataset("folder", tmp_path, "train")}
    assert valid and train and not valid & train and len(valid | train) == 24
    for song in range(12):
        assert (f"singer_{song}_01" in valid) == (f"singer_{song}_02" in valid)


def test_parse_spec():
    assert parse_spec("musdb:/data/musdb18") == ("musdb", Path("/data/musdb18"))
    with pytest.raises(DatasetError, match="KIND:PATH"):
        parse_spec("/data/musdb18")


# ---- errors name the file and the problem ----

def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: dataset folder not found"):
        open_dataset("folder", tmp_path / "nope")


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no usable tracks"):
        open_dataset("folder", tmp_path)
    with pytest.raises(DatasetError, match=r"no usable tracks.*\.stem\.mp4"):
        open_dataset("musdb", tmp_path)


def test_a_split_that_is_empty_because_every_track_hashed_to_the_other_one_says_so_and_how_to_fix_it(tmp_path):
    names = [f"song{k}" for k in range(100)]
    for name in [n for n in names if not _is_validation("folder", n)][:3]:
        write_ogg_clip(tmp_path / "train_only" / name, n=1600, stems=("vocals",))
    valid_song = next(n for n in names if _is_validation("folder", n))
    for clip in ("01", "02"):  # two clips of one song: one song, both in 'valid'
        write_ogg_clip(tmp_path / "valid_only" / f"{valid_song}_{clip}", n=1600, stems=("vocals",))
    why = ("hashed to the {} split (a stable hash of the song name puts about 1 song in 10 into 'valid', so a few "
           "songs can all land in one split)")

    with pytest.raises(DatasetError) as error:
        open_dataset("folder", tmp_path / "train_only", "valid")
    assert str(error.value) == (f"{tmp_path / 'train_only'}: no tracks in split 'valid': all 3 tracks (3 songs) "
                                + why.format("'train'") + "; add songs, or name validation data with "
                                "--validation KIND:PATH")
    assert len(open_dataset("folder", tmp_path / "train_only", "train")) == 3

    with pytest.raises(DatasetError) as error:
        open_dataset("folder", tmp_path / "valid_only", "train")
    assert str(error.value) == (f"{tmp_path / 'valid_only'}: no tracks in split 'train': all 2 tracks (1 song) "
                                + why.format("'valid'") + "; add songs, or validate on these tracks with "
                                f"--validation folder:{tmp_path / 'valid_only'}#valid and train on other data")

    write_hq_track(tmp_path / "hq" / "A - B")  # not a MUSDB18 validation track
    with pytest.raises(DatasetError, match=r"hq: no tracks in split 'valid': none of its 1 track is one of the 14 "
                                           r"standard MUSDB18 validation tracks; add tracks, or name validation"):
        open_dataset("musdb-hq", tmp_path / "hq", "valid")


def test_musdb_hq_missing_stem(tmp_path):
    write_hq_track(tmp_path / "Song", stems=("mixture", "drums", "other", "vocals"))
    with pytest.raises(DatasetError, match=r"Song: stem bass is missing"):
        open_dataset("musdb-hq", tmp_path)


def test_mismatched_rates(tmp_path):
    clip = write_ogg_clip(tmp_path / "clip_1")
    sf.write(clip / "accompaniment.ogg", np.zeros(22050, np.float32), 22050)
    with pytest.raises(DatasetError, match=r"accompaniment\.ogg: sample rate 22050 Hz differs from 16000 Hz"):
        open_dataset("folder", tmp_path)[0].load()


def test_mismatched_lengths(tmp_path):
    clip = write_ogg_clip(tmp_path / "clip_1")
    sf.write(clip / "accompaniment.ogg", np.zeros(8000, np.float32), 16000)
    with pytest.raises(DatasetError, match=r"clip_1: stems have different lengths"):
        open_dataset("folder", tmp_path)[0].load()


def test_corrupt_files(tmp_path):
    clip = write_ogg_clip(tmp_path / "folder" / "clip_1")
    (clip / "vocals.ogg").write_bytes(b"OggS" + bytes(200))
    with pytest.raises(DatasetError, match=r"vocals\.ogg: cannot decode audio"):
        open_dataset("folder", tmp_path / "folder")[0].load()


@STEMPEG
def test_corrupt_stem_file(tmp_path):
    (tmp_path / "musdb").mkdir()
    (tmp_path / "musdb" / "Broken.stem.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    with pytest.raises(DatasetError, match=r"Broken\.stem\.mp4: cannot read the stem file"):
        open_dataset("musdb", tmp_path / "musdb")[0].load()


@STEMPEG
def test_stem_file_with_wrong_stream_count(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(440.0, 4410), RATE)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), "-c:a", "aac",
                    "-f", "mp4", str(tmp_path / "Single.stem.mp4")], check=True)
    with pytest.raises(DatasetError, match=r"Single\.stem\.mp4: has 1 audio streams; a MUSDB18 stem file has 5"):
        open_dataset("musdb", tmp_path)[0].load()


@pytest.mark.data
def test_real_shared_data_when_present(shared_data):
    musdb = open_dataset("musdb", shared_data / "musdb18-preview", "valid")
    assert sorted(t.name for t in musdb) == sorted(MUSDB_VALIDATION_TRACKS)
    clips = open_dataset("folder", shared_data / "mir-1k")
    assert len(clips) == 1000 and all(t.stems == ("vocals", "accompaniment") for t in clips)
    rate, stems = clips[0].load()
    assert rate == 16000 and stems["vocals"].shape == stems["accompaniment"].shape
