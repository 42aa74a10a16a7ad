"""Streaming audio file input and output for file mode.

Files are read and written block by block so memory stays flat however long
the song is. soundfile (libsndfile) handles wav, flac, ogg, mp3, aiff...;
other containers (m4a, mp4, aac, opus, wma...) are decoded by an ``ffmpeg``
subprocess that streams raw float32 samples through a pipe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import UserError

SOUNDFILE_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError)
# Extensions users give for formats soundfile names differently.
FORMAT_ALIASES = {"AIF": "AIFF", "OGA": "OGG", "WAVE": "WAV"}
# Formats written as 32-bit float by default: lossless for model output and immune to clipping.
FLOAT_CONTAINERS = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF"}
# Integer formats without a float subtype get 24 bits, so quiet stems keep their detail.
DEFAULT_SUBTYPES = {"FLAC": "PCM_24"}
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
# Audio extensions ffmpeg decodes and libsndfile does not: a failure to read them means a damaged file.
FFMPEG_EXTENSIONS = {"m4a", "mp4", "aac", "opus", "wma", "webm", "mka", "mkv", "ac3", "alac", "ape", "wv", "amr"}


def readable_formats() -> str:
    return "wav, flac, ogg, mp3, aiff" + (", and through ffmpeg m4a, aac, opus, wma..." if _ffmpeg() else "")


def _ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


class AudioReader:
    """Float32 blocks ``(n, channels)`` from one audio file, never the whole file at once.

    ``channels`` is the number of channels delivered, after the optional
    selection of channels from a multichannel file.
    """

    path: Path
    samplerate: int
    file_channels: int
    frames: int | None  # None when the container does not say (ffmpeg streams)

    def __init__(self, select: list[int] | None):
        self._select = select

    @property
    def channels(self) -> int:
        return len(self._select) if self._select else self.file_channels

    @property
    def duration(self) -> float | None:
        return None if self.frames is None else self.frames / self.samplerate

    def read(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (frames, channels) from the file; return the filled part (empty at the end)."""
        if self._select is None:
            return self._read_into(out)
        raw = self._raw_buffer(len(out))
        got = self._read_into(raw)
        np.take(got, self._select, axis=1, out=out[: len(got)])
        return out[: len(got)]

    def _raw_buffer(self, frames: int) -> np.ndarray:
        buf = getattr(self, "_raw", None)
        if buf is None or len(buf) < frames:
            buf = self._raw = np.empty((frames, self.file_channels), np.float32)
        return buf[:frames]

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SoundFileReader(AudioReader):
    def __init__(self, path: Path, handle: sf.SoundFile, select: list[int] | None):
        super().__init__(select)
        self.path, self._file = path, handle
        self.samplerate, self.file_channels = handle.samplerate, handle.channels
        self.frames = handle.frames if handle.seekable() else None

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        try:
            return self._file.read(len(out), dtype="float32", always_2d=True, out=out)
        except SOUNDFILE_ERRORS as exc:
            raise UserError(f"cannot read {self.path}: the file is damaged ({exc})") from None

    def close(self) -> None:
        self._file.close()


