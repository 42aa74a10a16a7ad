"""Separating a catalogue: a resumable batch job over many files, on this machine or on a Ray cluster.

``batch(inputs, output)`` finds the audio files (files, folders searched recursively, globs, or lists:
a ``.txt``/``.m3u`` with one path per line or a ``.csv`` with a ``path`` column), gives each its folder
in ``output`` mirroring where it came from (``OUT/<relative path without suffix>/<stem>.<ext>``) and
has workers separate them, each worker loading the model once (``engines.py``). Every file goes
through ``Separator.separate_file``, so its stems equal what ``separate_file`` writes, written under
temporary names and renamed when complete.

The job keeps a manifest in ``output`` (``manifest.py``): a rerun of the same job skips what is
done and current, does again what changed (the input, the model or an option) and what a killed run
left unfinished, and with ``retry_failed`` tries the failures again. A bad input is recorded with
the library's one-line error and the job goes on; the result lists it.

Nothing here prints: progress goes to the caller's callback (``BatchProgress``), the outcome comes
back as a ``BatchResult`` (the CLI's ``realtime-split batch`` shows both).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..audio_files import ChannelSelection, default_extension, output_format
from ..errors import ParameterError
from ..model_format import OFFLINE
from .engines import (
    LocalEngine,
    RayEngine,
    Task,
    WorkerSettings,
    check_job_options,
    file_sha256,
    settings_path,
)
from .manifest import DO, KEEP_FAILURE, SKIP, Manifest, input_stamp

# What a folder search picks up: the containers libsndfile reads, and those ffmpeg decodes for us.
AUDIO_EXTENSIONS = frozenset({
    "wav", "wave", "flac", "ogg", "oga", "mp3", "aiff", "aif", "aifc", "au", "snd", "caf", "w64", "rf64",
    "opus", "m4a", "mp4", "aac", "wma", "webm", "mka", "alac", "ape", "wv"})
LIST_EXTENSIONS = frozenset({".txt", ".m3u", ".m3u8", ".csv"})  # an input with one of these lists the inputs
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class BatchInput:
    """One input file and its output folder's name, relative to the job's output."""

    path: Path  # absolute
    name: str  # posix, no suffix: "album/track01"


@dataclass(frozen=True)
class BatchFile:
    """What became of one input in this run (or, with ``earlier``, in the run that last did it)."""

    input: Path
    name: str  # its output folder, relative to the job's output
    status: str  # "done" (separated in this run), "skipped" (done and current before), "failed"
    outputs: dict[str, Path] = field(default_factory=dict)  # stem -> file written
    seconds: float = 0.0  # of audio
    elapsed_seconds: float = 0.0  # separation time
    error: str | None = None  # the one-line reason of a failure
    note: str | None = None  # a warning about a done file (a truncated input...)
    earlier: bool = False  # the outcome is from an earlier run: skipped, or a failure not retried
    attempts: int = 0  # workers given it in this run (more than 1: a worker died under it)
    worker: str | None = None  # host:pid


@dataclass(frozen=True)
class BatchProgress:
    """Where the job stands; the callback gets one before the first file and one per finished file."""

    total: int  # files this run separates
    finished: int  # of them, done or failed
    failed: int
    skipped: int  # done and current from an earlier run, not counted in total
    audio_seconds: float  # separated in this run
    elapsed_seconds: float
    file: BatchFile | None = None  # the file that just finished

    @property
    def audio_hours_per_hour(self) -> float:
        """Throughput: hours of audio separated per hour of wall-clock time."""
        return self.audio_seconds / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


@dataclass(frozen=True)
class BatchResult:
    """Every input's ``BatchFile`` in input order, and how the job ran."""

    files: list[BatchFile]
    output: Path
    manifest: Path
    engine: str  # "processes", "ray ADDRESS", or "none" when every input was skipped or kept failed
    workers: int
    threads_per_worker: int
    elapsed_seconds: float  # wall-clock time of the run
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)  # worker -> its peak memory

    def _with(self, status: str) -> list[BatchFile]:
        return [f for f in self.files if f.status == status]

    @property
    def done(self) -> list[BatchFile]:
        return self._with(DONE)

    @property
    def skipped(self) -> list[BatchFile]:
        return self._with(SKIPPED)

    @property
    def failed(self) -> list[BatchFile]:
        """Failures of this run and earlier failures not retried (``retry_failed``)."""
        return self._with(FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def audio_seconds(self) -> float:
        """Audio separated in this run."""
        return sum(f.seconds for f in self.done)

    @property
    def audio_hours_per_hour(self) -> float:
        return self.audio_seconds / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        """The result as plain data (for ``--json``); paths as strings."""
        return {
            "output": str(self.output), "manifest": str(self.manifest), "engine": self.engine,
            "workers": self.workers, "threads_per_worker": self.threads_per_worker,
            "elapsed_seconds": self.elapsed_seconds, "done": len(self.done), "skipped": len(self.skipped),
            "failed": len(self.failed), "audio_seconds": self.audio_seconds,
            "audio_hours_per_hour": self.audio_hours_per_hour, "peak_rss_bytes": self.peak_rss_bytes,
            "files": [{"input": str(f.input), "name": f.name, "status": f.status, "earlier": f.earlier,
                       "outputs": {s: str(p) for s, p in f.outputs.items()}, "seconds": f.seconds,
                       "elapsed_seconds": f.elapsed_seconds, "error": f.error, "note": f.note,
                       "attempts": f.attempts, "worker": f.worker} for f in self.files],
        }


BatchProgressCallback = Callable[[BatchProgress], object]


def batch(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *,
          model: str | os.PathLike | None = None, stems: str | Iterable[str] = "all", latency: str = OFFLINE,
          hop: int | None = None, gains=None, provider: str = "auto", format: str | None = None,
          subtype: str | None = None, channels: ChannelSelection = None, workers: int | None = None,
          threads_per_worker: int | None = None, cluster: str | None = None, retry_failed: bool = False,
          progress: BatchProgressCallback | None = None) -> BatchResult:
    """Separate every audio file ``inputs`` name into the folder ``output``, resumably; see the module.

    ``inputs``: files, folders (searched recursively for audio files), globs (``"music/**/*.flac"``) and
    lists (``.txt``/``.m3u``: a path per line; ``.csv``: a ``path`` column; relative paths are relative to
    the list). ``model``, ``stems``, ``latency``, ``hop``, ``gains``, ``provider`` are ``Separator``'s;
    ``format``, ``subtype``, ``channels`` are ``separate_file``'s. ``workers`` and ``threads_per_worker``:
    how many processes (or Ray actors) each load the model, and their ONNX Runtime threads (default: one
    single-threaded worker per CPU; with ``provider='cuda'``, one per GPU). ``cluster``: None runs
    processes on this machine; ``"auto"`` or an address (``"ray://head:10001"``, ``"head:6379"``) joins a
    running Ray cluster, ``"local"`` starts a Ray instance here (inputs and ``output`` must then be on a
    disk every node sees at the same path). ``retry_failed``: try the inputs that failed before again.

    Raises ``ParameterError``/``AudioIOError`` before any work for bad options, an input path that does not
    exist or two inputs that would share an output folder; a bad input file fails that file alone.
    """
    check_job_options(workers, threads_per_worker, cluster)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output={os.fspath(output)!r} is a file; a batch job writes a folder per input into "
                             "a folder, so pass one (e.g. output='stems/')", "output")
    fmt, subtype = output_format(Path(f"stem.{default_extension(format)}"), format, subtype)
    settings, options, model_name, preset = _settings(model, stems, latency, hop, gains, provider, fmt, subtype,
                                                      channels, cluster)
    found = find_inputs(inputs, exclude=out)
    start = time.perf_counter()
    with Manifest(out) as manifest:
        root = out.resolve()
        files: dict[str, BatchFile] = {}
        todo: list[tuple[BatchInput, tuple[int | None, int | None]]] = []
        for item in found:
            stamp = input_stamp(item.path)
            decision, row = manifest.decide(item.name, str(item.path), stamp, options, retry_failed)
            if decision == SKIP and row is not None:
                outputs = {stem: root / path for stem, path in row.outputs.items()}
                files[item.name] = BatchFile(item.path, item.name, SKIPPED, outputs, row.seconds,
                                             row.elapsed_seconds, note=row.note, earlier=True, worker=row.worker)
            elif decision == KEEP_FAILURE and row is not None:
                files[item.name] = BatchFile(item.path, item.name, FAILED, error=row.error, earlier=True,
                                             worker=row.worker)
            else:
                assert decision == DO
                todo.append((item, stamp))
        kind, count, threads, peaks = "none", 0, 0, {}  # nothing to do: no engine started
        if todo:
            engine = _engine(settings, cluster, workers, threads_per_worker, provider)
            kind = engine.kind if cluster is None else f"ray {cluster}"
            count, threads = engine.workers, engine.threads
            try:
                peaks = _run(engine, todo, root, fmt, subtype, channels, manifest, files, options, model_name, preset,
                             start, progress)
            except BaseException:
                engine.close(stop=True)
                raise
            engine.close()
    return BatchResult([files[item.name] for item in found], out, manifest.path, kind, count, threads,
                       time.perf_counter() - start, peaks)


