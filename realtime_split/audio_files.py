"""Streaming audio file input and output for file mode.

Files are read and written block by block so memory stays flat however long
the song is. soundfile (libsndfile) handles wav, flac, ogg, mp3, aiff...;
other containers (m4a, mp4, aac, opus, wma...) are decoded by an ``ffmpeg``
subprocess that streams raw float32 samples through a pipe.

``-`` is standard input or output, and any input that is not a regular file (a
pipe, ``/dev/stdin``, bash's ``<(...)``) is a stream: libsndfile reads it once,
front to back (wav, ogg, au; flac and mp3 need seeking), and a stream output is
written in a format whose header needs no seeking (au by default; flac, ogg).

A reader notes when its input ends before the length its header promised
(``ended_early``): a truncated file is separated as far as it goes, with a warning.
A writer turns a failed write (a full disk) into a ``WriteError`` naming the file
and the cause. An output is opened in a container that can hold it
(``plan_container``): a wav that would pass 4 GiB, or might (its length is
unknown), is RF64, which libsndfile keeps a plain RIFF WAV when it ends below
4 GiB; a container that cannot grow (aiff, a wav named by ``format=``) is refused
up front when its known length cannot fit, and otherwise stops with a
``WriteError`` at its limit rather than write a header that lies. Files that
cannot be read or written raise ``AudioIOError`` (an ``OSError``), arguments that
make no sense (``channels=``, ``format=``, ``subtype=``) ``ParameterError``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioIOError, ParameterError, UserError

NAME_MAX = 255  # bytes in one file name (Linux, macOS); longer ones fail with "File name too long"
SOUNDFILE_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError)
# Extensions users give for formats soundfile names differently.
FORMAT_ALIASES = {"AIF": "AIFF", "OGA": "OGG", "WAVE": "WAV"}
# Formats written as 32-bit float by default: lossless for model output and immune to clipping.
FLOAT_CONTAINERS = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF", "AU"}
# Integer formats without a float subtype get 24 bits, so quiet stems keep their detail.
DEFAULT_SUBTYPES = {"FLAC": "PCM_24"}
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
# Audio extensions ffmpeg decodes and libsndfile does not: a failure to read them means a damaged file.
FFMPEG_EXTENSIONS = {"m4a", "mp4", "aac", "opus", "wma", "webm", "mka", "mkv", "ac3", "alac", "ape", "wv", "amr"}
STDIO = "-"
# Which input channels to separate: "3,4" or (3, 4), 1-based as audio editors number them; None: a mono or
# stereo file as it is.
ChannelSelection = str | Sequence[int] | None
# What a stream output can be: formats libsndfile writes without seeking back to the header.
STREAM_FORMATS = ("AU", "FLAC", "OGG")
STREAM_DEFAULT = "AU"
# Frames per libsndfile read call: a read that fails (a truncated flac) loses at most this many frames.
READ_CHUNK = 4096
# Sample rates a real recording has; outside them the header is damaged (resampling 2 GHz would take days).
SAMPLE_RATES = (1000, 768000)
# Containers whose header counts the audio in 32 bits: the bytes they hold. Past them libsndfile (1.2.2) keeps
# writing but caps or wraps the header, so the file reads back short or not at all, and says nothing. AU is not
# one: past 2 GiB libsndfile writes AU's "unknown size" and readers read to the end (files and pipes). W64, CAF
# and RF64 count in 64 bits; avr, ircam, mpc2k, nist, paf, pvf, sd2, svx, voc and wve read back whole past 4 GiB.
SIZE_LIMITS = {"WAV": 2 ** 32, "WAVEX": 2 ** 32, "AIFF": 2 ** 32, "HTK": 2 ** 31}
HEADER_ROOM = 2 ** 16  # bytes of the limit left to the header and its chunks
# A length known in advance may be an estimate (ffmpeg's duration, an mp3 without a Xing header): above this
# fraction of the limit a wav is opened as RF64 too (it stays plain WAV if it ends below 4 GiB).
NEAR_LIMIT = 0.98
# Bytes per sample; the compressed subtypes (ADPCM, GSM 6.10, G.72x, mp3 in wav) take less, counted as 1.
SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                "FLOAT": 4, "DOUBLE": 8}
GROWABLE = ("WAV", "WAVEX")  # what RF64 (EBU Tech 3306, the WAV successor, still named .wav) extends
# sndfile.h's sf_command: an RF64 file open for writing becomes a plain RIFF/WAVE file at close when it ends
# below 4 GiB (soundfile does not name the constant; its cffi handle reaches the command).
SFC_RF64_AUTO_DOWNGRADE = 0x1210
# WAV format tags whose data chunk is plain frames of nBlockAlign bytes (PCM, float, A-law, mu-law, extensible).
WAV_PLAIN_TAGS = {0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE}


class WriteError(AudioIOError):
    """Writing an output failed (disk full, file too large, device gone); ``path`` is the output."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def label(path: str | Path, output: bool = False) -> str:
    """How messages name a file; ``-`` is standard input, or standard output for an ``output``."""
    return ("standard output" if output else "standard input") if str(path) == STDIO else str(path)


