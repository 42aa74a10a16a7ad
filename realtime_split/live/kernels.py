"""numba kernels the audio callbacks and the worker run on the bridge's rings (bridge.py).

Kernels the audio callback runs use ``error_model="numpy"``: a division or modulo by zero gives
inf/0 instead of a Python exception, so no path in the callback needs the interpreter. All of them
release the GIL and write only into arrays their caller preallocated. Rings follow rings.py: time
first, power-of-two rows, absolute positions masked to a row.

Rendering is split so that interleaved buffers (PortAudio) and one buffer per channel (JACK ports)
share it: ``decide`` settles, once per block, whether the separated output is there in time and the
crossfade weight of every frame, ``ramp_gains`` each stem's amplitude at every frame (the mixer);
``render_channel`` then fills one channel of one output with them.
"""

import numpy as np
from numba import njit

from .slots import (
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
    READY,
    WET,
    WET_FROM,
    XRUNS,
)


@njit(cache=True, nogil=True, error_model="numpy")
def _source(ring, row, c, in_ch, out_ch):
    """Sample of output channel ``c`` from a ring frame with ``in_ch`` channels (mono<->stereo)."""
    if in_ch == out_ch:
        return ring[row, c]
    if in_ch == 1:
        return ring[row, 0]
    return 0.5 * (ring[row, 0] + ring[row, 1])


@njit(cache=True, nogil=True, error_model="numpy")
def write_ring(ring, start, block, counters, fstate):
    """Copy ``block`` (frames, channels) into ``ring`` at stream position ``start``, zeroing and counting
    NaN/Inf, tracking the input peak. The caller publishes the new write counter afterwards. (Ring kernels take
    the ring and a position first, here and in overlap_add.py.)"""
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
def write_channel(ring, start, buffer, c, counters, fstate):
    """``write_ring`` for one channel from its own buffer (a JACK port's)."""
    mask = ring.shape[0] - 1
    peak = fstate[IN_PEAK]
    bad = 0
    for i in range(buffer.shape[0]):
        x = buffer[i]
        if not np.isfinite(x):
            x = 0.0
            bad += 1
        ring[(start + i) & mask, c] = x
        a = abs(x)
        if a > peak:
            peak = a
    fstate[IN_PEAK] = peak
    counters[NONFINITE] += bad


@njit(cache=True, nogil=True, error_model="numpy")
def store_ring(ring, start, block):
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
def decide(start, frames, counters, fstate, buffers, fade, weights):
    """For output positions ``[start, start + frames)``: whether the worker delivered their separated
    output, with ``fade`` samples of margin, and so the weight of the separated signal against the dry
    fallback at every frame (into ``weights``), moving linearly over ``fade`` frames. Counts the block as
    missed when it is not fully separated."""
    written = buffers + counters[READY]
    end = counters[END]
    need = start + frames + fade
    if end >= 0 and need > end:
        need = end
    ok = written >= need and start >= counters[WET_FROM]
    if not ok and (end < 0 or start < end):
        counters[MISSED] += 1
    w = fstate[WET]
    step = 1.0 / fade
    for i in range(frames):
        if ok:
            w = min(1.0, w + step)
        else:
            w = max(0.0, w - step)
        weights[i] = w
    fstate[WET] = w


@njit(cache=True, nogil=True, error_model="numpy")
def ramp_gains(targets, state, frames, ramp, gains, take):
    """Each stem's amplitude for the next ``frames`` frames into ``gains[s, :frames]``: a straight line from
    where it is to its target over ``ramp`` frames, started afresh whenever the target changes (so no change,
    however large, steps by more than its size over ``ramp`` per frame). ``targets`` is the mix the control
    threads write, read only when ``take`` (its version moved, so the position the change is heard from is the
    one noted); ``state`` (stems x 3: current, step, the target it ramps to) is this callback's own."""
    n = targets.shape[0]
    for s in range(n):
        target = targets[s] if take else state[3 * s + 2]
        current = state[3 * s]
        if target != state[3 * s + 2]:
            state[3 * s + 2] = target
            state[3 * s + 1] = (target - current) / ramp
        step = state[3 * s + 1]
        for i in range(frames):
            if current != target:
                current += step
                if (step >= 0.0 and current >= target) or (step <= 0.0 and current <= target):
                    current = target
            gains[s, i] = current
        state[3 * s] = current


