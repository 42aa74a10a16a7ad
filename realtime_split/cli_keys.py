"""The command line's keys while a live session plays: a thin adapter over ``LiveSession.set_gain``, ``mute``
and ``solo``.

1-9 choose a stem (in the mix's order), up/down (or +/-) move its gain by 1 dB, m mutes or unmutes it,
s solos or releases it, 0 puts it back to 0 dB. Only a terminal is read, in cbreak mode (keys arrive one at
a time, unechoed; Ctrl-C still interrupts) restored on the way out; when standard input is not a terminal
(a pipe, a file, or the audio itself with ``--input -``) nothing reads it.
"""

from __future__ import annotations

import math
import os
import select
import sys
import time
from typing import Protocol

from .mix import MAX_GAIN_DB, Mix

STEP_DB = 1.0
FLOOR_DB = -60.0  # one step below is -inf (silence); one step up from -inf comes back here
UP, DOWN = ("\x1b[A", "\x1bOA"), ("\x1b[B", "\x1bOB")


class Mixer(Protocol):
    """What the keys drive: a live session."""

    @property
    def mix(self) -> Mix: ...

    def set_gain(self, stem: str, db: float) -> None: ...

    def mute(self, stem: str, on: bool = True) -> None: ...

    def solo(self, stem: str, on: bool = True) -> None: ...


class Keys:
    """Reads keys from ``stream`` (standard input) while ``enabled``; ``wait(seconds)`` handles the keys that
    arrive within that time. ``selected`` is the index of the chosen stem."""

    def __init__(self, session: Mixer, enabled: bool | None = None, stream=None):
        self.session = session
        self.stream = stream or sys.stdin
        self.selected = 0
        self._saved = None
        self._pending = ""
        try:
            self._fd = self.stream.fileno()
            tty = os.isatty(self._fd)
        except (AttributeError, OSError, ValueError):
            self._fd, tty = -1, False
        self.enabled = tty and (enabled is None or enabled)
        if self.enabled:
            import termios
            import tty as tty_module

            try:
                self._saved = termios.tcgetattr(self._fd)
                tty_module.setcbreak(self._fd)
            except termios.error:
                self.enabled = False

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, handling every key that arrives meanwhile (without a terminal: only sleep)."""
        if not self.enabled:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                return
            data = os.read(self._fd, 64)
            if not data:  # the terminal went away
                self.close()
                time.sleep(max(0.0, deadline - time.monotonic()))
                return
            self.feed(data.decode(errors="replace"))

    def feed(self, text: str) -> None:
        """Handle ``text`` as typed keys (an arrow's escape sequence may arrive split over two reads)."""
        text = self._pending + text
        self._pending = ""
        i = 0
        while i < len(text):
            if text[i] == "\x1b":
                sequence = text[i:i + 3]
                if len(sequence) < 3 and i + len(sequence) == len(text):
                    self._pending = sequence  # the rest of the arrow follows
                    return
                if sequence in UP:
                    self.step(+STEP_DB)
                elif sequence in DOWN:
                    self.step(-STEP_DB)
                i += 3
                continue
            self.key(text[i])
            i += 1

    def key(self, key: str) -> None:
        mix = self.session.mix
        stem = mix.stems[min(self.selected, len(mix.stems) - 1)]
        if key.isdigit() and key != "0":
            if int(key) <= len(mix.stems):
                self.selected = int(key) - 1
        elif key in "+=":
            self.step(+STEP_DB)
        elif key in "-_":
            self.step(-STEP_DB)
        elif key in "mM":
            self.session.mute(stem.name, not stem.muted)
        elif key in "sS":
            self.session.solo(stem.name, not stem.soloed)
        elif key == "0":
            self.session.set_gain(stem.name, 0.0)

    def step(self, db: float) -> None:
        stem = self.session.mix.stems[self.selected]
        gain = stem.gain_db
        if gain == -math.inf:
            new = FLOOR_DB if db > 0 else gain
        elif gain + db < FLOOR_DB:
            new = -math.inf
        else:
            new = min(gain + db, MAX_GAIN_DB)
        self.session.set_gain(stem.name, new)

    def close(self) -> None:
        """The terminal as it was."""
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass
            self._saved = None
        self.enabled = False
