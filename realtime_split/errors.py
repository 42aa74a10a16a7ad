"""User-facing errors, and the signals that stop a run.

A ``UserError`` is a mistake the user can fix (a missing file, an unknown stem,
a model without metadata) or a condition they must act on (a full disk). The CLI
prints its message as one line and exits non-zero without a traceback; anything
else is a bug and keeps its traceback.

The library raises two kinds, so an application can catch them the usual way:
``ParameterError`` (a ``ValueError``: an argument it cannot use, e.g. ``model=``,
``channels=``) and ``AudioIOError`` (an ``OSError``: a file, pipe or sound device
that cannot be read, written or opened; ``DeviceError`` for the devices). Their
messages name library parameters as ``name=`` (``model='x.onnx'``); the CLI shows
those as its flags (``--model x.onnx``), so one message serves both.

``Interrupted`` is how SIGTERM and SIGHUP reach the code: the CLI's handler raises
it, and as a ``KeyboardInterrupt`` it takes the same way out as Ctrl-C, through
every ``finally`` that finalizes an output file.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class UserError(Exception):
    """A problem caused by the user's input; the message names it and the fix.

    The common base of the library's errors: the CLI catches it and prints one line. ``parameter`` is
    the library parameter at fault (``"model"``, ``"channels"``), when one is."""

    exit_code = 2
    parameter: str | None = None

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        if parameter is not None:
            self.parameter = parameter


class ParameterError(UserError, ValueError):
    """An argument the library cannot use (an unknown stem, a preset the model lacks, a bad gain)."""


class ModelFormatError(ParameterError):
    """An ONNX file that does not follow docs/model-format.md (the ``model=`` argument)."""

    parameter = "model"


class AudioIOError(UserError, OSError):
    """A file or pipe that cannot be read or written (missing, damaged, a full disk)."""


class DeviceError(AudioIOError):
    """A sound device that is missing, refuses the stream's settings or went away."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; the CLI exits with 128 + ``signum``."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


# The signals that stop a run cleanly (outputs finalized); SIGINT is Python's KeyboardInterrupt already.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``Interrupted`` (like Ctrl-C raises KeyboardInterrupt) while inside.

    A signal the process inherited as ignored (``nohup``) stays ignored. Only the main thread
    can install handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, _raise_interrupted)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while finalizing files; raise the first one afterwards.

    Inside, a stop signal only marks itself pending, so closing a file (its header) is never cut
    short. On the way out the pending signal is raised as ``Interrupted``, unless an exception is
    already leaving the block (the run is stopping anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current is not signal.SIG_IGN and current is not None:
            previous[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    failed = True
    try:
        yield
        failed = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending and not failed:
            raise Interrupted(pending[0])
