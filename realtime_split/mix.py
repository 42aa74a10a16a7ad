"""A mix of stems: each stem's gain in dB, mute and solo. One vocabulary for files and live sessions.

``Mix`` is a small frozen value: ``Separator(gains=mix)`` shapes files with it, ``LiveSession(gains=mix)``
starts with it, and ``LiveSession.mix`` reads what a live session plays now (changed while it plays with
``set_gain``, ``mute`` and ``solo``). ``factors()`` is what the audio path applies: the amplitude of each
stem, 0 for a muted stem and, while any stem is soloed, for every stem that is not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from .errors import ParameterError

MAX_GAIN_DB = 40.0  # x100 in amplitude: more only turns a stem into clipping or Inf


def check_db(db: object, name: str = "db", stem: str | None = None) -> float:
    """A gain in dB the mix can take: a number up to +40 dB, or -inf (silence)."""
    what = f"{name}={db!r}" + (f" for {stem!r}" if stem else "")
    if isinstance(db, bool) or not isinstance(db, (int, float, np.floating, np.integer)):
        raise ParameterError(f"{what}: give a number of dB, e.g. {name}=-6, or -inf to silence", name)
    value = float(db)
    if math.isnan(value) or value > MAX_GAIN_DB:
        raise ParameterError(f"{what}: give a number of dB up to +{MAX_GAIN_DB:.0f} (x100), or -inf to silence",
                             name)
    return value


@dataclass(frozen=True)
class StemMix:
    """One stem's place in a mix."""

    name: str
    gain_db: float = 0.0
    muted: bool = False
    soloed: bool = False


@dataclass(frozen=True)
class Mix:
    """Every stem's gain, mute and solo, in stem order; immutable (the ``with_*`` methods return a new mix)."""

    stems: tuple[StemMix, ...]

    @classmethod
    def of(cls, stems: Iterable[str], gains_db: Mapping[str, float] | None = None,
           muted: Iterable[str] = ()) -> Mix:
        """A mix of ``stems`` at 0 dB, except the ``gains_db`` given, with ``muted`` muted."""
        gains_db, muted = dict(gains_db or {}), set(muted)
        return cls(tuple(StemMix(s, float(gains_db.get(s, 0.0)), s in muted) for s in stems))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stems)

    @property
    def gains_db(self) -> dict[str, float]:
        """Each stem's gain as a file sums it: -inf for a stem that is muted or left out by a solo."""
        return {s.name: (s.gain_db if f > 0 else -math.inf) for s, f in zip(self.stems, self.factors())}

    def __getitem__(self, name: str) -> StemMix:
        return self.stems[self.index(name)]

    def index(self, name: str) -> int:
        """The position of stem ``name``; a name that is not in the mix names the ones that are."""
        for i, s in enumerate(self.stems):
            if s.name == name:
                return i
        raise ParameterError(f"stem={name!r} is not in this mix; its stems are {', '.join(self.names)}", "stem")

    def factors(self) -> np.ndarray:
        """Amplitude per stem (float64): 10^(dB/20), 0 when muted or when other stems are soloed (a mute holds
        through a solo: soloing a muted stem plays nothing until it is unmuted)."""
        solo = any(s.soloed for s in self.stems)
        return np.array([0.0 if s.muted or (solo and not s.soloed) else 10.0 ** (s.gain_db / 20.0)
                         for s in self.stems], np.float64)

    def _with(self, name: str, **change) -> Mix:
        i = self.index(name)
        return Mix(self.stems[:i] + (replace(self.stems[i], **change),) + self.stems[i + 1:])

    def with_gain(self, name: str, db: float) -> Mix:
        return self._with(name, gain_db=check_db(db, stem=name))

    def with_mute(self, name: str, on: bool = True) -> Mix:
        return self._with(name, muted=bool(on))

    def with_solo(self, name: str, on: bool = True) -> Mix:
        return self._with(name, soloed=bool(on))

    def __str__(self) -> str:
        """``vocals -6 dB M, drums S, bass, other``: the stems with what sets them apart."""
        parts = []
        for s in self.stems:
            marks = ([f"{s.gain_db:+g} dB"] if s.gain_db else []) + (["muted"] if s.muted else []) + \
                (["solo"] if s.soloed else [])
            parts.append(" ".join([s.name, *marks]))
        return ", ".join(parts)
