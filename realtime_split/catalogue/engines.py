"""Where a batch job's files are separated: worker processes on this machine, or Ray actors on a cluster.

Both engines run the same ``Worker``: it loads the model once (a ``Separator``) and separates the files
it is sent with ``Separator.separate_file``, so a file separated here equals what ``separate_file``
writes. Both take ``Task``\\ s and give back one ``Outcome`` per task, failed or done, exactly once:

- ``LocalEngine`` (the default, nothing to start): a ``ProcessPoolExecutor`` whose initializer loads
  the model once per process. A worker that dies (killed, out of memory, a crash in a decoder) breaks
  the pool; the engine starts a new one and sends the files that were in flight again.
- ``RayEngine`` (``cluster=``): one Ray actor per worker, each holding its model; Ray restarts a dead
  actor and runs its tasks again (``max_restarts``, ``max_task_retries``) and places each actor on
  a node with the CPUs (``num_cpus``) and GPU (``num_gpus``) it asks for. Ray is imported here only,
  so the default path never needs it.

A file is tried at most ``MAX_ATTEMPTS`` times when workers die under it; after that it is failed with
the reason, and the job goes on. A file the library refuses (a ``UserError``: damaged, unreadable,
no audio) is failed at once with the library's one-line message.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.util
import logging
import multiprocessing
import os
import resource
import signal
import socket
import sys
from collections import deque
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ParameterError, UserError

if TYPE_CHECKING:
    from ..file_mode import Progress

MAX_ATTEMPTS = 3  # tries per file when the worker separating it dies; a file that kills every worker fails
RAY_EXTRA = "pip install 'realtime-split[cluster]'"


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker loads: ``Separator``'s arguments (the model by bundled name or absolute path)."""

    model: str | None
    stems: tuple[str, ...]
    latency: str
    hop: int | None
    gains: Mapping[str, float]
    provider: str
    threads: int
    model_sha256: str  # the driver's model: a worker that loads another file fails its tasks instead of mixing


@dataclass(frozen=True)
class Task:
    """One input and the folder its stems go to (absolute paths: workers may run anywhere on a shared disk)."""

    name: str  # the job's key for it: the output folder relative to the job's output
    input: str
    folder: str
    format: str | None
    subtype: str | None
    channels: str | tuple[int, ...] | None


@dataclass(frozen=True)
class Outcome:
    """What became of a task: its outputs (``done``) or the one-line reason (``failed``)."""

    name: str
    status: str  # "done" or "failed"
    outputs: dict[str, str] = field(default_factory=dict)  # stem -> absolute path
    seconds: float = 0.0  # of audio
    elapsed_seconds: float = 0.0  # separation time
    error: str | None = None
    note: str | None = None  # a warning about a done file (a truncated input, samples clipped...)
    worker: str = ""  # host:pid
    peak_rss_bytes: int = 0  # the worker process's peak memory so far
    provider: str = ""
    attempts: int = 1


def file_sha256(path: str | os.PathLike) -> str:
    """The model file's SHA-256: its version, as far as outputs are concerned."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


class Worker:
    """One loaded model, separating the files it is sent one after another."""

    def __init__(self, settings: WorkerSettings):
        from ..api import Separator

        self.separator = Separator(settings.model, stems=settings.stems, latency=settings.latency, hop=settings.hop,
                                   gains=dict(settings.gains) or None, provider=settings.provider,
                                   threads=settings.threads)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        sha = file_sha256(self.separator.model_path)
        self.mismatch = None if sha == settings.model_sha256 else (
            f"the worker {self.name} loaded another model file than the job's ({self.separator.model_path}, "
            f"sha256 {sha[:12]} instead of {settings.model_sha256[:12]}); install the same realtime-split and "
            "model on every node")

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: Task) -> Outcome:
        """Separate one file into ``task.folder``; a ``UserError`` becomes a failed outcome, the job goes on."""
        def failed(error: str) -> Outcome:
            return Outcome(task.name, "failed", error=error, worker=self.name, peak_rss_bytes=_peak_rss())

        if self.mismatch:
            return failed(self.mismatch)
        last: list[Progress] = []

        def seen(progress: Progress) -> None:
            last[:] = [progress]

        try:
            result = self.separator.separate_file(task.input, task.folder + os.sep, channels=task.channels,
                                                  format=task.format, subtype=task.subtype,
                                                  progress=seen)
        except KeyboardInterrupt:
            # A stop signal (SIGTERM) reached the worker while it wrote: separate_file keeps a stopped file's
            # partial stems under their names, which here would look finished. Take them away; the job's
            # manifest has the file as not done, so it is separated again.
            if last and last[0].stopped:
                for path in last[0].outputs:
                    Path(path).unlink(missing_ok=True)
            raise
        except UserError as exc:
            return failed(str(exc))
        except Exception as exc:  # a bug: recorded with its type so it can be reported; the job goes on
            return failed(f"internal error ({type(exc).__name__}: {exc}); please report it")
        notes = []
        if result.ended_early:
            notes.append(f"ended early at {result.seconds:.1f} s ({result.ended_early})")
        if result.nonfinite_inputs:
            notes.append(f"{result.nonfinite_inputs} NaN/Inf input samples replaced by silence")
        if result.nonfinite_outputs:
            notes.append(f"the model produced {result.nonfinite_outputs} NaN/Inf samples, replaced by silence")
        if result.clipped:
            notes.append(f"{result.clipped} samples beyond full scale clipped")
        return Outcome(task.name, "done", {stem: str(path) for stem, path in result.outputs.items()},
                       result.seconds, result.elapsed_seconds, note="; ".join(notes) or None, worker=self.name,
                       peak_rss_bytes=_peak_rss(), provider=result.provider)


def _died(task: Task, attempts: int, how: str) -> Outcome:
    return Outcome(task.name, "failed", attempts=attempts,
                   error=f"the worker died while separating it, {attempts} times ({how}); the file may crash a "
                         "decoder, or the worker ran out of memory (try fewer --workers)")


# The local engine --------------------------------------------------------------------------------------------------

_worker: Worker | None = None  # the process's own, in a LocalEngine worker process


def _start_worker(settings: WorkerSettings) -> None:
    """A pool process's initializer: load the model once. Ctrl-C is the driver's to handle: it stops the pool."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = Worker(settings)


