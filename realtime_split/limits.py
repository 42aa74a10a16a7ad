"""The bounds on what the library accepts, defined once: the library and the command line refuse the same values.

A sample rate outside ``SAMPLE_RATES`` is no real audio (soxr crashes on 1 Hz and takes hours at 10^9 Hz);
a hop below ``MIN_HOP`` model samples runs the model so often that a song takes hours. Audio arrays may be
float or integer PCM: integers are scaled to [-1, 1) as soundfile reads them (int16 by 2^15, int32 by 2^31,
int8 by 2^7, unsigned 8-bit around 128), so an array read with ``dtype="int16"`` separates like one read as
float. Messages name the library's parameters (``sample_rate=``, ``hop=``); the CLI shows its flags.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ParameterError

SAMPLE_RATES = (1000, 768000)  # Hz: what real audio uses, from telephone-band recordings to DXD
MIN_HOP = 32  # model samples: below this the model runs so often that separating takes far longer than the song
# Integer PCM dtypes and the (offset, scale) that bring them to [-1, 1), as soundfile reads them.
PCM_SCALES = {np.dtype(np.int8): (0, 2.0 ** 7), np.dtype(np.int16): (0, 2.0 ** 15),
              np.dtype(np.int32): (0, 2.0 ** 31), np.dtype(np.uint8): (128, 2.0 ** 7)}


def sample_rate(value, parameter: str = "sample_rate") -> int:
    """``value`` as a whole number of Hz within ``SAMPLE_RATES``, or a ``ParameterError`` naming ``parameter``."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and math.isfinite(value)
                                                    and float(value).is_integer())
    if isinstance(value, bool) or not whole or not SAMPLE_RATES[0] <= int(value) <= SAMPLE_RATES[1]:
        raise ParameterError(f"{parameter}={value!r}: give a whole number of Hz from {SAMPLE_RATES[0]} to "
                             f"{SAMPLE_RATES[1]}, e.g. {parameter}=44100", parameter)
    return int(value)


def hop(value) -> int | None:
    """An explicit hop (model samples) of at least ``MIN_HOP``; None stays None (the preset's hop)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < MIN_HOP:
        raise ParameterError(f"hop={value!r}: the hop must be a whole number of at least {MIN_HOP} model samples "
                             "(a smaller one runs the model so often that separating takes far longer than the "
                             "song); try hop=256 or a latency preset", "hop")
    return int(value)


def whole(value, parameter: str, least: int, example: int) -> int:
    """``value`` as a whole number of at least ``least`` (not a bool, a float or text), or a ``ParameterError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ParameterError(f"{parameter}={value!r}: give a whole number of at least {least}, e.g. "
                             f"{parameter}={example}", parameter)
    return int(value)


def float_samples(audio, parameter: str) -> np.ndarray:
    """``audio`` as float32 samples: floats as they are, integer PCM scaled to [-1, 1) (``PCM_SCALES``).

    Anything else (bool, complex, other integer widths, text, objects) is a ``ParameterError``."""
    try:
        samples = np.asarray(audio)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise ParameterError(f"{parameter} must be an array of samples ({exc})", parameter) from None
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, order="C", copy=False)  # (np.ascontiguousarray makes a scalar 1-D)
    pcm = PCM_SCALES.get(samples.dtype)
    if pcm is None:
        raise ParameterError(f"{parameter} has dtype {samples.dtype}; pass float samples in [-1, 1] or integer PCM "
                             "(int16, int32, int8 or uint8)", parameter)
    offset, scale = pcm
    return ((samples.astype(np.float32) - offset) / np.float32(scale)).astype(np.float32)