def is_stream(path: str | Path) -> bool:
    """``-`` or anything that is not a regular file (a pipe, a terminal, /dev/stdin on a pipe): readable once."""
    if str(path) == STDIO:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def name_problem(path: str | Path) -> str | None:
    """Why the system cannot take ``path`` as a name, before anyone tries: a part longer than a file name may be
    (255 bytes on Linux; ``File name too long`` otherwise), or a symbolic link that loops."""
    text = os.fspath(path)
    if text == STDIO:
        return None
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            return f"the name {part[:24]}... is {size} bytes long, more than the {NAME_MAX} a file name can hold"
    try:
        os.stat(text)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"it is a symbolic link that leads back to itself ({exc.strerror})"
        if exc.errno == errno.ENAMETOOLONG:
            return f"the path is {len(os.fsencode(text))} bytes long, more than the system takes ({exc.strerror})"
    return None


def not_a_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot become a folder: the nearest part of it that exists is a file (or a device, or a link
    that cannot be followed), not a folder."""
    for part in (folder, *folder.parents):
        if not os.path.lexists(part):
            continue
        try:
            if stat.S_ISDIR(os.stat(part).st_mode):
                return None
        except OSError as exc:
            return f"{part} is a symbolic link that cannot be followed ({exc.strerror})"
        return f"{part} is a file, not a folder"
    return None


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, following links: two names of one file compare equal."""
    if str(path) == STDIO:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _cause(exc: BaseException) -> str:
    """The system's reason for a failed libsndfile call (``No space left on device``), else the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    code = getattr(sf._ffi, "errno", 0)
    if "System error" in str(exc) and code:
        return os.strerror(code)
    return str(exc).strip().rstrip(".") or type(exc).__name__


# What a failed write's errno means when libsndfile's own message hides it (the flac encoder says "problem with
# initialization of the flac decoder" when the disk is full).
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EPIPE, errno.EROFS}


def _write_cause(exc: BaseException) -> str:
    """The system's reason for a failed write, also when libsndfile reports its encoder's message instead."""
    code = getattr(sf._ffi, "errno", 0)
    if code == errno.EPIPE:
        return f"{os.strerror(code)} (the program reading it has exited)"
    if code in WRITE_ERRNOS:
        return os.strerror(code)
    return _cause(exc)


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
    ended_early: str | None = None  # why the input stopped before its promised length (a truncated file)

    def __init__(self, select: list[int] | None):
        self._select = select
        self.frames_read = 0

    @property
    def channels(self) -> int:
        return len(self._select) if self._select else self.file_channels

    @property
    def duration(self) -> float | None:
        return None if self.frames is None else self.frames / self.samplerate

    def read(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (frames, channels) from the file; return the filled part (empty at the end)."""
        if self._select is None:
            got = self._read_into(out)
        else:
            raw = self._raw_buffer(len(out))
            got = self._read_into(raw)
            np.take(got, self._select, axis=1, out=out[: len(got)])
            got = out[: len(got)]
        self.frames_read += len(got)
        return got

    def _raw_buffer(self, frames: int) -> np.ndarray:
        buf = getattr(self, "_raw", None)
        if buf is None or len(buf) < frames:
            buf = self._raw = np.empty((frames, self.file_channels), np.float32)
        return buf[:frames]

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _library_noise_hidden():
    """libsndfile's mp3 decoder (libmpg123) prints notes to file descriptor 2 while it probes a file that is
    not mp3; the user is told what matters in one line of ours, so hide those while opening."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_rate(path: Path, samplerate: int) -> None:
    if not SAMPLE_RATES[0] <= samplerate <= SAMPLE_RATES[1]:
        raise AudioIOError(f"cannot read {label(path)}: its header says {samplerate} Hz, outside the "
                        f"{SAMPLE_RATES[0]} to {SAMPLE_RATES[1]} Hz of real audio; the file is damaged")


class SoundFileReader(AudioReader):
    def __init__(self, path: Path, handle: sf.SoundFile, select: list[int] | None):
        super().__init__(select)
        self.path, self._file = path, handle
        self.samplerate, self.file_channels = handle.samplerate, handle.channels
        self.frames = handle.frames if handle.seekable() else None
        self._promised = self.frames  # what the header says; libsndfile clamps a wav's frames to its data
        if self.frames is None and 0 < handle.frames < 2 ** 40 and \
                audio_bytes(handle.frames, handle.channels, handle.subtype) < SIZE_LIMITS["WAV"] - HEADER_ROOM:
            self._promised = handle.frames  # a stream's header that gives a size (not "unknown", 0xFFFFFFFF)
        if self.frames is not None and handle.format in ("WAV", "WAVEX"):
            declared = _wav_declared_frames(path)
            if declared is not None and declared > self.frames:
                self._promised = declared
        self._done = False

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        filled = 0
        while filled < len(out) and not self._done:
            chunk = out[filled:filled + READ_CHUNK]
            try:
                got = len(self._file.read(len(chunk), dtype="float32", always_2d=True, out=chunk))
            except SOUNDFILE_ERRORS as exc:
                if self.frames_read + filled == 0:
                    raise AudioIOError(f"cannot read {label(self.path)}: the file is damaged ({_cause(exc)})") from None
                self.ended_early = f"the rest cannot be decoded: {_cause(exc)}"
                self._done = True
                break
            filled += got
            if got < len(chunk):
                self._done = True
                self._check_length(self.frames_read + filled)
        return out[:filled]

    def _check_length(self, read: int) -> None:
        """At the end: did the file hold the frames its header promised? A wav on a pipe promises nothing (its
        sizes say "unknown", 0xFFFFFFFF), but libsndfile reads no further than that: the rest is out of reach."""
        if self._promised is None:
            if self._file.format in GROWABLE and \
                    audio_bytes(read, self.file_channels, self._file.subtype) > SIZE_LIMITS["WAV"] - HEADER_ROOM:
                self.ended_early = ("a wav through a pipe ends at 4 GiB, all its header can count, so the rest "
                                    "cannot be read; pipe au instead (e.g. ffmpeg -i song.m4a -f au -)")
            return
        if read >= self._promised:
            return
        tolerance = 0
        if self._file.format == "MPEG":  # without a Xing header the length is estimated from the file size
            tolerance = max(0.01 * self._promised, 0.1 * self.samplerate)
        if self._promised - read > tolerance:
            self.ended_early = f"its header promises {self._promised / self.samplerate:.1f} s: the file is truncated"

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
        self._stdout = typing.cast(io.BufferedReader, self._proc.stdout)  # stdout=PIPE, default buffering

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        view = out.reshape(-1).data.cast("B")
        filled = 0
        while filled < len(view):
            n = self._stdout.readinto(view[filled:])
            if not n:
                break
            filled += n
        frames = filled // (4 * self.file_channels)
        if frames < len(out) and self._proc.wait() != 0:
            reason = self._reason()
            if frames == 0 and self.frames_read == 0:
                raise AudioIOError(f"ffmpeg could not decode {self.path}: {reason}")
            self.ended_early = f"ffmpeg stopped decoding: {reason}"
        return out[:frames]

    def _reason(self) -> str:
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self._proc.returncode}"

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._stdout.close()
        self._proc.wait()
        self._errors.close()


def parse_channel_selection(selection: ChannelSelection, file_channels: int, path: Path) -> list[int] | None:
    """``channels="3,4"`` or ``(3, 4)`` (1-based) -> [2, 3]; None keeps a mono or stereo file as it is."""
    if selection is None:
        if file_channels > 2:
            raise ParameterError(f"{label(path)} has {file_channels} channels; pick the two to separate, 1-based, "
                                 "e.g. channels='1,2'", "channels")
        return None
    try:
        parts = selection.split(",") if isinstance(selection, str) else list(selection)
        if any(isinstance(part, bool) or not isinstance(part, (str, int, np.integer)) for part in parts):
            raise TypeError("channel numbers are integers")
        picked = [int(part) for part in parts]
    except (TypeError, ValueError):
        raise ParameterError(f"channels={selection!r}: expected one or two 1-based channel numbers, "
                             "e.g. channels='1,2'", "channels") from None
    if not 1 <= len(picked) <= 2 or not all(1 <= c <= file_channels for c in picked):
        raise ParameterError(f"channels={selection!r}: pick one or two channels between 1 and {file_channels} "
                             f"({label(path)} has {file_channels})", "channels")
    return [c - 1 for c in picked]


def _wav_declared_frames(path: Path) -> int | None:
    """Frames a RIFF WAV's data chunk declares (None: not a plain RIFF WAV, or a streamed header's unknown size)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
                return None
            block_align = 0
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"fmt ":
                    fmt = f.read(size)
                    if len(fmt) < 14 or int.from_bytes(fmt[:2], "little") not in WAV_PLAIN_TAGS:
                        return None
                    block_align = int.from_bytes(fmt[12:14], "little")
                    f.seek(size & 1, 1)
                elif chunk[:4] == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF, 0x7FFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), 1)
    except OSError:
        return None


