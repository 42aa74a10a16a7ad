"""Which MIDI messages change which stem: the default map and ``--midi-map FILE``.

The default follows the General MIDI convention that a channel is an instrument: stem ``n`` of the mix (in
its order, 1-4 for the four stems) listens on MIDI channel ``n``:

- control change 7 (channel volume) is its gain: ``40 * log10(value / 127)`` dB, the curve GM recommends,
  so 127 is 0 dB, 100 -4.2 dB, 64 -11.9 dB and 0 silence;
- note 0 toggles its mute, note 1 its solo, on note-on (velocity above 0; note-off is ignored, so both
  latching and momentary buttons toggle once per press).

A map file has one line per binding, ``STEM gain|mute|solo cc|note NUMBER [channel N]`` (channel 1-16,
default 1; ``#`` starts a comment), e.g. ``vocals gain cc 1`` and ``vocals mute note 36 channel 10``; it
replaces the default map. ``MidiMap.apply`` turns one raw 3-byte message into a call on the session.

``MidiLearn`` (``--midi-learn STEM=FILE``) binds the first control change that arrives to STEM's gain and writes
the whole map in that format to FILE, for ``--midi-map FILE`` next time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ParameterError

ACTIONS = ("gain", "mute", "solo")
CC, NOTE_ON, NOTE_OFF = 0xB0, 0x90, 0x80
GAIN_CC = 7
MUTE_NOTE, SOLO_NOTE = 0, 1


def cc_to_db(value: int) -> float:
    """A 0-127 controller value as dB (GM's volume curve: 127 -> 0 dB, 0 -> -inf)."""
    return -math.inf if value <= 0 else 40.0 * math.log10(value / 127.0)


@dataclass(frozen=True)
class Binding:
    stem: str
    action: str  # gain, mute or solo
    kind: int  # CC or NOTE_ON
    number: int  # controller or note number
    channel: int  # 0-15


    def line(self) -> str:
        """The binding as a map file's line."""
        kind = "cc" if self.kind == CC else "note"
        return f"{self.stem} {self.action} {kind} {self.number} channel {self.channel + 1}"


class MidiMap:
    """Bindings from (message kind, channel, number) to a stem's gain, mute or solo."""

    def __init__(self, bindings: Sequence[Binding]):
        self.bindings = tuple(bindings)
        self._by_key = {(b.kind, b.channel, b.number): b for b in self.bindings}

    @classmethod
    def default(cls, stems: Sequence[str]) -> MidiMap:
        bindings = []
        for channel, stem in enumerate(stems[:16]):
            bindings += [Binding(stem, "gain", CC, GAIN_CC, channel),
                         Binding(stem, "mute", NOTE_ON, MUTE_NOTE, channel),
                         Binding(stem, "solo", NOTE_ON, SOLO_NOTE, channel)]
        return cls(bindings)

    @classmethod
    def read(cls, path: str | os.PathLike, stems: Sequence[str]) -> MidiMap:
        """A map file (see the module's docstring); a line it cannot use is a ``ParameterError`` naming it."""
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"midi_map={os.fspath(path)!r} cannot be read ({getattr(exc, 'strerror', exc)}); "
                                 "give a text file of lines like 'vocals gain cc 7 channel 1'", "midi_map") from None
        bindings = []
        for number, line in enumerate(lines, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            bindings.append(_binding(words, stems, f"midi_map={os.fspath(path)!r} line {number}"))
        if not bindings:
            raise ParameterError(f"midi_map={os.fspath(path)!r} binds nothing; give lines like "
                                 "'vocals gain cc 7 channel 1'", "midi_map")
        return cls(bindings)

    def with_binding(self, binding: Binding) -> MidiMap:
        """This map with ``binding`` instead of what bound its message or its stem's same action."""
        key = (binding.kind, binding.channel, binding.number)
        kept = [b for b in self.bindings if (b.kind, b.channel, b.number) != key
                and (b.stem, b.action) != (binding.stem, binding.action)]
        return MidiMap([*kept, binding])

    def write(self, path: str | os.PathLike) -> None:
        """The map as a file ``read`` takes back."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("# realtime-split MIDI map: STEM gain|mute|solo cc|note NUMBER channel N\n")
            f.writelines(b.line() + "\n" for b in self.bindings)

    def apply(self, session, status: int, data1: int, data2: int) -> bool:
        """Change ``session``'s mix for one channel message; whether it was bound."""
        kind, channel = status & 0xF0, status & 0x0F
        if kind == NOTE_OFF or (kind == NOTE_ON and data2 == 0):
            return False
        binding = self._by_key.get((kind, channel, data1))
        if binding is None:
            return False
        if binding.action == "gain":
            session.set_gain(binding.stem, cc_to_db(data2) if kind == CC else 0.0)
        else:
            stem = session.mix[binding.stem]
            current = stem.muted if binding.action == "mute" else stem.soloed
            on = (data2 >= 64) if kind == CC else not current  # a CC switch sets, a note toggles
            getattr(session, binding.action)(binding.stem, on)
        return True


def _binding(words: list[str], stems: Sequence[str], where: str) -> Binding:
    usage = "lines look like 'vocals gain cc 7 channel 1' or 'drums mute note 36 channel 10'"
    if len(words) not in (4, 6) or (len(words) == 6 and words[4] != "channel"):
        raise ParameterError(f"{where}: {' '.join(words)!r}: {usage}", "midi_map")
    stem, action, kind, number = words[:4]
    if stem not in stems:
        raise ParameterError(f"{where}: stem {stem!r} is not one of {', '.join(stems)}", "midi_map")
    if action not in ACTIONS or kind not in ("cc", "note"):
        raise ParameterError(f"{where}: {' '.join(words)!r}: the action is gain, mute or solo and the message cc or "
                             f"note; {usage}", "midi_map")
    channel_text = words[5] if len(words) == 6 else "1"
    try:
        value, channel = int(number), int(channel_text)
    except ValueError:
        value = channel = -1
    if not (0 <= value <= 127 and 1 <= channel <= 16):
        raise ParameterError(f"{where}: {' '.join(words)!r}: numbers are 0-127 and channels 1-16; {usage}",
                             "midi_map")
    return Binding(stem, action, CC if kind == "cc" else NOTE_ON, value, channel - 1)


class MidiLearn:
    """A map that learns: the first control change to arrive (any controller, any channel) becomes ``stem``'s
    gain control, the map with it is written to ``path``, and every message (that one too) is applied through
    it. It stands in for a ``MidiMap`` on the JACK path and the mido path alike; the file is written from the
    thread that applies MIDI, never the audio thread."""

    def __init__(self, mapping: MidiMap, learn: str, stems: Sequence[str]):
        stem, sep, path = str(learn).partition("=")
        if not sep or not path:
            raise ParameterError(f"midi_learn={learn!r}: give STEM=FILE, e.g. midi_learn='vocals=my-controller.map'",
                                 "midi_learn")
        if stem not in stems:
            raise ParameterError(f"midi_learn={learn!r}: stem {stem!r} is not one of {', '.join(stems)}",
                                 "midi_learn")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.access(folder, os.W_OK):
            raise ParameterError(f"midi_learn={learn!r}: cannot write in {folder}; name a file in a folder you can "
                                 "write to", "midi_learn")
        self.mapping, self.stem, self.path = mapping, stem, path
        self.learned: Binding | None = None

    def apply(self, session, status: int, data1: int, data2: int) -> bool:
        if self.learned is None and status & 0xF0 == CC:
            self.learned = Binding(self.stem, "gain", CC, data1, status & 0x0F)
            self.mapping = self.mapping.with_binding(self.learned)
            self.mapping.write(self.path)
        return self.mapping.apply(session, status, data1, data2)
