"""Whole files: separate inputs into one file per stem (or their mix), what ``Separator.separate_files`` runs.

Each input streams through a StreamingSeparator in fixed-size blocks, so memory
stays flat for any length, and every stem is written as it comes out. Outputs
are time-aligned with the input (``StreamingSeparator.aligned``: the latency cut
off the front, the flushed tail appended), exactly as long as the input and at
its sample rate. Every check that can fail (inputs, format, the separator for
each input's rate, stems, output folder, an output that is the same file as any
input of the run, by device and inode, an output its container cannot hold at
the input's length) runs before the first sample is written. The run owns its outputs (``OutputSet``: a second run
writing one of them is refused; each is written under a temporary name and
renamed when its input is done). Writers are closed in ``finally`` (with SIGINT,
SIGTERM and SIGHUP held back meanwhile, and while a block goes to every stem) so
an interrupted run renames valid, shorter stems of one length. A failed write (a
full disk) stops the run with one message; the stems are cut to one common length
where the format allows and only those that decode take their names, never over
an output that existed before the run. A truncated input is separated as far as
it goes (``FileResult.ended_early`` says where it ended); the stems cover what was read.

With ``mix=True`` and one output file (or ``-``), the selected stems are not refused as
"one file each" but summed, gains applied, into that file: gains ``vocals=-inf`` make it the
karaoke mix, like the stem ``accompaniment`` but with every stem's level under control.

Nothing here prints: progress goes to the caller's callback, the outcome comes back as a
``FileResult`` (the CLI turns both into its bar, summary and warnings).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio_files import (
    STDIO,
    AudioReader,
    AudioWriter,
    ChannelSelection,
    Container,
    WriteError,
    decoded_frames,
    default_extension,
    file_identity,
    is_stream,
    label,
    name_problem,
    not_a_folder,
    open_input,
    output_format,
    plan_container,
    readable,
    stored_frames,
)
from .errors import AudioIOError, ParameterError, UserError, signals_deferred
from .output_set import OutputSet
from .separator import BLOCK_FRAMES, StreamingSeparator

MIX = "mix"  # the key of FileResult.outputs when the stems were summed into one file


@dataclass(frozen=True)
class FileResult:
    """What separating one input wrote, and how it went."""

    input: Path
    outputs: dict[str, Path]  # stem -> the file written, in stem order; {"mix": path} for a mix
    stems: tuple[str, ...]
    gains_db: dict[str, float]
    mix: bool  # the output holds the sum of the (gained) stems
    sample_rate: int
    channels: int
    seconds: float  # of audio separated: the input's length, or where a truncated input ended
    elapsed_seconds: float  # wall-clock time it took
    latency_samples: int  # the separator's delay at sample_rate, compensated: outputs line up with the input
    latency_seconds: float
    preset: str
    hop: int  # model samples
    provider: str
    nonfinite_inputs: int  # NaN/Inf input samples replaced by silence
    nonfinite_outputs: int  # NaN/Inf samples the model produced, replaced by silence (a broken model)
    clipped: int  # samples beyond full scale clipped by an integer output subtype
    ended_early: str | None  # why the input stopped before its promised length (a truncated file)
    rf64: tuple[Path, ...] = ()  # the wav outputs written as RF64, the WAV successor, because they passed 4 GiB

    @property
    def speed(self) -> float:
        """Seconds of audio per second of wall-clock time ("x real time")."""
        return self.seconds / self.elapsed_seconds if self.elapsed_seconds > 0 else float("inf")


@dataclass(frozen=True)
class Progress:
    """Where the separation of one input stands; the callback gets one at its start, one per block, one at its end
    (``result`` set), or, when the run is stopped or fails otherwise than with a ``UserError``, a last one with
    ``stopped`` set: ``outputs`` then lists the partial outputs kept and ``seconds_written`` what they hold."""

    input: Path
    outputs: tuple[Path, ...]
    seconds_done: float
    seconds_total: float | None  # None: the input does not say how long it is (some streams)
    result: FileResult | None = None  # set on the last call for this input
    seconds_written: float = 0.0  # of audio each output holds so far (behind seconds_done by the latency)
    stopped: bool = False  # the last call for a stopped input: ``outputs`` are the partial ones kept (or none)

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def fraction(self) -> float | None:
        """0 to 1 of the input done (None when its length is unknown); 1 once finished."""
        if self.finished:
            return 1.0
        if not self.seconds_total:
            return None
        return min(1.0, self.seconds_done / self.seconds_total)


ProgressCallback = Callable[[Progress], object]
EngineFactory = Callable[[int, int], StreamingSeparator]  # (sample rate, channels) -> a reset separator


@dataclass
class _Job:
    """One input file and where its stems go."""

    input: Path
    samplerate: int
    channels: int
    channel_selection: ChannelSelection  # applied again when the file is reopened
    frames: int | None = None  # the input's length, if it says (its outputs are as long)
    outputs: list[Path] = field(default_factory=list)
    container: Container | None = None  # how its outputs are opened
    mix: bool = False  # one output holding the sum of the (gained) stems instead of one output per stem
    reader: AudioReader | None = None  # a stream (standard input, a pipe) stays open: it can be read only once


def is_directory_target(output: str | os.PathLike) -> bool:
    """Whether ``output`` means a folder (one file per stem): a trailing slash, an existing folder, or no suffix."""
    text = os.fspath(output)
    if text == STDIO:
        return False
    if text.endswith(("/", os.sep)):
        return True
    try:
        return stat.S_ISDIR(os.stat(text).st_mode)  # an existing file or device (/dev/null) is a file output
    except OSError:
        return not Path(text).suffix


def separate_files(engine: EngineFactory, stems: Sequence[str], inputs: Iterable[str | os.PathLike],
                   output: str | os.PathLike, *, channels: ChannelSelection = None, file_format: str | None = None,
                   subtype: str | None = None, mix: bool = False, subfolders: bool | None = None,
                   progress: ProgressCallback | None = None) -> list[FileResult]:
    """Separate every input into ``output`` with the separators ``engine`` gives, whose stems are ``stems``; see
    ``Separator.separate_files``. Every input is opened, every output checked and every input's separator built
    before the first is separated, so a bad second input costs no time and writes nothing."""
    jobs: list[_Job] = []
    try:
        for path in inputs:
            jobs.append(_probe(Path(path), channels))
        if not jobs:
            raise ParameterError("inputs= names no file; pass at least one audio file", "inputs")
        return _run(engine, tuple(stems), jobs, os.fspath(output), file_format, subtype, mix, subfolders, progress)
    finally:
        for job in jobs:
            if job.reader is not None:
                job.reader.close()


def _run(engine: EngineFactory, stems: tuple[str, ...], jobs: list[_Job], output: str, file_format: str | None,
         subtype: str | None, mix: bool, subfolders: bool | None,
         progress: ProgressCallback | None) -> list[FileResult]:
    target = Path(output)
    to_dir = is_directory_target(output)
    if mix and to_dir:
        raise ParameterError(f"mix=True writes one file, but output={output!r} is a folder; pass a file such as "
                             f"output={str(target / 'mix.wav')!r}", "mix")
    ext = default_extension(file_format) if to_dir else None
    fmt, subtype = output_format(Path(f"stem.{ext}") if to_dir else target, file_format, subtype)

    for job in jobs:  # a rate the separator cannot take fails here, before anything is written
        engine(job.samplerate, job.channels)
    if to_dir:
        per_input = len(jobs) > 1 if subfolders is None else subfolders
        for job, name in zip(jobs, _output_names([job.input for job in jobs])):
            folder = target / name if per_input else target
            job.outputs = [folder / f"{stem}.{ext}" for stem in stems]
    else:
        if len(jobs) > 1 or (len(stems) > 1 and not mix):
            what = f"{len(jobs)} inputs" if len(jobs) > 1 else f"{len(stems)} stems ({', '.join(stems)})"
            mix_hint = "" if len(jobs) > 1 else ", or pass mix=True to write their mix"
            if output == STDIO:
                raise ParameterError(f"output='-' (standard output) carries one stem of one input, but {what} need "
                                     "one file each; pick one with stems=, or pass a directory such as "
                                     f"output='stems/'{mix_hint}", "output")
            suggestion = "stems/" if target.exists() else str(target.with_suffix("")) + "/"  # (/dev/null exists)
            raise ParameterError(f"output={output!r} is one file, but {what} need one file each; pass a directory "
                                 f"such as output={suggestion!r}{mix_hint}", "output")
        jobs[0].outputs = [target]
        jobs[0].mix = mix and len(stems) > 1
    for job in jobs:  # an output its container cannot hold is refused here, before anything is written
        first = job.outputs[0]
        name = label(first, output=True) if len(job.outputs) == 1 else f"each stem in {first.parent}/"
        job.container = plan_container(fmt, subtype, job.channels, job.frames, explicit=file_format is not None,
                                       name=name)
    _check_writable(jobs)
    with OutputSet(out for job in jobs for out in job.outputs) as owned:  # AudioIOError: another run writes one
        return [_separate(job, engine(job.samplerate, job.channels), fmt, subtype, owned, progress) for job in jobs]


def _probe(path: Path, channels: ChannelSelection) -> _Job:
    """Open an input and read its first block so a bad file fails before any separation starts; close it
    again unless it is a stream, which cannot be reopened."""
    reader = open_input(path, channels)
    if is_stream(path):
        return _Job(path, reader.samplerate, reader.channels, channels, reader.frames, reader=reader)
    with reader:
        reader.read(np.empty((4096, reader.channels), np.float32))
        if reader.frames_read == 0 and reader.ended_early:
            raise AudioIOError(f"cannot read {path}: it holds no audio ({reader.ended_early})", "input")
        return _Job(path, reader.samplerate, reader.channels, channels, reader.frames)


def _output_names(inputs: list[Path]) -> list[str]:
    """One folder name per input: its file name, prefixed by its folder when two inputs share a name."""
    names = ["stdin" if str(p) == STDIO else p.stem for p in inputs]
    names = [f"{p.resolve().parent.name}-{n}" if names.count(n) > 1 else n for p, n in zip(inputs, names)]
    for name in names:
        if names.count(name) > 1:
            raise ParameterError(f"two inputs would both be written to the folder {name!r}; rename one of them",
                                 "inputs")
    return names


def _check_writable(jobs: list[_Job]) -> None:
    """Before anything is written: no output of any job may be any job's input (compared as files, by device
    and inode, so hard links, symbolic links and other spellings count), then every folder must be writable."""
    inputs: dict[tuple[int, int], Path] = {}
    for job in jobs:
        identity = file_identity(job.input)
        if identity is not None:
            inputs.setdefault(identity, job.input)
    for job in jobs:
        for out in job.outputs:
            identity = file_identity(out)
            source = inputs.get(identity) if identity is not None else None
            if source is not None:
                name = "the input file" if str(source) == str(out) else f"the same file as the input {source}"
                raise ParameterError(f"the output {out} is {name}; writing it would destroy that input, so pass "
                                     "another output=", "output")
    for job in jobs:
        if job.outputs == [Path(STDIO)] or (len(job.outputs) == 1 and is_stream(job.outputs[0])):
            continue  # standard output, a device (/dev/null) or a FIFO: written in place
        folder = job.outputs[0].parent
        problem = not_a_folder(folder)
        if problem:
            raise AudioIOError(f"cannot write to {folder}/: {problem}; pass another output=", "output")
        for out in job.outputs:
            problem = name_problem(out)
            if problem:
                raise AudioIOError(f"cannot write {out}: {problem}; pass another output=", "output")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise AudioIOError(f"cannot write to {folder}: {exc.strerror or exc}; pass another output=",
                               "output") from None


def _separate(job: _Job, sep: StreamingSeparator, fmt: str, subtype: str, owned: OutputSet,
              progress: ProgressCallback | None) -> FileResult:
    """One input into its outputs, written under ``owned``'s temporary names and renamed when done (or stopped)."""
    reader = job.reader or open_input(job.input, job.channel_selection)
    job.reader = None
    writers: list[AudioWriter] = []
    frames = 0
    outputs = tuple(job.outputs)
    done = False

    def report(result: FileResult | None = None, stopped: bool = False) -> None:
        if progress is not None:
            written = writers[0].frames / job.samplerate if writers else 0.0
            progress(Progress(job.input, outputs, frames / job.samplerate, reader.duration, result,
                              seconds_written=written, stopped=stopped))

    start, before = time.perf_counter(), (sep.stats.nonfinite_samples, sep.stats.nonfinite_outputs)
    try:
        for path in job.outputs:
            writers.append(AudioWriter(path, job.samplerate, job.channels, fmt, subtype, job.container,
                                       target=owned.temporary(path)))
        report()
        block_in = np.empty((BLOCK_FRAMES, job.channels), np.float32)
        read = 0  # frames of the block being separated; counted once its stems are written

        def blocks():
            nonlocal read
            while len(block := reader.read(block_in)):
                read = len(block)
                yield block
            read = 0  # what follows is the separator's tail

        for stems in sep.aligned(blocks()):  # latency compensated: the stems line up with the input
            _write(writers, _mixed(stems) if job.mix else stems)
            if read:
                frames += read
                report()
        with signals_deferred():  # a second Ctrl-C or SIGTERM must not cut finalizing the headers short
            reader.close()
            _close_all(writers)
            outputs = tuple(owned.commit(job.outputs))
            done = True
    except UserError as exc:  # a write failed (a full disk), or the input could not be read on
        with signals_deferred():
            reader.close()
            left = _settle(writers, owned, job.outputs)
            exc.args = (f"{exc}; {left}" if left else str(exc),)
        raise
    except BaseException as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep what the stems hold; a bug: keep nothing
        with signals_deferred():
            reader.close()
            if not done:  # (a signal held back while committing arrives after it: the outputs are whole)
                outputs = _stopped(writers, owned, keep=isinstance(exc, KeyboardInterrupt))
                owned.discard(job.outputs)
        report(stopped=True)
        raise
    result = FileResult(
        input=job.input, outputs=dict(zip((MIX,) if job.mix else sep.stems, job.outputs)), stems=sep.stems,
        gains_db=dict(sep.gains_db), mix=job.mix, sample_rate=job.samplerate, channels=job.channels,
        seconds=frames / job.samplerate, elapsed_seconds=time.perf_counter() - start,
        latency_samples=sep.latency_samples, latency_seconds=sep.latency_seconds, preset=sep.preset,
        hop=sep.geometry.hop, provider=sep.provider, nonfinite_inputs=sep.stats.nonfinite_samples - before[0],
        nonfinite_outputs=sep.stats.nonfinite_outputs - before[1] + sum(w.nonfinite for w in writers),
        clipped=sum(w.clipped for w in writers), ended_early=reader.ended_early,
        rf64=tuple(w.path for w in writers if w.rf64))
    report(result)
    return result