@njit(cache=True, nogil=True, error_model="numpy")
def render_channel(dest, weights, gains, mixed, start, in_ring, out_ring, o, c, end, buffers, latency):
    """Channel ``c`` for positions ``[start, start + len(dest))``: with ``mixed``, every stem of ``out_ring`` at
    its amplitude in ``gains`` (stem, frame) summed, else stem ``o`` alone; crossfaded by ``weights`` with the
    dry input delayed identically (the input ring doubles as the dry delay line), at the loudest stem's
    amplitude when mixed and at stem ``o``'s over the number of stems otherwise (so the stem outputs still add
    up to about the mix); silence from the end of file playback on."""
    in_mask = in_ring.shape[0] - 1
    out_mask = out_ring.shape[0] - 1
    stems = out_ring.shape[1]
    in_ch = in_ring.shape[1]
    out_ch = out_ring.shape[2]
    for i in range(dest.shape[0]):
        q = start + i
        if end >= 0 and q >= end:
            dest[i] = 0.0
            continue
        row = q & out_mask
        if mixed:
            wet = 0.0
            level = 0.0
            for s in range(stems):
                g = gains[s, i]
                wet += g * out_ring[row, s, c]
                if g > level:
                    level = g
        else:
            level = gains[o, i]
            wet = level * out_ring[row, o, c]
            level /= stems
        d = q - buffers - latency  # input position heard at q
        dry = level * _source(in_ring, d & in_mask, c, in_ch, out_ch) if d >= 0 else 0.0
        w = weights[i]
        if w > 0.0:
            dest[i] = w * wet + (1.0 - w) * dry
        else:
            dest[i] = dry


@njit(cache=True, nogil=True, error_model="numpy")
def render_dry(dest, start, in_ring, c, out_ch, buffers, latency):
    """Channel ``c`` of the input, delayed like the separated output (JACK's dry ports)."""
    in_mask = in_ring.shape[0] - 1
    in_ch = in_ring.shape[1]
    for i in range(dest.shape[0]):
        d = start + i - buffers - latency
        dest[i] = _source(in_ring, d & in_mask, c, in_ch, out_ch) if d >= 0 else 0.0


@njit(cache=True, nogil=True)
def write_outputs(stems, n, out_ring, start, peaks):
    """Separated ``stems[:, :n]`` (stems, frames, channels) into ``out_ring`` (frames, stems, channels) at output
    position ``start``, mapping channels; the callback mixes them. Raises each stem's running peak (before
    its gain: the meters show what the model separates, the mix what is heard)."""
    mask = out_ring.shape[0] - 1
    n_stems, _, in_ch = stems.shape
    out_ch = out_ring.shape[2]
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
            for s in range(n_stems):
                out_ring[j, s, c] = _source(stems[s], i, c, in_ch, out_ch)


@njit(cache=True, nogil=True, error_model="numpy")
def count_status(flags, counters):
    """PortAudio's status flags into the xrun counters."""
    if flags & PA_INPUT_OVERFLOW:
        counters[INPUT_OVERFLOWS] += 1
    if flags & PA_OUTPUT_UNDERFLOW:
        counters[OUTPUT_UNDERFLOWS] += 1
    if flags & (PA_INPUT_UNDERFLOW | PA_INPUT_OVERFLOW | PA_OUTPUT_UNDERFLOW | PA_OUTPUT_OVERFLOW):
        counters[XRUNS] += 1
