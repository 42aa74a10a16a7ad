"""The page's files: a queue that separates them one at a time through ``Separator.separate_file``.

One job at a time on one thread, with one ``Separator`` kept between jobs while the model and its settings
stay the same: two cores cannot run two separations faster than one after the other, and a second model in
memory only costs. Progress comes from the library's callback and is read by the page's push loop.
Cancelling makes the callback raise ``Cancelled`` (not a ``KeyboardInterrupt``), so ``separate_file``
keeps no partial stem, and the job's folder is removed; stopping the server raises ``Interrupted`` instead,
which finishes the stems' headers and keeps what was separated, as Ctrl-C does in the command line.
"""

from __future__ import annotations

import itertools
import math
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Interrupted, UserError
from ..file_mode import Progress

PEAK_COLUMNS = 480  # waveform columns per stem: the page draws them on a canvas


class Cancelled(Exception):
    """The page cancelled this job: ``separate_file`` keeps nothing of it."""


@dataclass
class Job:
    """One input file (or a karaoke mix of an earlier job's input) and where it stands."""

    id: int
    name: str  # what the page shows: the uploaded file's name
    input: Path
    folder: Path  # the job's own output folder
    model: str | None
    latency: str | None
    stems: str
    gains: dict[str, float] | None = None
    mix_of: int | None = None  # a karaoke mix: the job whose input it mixes
    state: str = "queued"  # queued, running, done, failed, cancelled, stopped
    fraction: float = 0.0
    seconds_total: float | None = None
    error: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)  # stem (or "mix") -> file, once done
    peaks: dict[str, list[float]] = field(default_factory=dict)
    latency_ms: float | None = None
    elapsed: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict[str, Any]:
        """What the page sees 20 times a second (no server paths; the waveforms once, from their own route)."""
        return {"id": self.id, "name": self.name, "state": self.state, "fraction": self.fraction,
                "seconds": self.seconds_total, "error": self.error, "stems": list(self.outputs),
                "files": {k: v.name for k, v in self.outputs.items()},
                "model": self.model, "latency": self.latency, "mix_of": self.mix_of,
                "gains": {k: (v if math.isfinite(v) else None) for k, v in (self.gains or {}).items()},
                "latency_ms": self.latency_ms, "elapsed": self.elapsed}


class JobQueue:
    """Jobs in order, run one at a time on a worker thread; ``close()`` stops the running one and waits."""

    def __init__(self, root: Path, default_model: str | None = None):
        self.root = root
        self.default_model = default_model
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._separator: Any = None  # the one model in memory, with its settings as the key
        self._key: tuple | None = None
        self._thread = threading.Thread(target=self._run, name="realtime-split-ui-jobs", daemon=True)
        self._thread.start()

    def add(self, name: str, input: Path, *, model: str | None = None, latency: str | None = None,
            stems: str = "all", gains: dict[str, float] | None = None, mix_of: int | None = None) -> Job:
        with self._wake:
            job_id = next(self._ids)
            job = Job(job_id, name, Path(input), self.root / f"job-{job_id}", model or self.default_model,
                      latency or None, stems or "all", gains, mix_of)
            self.jobs[job_id] = job
            self._wake.notify()
        return job

    def get(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; its outputs are removed, never offered for download."""
        job = self.jobs.get(job_id)
        if job is None or job.state not in ("queued", "running"):
            return False
        job.cancel.set()
        with self._wake:
            if job.state == "queued":
                job.state = "cancelled"
        return True

    def snapshot(self) -> list[dict[str, Any]]:
        return [job.public() for job in list(self.jobs.values())]

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker: the running file stops like Ctrl-C (headers finished, what was separated kept)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)

    # ----------------------------------------------------------------- the worker
    def _next(self) -> Job | None:
        with self._wake:
            while not self._closing:
                job = next((j for j in self.jobs.values() if j.state == "queued"), None)
                if job is not None:
                    job.state = "running"
                    return job
                self._wake.wait()
        return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._separate(job)
            except Cancelled:
                job.state = "cancelled"
                shutil.rmtree(job.folder, ignore_errors=True)
            except KeyboardInterrupt:
                job.state = "stopped"
            except UserError as exc:  # not audio, truncated, a bad model or stem: the library's one line
                job.state, job.error = "failed", str(exc).replace(str(job.input), job.name)  # no server paths
            except Exception as exc:  # a bug: say so on the page, keep serving
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def _model(self, job: Job):
        from ..api import Separator

        stems = "all" if job.mix_of is not None else job.stems
        key = (job.model, job.latency, stems, tuple(sorted((job.gains or {}).items())))
        if key != self._key:
            self._separator = self._key = None  # free the old model before loading the next
            kwargs: dict[str, Any] = {"stems": stems, "gains": job.gains}
            if job.latency:
                kwargs["latency"] = job.latency
            self._separator = Separator(job.model, **kwargs)
            self._key = key
        return self._separator

    def _separate(self, job: Job) -> None:
        separator = self._model(job)
        if job.cancel.is_set():
            raise Cancelled()

        def progress(p: Progress) -> None:
            job.seconds_total = p.seconds_total
            if p.stopped:
                return
            if p.fraction is not None:
                job.fraction = p.fraction
            if self._closing:
                raise Interrupted()
            if job.cancel.is_set():
                raise Cancelled()

        output = job.folder / "karaoke.wav" if job.mix_of is not None else Path(f"{job.folder}/")
        result = separator.separate_file(job.input, output, mix=job.mix_of is not None, progress=progress)
        job.outputs = dict(result.outputs)
        job.latency_ms = 1000.0 * result.latency_seconds
        job.elapsed = result.elapsed_seconds
        job.peaks = {name: peaks(path) for name, path in result.outputs.items()}
        job.fraction, job.state = 1.0, "done"


def peaks(path: Path, columns: int = PEAK_COLUMNS) -> list[float]:
    """The waveform of a written stem: the peak of each of ``columns`` equal spans, both channels, 0 to 1."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        frames = f.frames
        span = max(1, math.ceil(frames / columns))
        out = []
        for block in f.blocks(blocksize=span, dtype="float32", always_2d=True):
            out.append(round(float(np.max(np.abs(block))) if len(block) else 0.0, 4))
    return out
