"""A batch job's memory: what became of each input, in ``OUT/batch-manifest.sqlite``.

One row per input, keyed by its output folder (relative to the job's output): the input's path,
size and modification time, the status (``running`` while a worker has it, then ``done`` or
``failed``), the outputs, the model's name and version (its SHA-256), the preset, every option
that shapes the outputs (``options``), the seconds of audio, the separation time, the error line
of a failure, the attempts and the worker. A rerun compares each input with its row
(``Manifest.decide``): done with the same input, model and options and its outputs still there is
skipped; anything else is separated again. Only the job's driver writes here (workers report to
it), and an exclusive lock on ``batch-manifest.lock`` keeps a second job off the same output.

SQLite (the standard library's ``sqlite3``) because a catalogue has millions of rows: a rerun
looks each up by key instead of reading a log, and the file stays readable with any SQLite tool.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import AudioIOError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one job per output is then the user's to keep
    fcntl = None  # type: ignore[assignment]

MANIFEST = "batch-manifest.sqlite"
LOCK = "batch-manifest.lock"
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,     -- the output folder, relative to the job's output (posix)
    input TEXT NOT NULL,       -- absolute path
    size INTEGER,              -- bytes, when it was last separated (or tried)
    mtime_ns INTEGER,
    status TEXT NOT NULL,      -- running, done, failed
    options TEXT,              -- JSON: model version, preset, hop, stems, gains, format, subtype, channels
    model_name TEXT,
    model_version TEXT,        -- the model file's SHA-256
    preset TEXT,
    outputs TEXT,              -- JSON: stem -> path relative to the job's output
    seconds REAL,              -- of audio
    elapsed_seconds REAL,      -- separation time
    error TEXT,                -- the one-line reason of a failure
    note TEXT,                 -- a warning about a done file (truncated input...)
    attempts INTEGER NOT NULL DEFAULT 0,  -- times a worker was given it, over all runs
    worker TEXT,               -- host:pid
    updated REAL               -- Unix time
);
"""

DO, SKIP, KEEP_FAILURE = "do", "skip", "keep-failure"


@dataclass(frozen=True)
class Row:
    name: str
    input: str
    size: int | None
    mtime_ns: int | None
    status: str
    options: str | None
    outputs: dict[str, str]
    seconds: float
    elapsed_seconds: float
    error: str | None
    note: str | None
    attempts: int
    worker: str | None


def input_stamp(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """(size, mtime in ns) of an input; (None, None) when it cannot be read (its worker says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


class Manifest:
    """The job's SQLite manifest in ``folder``, locked against a second job for as long as it is open."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / MANIFEST
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock: IO[bytes] | None = self._take_lock(folder / LOCK)
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise AudioIOError(f"cannot keep the job's manifest in {folder}: {exc}; pass another output=",
                               "output") from None
        self._db.execute("PRAGMA journal_mode=WAL")  # a reader (sqlite3 OUT/batch-manifest.sqlite) never blocks it
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._last_commit = time.monotonic()

    def _take_lock(self, path: Path) -> IO[bytes] | None:
        handle = open(path, "ab")
        if fcntl is None:
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AudioIOError(f"another batch job is writing to {self.folder} (it holds {path}); wait for it to end, "
                               "or pass another output=", "output") from None
        return handle

    def close(self) -> None:
        if self._db is not None:
            self._commit()
            self._db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def row(self, name: str) -> Row | None:
        found = self._db.execute("SELECT * FROM files WHERE name = ?", (name,)).fetchone()
        return None if found is None else self._row(found)

    def rows(self) -> Iterator[Row]:
        for found in self._db.execute("SELECT * FROM files ORDER BY name"):
            yield self._row(found)

    def _row(self, r: sqlite3.Row) -> Row:
        return Row(r["name"], r["input"], r["size"], r["mtime_ns"], r["status"], r["options"],
                   json.loads(r["outputs"] or "{}"), r["seconds"] or 0.0, r["elapsed_seconds"] or 0.0, r["error"],
                   r["note"], r["attempts"], r["worker"])

    def decide(self, name: str, input: str, stamp: tuple[int | None, int | None], options: str,
               retry_failed: bool) -> tuple[str, Row | None]:
        """Whether this run separates the input (``DO``), skips it (``SKIP``: done with the same input, model
        and options, and its outputs are there) or keeps its earlier failure (``KEEP_FAILURE``: the same
        input, model and options failed before, and ``retry_failed`` is off)."""
        row = self.row(name)
        if row is None or row.input != input or row.options != options or stamp[0] is None \
                or (row.size, row.mtime_ns) != stamp:
            return DO, row
        if row.status == "done" and all((self.folder / p).is_file() for p in row.outputs.values()):
            return SKIP, row
        if row.status == "failed" and not retry_failed:
            return KEEP_FAILURE, row
        return DO, row

    def start(self, name: str, input: str, stamp: tuple[int | None, int | None]) -> None:
        """A worker was given the input. The row keeps its earlier outputs and options (still on disk) but is
        no longer done: if the job stops now, the next run does it again."""
        self._write(
            "INSERT INTO files (name, input, size, mtime_ns, status, attempts, updated) VALUES (?, ?, ?, ?, "
            "'running', 1, ?) ON CONFLICT(name) DO UPDATE SET input = excluded.input, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, status = 'running', attempts = attempts + 1, updated = excluded.updated",
            (name, input, stamp[0], stamp[1], time.time()))

    def finish(self, name: str, *, status: str, options: str, model_name: str, model_version: str, preset: str,
               outputs: dict[str, str], seconds: float, elapsed_seconds: float, error: str | None, note: str | None,
               extra_attempts: int, worker: str) -> None:
        """Record a finished task (``outputs`` relative to the job's output)."""
        self._write(
            "UPDATE files SET status = ?, options = ?, model_name = ?, model_version = ?, preset = ?, outputs = ?, "
            "seconds = ?, elapsed_seconds = ?, error = ?, note = ?, attempts = attempts + ?, worker = ?, updated = ? "
            "WHERE name = ?",
            (status, options, model_name, model_version, preset, json.dumps(outputs), seconds, elapsed_seconds,
             error, note, extra_attempts, worker, time.time(), name))

    def _write(self, sql: str, parameters: tuple) -> None:
        """Commit at most once a second (a transaction per row would cost a disk sync per file); a driver
        killed in between loses at most that second's records, whose files the next run does again."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(sql, parameters)
        if time.monotonic() - self._last_commit >= 1.0:
            self._commit()

    def _commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._last_commit = time.monotonic()