class FfmpegReader(AudioReader):
    """Decodes any container ffmpeg knows into a pipe of interleaved float32 samples."""

    def __init__(self, path: Path, ffmpeg: str, samplerate: int, channels: int, duration: float | None,
                 select: list[int] | None):
        super().__init__(select)
        self.path, self.samplerate, self.file_channels = path, samplerate, channels
        self.frames = None if duration is None else int(round(duration * samplerate))
        self._errors = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on stderr
        self._proc = subprocess.Popen(
            [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
             "-f", "f32le", "-acodec", "pcm_f32le", "-"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errors,
            start_new_session=True,  # Ctrl-C is ours to handle: ffmpeg must not die first and look like a bad file
        )

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        view = memoryview(out.reshape(-1)).cast("B")
        filled = 0
        while filled < len(view):
            n = self._proc.stdout.readinto(view[filled:])
            if not n:
                break
            filled += n
        frames = filled // (4 * self.file_channels)
        if frames == 0 and self._proc.wait() != 0:
            self._errors.seek(0)
            lines = self._errors.read().decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit code {self._proc.returncode}"
            raise UserError(f"ffmpeg could not decode {self.path}: {reason}")
        return out[:frames]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.stdout.close()
        self._proc.wait()
        self._errors.close()


def parse_channel_selection(text: str | None, file_channels: int, path: Path) -> list[int] | None:
    """``--channels 3,4`` (1-based) -> [2, 3]; None keeps a mono or stereo file as it is."""
    if text is None:
        if file_channels > 2:
            raise UserError(
                f"{path} has {file_channels} channels; pick the two to separate with --channels N,M "
                "(1-based, e.g. --channels 1,2)"
            )
        return None
    try:
        picked = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--channels {text!r}: expected one or two 1-based channel numbers like 1,2") from None
    if not 1 <= len(picked) <= 2 or not all(1 <= c <= file_channels for c in picked):
        raise UserError(
            f"--channels {text}: pick one or two channels between 1 and {file_channels} ({path} has "
            f"{file_channels})"
        )
    return [c - 1 for c in picked]


def open_input(path: str | Path, channels: str | None = None) -> AudioReader:
    """Open an audio file for block reading, or raise a UserError that says what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.is_dir():
        raise UserError(f"input {path} is a directory; pass audio files (e.g. {path}/*.flac)")
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {path}: permission denied")
    try:
        handle = sf.SoundFile(path)
    except SOUNDFILE_ERRORS as exc:
        sf_reason = str(exc)
    else:
        try:
            select = parse_channel_selection(channels, handle.channels, path)
        except UserError:
            handle.close()
            raise
        return SoundFileReader(path, handle, select)
    return _open_with_ffmpeg(path, channels, sf_reason)


def _open_with_ffmpeg(path: Path, channels: str | None, sf_reason: str) -> AudioReader:
    ext = path.suffix.lower().lstrip(".")
    sf_format = FORMAT_ALIASES.get(ext.upper(), ext.upper())
    ffmpeg = _ffmpeg()
    if ffmpeg is None or shutil.which("ffprobe") is None:
        if sf_format in sf.available_formats():
            raise UserError(f"cannot read {path}: the file is damaged or not really {ext} ({sf_reason})")
        raise UserError(
            f"cannot read {path}: .{ext or '(no extension)'} needs ffmpeg, which is not installed; "
            f"install ffmpeg or convert the file to wav or flac"
        )
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True,
    )
    try:
        data = json.loads(probe.stdout or "{}")
        stream = data["streams"][0]
        samplerate, file_channels = int(stream["sample_rate"]), int(stream["channels"])
    except (KeyError, IndexError, ValueError, TypeError):
        if sf_format in sf.available_formats() or ext in FFMPEG_EXTENSIONS:
            raise UserError(f"cannot read {path}: the file is damaged or not really {ext}") from None
        raise UserError(
            f"cannot read {path}: not an audio file in a supported format ({readable_formats()})"
        ) from None
    try:
        duration = float(data.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        duration = None
    select = parse_channel_selection(channels, file_channels, path)
    return FfmpegReader(path, ffmpeg, samplerate, file_channels, duration, select)


def output_format(path: Path, file_format: str | None, subtype: str | None) -> tuple[str, str]:
    """The soundfile (format, subtype) to write: --format, else the file extension, else wav.

    Default subtypes: FLOAT for wav-like containers (stems can exceed full scale,
    float never clips), PCM_24 for flac, the format's own default otherwise.
    """
    name = (file_format or path.suffix.lstrip(".") or "wav").upper()
    fmt = FORMAT_ALIASES.get(name, name)
    writable = sorted(f.lower() for f in sf.available_formats() if f not in ("RAW", "MAT4", "MAT5"))
    if fmt not in sf.available_formats() or fmt == "RAW":
        raise UserError(f"cannot write {name.lower()} files; choose one of {', '.join(writable)} "
                        "with --format or the output file's extension")
    if subtype is None:
        subtype = "FLOAT" if fmt in FLOAT_CONTAINERS else DEFAULT_SUBTYPES.get(fmt, sf.default_subtype(fmt))
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        valid = [s for s in sf.available_subtypes(fmt) if sf.check_format(fmt, s)]
        raise UserError(f"--subtype {subtype} is not valid for {fmt.lower()}; choose one of: {', '.join(valid)}")
    return fmt, subtype


def default_extension(file_format: str | None) -> str:
    """The file extension for one-file-per-stem outputs (``wav`` unless --format says otherwise)."""
    fmt = (file_format or "wav").lower()
    return {"oga": "ogg", "wave": "wav", "wavex": "wav", "aif": "aiff", "mpeg": "mp3"}.get(fmt, fmt)


class AudioWriter:
    """Writes float blocks to one file; clips and counts samples beyond full scale for non-float subtypes.

    Close it in a ``finally``: libsndfile then finishes the header, so the file
    is valid audio even when separation stopped halfway.
    """

    def __init__(self, path: Path, samplerate: int, channels: int, fmt: str, subtype: str):
        self.path = path
        self.clipped = 0
        self._clip = subtype not in FLOAT_SUBTYPES
        try:
            self._file = sf.SoundFile(path, "w", samplerate=samplerate, channels=channels,
                                      format=fmt, subtype=subtype)
        except SOUNDFILE_ERRORS as exc:
            raise UserError(f"cannot write {path} as {fmt.lower()}/{subtype} at {samplerate} Hz: {exc}") from None

    def write(self, block: np.ndarray) -> None:
        """Write (n, channels) float32 samples; may clip ``block`` in place."""
        if self._clip:
            over = np.abs(block) > 1.0
            count = int(np.count_nonzero(over))
            if count:
                self.clipped += count
                np.clip(block, -1.0, 1.0, out=block)
        self._file.write(block)

    def close(self) -> None:
        self._file.close()
