"""The runtime's one ring-buffer convention, used by every ring in it.

- A ring is a numpy array whose **first axis is time**, of **power-of-two** length ``R``; the other
  axes are whatever one frame holds (channels; stems and channels).
- A **position** is an absolute stream sample index, an int64 that only grows (it may be negative
  before the stream starts: the engine reads windows that reach before the first sample). Position
  ``p`` lives in row ``p & (R - 1)``, which is right for negative ``p`` too, so no ring index ever
  wraps back to zero and nothing counts laps.
- Each ring has **one writer**. It publishes how far it has written as such a position, after the
  data (compiled code puts a release fence in between; readers rely on x86 keeping loads in order),
  and readers keep their own positions; no counter is ever shared by two writers.
- A writer may overwrite position ``p - R`` only when every reader is past it; each ring's owner
  sizes it for that (``ring_size`` of the longest span any reader needs, plus what the writer may
  add ahead) and checks it where a reader can fall behind (the recording, file playback).

Rings: the separator's input ring and overlap-add accumulator (overlap_add.py), the resampler's
histories (resampling.py) and the live bridge's input, output and recording rings (live/bridge.py).
"""

from __future__ import annotations

import numpy as np


def ring_size(min_length: int) -> int:
    """The smallest power of two holding ``min_length`` samples (rings index with a bit mask)."""
    return 1 << max(0, int(min_length) - 1).bit_length()


def ring(min_length: int, *frame_shape: int, dtype=np.float32) -> np.ndarray:
    """Zeros shaped ``(ring_size(min_length), *frame_shape)``."""
    return np.zeros((ring_size(min_length), *frame_shape), dtype)