def _settings(model, stems, latency, hop, gains, provider, fmt, subtype, channels, cluster):
    """Check the model and the options here, once, so a bad one fails before any worker starts; what the
    workers load, the manifest's options key, the model's name, the preset."""
    from ..api import Separator

    # A cluster's driver may have no GPU: the model and options are checked on its CPU, the workers use provider.
    check = Separator(model, stems=stems, latency=latency, hop=hop, gains=gains,
                      provider="cpu" if cluster is not None else provider, threads=1)
    sha = file_sha256(check.model_path)
    settings = WorkerSettings(settings_path(model, check.model_path), check.stems, check.preset, hop,
                              dict(check.gains_db), provider, 1, sha)
    if channels is not None and not isinstance(channels, str):
        channels = ",".join(str(int(c)) for c in channels)
    options = json.dumps({"model_sha256": sha, "preset": check.preset, "hop": check.geometry.hop,
                          "stems": list(check.stems), "gains_db": {s: f"{g:g}" for s, g in check.gains_db.items()},
                          "format": fmt, "subtype": subtype, "channels": channels}, sort_keys=True)
    return settings, options, check.info.name or check.model_path.stem, check.preset


def _engine(settings: WorkerSettings, cluster: str | None, workers: int | None, threads: int | None,
            provider: str) -> LocalEngine | RayEngine:
    if cluster is None:
        return LocalEngine(settings, workers, threads, provider == "cuda")
    return RayEngine(settings, cluster, workers, threads, provider == "cuda")


