"""MIDI controllers without JACK: an ALSA (Linux), CoreMIDI (macOS) or Windows MIDI input port read through mido
with python-rtmidi (the ``control`` extra).

A session on JACK ports reads its own ``midi_in`` port in the process callback (``_MidiReader`` in session.py);
every other session (``--input mic``, speakers, ``open_stream=False``) opens an input port here instead. Both
apply messages through the same ``MidiMap`` (live/midi_map.py), so a controller and a map file behave alike on
either path. The port is opened before the model loads (a missing library or port fails first) and its messages
wait in mido's queue until ``attach`` hands them to the session: from then on rtmidi's own thread calls
``handle``, which calls ``LiveSession.set_gain``, ``mute`` or ``solo`` (safe from any thread; never the audio
thread).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import DeviceError, ParameterError

BACKEND = "mido.backends.rtmidi"
CLIENT_NAME = "realtime-split"
SEQUENCER = "/dev/snd/seq"  # ALSA's sequencer device, which rtmidi needs on Linux
THROUGH = "Midi Through"  # ALSA's loopback port, listed first on Linux: never a controller, so not the default
INSTALL = "pip install 'realtime-split[control]'"


def backend() -> Any:
    """mido's python-rtmidi backend; a ``DeviceError`` saying what to install if either library is missing."""
    try:
        import mido

        found = mido.Backend(BACKEND, load=True)
    except ImportError:
        raise DeviceError(f"MIDI without JACK needs mido and python-rtmidi: {INSTALL}") from None
    return found


def _sequencer_missing() -> bool:
    return sys.platform.startswith("linux") and not os.path.exists(SEQUENCER)


class MidiInput:
    """One MIDI input port whose channel messages change a session's mix. ``port``: a part of the port's name
    (case-insensitive; ``None``: the first input port but ALSA's "Midi Through"). ``open()`` it, ``attach`` the
    session and its map once the session plays, ``close()`` it before the session stops. ``applied`` and
    ``ignored`` count messages."""

    def __init__(self, port: str | None = None):
        self.port = port
        self.name: str | None = None  # the port opened
        self.session: Any = None
        self.mapping: Any = None
        self.applied = self.ignored = 0
        self.error: BaseException | None = None  # what a message raised on rtmidi's thread, for the session
        self._input: Any = None

    def open(self) -> MidiInput:
        rtmidi = backend()
        if _sequencer_missing():  # checked first: rtmidi would print ALSA's own complaint before failing
            raise DeviceError(f"MIDI without JACK needs the ALSA sequencer ({SEQUENCER}), which this machine lacks: "
                              "load it (sudo modprobe snd-seq), or run on JACK ports (--input jack or --output "
                              "jack) and use their midi_in")
        try:
            names = rtmidi.get_input_names()
        except OSError as exc:  # rtmidi's SystemError: no MIDI service
            raise DeviceError(f"cannot reach the system's MIDI service ({exc}); on JACK ports (--input jack or "
                              "--output jack) use their midi_in instead") from None
        if self.port:
            matches = [n for n in names if self.port.lower() in n.lower()]
            if not matches:
                raise ParameterError(f"midi={self.port!r} matches no MIDI input port; the inputs are: "
                                     f"{', '.join(names) or 'none'}", "midi")
        else:
            matches = [n for n in names if not n.startswith(THROUGH)]
            if not matches:
                raise DeviceError("no MIDI input port: plug in the controller (or start the program that sends "
                                  "MIDI) and start again")
        self.name = matches[0]
        try:
            self._input = rtmidi.open_input(self.name, client_name=CLIENT_NAME)
        except OSError as exc:
            raise DeviceError(f"cannot open the MIDI input {self.name!r} ({exc}); close the program holding it, "
                              "or name another with --midi PORT") from None
        return self

    def attach(self, session, mapping) -> None:
        """Apply what arrives from now on (and what arrived since ``open``) to ``session`` through ``mapping``."""
        self.session, self.mapping = session, mapping
        if self._input is not None:
            self._input.callback = self.handle

    def handle(self, message) -> None:
        """One ``mido.Message``: a bound control change or note changes the mix; anything else is counted."""
        data = message.bytes()
        try:
            if len(data) == 3 and 0x80 <= data[0] < 0xF0 and self.mapping.apply(self.session, *data):
                self.applied += 1
                return
        except Exception as exc:  # noqa: BLE001 - reported when the session stops, like its other threads'
            if self.error is None:
                self.error = exc
        self.ignored += 1

    def close(self) -> None:
        if self._input is not None:
            self._input.close()  # deregisters the callback first: no message arrives after this
            self._input = None
