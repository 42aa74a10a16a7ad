"""numba kernels behind the streaming engine: rings, window gather, crossfaded overlap-add.

Rings follow the runtime's convention (rings.py): time is the first axis, of power-of-two length
``R``, and absolute stream position ``p`` (int64, negative before the stream starts) lives in
row ``p & (R - 1)``. The input ring is ``(R, 2)`` frames, the accumulator ``(R, stems, 2)``. Every kernel writes
into arrays the caller preallocated, so a steady stream allocates nothing, and
releases the GIL (``nogil``) so a worker thread does not stall the audio thread.
Kernels take whole arrays plus offsets instead of slices so each compiles once
(C-contiguous layouts only) and :func:`warm_up` can compile them all up front.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def crossfade_pair(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine fade-in and the fade-out that complements it (``fade_in + fade_out == 1``).

    Sampled at half-sample offsets so neither end reaches exactly 0 or 1 and the
    pair is symmetric: ``fade_out`` is ``fade_in`` reversed.
    """
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    fade_in = np.sin(0.5 * np.pi * t) ** 2
    return fade_in.astype(np.float32), (1.0 - fade_in).astype(np.float32)


@njit(cache=True, nogil=True)
def write_ring(ring, position, src, src_offset, n):
    """Copy frames ``src[src_offset:src_offset+n]`` (1 or 2 channels) into the stereo ``ring`` at ``position``
    (ring and position first, like every ring kernel here and in live/kernels.py).

    Mono is duplicated to both channels. Non-finite samples become 0; returns how many there were.
    """
    mask = ring.shape[0] - 1
    mono = src.shape[1] == 1
    bad = 0
    for i in range(n):
        slot = (position + i) & mask
        for c in range(2):
            if mono and c == 1:
                ring[slot, 1] = ring[slot, 0]
                continue
            v = src[src_offset + i, c]
            if not math.isfinite(v):
                v = np.float32(0.0)
                bad += 1
            ring[slot, c] = v
    return bad


@njit(cache=True, nogil=True)
def sanitize(frames, n):
    """Replace non-finite values in the first ``n`` rows of ``frames`` by 0; returns how many there were."""
    bad = 0
    for i in range(n):
        for c in range(frames.shape[1]):
            if not math.isfinite(frames[i, c]):
                frames[i, c] = 0.0
                bad += 1
    return bad


@njit(cache=True, nogil=True)
def gather_windows(ring, first_end, hop, count, batch):
    """Copy ``count`` windows into ``batch[j]`` (``[2, window]``); window ``j`` ends (exclusively) at
    ``first_end + j * hop``. The ring must still hold every sample of those windows."""
    mask = ring.shape[0] - 1
    window = batch.shape[2]
    for j in range(count):
        start = first_end + j * hop - window
        for i in range(window):
            slot = (start + i) & mask
            for c in range(2):
                batch[j, c, i] = ring[slot, c]


@njit(cache=True, nogil=True)
def overlap_add(outputs, count, keep_start, keep_length, fade_in, fade_out, acc, first_position, hop):
    """Add the kept region of ``count`` model outputs (``[stems, 2, window]`` each) into the accumulator ring.

    Output ``j``'s region lands at ``first_position + j * hop``; its first ``len(fade_in)`` samples are
    faded in and its last ``len(fade_out)`` faded out, so neighbouring runs crossfade to a sum of
    exactly one. Non-finite model outputs are added as 0; returns how many there were.
    """
    mask = acc.shape[0] - 1
    fade = fade_in.shape[0]
    tail = keep_length - fade
    bad = 0
    for j in range(count):
        base = first_position + j * hop
        for s in range(outputs.shape[1]):
            for c in range(2):
                for i in range(keep_length):
                    v = outputs[j, s, c, keep_start + i]
                    if not math.isfinite(v):
                        bad += 1
                        continue
                    if i < fade:
                        v *= fade_in[i]
                    elif i >= tail:
                        v *= fade_out[i - tail]
                    acc[(base + i) & mask, s, c] += v
    return bad


@njit(cache=True, nogil=True)
def read_output(acc, mix_ring, position, n, sources, gains, out, out_offset, clear=True):
    """Move ``n`` finished frames starting at stream ``position`` from the accumulator into ``out``.

    ``out`` is ``[output stems, frames, channels]`` and receives frames at ``out_offset``. Output stem
    ``o`` is model stem ``sources[o]`` or, when ``sources[o] < 0``, the delayed mix from ``mix_ring``
    minus model stem ``-1 - sources[o]`` (accompaniment = mix - vocals); then times ``gains[o]``.
    One output channel means the mean of left and right. Positions before the stream start read as
    silence. Read slots of every model stem are cleared for the next pass around the ring, unless
    ``clear`` is False (a look at final frames ahead of the input, which a later read takes again).
    """
    mask = acc.shape[0] - 1
    mix_mask = mix_ring.shape[0] - 1
    mono = out.shape[2] == 1
    for i in range(n):
        p = position + i
        slot = p & mask
        mix_slot = p & mix_mask
        for o in range(sources.shape[0]):
            left = np.float32(0.0)
            right = np.float32(0.0)
            if p >= 0:
                src = sources[o]
                if src >= 0:
                    left = acc[slot, src, 0]
                    right = acc[slot, src, 1]
                else:
                    left = mix_ring[mix_slot, 0] - acc[slot, -1 - src, 0]
                    right = mix_ring[mix_slot, 1] - acc[slot, -1 - src, 1]
            g = gains[o]
            if mono:
                out[o, out_offset + i, 0] = np.float32(0.5) * (left + right) * g
            else:
                out[o, out_offset + i, 0] = left * g
                out[o, out_offset + i, 1] = right * g
        if clear:
            for s in range(acc.shape[1]):
                acc[slot, s, 0] = 0.0
                acc[slot, s, 1] = 0.0


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the exact types the engine uses,
    so the first real audio block does not pay for JIT compilation."""
    f32 = np.float32
    frames1, frames2 = np.zeros((4, 1), f32), np.zeros((4, 2), f32)
    ring = np.zeros((8, 2), f32)
    write_ring(ring, np.int64(0), frames1, 0, 4)
    write_ring(ring, np.int64(0), frames2, 0, 4)
    sanitize(frames1, 4)
    sanitize(frames2, 4)
    batch = np.zeros((2, 2, 4), f32)
    gather_windows(ring, np.int64(4), 2, 2, batch)
    outputs = np.zeros((2, 1, 2, 4), f32)
    fade_in, fade_out = crossfade_pair(1)
    acc = np.zeros((8, 1, 2), f32)
    overlap_add(outputs, 2, 1, 2, fade_in, fade_out, acc, np.int64(0), 1)
    sources, gains = np.zeros(1, np.int64), np.ones(1, f32)
    for clear in (True, False):
        read_output(acc, ring, np.int64(0), 2, sources, gains, np.zeros((1, 2, 1), f32), 0, clear)
        read_output(acc, ring, np.int64(0), 2, sources, gains, np.zeros((1, 2, 2), f32), 0, clear)