def _run(engine: LocalEngine | RayEngine, todo: Sequence[tuple[BatchInput, tuple[int | None, int | None]]],
         root: Path, fmt: str, subtype: str, channels: ChannelSelection, manifest: Manifest,
         files: dict[str, BatchFile], options: str, model_name: str, preset: str, start: float,
         progress: BatchProgressCallback | None) -> dict[str, int]:
    """Keep the engine busy with the files to do, record each outcome as it comes; the workers' peak memory."""
    channel_option = channels if channels is None or isinstance(channels, str) else tuple(channels)
    model_version = json.loads(options)["model_sha256"]
    pending = iter(todo)
    finished = failed = 0
    audio = 0.0
    peaks: dict[str, int] = {}
    skipped = sum(f.status == SKIPPED for f in files.values())
    inputs = {item.name: item for item, _ in todo}

    def report(file: BatchFile | None) -> None:
        if progress is not None:
            progress(BatchProgress(len(todo), finished, failed, skipped, audio, time.perf_counter() - start, file))

    report(None)
    while True:
        while engine.pending() < engine.capacity:
            nxt = next(pending, None)
            if nxt is None:
                break
            item, stamp = nxt
            manifest.start(item.name, str(item.path), stamp)
            engine.submit(Task(item.name, str(item.path), str(root / item.name), fmt, subtype, channel_option))
        if engine.pending() == 0:
            return peaks
        outcome = engine.next_outcome()
        item = inputs[outcome.name]
        outputs = {stem: Path(path) for stem, path in outcome.outputs.items()}
        relative = {stem: _relative(path, root) for stem, path in outputs.items()}
        manifest.finish(item.name, status=outcome.status, options=options, model_name=model_name,
                        model_version=model_version, preset=preset, outputs=relative, seconds=outcome.seconds,
                        elapsed_seconds=outcome.elapsed_seconds, error=outcome.error, note=outcome.note,
                        extra_attempts=outcome.attempts - 1, worker=outcome.worker)
        if outcome.worker:
            peaks[outcome.worker] = max(peaks.get(outcome.worker, 0), outcome.peak_rss_bytes)
        finished += 1
        failed += outcome.status == FAILED
        audio += outcome.seconds if outcome.status == DONE else 0.0
        file = files[item.name] = BatchFile(item.path, item.name, outcome.status, outputs, outcome.seconds,
                                            outcome.elapsed_seconds, outcome.error, outcome.note,
                                            attempts=outcome.attempts, worker=outcome.worker or None)
        report(file)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# Finding the inputs ------------------------------------------------------------------------------------------------

