"""The files one run writes, owned by that run: locked, written under temporary names, renamed at the end.

Why: a run that writes its stems under their final names leaves files that look finished but are not
(SIGKILL, a power cut: a flac that claims 2^63-1 frames), empties an existing output when the disk
fills, and splices its stems with a second run writing into the same folder. So:

- **One writer per output.** ``OutputSet.lock()`` takes an exclusive ``flock`` on a lock file beside
  each output (``.vocals.wav.lock``, holding the writer's pid) before anything is written, and refuses
  a second writer of any of those files with one line naming the other run's pid and the fix. The
  kernel drops a lock with its process, so a killed run never blocks the next one.
- **Temporary names.** Each output is written as ``.<name>.partial-<pid>`` in its own folder (same file
  system, so the rename is atomic) and renamed to its name by ``commit()`` when it is complete, or when
  an interrupted run keeps what it has. ``discard()`` removes a temporary, leaving whatever had that
  name before (an earlier run's output) as it was. A run killed outright leaves only hidden
  ``.partial-`` and ``.lock`` files, never a final name; the next run that locks the same output
  removes them.
- Symbolic links are followed (the file they name is replaced, the link stays); an existing output
  that is not a regular file (``/dev/null``, a FIFO) and standard output (``-``) are streams: written
  in place, neither locked nor renamed.

Usage (``file_mode.py`` is the reference)::

    with OutputSet(paths) as outputs:     # lock() on entry (AudioIOError if another run writes one),
        tmp = outputs.temporary(path)     # release() on exit: unlocks, drops the lock files
        ... write tmp ...
        outputs.commit([path])            # or outputs.discard([path]) to leave the old file as it was
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import AudioIOError

STDIO = "-"
PARTIAL = ".partial-"  # temporary names: .<name>.partial-<pid>
LOCK = ".lock"  # lock files: .<name>.lock
_SUFFIX_ROOM = len(PARTIAL) + 10  # the longest suffix a hidden name gets (a pid has at most 7 digits on Linux)


class OutputSet:
    """The outputs of one run (see the module docstring): ``lock``, ``temporary``, ``commit``/``discard``,
    ``release``; a context manager that locks on entry and releases on exit."""

    def __init__(self, paths: Iterable[str | os.PathLike], parameter: str = "output"):
        self.parameter = parameter  # the library argument that named the outputs, for messages
        self._real: dict[Path, Path] = {}  # output as given -> the file it names (links followed)
        for path in paths:
            path = Path(path)
            if str(path) != STDIO and path not in self._real and not _is_special(path):
                self._real[path] = Path(os.path.realpath(path))
        self._locks: dict[Path, int] = {}  # real path -> the open, locked lock file
        self._existed = {path: real.exists() for path, real in self._real.items()}

    # Ownership ---------------------------------------------------------------------------------------------------

    def lock(self) -> None:
        """Lock every output or none: raises ``AudioIOError`` naming the run that writes one of them already.
        Removes the temporaries a killed run left beside the outputs it now owns."""
        try:
            for real in sorted(set(self._real.values())):
                if real not in self._locks:
                    self._locks[real] = _take_lock(real, self.parameter)
        except BaseException:
            self.release()
            raise
        for folder in {real.parent for real in self._locks}:
            _remove_stale(folder, {_hidden(real.name) for real in self._locks if real.parent == folder})

    def release(self) -> None:
        """Unlock and remove the lock files (a second run waiting on one of them will retry on the new file)."""
        for real, fd in self._locks.items():
            with contextlib.suppress(OSError):
                lock_path = _lock_path(real)
                if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                    os.unlink(lock_path)
            os.close(fd)
        self._locks.clear()

    def __enter__(self) -> OutputSet:
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # Names -------------------------------------------------------------------------------------------------------

    def temporary(self, path: str | os.PathLike) -> Path:
        """Where to write ``path`` until it is committed (``path`` itself for a stream or a special file)."""
        real = self._real.get(Path(path))
        if real is None:
            return Path(path)
        return real.parent / f"{_hidden(real.name)}{PARTIAL}{os.getpid()}"

    def existed(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` named a file before this run (so a failed run must leave it as it was)."""
        return self._existed.get(Path(path), False)

    def commit(self, paths: Iterable[str | os.PathLike]) -> list[Path]:
        """Rename each of ``paths``' temporaries to its final name; returns the outputs now in place."""
        done = []
        for path in paths:
            path = Path(path)
            real = self._real.get(path)
            if real is None:
                done.append(path)
                continue
            temporary = self.temporary(path)
            try:
                os.replace(temporary, real)
            except FileNotFoundError:
                continue
            except OSError as exc:
                _unlink(temporary)
                raise AudioIOError(f"cannot write {path}: {exc.strerror or exc}; pass another {self.parameter}=",
                                   self.parameter) from None
            done.append(path)
        return done

    def discard(self, paths: Iterable[str | os.PathLike]) -> None:
        """Remove the temporaries of ``paths``: what had their names before the run stays as it was."""
        for path in paths:
            if Path(path) in self._real:
                _unlink(self.temporary(path))


def _is_special(path: Path) -> bool:
    """An existing output that is not a regular file or a folder (a device such as /dev/null, a FIFO)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _hidden(name: str) -> str:
    """``.<name>``, the stem of the temporary and lock names; shortened with a hash of the name where the folder's
    name limit would not hold the suffixes (a name of 250 bytes still gets a temporary of its own)."""
    raw = os.fsencode(name)
    room = 255 - 1 - _SUFFIX_ROOM
    if len(raw) <= room:
        return "." + name
    digest = hashlib.sha1(raw).hexdigest()[:12]
    return "." + os.fsdecode(raw[: room - 13]) + "~" + digest  # a cut character stays bytes (surrogateescape)


def _lock_path(real: Path) -> Path:
    return real.parent / f"{_hidden(real.name)}{LOCK}"


def _take_lock(real: Path, parameter: str) -> int:
    """An open lock file beside ``real``, exclusively locked, holding this process's pid."""
    lock_path = _lock_path(real)
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise AudioIOError(f"cannot write {real}: {exc.strerror or exc}; pass another {parameter}=",
                               parameter) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise AudioIOError(f"cannot lock {real} for writing: {exc.strerror or exc}", parameter) from None
            who = f"another run (pid {holder})" if holder and holder != os.getpid() else \
                "another run in this process" if holder else "another run"
            raise AudioIOError(f"{who} is writing {real}; wait for it to finish, or pass another {parameter}= "
                               "(two runs never write one file)", parameter) from None
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its previous owner removed while we opened it
            with contextlib.suppress(OSError):  # the pid only names us to a refused run; a full disk cannot hold it
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _remove_stale(folder: Path, prefixes: set[str]) -> None:
    """Remove ``<prefix>.partial-<pid>`` files of outputs this run has locked: a killed run's leftovers."""
    wanted = {prefix + PARTIAL for prefix in prefixes}
    try:
        names = [entry.name for entry in os.scandir(folder) if PARTIAL in entry.name]
    except OSError:
        return
    for name in names:
        head = name[: name.rindex(PARTIAL) + len(PARTIAL)]
        if head in wanted:
            _unlink(folder / name)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
