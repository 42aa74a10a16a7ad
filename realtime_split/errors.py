"""User-facing errors, and the signals that stop a run.

A ``UserError`` is a mistake the user can fix (a missing file, an unknown stem,
a model without metadata) or a condition they must act on (a full disk). The CLI
prints its message as one line and exits non-zero without a traceback; anything
else is a bug and keeps its traceback.

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
    """A problem caused by the user's input; the message names it and the fix."""

    exit_code = 2


class ModelFormatError(UserError):
    """An ONNX file that does not follow docs/model-format.md."""


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