def find_inputs(specs: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None) -> list[BatchInput]:
    """The audio files ``specs`` name, each with its output folder's name; see ``batch``. Folder searches
    skip hidden files and folders, and ``exclude`` (the job's output, which may sit inside an input folder)."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[BatchInput] = []
    for spec in specs:
        text = os.fspath(spec)
        path = Path(text)
        if path.is_dir():
            found.extend(_search(path, path, skip))
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
            found.extend(_listed(path))
        elif path.exists():
            found.append(BatchInput(path.resolve(), _name(PurePosixPath(path.name))))
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ParameterError(f"inputs: the pattern {text!r} matches no file", "inputs")
            base = _glob_base(text)
            for match in map(Path, matches):
                if match.is_dir():
                    found.extend(_search(match, base, skip))
                elif match.is_file() and not _inside(match, skip):
                    found.append(BatchInput(match.resolve(), _name(_relative_name(match, base))))
        else:
            raise ParameterError(f"input file not found: {text}", "inputs")
    if not found:
        raise ParameterError("the inputs name no audio file (folders are searched for "
                             f"{', '.join(sorted(AUDIO_EXTENSIONS))})", "inputs")
    _check_unique(found)
    return found


def _search(folder: Path, base: Path, skip: Path | None) -> list[BatchInput]:
    found = []
    for top, dirs, names in os.walk(folder):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _same(here / d, skip))
        for name in sorted(names):
            if not name.startswith(".") and name.rpartition(".")[2].lower() in AUDIO_EXTENSIONS and "." in name:
                found.append(BatchInput((here / name).resolve(), _name(_relative_name(here / name, base))))
    return found


def _listed(listing: Path) -> list[BatchInput]:
    """The inputs a list file names: ``.csv`` with a ``path`` column, otherwise a path per line (``#`` comments
    and blank lines skipped, as in an m3u playlist). Relative paths are relative to the list's folder."""
    try:
        with open(listing, newline="", encoding="utf-8-sig") as f:
            if listing.suffix.lower() == ".csv":
                reader = csv.DictReader(f)
                column = next((c for c in reader.fieldnames or () if c.strip().lower() == "path"), None)
                if column is None:
                    raise ParameterError(f"inputs: {listing} has no 'path' column (its header: "
                                         f"{', '.join(reader.fieldnames or ()) or 'none'}); name the column of "
                                         "file paths 'path'", "inputs")
                entries = [row[column].strip() for row in reader if (row[column] or "").strip()]
            else:
                entries = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"inputs: cannot read the list {listing}: {exc}", "inputs") from None
    base = listing.resolve().parent
    found = []
    for entry in entries:
        path = Path(entry)
        path = path if path.is_absolute() else base / path
        # A missing file is the job's to record as failed, like a damaged one: the list may be long.
        found.append(BatchInput(Path(os.path.abspath(path)), _name(_relative_name(Path(os.path.abspath(path)), base))))
    return found


def _relative_name(path: Path, base: Path) -> PurePosixPath:
    """``path`` relative to ``base`` when it is inside it, else its whole path without the root."""
    absolute, base = Path(os.path.abspath(path)), Path(os.path.abspath(base))
    try:
        return PurePosixPath(absolute.relative_to(base).as_posix())
    except ValueError:
        return PurePosixPath(*absolute.parts[1:])


def _name(relative: PurePosixPath) -> str:
    return relative.with_suffix("").as_posix() if relative.suffix else relative.as_posix()


def _glob_base(pattern: str) -> Path:
    """The folder a pattern starts from: its leading parts without wildcards (``music/**/*.flac`` -> ``music``)."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _same(path: Path, other: Path | None) -> bool:
    return other is not None and path.resolve() == other


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and folder in path.resolve().parents


def _check_unique(found: list[BatchInput]) -> None:
    seen: dict[str, Path] = {}
    for item in found:
        other = seen.setdefault(item.name, item.path)
        if other != item.path:
            raise ParameterError(f"inputs {other} and {item.path} would both be written to the folder {item.name}/; "
                                 "rename one, or separate them in two jobs with different outputs", "inputs")
    if len(seen) < len(found):  # the same file named twice (a folder and a file in it): once is enough
        unique = {item.name: item for item in found}
        found[:] = list(unique.values())