def _open_stream(path: Path, channels: ChannelSelection) -> AudioReader:
    """Standard input or a pipe: libsndfile reads it once, front to back."""
    fd = None
    if str(path) == STDIO:
        if sys.stdin is None or sys.stdin.isatty():
            raise AudioIOError("input='-' reads audio from standard input, which is a terminal; pipe audio into it "
                               "(e.g. from ffmpeg -i song.m4a -f wav -) or pass a file", "input")
        fd = os.dup(sys.stdin.fileno())
    try:
        handle = sf.SoundFile(path if fd is None else fd, closefd=True)
    except SOUNDFILE_ERRORS as exc:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise AudioIOError(f"cannot read {label(path)}: {_cause(exc)}; a pipe must carry wav, ogg or au (flac and "
                           "mp3 need a file: convert on the way, e.g. ffmpeg -i song.flac -f wav -, or pass the file "
                           "itself)", "input") from None
    return _checked_reader(path, handle, channels)


def _checked_reader(path: Path, handle, channels: ChannelSelection) -> SoundFileReader:
    """A reader over an open soundfile, once its rate and the channel selection are valid (else closed)."""
    try:
        _check_rate(path, handle.samplerate)
        select = parse_channel_selection(channels, handle.channels, path)
    except UserError:
        handle.close()
        raise
    return SoundFileReader(path, handle, select)


