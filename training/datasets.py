"""Readers for training and evaluation data, all behind one interface.

``open_dataset(kind, path, split)`` lists the tracks of a dataset without
decoding anything; ``TrackRef.load()`` decodes one track into float32 stereo
stems. Kinds:

- ``musdb``: MUSDB18 ``*.stem.mp4`` files (5 AAC streams: mixture, drums, bass,
  other, vocals). The coded mixture is ignored: it agrees with the sum of the
  stems only to about 24 dB, and training builds every mixture as that sum.
- ``musdb-hq``: MUSDB18-HQ, one folder per track with drums/bass/other/vocals.wav
  (mixture.wav is ignored for the same reason).
- ``folder``: one folder per track holding any subset of the stems
  (vocals, drums, bass, other, accompaniment) as audio files of any rate, mono or
  stereo, e.g. MIR-1K's ``<clip>/{vocals,accompaniment}.ogg``.

The stems a track does not define are simply absent from its dict; the
sampler turns that into a presence mask so no loss is put on unknown stems.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from realtime_split.errors import UserError

KINDS = ("musdb", "musdb-hq", "folder")
SPLITS = ("train", "valid", "test")
MUSDB_STEMS = ("drums", "bass", "other", "vocals")
# Stream order inside a MUSDB18 .stem.mp4 (index 0 is the coded mixture).
MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")
FOLDER_STEMS = ("vocals", "drums", "bass", "other", "accompaniment")
# The standard MUSDB18 validation split: `validation_tracks` in the musdb
# package's configs/mus.yaml (sigsep/sigsep-mus-db, v0.4). Copied so that
# training does not depend on musdb just for this list.
MUSDB_VALIDATION_TRACKS = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
# Folder datasets have no standard split: a stable hash of the song name puts
# about 1 in VALID_EVERY songs into "valid", independent of which tracks exist.
# Clips of one song (MIR-1K's amy_8_04, amy_8_05) share a song name, so they
# never straddle the split.
VALID_EVERY = 10
CLIP_SUFFIX = re.compile(r"[_-]\d+$")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".rf64")


class DatasetError(UserError):
    """Training data that cannot be used as given; the message names the file."""


@dataclass(frozen=True)
class TrackRef:
    """One track of a dataset, not yet decoded.

    ``files`` pairs each stem the track defines with the file holding it (for
    ``musdb`` every stem lives in the same ``.stem.mp4``).
    """

    name: str
    kind: str
    path: Path
    files: tuple[tuple[str, Path], ...]

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(stem for stem, _ in self.files)

    def load(self, sample_rate: int | None = None) -> tuple[int, dict[str, np.ndarray]]:
        """Decode the track: ``(rate, {stem: float32 (n, 2)})``, resampled with soxr if ``sample_rate`` is given."""
        if self.kind == "musdb":
            rate, stems = _load_stem_mp4(self.path)
        else:
            rate, stems = _load_stem_files(self.files)
        if sample_rate is not None and sample_rate != rate:
            import soxr

            stems = {k: soxr.resample(v, rate, sample_rate).astype(np.float32) for k, v in stems.items()}
            rate = sample_rate
        return rate, stems


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"musdb:/data/musdb18"`` -> ``("musdb", Path("/data/musdb18"))`` (the form of ``--data``)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS or not path:
        raise DatasetError(f"--data {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}")
    return kind, Path(path).expanduser()


def open_dataset(kind: str, path: str | Path, split: str | None = None) -> list[TrackRef]:
    """List the tracks of a dataset, sorted by name.

    ``split``: None (every track), "train", "valid" (MUSDB18: the 14 standard
    validation tracks; folder datasets: a stable hash of the name) or "test"
    (MUSDB18's ``test/`` subset).
    """
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; check the path given for {kind!r} data")
    if kind == "folder":
        if split == "test":
            raise DatasetError(f"{root}: folder datasets have no test split; use train or valid")
        tracks = [t for t in map(_folder_track, _subdirs(root)) if t is not None]
        expected = f"subfolders holding {'/'.join(FOLDER_STEMS)} audio files"
    else:
        tracks = [_musdb_track(kind, p) for p in _musdb_entries(kind, _musdb_subset(root, split))]
        expected = "*.stem.mp4 files" if kind == "musdb" else "track folders with drums/bass/other/vocals.wav"
    if split in ("train", "valid"):
        every = tracks
        tracks = [t for t in tracks if _is_validation(kind, t.name) == (split == "valid")]
        if every and not tracks:
            raise DatasetError(_one_sided_split(kind, root, split, every))
    if not tracks:
        which = f" in split {split!r}" if split else ""
        raise DatasetError(f"{root}: no usable tracks{which} for kind {kind!r} (expected {expected})")
    return sorted(tracks, key=lambda t: t.name)


def _one_sided_split(kind: str, root: Path, split: str, tracks: list[TrackRef]) -> str:
    """Why a split is empty although the dataset has tracks (all of them fell into the other split), and the fix."""
    other = "train" if split == "valid" else "valid"
    n = f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}"
    if kind == "folder":
        songs = len({CLIP_SUFFIX.sub("", t.name) for t in tracks})
        why = (f"all {n} ({songs} song{'s' if songs != 1 else ''}) hashed to the {other!r} split (a stable hash of "
               f"the song name puts about 1 song in {VALID_EVERY} into 'valid', so a few songs can all land in one "
               "split)")
    elif split == "valid":
        why = f"none of its {n} is one of the {len(MUSDB_VALIDATION_TRACKS)} standard MUSDB18 validation tracks"
    else:
        why = f"all {n} are standard MUSDB18 validation tracks"
    more = "songs" if kind == "folder" else "tracks"
    if split == "valid":
        fix = f"add {more}, or name validation data with --validation KIND:PATH"
    else:
        fix = f"add {more}, or validate on these tracks with --validation {kind}:{root}#valid and train on other data"
    return f"{root}: no tracks in split {split!r}: {why}; {fix}"


def _is_validation(kind: str, name: str) -> bool:
    if kind == "folder":
        return zlib.crc32(CLIP_SUFFIX.sub("", name).encode()) % VALID_EVERY == 0
    return name in MUSDB_VALIDATION_TRACKS


def _subdirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _musdb_subset(root: Path, split: str | None) -> list[Path]:
    """The folders to scan: MUSDB18's train/ and test/ subsets when present, else the folder itself."""
    subsets = {name: root / name for name in ("train", "test") if (root / name).is_dir()}
    if not subsets:
        if split == "test":
            raise DatasetError(f"{root}: no test/ subfolder; the test split needs the MUSDB18 layout root/test/")
        return [root]
    if split == "test":
        if "test" not in subsets:
            raise DatasetError(f"{root}: no test/ subfolder for the test split")
        return [subsets["test"]]
    if split in ("train", "valid"):
        if "train" not in subsets:
            raise DatasetError(f"{root}: no train/ subfolder for the {split} split")
        return [subsets["train"]]
    return list(subsets.values())


def _musdb_entries(kind: str, folders: list[Path]) -> list[Path]:
    if kind == "musdb":
        return [p for folder in folders for p in sorted(folder.glob("*.stem.mp4"))]
    return [p for folder in folders for p in _subdirs(folder) if _stem_files(p)]


def _musdb_track(kind: str, path: Path) -> TrackRef:
    if kind == "musdb":
        return TrackRef(path.name[: -len(".stem.mp4")], kind, path, tuple((s, path) for s in MUSDB_STEMS))
    files = _stem_files(path)
    missing = [s for s in MUSDB_STEMS if s not in files]
    if missing:
        raise DatasetError(f"{path}: stem {missing[0]} is missing (a MUSDB18-HQ track needs "
                           f"{', '.join(s + '.wav' for s in MUSDB_STEMS)})")
    return TrackRef(path.name, kind, path, tuple((s, files[s]) for s in MUSDB_STEMS))


def _folder_track(path: Path) -> TrackRef | None:
    files = _stem_files(path)
    if not files:
        return None
    return TrackRef(path.name, "folder", path, tuple((s, files[s]) for s in FOLDER_STEMS if s in files))


def _stem_files(folder: Path) -> dict[str, Path]:
    """``{stem: file}`` for the audio files in ``folder`` named after a known stem."""
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        stem = file.name.split(".")[0].lower()
        if stem in FOLDER_STEMS and file.suffix.lower() in AUDIO_SUFFIXES and file.is_file():
            if stem in found:
                raise DatasetError(f"{folder}: both {found[stem].name} and {file.name} hold stem {stem}; keep one")
            found[stem] = file
    return found


def _as_stereo(audio: np.ndarray, file: Path) -> np.ndarray:
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    if audio.shape[1] != 2:
        raise DatasetError(f"{file}: has {audio.shape[1]} channels; stems must be mono or stereo")
    if len(audio) == 0:
        raise DatasetError(f"{file}: contains no audio samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def read_stereo(file: Path) -> tuple[int, np.ndarray]:
    """One audio file as ``(rate, float32 (n, 2))``, mono spread to both channels; a clear error if unusable."""
    try:
        audio, rate = sf.read(file, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DatasetError(f"{file}: cannot decode audio ({exc}); replace or remove the file") from None
    return int(rate), _as_stereo(audio, file)


def _load_stem_files(files: tuple[tuple[str, Path], ...]) -> tuple[int, dict[str, np.ndarray]]:
    stems: dict[str, np.ndarray] = {}
    rate = None
    first = files[0][1]
    for stem, file in files:
        file_rate, audio = read_stereo(file)
        if rate is not None and file_rate != rate:
            raise DatasetError(f"{file}: sample rate {file_rate} Hz differs from {rate} Hz of {first.name}; "
                               "resample the stems of a track to one rate")
        rate = file_rate
        stems[stem] = audio
    _check_lengths(stems, first.parent, {stem: file.name for stem, file in files})
    assert rate is not None  # every track has a first file
    return int(rate), stems


def _load_stem_mp4(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    import stempeg

    try:
        info = stempeg.Info(str(path))
    except Exception as exc:  # ffprobe failures surface as several exception types
        raise DatasetError(f"{path}: cannot read the stem file ({_first_line(exc)}); "
                           "is it a valid .stem.mp4?") from None
    if info.nb_audio_streams != len(MUSDB_STREAMS):
        raise DatasetError(f"{path}: has {info.nb_audio_streams} audio streams; a MUSDB18 stem file has "
                           f"{len(MUSDB_STREAMS)} ({', '.join(MUSDB_STREAMS)})")
    rates = {info.sample_rate(i) for i in range(info.nb_audio_streams)}
    if len(rates) != 1:
        raise DatasetError(f"{path}: streams have different sample rates {sorted(rates)}")
    rate = rates.pop()
    stems: dict[str, np.ndarray] = {}
    for stem in MUSDB_STEMS:
        # One stream at a time: stempeg would silently truncate streams of different lengths.
        try:
            audio, _ = stempeg.read_stems(str(path), stem_id=MUSDB_STREAMS.index(stem), dtype=np.float32,
                                          info=info, sample_rate=rate)
        except Exception as exc:
            raise DatasetError(f"{path}: cannot decode stream {stem} ({_first_line(exc)})") from None
        stems[stem] = _as_stereo(audio, path)
    _check_lengths(stems, path, {stem: stem for stem in stems})
    return int(rate), stems


def _check_lengths(stems: dict[str, np.ndarray], where: Path, labels: dict[str, str]) -> None:
    lengths = {labels[stem]: len(audio) for stem, audio in stems.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{label}: {n}" for label, n in lengths.items())
        raise DatasetError(f"{where}: stems have different lengths ({detail} samples); "
                           "the stems of a track must be sample-aligned")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1][:200]