def _close_all(writers: Sequence[AudioWriter]) -> None:
    """Close every writer even when one fails; the first failure is raised afterwards."""
    failure = None
    for writer in writers:
        try:
            writer.close()
        except WriteError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _close_quietly(writers: Sequence[AudioWriter]) -> None:
    for writer in writers:
        try:
            writer.close()
        except UserError:
            pass


def _stopped(writers: list[AudioWriter], owned: OutputSet, keep: bool) -> tuple[Path, ...]:
    """After a stop signal (``keep``): close the stems (each block went to every stem, so they are equal in length)
    and give them their names if they hold audio; after a bug, remove them. Returns the outputs now in place."""
    _close_quietly(writers)
    paths = [w.path for w in writers]
    if not keep or not writers or writers[0].frames == 0:
        owned.discard(paths)
        return ()
    kept = [w.path for w in writers if readable(w.target)]
    owned.discard(set(paths) - set(kept))
    return tuple(owned.commit(kept))


def _settle(writers: list[AudioWriter], owned: OutputSet, outputs: Sequence[Path]) -> str:
    """After a failed write or read: cut the stems to the length all of them reached, close them, and give their
    names to those that hold audio and are whole (decode to the end their header gives) where no file had that
    name before the run (an earlier output stays as it was); remove the rest. Says what is in place."""
    if outputs and str(outputs[0]) == STDIO:  # a stream cannot be taken back: say what went out
        _close_quietly(writers)
        sent = writers[0].frames / writers[0].samplerate if writers else 0.0
        return f"standard output got the first {sent:.1f} s" if sent else ""
    common = min((w.frames for w in writers), default=0)
    for writer in writers:
        writer.cut(common)  # every writer, even after one that cannot be cut (ogg, mp3)
    _close_quietly(writers)
    opened = {w.path: w for w in writers}
    kept: dict[Path, int] = {}
    unfinished, earlier = [], []
    for path in outputs:
        if owned.existed(path):
            earlier.append(path)
        elif path in opened:
            frames = _whole_frames(opened[path])
            if frames:
                kept[path] = frames
            else:
                unfinished.append(path)
    owned.discard([path for path in outputs if path not in kept])  # an earlier file of the name stays
    for path in set(kept) - set(owned.commit(kept)):
        del kept[path]
    rate = writers[0].samplerate if writers else 1
    where = label(outputs[0], output=True) if len(outputs) == 1 else f"{outputs[0].parent}/"
    parts = []
    if kept:
        lengths = sorted(set(kept.values()))
        span = " to ".join(f"{n / rate:.1f}" for n in sorted({lengths[0], lengths[-1]}))
        named = "" if len(kept) == len(outputs) else f" ({', '.join(p.name for p in kept)})"
        parts.append(f"the partial output in {where}{named} holds the first {span} s")
    elif not unfinished:
        parts.append("nothing was written")
    if len(outputs) == 1 and unfinished:
        parts.append("it could not be finished, so nothing was kept")
    elif len(outputs) == 1 and earlier:
        parts.append("the file from before this run is left as it was")
    if len(outputs) > 1 and unfinished:
        parts.append(f"{_names(unfinished)} could not be finished and {'was' if len(unfinished) == 1 else 'were'} "
                     "not kept")
    if len(outputs) > 1 and earlier:
        parts.append(f"{_names(earlier)} from before this run {'is' if len(earlier) == 1 else 'are'} left as "
                     f"{'it was' if len(earlier) == 1 else 'they were'}")
    return "; ".join(parts)


def _whole_frames(writer: AudioWriter) -> int:
    """The frames a closed stem holds if it is whole (0: not, or empty): it decodes to the end its header gives (an
    mp3 whose last frames the full disk refused closes without an error, and its header promises more)."""
    if writer.failed or not readable(writer.target):
        return 0
    decoded = decoded_frames(writer.target)
    return decoded if decoded is not None and decoded == stored_frames(writer.target) else 0


def _names(paths: Sequence[Path]) -> str:
    folder = paths[0].parent
    if len(paths) == 1:
        return label(paths[0], output=True)
    return f"{', '.join(p.name for p in paths[:-1])} and {paths[-1].name} in {folder}/"


def _write(writers: list[AudioWriter], stems: np.ndarray) -> None:
    """Write ``stems`` (n_stems, n, channels), one to each writer. A stop signal waits until every stem has the
    block, so the stems of a stopped run have one length."""
    if stems.shape[1]:
        with signals_deferred():
            for writer, stem in zip(writers, stems):
                writer.write(stem)


def _mixed(stems: np.ndarray) -> np.ndarray:
    """The stems (n_stems, n, channels), gains already applied by the separator, summed into one (1, n, channels)."""
    return stems.sum(axis=0, keepdims=True, dtype=np.float32)