def open_input(path: str | os.PathLike, channels: ChannelSelection = None) -> AudioReader:
    """Open an audio file for block reading, or raise an ``AudioIOError`` (``ParameterError`` for
    ``channels``) that says what is wrong with it."""
    path = Path(path)
    problem = name_problem(path)
    if problem:
        raise AudioIOError(f"cannot read {path}: {problem}; check input=", "input")
    if is_stream(path):
        return _open_stream(path, channels)
    if not path.exists():
        raise AudioIOError(f"input file not found: {path}", "input")
    if path.is_dir():
        raise AudioIOError(f"input {path} is a directory; pass audio files (e.g. {path}/*.flac)", "input")
    if not os.access(path, os.R_OK):
        raise AudioIOError(f"cannot read {path}: permission denied", "input")
    try:
        with _library_noise_hidden():
            handle = sf.SoundFile(path)
    except SOUNDFILE_ERRORS as exc:
        sf_reason = str(exc)
    else:
        return _checked_reader(path, handle, channels)
    return _open_with_ffmpeg(path, channels, sf_reason)


def _open_with_ffmpeg(path: Path, channels: ChannelSelection, sf_reason: str) -> AudioReader:
    ext = path.suffix.lower().lstrip(".")
    sf_format = FORMAT_ALIASES.get(ext.upper(), ext.upper())
    ffmpeg = _ffmpeg()
    if ffmpeg is None or shutil.which("ffprobe") is None:
        if sf_format in sf.available_formats():
            raise AudioIOError(f"cannot read {path}: the file is damaged or not really {ext} ({sf_reason})", "input")
        raise AudioIOError(
            f"cannot read {path}: .{ext or '(no extension)'} needs ffmpeg, which is not installed; "
            f"install ffmpeg or convert the file to wav or flac", "input"
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
        if samplerate <= 0 or file_channels <= 0:
            raise ValueError(f"{samplerate} Hz, {file_channels} channels")
    except (KeyError, IndexError, ValueError, TypeError):
        if sf_format in sf.available_formats() or ext in FFMPEG_EXTENSIONS:
            raise AudioIOError(f"cannot read {path}: the file is damaged or not really {ext}", "input") from None
        raise AudioIOError(
            f"cannot read {path}: not an audio file in a supported format ({readable_formats()})", "input"
        ) from None
    try:
        duration = float(data.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        duration = None
    _check_rate(path, samplerate)
    select = parse_channel_selection(channels, file_channels, path)
    return FfmpegReader(path, ffmpeg, samplerate, file_channels, duration, select)


def output_format(path: Path, file_format: str | None, subtype: str | None) -> tuple[str, str]:
    """The soundfile (format, subtype) to write: ``format=``, else the file extension, else wav.

    Default subtypes: FLOAT for wav-like containers (stems can exceed full scale,
    float never clips), PCM_24 for flac, the format's own default otherwise.
    """
    to_stream = str(path) == STDIO
    name = (file_format or (STREAM_DEFAULT if to_stream else "") or path.suffix.lstrip(".") or "wav").upper()
    fmt = FORMAT_ALIASES.get(name, name)
    writable = sorted(f.lower() for f in sf.available_formats() if f not in ("RAW", "MAT4", "MAT5"))
    if fmt not in sf.available_formats() or fmt == "RAW":
        raise ParameterError(f"cannot write {name.lower()} files; choose one of {', '.join(writable)} "
                             "with format= or the output file's extension", "format")
    if to_stream and fmt not in STREAM_FORMATS:
        raise ParameterError(f"output='-' cannot be {fmt.lower()}: its header needs seeking, which a pipe cannot do; "
                             f"{', '.join(f.lower() for f in STREAM_FORMATS)} can stream (au is the default): pass "
                             "one as format=, or write a file", "format")
    if subtype is None:
        subtype = "FLOAT" if fmt in FLOAT_CONTAINERS else DEFAULT_SUBTYPES.get(fmt, sf.default_subtype(fmt))
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        valid = [s for s in sf.available_subtypes(fmt) if sf.check_format(fmt, s)]
        raise ParameterError(f"subtype={subtype!r} is not valid for {fmt.lower()}; choose one of: {', '.join(valid)}",
                             "subtype")
    return fmt, subtype


@dataclass(frozen=True)
class Container:
    """How an output is opened so it can hold its audio (``plan_container``)."""

    format: str  # what libsndfile writes: the requested format, or RF64 for a wav that may pass 4 GiB
    subtype: str
    downgrade: bool = False  # RF64 chosen for the caller: libsndfile writes it as RIFF WAV if it ends under 4 GiB
    limit: int | None = None  # audio bytes the container holds; the writer stops with a WriteError before them


def audio_bytes(frames: int, channels: int, subtype: str) -> int:
    """The bytes ``frames`` of ``channels`` take as ``subtype`` (at most, for the compressed subtypes)."""
    return frames * channels * SAMPLE_BYTES.get(subtype, 1)


def size_fix(fmt: str, subtype: str, explicit: bool = False) -> str:
    """What to write instead of a ``fmt`` file that cannot hold the audio (``explicit``: format= named it)."""
    if fmt in GROWABLE:
        if not sf.check_format("RF64", subtype):
            return (f"RF64 (wav past 4 GiB) cannot hold subtype={subtype!r}: pass subtype='PCM_16' or "
                    "subtype='FLOAT', or format='w64'")
        return ("pass format='rf64' (wav past 4 GiB, still named .wav), format='w64' or format='flac'"
                + (", or leave format= out (RF64 only when needed)" if explicit else ""))
    if fmt == "AIFF":
        return "write caf (aiff's successor), w64, flac or wav (RF64 past 4 GiB) instead, with format= or output="
    return "write wav (RF64 past 4 GiB), w64 or flac instead, with format= or output="


def plan_container(fmt: str, subtype: str, channels: int, frames: int | None, *, explicit: bool = False,
                   name: str = "the output") -> Container:
    """The container for ``frames`` (None: unknown, e.g. standard input) of ``channels`` x ``subtype`` in ``fmt``.

    A wav whose known length stays clearly below 4 GiB is a plain WAV, as ever. One that passes it, comes near
    it or has no known length is RF64 with libsndfile's auto-downgrade, so it ends as a plain RIFF WAV when it
    stayed below 4 GiB and as RF64 beyond (``AudioWriter.rf64`` says which). ``explicit`` (format= named the
    container) keeps a wav a wav. A container that cannot grow is refused here (``ParameterError``) when the
    known length cannot fit, and otherwise gets a ``limit`` the writer stops at with a ``WriteError``.
    """
    limit = SIZE_LIMITS.get(fmt)
    if limit is None:
        return Container(fmt, subtype)
    room = limit - HEADER_ROOM
    need = None if frames is None else audio_bytes(frames, channels, subtype)
    if fmt in GROWABLE and not explicit and sf.check_format("RF64", subtype):
        if need is not None and need <= NEAR_LIMIT * room:
            return Container(fmt, subtype, limit=room)
        return Container("RF64", subtype, downgrade=True)
    if need is not None and need > room:
        parameter = "subtype" if fmt in GROWABLE and not sf.check_format("RF64", subtype) else \
            "format" if explicit else "output"
        given = f"format={fmt.lower()!r}: " if parameter == "format" else ""
        raise ParameterError(f"{given}{name} would take {need / 2 ** 30:.3f} GiB, more than {fmt.lower()} files "
                             f"hold ({limit // 2 ** 30} GiB); {size_fix(fmt, subtype, explicit)}", parameter)
    return Container(fmt, subtype, limit=room)


def _rf64_auto_downgrade(handle: sf.SoundFile) -> bool:
    """Ask libsndfile to write a new RF64 file as RIFF WAV if it ends below 4 GiB; whether it agreed."""
    try:
        return bool(sf._snd.sf_command(handle._file, SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1))  # 1: SF_TRUE
    except (AttributeError, TypeError):  # a soundfile without these internals
        return False


def default_extension(file_format: str | None) -> str:
    """The file extension for one-file-per-stem outputs (``wav`` unless ``format=`` says otherwise)."""
    fmt = (file_format or "wav").lower()
    return {"oga": "ogg", "wave": "wav", "wavex": "wav", "aif": "aiff", "mpeg": "mp3"}.get(fmt, fmt)


class AudioWriter:
    """Writes float blocks to one file; clips and counts samples beyond full scale for non-float subtypes.

    ``-`` is standard output (a format from ``STREAM_FORMATS``). NaN/Inf samples are written as 0 and
    counted (``nonfinite``), so an output is always finite. A failed write raises ``WriteError`` with
    the system's reason. Close it in a ``finally``: libsndfile then finishes the header, so the file
    is valid audio even when separation stopped halfway.

    ``container`` (``plan_container``) says how to open it; without one the length counts as unknown, so a
    wav is RF64 that stays plain WAV below 4 GiB. A write that would pass the container's limit raises
    ``WriteError`` and writes nothing, so the file stays valid. After ``close``, ``rf64`` says whether a
    wav opened as RF64 for the caller ended as RF64 (it passed 4 GiB).
    """

    def __init__(self, path: Path, samplerate: int, channels: int, fmt: str, subtype: str,
                 container: Container | None = None, target: Path | None = None):
        self.path, self.samplerate = path, samplerate
        self.target = path if target is None else target  # where the bytes go: an ``OutputSet`` temporary
        self.clipped = 0
        self.nonfinite = 0
        self.frames = 0  # written successfully
        self.failed = False
        self.rf64 = False
        self.container = container or plan_container(fmt, subtype, channels, None)
        fmt, subtype = self.container.format, self.container.subtype
        self._frame_bytes = audio_bytes(1, channels, subtype)
        self._clip = subtype not in FLOAT_SUBTYPES
        # libsndfile gets a file descriptor we opened: any file name the system takes works (also one that is not
        # UTF-8), and an OSError (a name too long, a folder in the way) gets its reason.
        fd = _stdout_fd() if str(path) == STDIO else _open_output(path, self.target)
        try:
            self._file = sf.SoundFile(fd, "w", samplerate=samplerate, channels=channels,
                                      format=fmt, subtype=subtype, closefd=True)
        except SOUNDFILE_ERRORS as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            if getattr(sf._ffi, "errno", 0) in WRITE_ERRNOS:  # the header could not go out (a full disk, no reader)
                raise AudioIOError(f"cannot write {label(path, True)}: {_write_cause(exc)}", "output") from None
            raise AudioIOError(f"cannot write {label(path, True)} as {fmt.lower()}/{subtype} at {samplerate} Hz: "
                               f"{_write_cause(exc)}", "output") from None
        if self.container.downgrade:
            _rf64_auto_downgrade(self._file)  # refused: the file is RF64 whatever its size, valid, and rf64 says so

    def write(self, block: np.ndarray) -> None:
        """Write (n, channels) float32 samples; may clip or zero NaN/Inf samples of ``block`` in place."""
        limit = self.container.limit
        if limit is not None and (self.frames + len(block)) * self._frame_bytes > limit:
            fmt, subtype = self.container.format, self.container.subtype
            raise WriteError(f"cannot write {label(self.path, True)} past {limit / 2 ** 30:.1f} GiB: {fmt.lower()} "
                             f"files hold no more; {size_fix(fmt, subtype)}", self.path)
        if not np.isfinite(block).all():
            bad = ~np.isfinite(block)
            self.nonfinite += int(np.count_nonzero(bad))
            block[bad] = 0.0
        if self._clip:
            over = np.abs(block) > 1.0
            count = int(np.count_nonzero(over))
            if count:
                self.clipped += count
                np.clip(block, -1.0, 1.0, out=block)
        try:
            self._file.write(block)
        except SOUNDFILE_ERRORS as exc:
            self.failed = True
            raise WriteError(f"cannot write {label(self.path, True)}: {_write_cause(exc)}", self.path) from None
        self.frames += len(block)

    def cut(self, frames: int) -> bool:
        """After a failed write: shorten the file to ``frames`` so every stem ends at the same sample.
        False when the format cannot be truncated (compressed formats, pipes)."""
        if frames >= self.frames and not self.failed:
            return True
        try:
            self._file.truncate(frames)
        except SOUNDFILE_ERRORS:
            return False
        self.frames = frames
        self.failed = False  # what the failed write left past ``frames`` is gone
        return True

    def close(self) -> None:
        """Finish the header and close; a failure here (the disk filled up) is reported like a failed write."""
        try:
            self._file.close()
        except SOUNDFILE_ERRORS as exc:
            self.failed = True
            raise WriteError(f"cannot finish {label(self.path, True)}: {_write_cause(exc)}", self.path) from None
        if self.container.downgrade:
            try:
                with open(self.target, "rb") as f:
                    self.rf64 = f.read(4) == b"RF64"
            except OSError:
                pass


def _stdout_fd() -> int:
    """A duplicate of standard output for libsndfile, once it is known to lead somewhere audio can go."""
    stdout = sys.stdout
    try:
        fd = stdout.fileno() if stdout is not None else -1
        os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        raise AudioIOError("output='-' writes audio to standard output, which is closed; pipe it into a program "
                           "(e.g. | ffmpeg -i - vocals.mp3) or write a file (output='FILE')", "output") from None
    if os.isatty(fd):
        raise AudioIOError("output='-' writes audio to standard output, which is a terminal; pipe it into "
                           "a program (e.g. | ffmpeg -i - vocals.mp3) or write a file (output='FILE')", "output")
    with contextlib.suppress(OSError, ValueError):
        stdout.flush()
    return os.dup(fd)


def _open_output(path: Path, target: Path) -> int:
    """``target`` (``path``'s temporary, or ``path``) opened for libsndfile, or an ``AudioIOError`` naming ``path``."""
    try:
        return os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise AudioIOError(f"cannot write {label(path, True)}: {exc.strerror or exc}; pass another output=",
                           "output") from None


def readable(path: Path) -> bool:
    """Whether a closed output decodes: a compressed file cut short by a full disk may not."""
    if str(path) == STDIO:
        return True
    try:
        with _library_noise_hidden(), sf.SoundFile(path) as f:
            if not 0 <= f.frames < 2 ** 40:  # libsndfile's "unknown length" (a flac whose header never got written)
                return False
            f.read(min(f.frames, READ_CHUNK), dtype="float32")
        return True
    except SOUNDFILE_ERRORS:
        return False


def stored_frames(path: Path) -> int | None:
    """The frames a closed output's header says it holds (None: it does not say, or does not open)."""
    try:
        with _library_noise_hidden():  # libmpg123's notes on an mp3 cut short
            return sf.info(str(path)).frames
    except SOUNDFILE_ERRORS:
        return None


def decoded_frames(path: Path) -> int | None:
    """The frames a closed output decodes to, read to its end (None: it fails on the way)."""
    count = 0
    try:
        with _library_noise_hidden(), sf.SoundFile(path) as f:
            while got := len(f.read(65536, dtype="float32")):  # (soundfile's blocks() counts what the header says)
                count += got
    except SOUNDFILE_ERRORS:
        return None
    return count
