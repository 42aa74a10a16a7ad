"""Which stems come out, in which order, and how loud.

``accompaniment`` is not a model output: it is the mix minus the vocals, so
vocals + accompaniment reproduce the input exactly. Karaoke is simply the
gain ``vocals=-inf`` (``--gain vocals=-inf``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .errors import ParameterError
from .mix import MAX_GAIN_DB, Mix

ALL = "all"
ACCOMPANIMENT = "accompaniment"
VOCALS = "vocals"


def available_stems(model_stems: Iterable[str]) -> tuple[str, ...]:
    """Every stem name a user may ask for with this model."""
    model_stems = tuple(model_stems)
    return model_stems + ((ACCOMPANIMENT,) if VOCALS in model_stems and ACCOMPANIMENT not in model_stems else ())


def parse_stems(selection: str | Iterable[str] | None, model_stems: Iterable[str]) -> tuple[str, ...]:
    """``"all"``, ``"vocals,drums"`` or ``["vocals", "accompaniment"]`` -> output stem names in order."""
    model_stems = tuple(model_stems)
    valid = available_stems(model_stems)
    if selection is None:
        selection = ALL
    tokens = selection.split(",") if isinstance(selection, str) else list(selection)
    stems: list[str] = []
    for token in tokens:
        name = str(token).strip().lower()
        if not name:
            continue
        for stem in model_stems if name == ALL else (name,):
            if stem not in valid:
                raise ParameterError(f"stems={selection!r}: unknown stem {stem!r}; this model offers "
                                     f"{', '.join(valid)} (or 'all')", "stems")
            if stem not in stems:
                stems.append(stem)
    if not stems:
        raise ParameterError(f"stems={selection!r} names no stem; choose from {', '.join(valid)} (or 'all')",
                             "stems")
    return tuple(stems)


def _parse_db(stem: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value == math.inf:
        raise ParameterError(f"gain for {stem!r} must be a number of dB or -inf, got {text!r} "
                             f"(e.g. gains='{stem}=-6')", "gains")
    if value > MAX_GAIN_DB:
        raise ParameterError(f"gain for {stem!r} is {text} dB, above the most allowed, +{MAX_GAIN_DB:.0f} dB (x100); "
                             f"pick a smaller one (e.g. gains='{stem}=+12'), or -inf to mute", "gains")
    return value


def parse_gains(spec: str | Mapping[str, float] | Iterable[str] | Mix | None, stems: Iterable[str],
                available: Iterable[str] = ()) -> dict[str, float]:
    """Per-stem gains in dB for the output ``stems``.

    ``spec`` is a mapping, ``"vocals=-inf,drums=-6"``, a list of such strings (the CLI's repeated
    ``--gain``) or a ``Mix`` (mix.py; a muted stem, or one a solo leaves out, at -inf). Unnamed stems keep
    0 dB. ``available``: every stem the model offers, so a gain for one that is not selected says to select
    it, and a misspelt one is pointed to the name it resembles.
    """
    stems = tuple(stems)
    if spec is None:
        return {}
    if isinstance(spec, Mix):
        spec = spec.gains_db
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
        pairs = []
        for item in (i.strip() for i in items):
            if not item:
                continue
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ParameterError(f"gain {item!r} must look like STEM=DB, e.g. vocals=-inf or drums=-6", "gains")
            pairs.append((name, value))
        if not pairs:
            raise ParameterError(f"gains={','.join(items)!r} names no stem; pass e.g. gains='vocals=-inf' (karaoke), "
                                 "or leave it out", "gains")
    gains: dict[str, float] = {}
    for name, value in pairs:
        stem = name.strip().lower()
        if stem not in stems:
            hint = _gain_hint(stem, stems, available)
            raise ParameterError(f"gain for {stem!r}, which is not an output stem; {hint}", "gains")
        gains[stem] = _parse_db(stem, value.strip())
    return gains


def _gain_hint(stem: str, stems: tuple[str, ...], available: Iterable[str]) -> str:
    """The fix for a gain on a stem that is not an output: the output stem it resembles (a typo), or to select it."""
    import difflib

    outputs = f"the output stems are {', '.join(stems)}"
    known = tuple(dict.fromkeys((*stems, *available)))
    if stem in known:
        return f"{outputs} (add it to stems=)"
    close = difflib.get_close_matches(stem, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? ({outputs}{'' if close[0] in stems else '; add it to stems='})"
    return outputs


def stem_sources(stems: Iterable[str], model_stems: Iterable[str]) -> np.ndarray:
    """For each output stem, its model stem index, or ``-1 - vocals index`` for mix minus vocals."""
    model_stems = tuple(model_stems)
    return np.array(
        [-1 - model_stems.index(VOCALS) if s == ACCOMPANIMENT and s not in model_stems else model_stems.index(s)
         for s in stems],
        np.int64,
    )


def linear_gains(stems: Iterable[str], gains_db: Mapping[str, float]) -> np.ndarray:
    """dB to amplitude factors in output stem order (-inf dB -> 0)."""
    return np.array([10.0 ** (gains_db.get(s, 0.0) / 20.0) for s in stems], np.float32)
