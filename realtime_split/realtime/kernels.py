"""numba kernels the audio callback and the worker run on the bridge's rings (realtime/bridge.py).

Kernels the audio callback runs use ``error_model="numpy"``: a division or modulo by zero gives
inf/0 instead of a Python exception, so no path in the callback needs the interpreter. All of them
release the GIL and write only into arrays their caller preallocated. Rings follow rings.py: time
first, power-of-two rows, absolute positions masked to a row.
"""

import numpy as np
from numba import njit

from .slots import (
    DRY_GAIN,
    END,
    IN_PEAK,
    INPUT_OVERFLOWS,
    MISSED,
    NONFINITE,
    OUTPUT_UNDERFLOWS,
    PA_INPUT_OVERFLOW,
    PA_INPUT_UNDERFLOW,
    PA_OUTPUT_OVERFLOW,
    PA_OUTPUT_UNDERFLOW,
    PROCESSED,
    WET,
    WET_FROM,
    XRUNS,
)


@njit(cache=True, nogil=True, error_model="numpy")
def _source(ring, pos, c, in_ch, out_ch):
    """Sample of output channel ``c`` from a ring frame with ``in_ch`` channels (mono<->stereo)."""
    if in_ch == out_ch:
        return ring[pos, c]
    if in_ch == 1:
        return ring[pos, 0]
    return 0.5 * (ring[pos, 0] + ring[pos, 1])


@njit(cache=True, nogil=True, error_model="numpy")
def write_ring(ring, block, start, counters, fstate):
    """Copy ``block`` into ``ring`` at stream position ``start``, zeroing and counting NaN/Inf,
    tracking the input peak. The caller publishes the new write counter afterwards."""
    mask = ring.shape[0] - 1
    peak = fstate[IN_PEAK]
    bad = 0
    for i in range(block.shape[0]):
        j = (start + i) & mask
        for c in range(block.shape[1]):
            x = block[i, c]
            if not np.isfinite(x):
                x = 0.0
                bad += 1
            ring[j, c] = x
            a = abs(x)
            if a > peak:
                peak = a
    fstate[IN_PEAK] = peak
    counters[NONFINITE] += bad


@njit(cache=True, nogil=True, error_model="numpy")
def store_ring(ring, block, start):
    """Copy ``block`` into ``ring`` at stream position ``start`` as it is."""
    mask = ring.shape[0] - 1
    for i in range(block.shape[0]):
        j = (start + i) & mask
        for c in range(block.shape[1]):
            ring[j, c] = block[i, c]


@njit(cache=True, nogil=True)
def read_ring(ring, start, out):
    """Copy ``len(out)`` frames from ``ring`` starting at stream position ``start`` into ``out``."""
    mask = ring.shape[0] - 1
    for i in range(out.shape[0]):
        j = (start + i) & mask
        for c in range(out.shape[1]):
            out[i, c] = ring[j, c]


@njit(cache=True, nogil=True, error_model="numpy")
def render(outdata, start, in_ring, out_ring, counters, fstate, buffers, latency, fade):
    """Fill ``outdata`` for output positions ``[start, start + frames)``: separated output when the
    worker delivered it (with ``fade`` samples of margin), else the dry input delayed identically,
    crossfading linearly between the two. Counts the block as missed when it is not fully separated."""
    frames = outdata.shape[0]
    out_ch = outdata.shape[1]
    in_ch = in_ring.shape[1]
    in_mask = in_ring.shape[0] - 1
    out_mask = out_ring.shape[0] - 1
    written = buffers + counters[PROCESSED]
    end = counters[END]
    need = start + frames + fade
    if end >= 0 and need > end:
        need = end
    ok = written >= need and start >= counters[WET_FROM]
    if not ok and (end < 0 or start < end):
        counters[MISSED] += 1
    w = fstate[WET]
    dry_gain = fstate[DRY_GAIN]
    step = 1.0 / fade
    for i in range(frames):
        q = start + i
        if ok:
            w = min(1.0, w + step)
        else:
            w = max(0.0, w - step)
        d = q - buffers - latency  # input position heard at q
        for c in range(out_ch):
            if end >= 0 and q >= end:
                outdata[i, c] = 0.0
                continue
            dry = dry_gain * _source(in_ring, d & in_mask, c, in_ch, out_ch) if d >= 0 else 0.0
            if w > 0.0:
                outdata[i, c] = w * out_ring[q & out_mask, c] + (1.0 - w) * dry
            else:
                outdata[i, c] = dry
    fstate[WET] = w


@njit(cache=True, nogil=True)
def mix_stems(stems, out_ring, start, peaks):
    """Sum separated ``stems`` (n_stems, n, ch) into ``out_ring`` at output position ``start``,
    mapping channels, and raise each stem's running peak."""
    mask = out_ring.shape[0] - 1
    n_stems, n, in_ch = stems.shape
    out_ch = out_ring.shape[1]
    for s in range(n_stems):
        peak = peaks[s]
        for i in range(n):
            for c in range(in_ch):
                a = abs(stems[s, i, c])
                if a > peak:
                    peak = a
        peaks[s] = peak
    for i in range(n):
        j = (start + i) & mask
        for c in range(out_ch):
            acc = 0.0
            for s in range(n_stems):
                acc += _source(stems[s], i, c, in_ch, out_ch)
            out_ring[j, c] = acc



@njit(cache=True, nogil=True, error_model="numpy")
def count_status(flags, counters):
    if flags & PA_INPUT_OVERFLOW:
        counters[INPUT_OVERFLOWS] += 1
    if flags & PA_OUTPUT_UNDERFLOW:
        counters[OUTPUT_UNDERFLOWS] += 1
    if flags & (PA_INPUT_UNDERFLOW | PA_INPUT_OVERFLOW | PA_OUTPUT_UNDERFLOW | PA_OUTPUT_OVERFLOW):
        counters[XRUNS] += 1