def _run_task(task: Task) -> Outcome:
    assert _worker is not None, "the pool's initializer loads the worker"
    try:
        return _worker.run(task)
    except KeyboardInterrupt as exc:  # SIGTERM (the library's Interrupted): the process was asked to end, so end it
        os._exit(128 + getattr(exc, "signum", signal.SIGTERM))


def _context() -> multiprocessing.context.BaseContext:
    """How worker processes start: never a plain fork of the driver, which has run ONNX Runtime (its thread
    pools do not survive a fork). A fork server that has imported the library once starts each worker in a
    fraction of what a fresh interpreter (spawn, the fallback where there is no fork server) takes."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["realtime_split.api"])
        return context
    return multiprocessing.get_context("spawn")


class LocalEngine:
    """``workers`` processes on this machine, each with its model loaded once; nothing to install or start."""

    kind = "processes"

    def __init__(self, settings: WorkerSettings, workers: int | None, threads: int | None, gpu: bool):
        self.workers, self.threads = worker_counts(usable_cpus(), workers, threads, 1 if gpu else None)
        self.settings = _with_threads(settings, self.threads)
        self.capacity = self.workers  # in flight at once: one per process, so a dead process takes only its own file
        self._context = _context()
        self._pool = self._new_pool()
        self._running: dict[cf.Future, Task] = {}
        self._attempts: dict[str, int] = {}
        self._ready: deque[Outcome] = deque()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_start_worker,
                                      initargs=(self.settings,))

    def submit(self, task: Task) -> None:
        try:
            future = self._pool.submit(_run_task, task)
        except BrokenProcessPool:  # a worker died since the last wait: recover (that re-sends its file), then send
            self._recover()
            future = self._pool.submit(_run_task, task)
        self._attempts[task.name] = self._attempts.get(task.name, 0) + 1
        self._running[future] = task

    def pending(self) -> int:
        return len(self._running) + len(self._ready)

    def next_outcome(self) -> Outcome:
        """The next task to finish, done or failed (after its retries); blocks until there is one."""
        while not self._ready:
            finished, _ = cf.wait(self._running, return_when=cf.FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                self._recover()
                continue
            for future in finished:
                task = self._running.pop(future)
                exc = future.exception()
                outcome = future.result() if exc is None else Outcome(
                    task.name, "failed", error=f"internal error ({type(exc).__name__}: {exc}); please report it")
                self._ready.append(_with_attempts(outcome, self._attempts.pop(task.name, 1)))
        return self._ready.popleft()

    def _recover(self) -> None:
        """A worker process died, so the pool is broken: keep what finished, start a new pool, send the rest
        again (a file whose workers died ``MAX_ATTEMPTS`` times fails)."""
        cf.wait(self._running)  # a broken pool fails every future it still had: let them all settle
        self._pool.shutdown(wait=True)
        retry = []
        for future, task in self._running.items():
            exc = future.exception()
            if exc is None:
                self._ready.append(_with_attempts(future.result(), self._attempts.pop(task.name, 1)))
            elif self._attempts[task.name] >= MAX_ATTEMPTS:
                self._ready.append(_died(task, self._attempts.pop(task.name), "its process ended abruptly"))
            else:
                retry.append(task)
        self._running.clear()
        self._pool = self._new_pool()
        for task in retry:
            self.submit(task)

    def close(self, stop: bool = False) -> None:
        """Shut the pool down; ``stop`` (an interrupted job) kills the workers now, mid-file: their outputs are
        still under temporary names, so none is left looking finished (the next run removes them)."""
        if stop:
            for process in list(getattr(self._pool, "_processes", {}).values()):  # no public way before 3.14
                if process.is_alive():
                    process.kill()  # SIGKILL: no handler runs, so no stopped file is given its final name
        self._pool.shutdown(wait=True, cancel_futures=True)


def _with_attempts(outcome: Outcome, attempts: int) -> Outcome:
    return outcome if outcome.attempts == attempts else \
        Outcome(**{**outcome.__dict__, "attempts": attempts})


# The Ray engine ----------------------------------------------------------------------------------------------------

class RayEngine:
    """One Ray actor per worker on a running cluster (``address``: ``auto``, ``ray://host:10001``, ``host:6379``)
    or on a Ray instance started here (``local``); each actor loads the model once."""

    kind = "ray"

    def __init__(self, settings: WorkerSettings, address: str, workers: int | None, threads: int | None,
                 gpu: bool):
        try:
            import ray
        except ImportError:
            raise ParameterError(f"cluster={address!r} runs on Ray, which is not installed; {RAY_EXTRA}, or leave "
                                 "cluster= out to use processes on this machine", "cluster") from None
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            local = address == "local"
            options: dict[str, Any] = {"include_dashboard": False} if local else {}  # a running cluster has its own
            try:
                ray.init(address=None if local else address, logging_level=logging.ERROR, log_to_driver=False,
                         **options)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ParameterError(f"cluster={address!r}: cannot join the Ray cluster ({_first_line(exc)}); start "
                                     "one with `ray start --head`, or pass its address", "cluster") from None
        self.address = address
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        if gpu and gpus == 0:
            self.close()
            raise ParameterError(f"provider='cuda' asks for a GPU per worker, but the Ray cluster at {address!r} has "
                                 "none; use provider='cpu' or add GPU nodes", "provider")
        self.workers, self.threads = worker_counts(cpus, workers, threads, gpus if gpu else None)
        if not gpu and self.workers * self.threads > cpus:
            self.close()
            raise ParameterError(f"workers={self.workers} x threads_per_worker={self.threads} need "
                                 f"{self.workers * self.threads} CPUs, but the Ray cluster has {cpus}; ask for fewer",
                                 "workers")
        settings = _with_threads(settings, self.threads)
        actor = cast(Any, ray.remote(Worker)).options(num_cpus=self.threads, num_gpus=1 if gpu else 0,
                                           max_restarts=-1, max_task_retries=MAX_ATTEMPTS - 1)
        self._actors = [actor.remote(settings) for _ in range(self.workers)]
        self._load = [0] * self.workers
        self.capacity = 2 * self.workers  # one running and one queued per actor: no actor waits for the driver
        self._running: dict[Any, tuple[int, Task]] = {}

    def submit(self, task: Task) -> None:
        index = min(range(len(self._actors)), key=self._load.__getitem__)
        self._load[index] += 1
        self._running[self._actors[index].run.remote(task)] = (index, task)

    def pending(self) -> int:
        return len(self._running)

    def next_outcome(self) -> Outcome:
        ray = self._ray
        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        index, task = self._running.pop(ref)
        self._load[index] -= 1
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the actor died under this task MAX_ATTEMPTS times
            return _died(task, MAX_ATTEMPTS, _first_line(exc))
        except ray.exceptions.RayError as exc:
            return Outcome(task.name, "failed", error=f"Ray could not run it ({_first_line(exc)})")

    def close(self, stop: bool = False) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor, no_restart=True)
        if self._owns:
            self._ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _with_threads(settings: WorkerSettings, threads: int) -> WorkerSettings:
    return WorkerSettings(**{**settings.__dict__, "threads": threads})


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_job_options(workers: int | None, threads: int | None, cluster: str | None) -> None:
    """Refuse a worker count, a thread count or a cluster without Ray before anything is loaded or written."""
    for name, value in (("workers", workers), ("threads_per_worker", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ParameterError(f"{name}={value!r}: give a whole number of at least 1, or leave it out for the "
                                 "default", name)
    if cluster is not None:
        try:
            found = importlib.util.find_spec("ray") is not None
        except ValueError:  # "ray" in sys.modules as None: blocked
            found = False
        if not found or sys.modules.get("ray", False) is None:
            raise ParameterError(f"cluster={cluster!r} runs on Ray, which is not installed; {RAY_EXTRA}, or leave "
                                 "cluster= out to use processes on this machine", "cluster")


def worker_counts(cpus: int, workers: int | None, threads: int | None, gpus: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) that fill ``cpus`` without oversubscribing them: one single-threaded
    worker per CPU unless told otherwise (files are independent, so processes scale better than threads);
    with ``gpus`` (``provider='cuda'``), one worker per GPU sharing the CPUs."""
    check_job_options(workers, threads, None)
    cpus = max(1, cpus)
    if gpus is not None:
        workers = workers or max(1, gpus)
        return workers, threads or max(1, cpus // workers)
    if workers is None and threads is None:
        return cpus, 1
    if workers is None:
        assert threads is not None
        return max(1, cpus // threads), threads
    return workers, threads or max(1, cpus // workers)


def settings_path(model: str | os.PathLike | None, resolved: Path) -> str | None:
    """How workers name the model: a bundled name stays a name (each node has its own copy), a file is absolute."""
    if model is None:
        return None
    from .. import registry

    text = os.fspath(model)
    return text if text in registry.bundled_names() else str(resolved.resolve())
