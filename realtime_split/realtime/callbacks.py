"""The audio callbacks: compiled C functions that PortAudio (and JACK) call directly, never Python.

``stream_callback`` is a numba ``cfunc`` with PortAudio's ``PaStreamCallback`` signature, handed to
PortAudio as a C function pointer (``RealtimeBridge.open_stream``). It never touches the
interpreter, so it never waits for the GIL that the worker, the status line or the writer may
hold (a Python callback did, on every block, and that made the JACK process thread late: see
docs/benchmarks.md). It allocates nothing, takes no locks, logs nothing and does no I/O.
"""

import numpy as np
from numba import carray, cfunc, types

from .intrinsics import address, release_fence
from .kernels import count_status, render, store_ring, write_ring
from .slots import (
    FRAMES,
    IN_WRITTEN,
    N_COUNTERS,
    N_FSTATE,
    N_TABLE,
    PA_CONTINUE,
    REC_WRITTEN,
    T_BUFFERS,
    T_CAPTURE,
    T_COUNTERS,
    T_FADE,
    T_FSTATE,
    T_IN_CHANNELS,
    T_IN_FRAMES,
    T_IN_RING,
    T_LATENCY,
    T_OUT_CHANNELS,
    T_OUT_FRAMES,
    T_OUT_RING,
    T_REC_FRAMES,
    T_REC_RING,
)

PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)


@cfunc(PA_STREAM_CALLBACK, cache=True, error_model="numpy")
def stream_callback(input_, output, frame_count, time_info, status_flags, user_data):
    """PortAudio's ``PaStreamCallback`` (float32 interleaved buffers; ``user_data``: the bridge's
    table): capture into ``in_ring`` (duplex), render from ``out_ring``, copy what it played into
    ``rec_ring``, then publish the counters. Compiled C: no GIL, no allocation (``carray`` only
    wraps existing memory), and ``error_model="numpy"`` leaves no Python exception to raise."""
    t = carray(user_data, N_TABLE, np.int64)
    frames = np.int64(frame_count)
    counters = carray(address(t[T_COUNTERS]), N_COUNTERS, np.int64)
    fstate = carray(address(t[T_FSTATE]), N_FSTATE, np.float64)
    in_ring = carray(address(t[T_IN_RING]), (t[T_IN_FRAMES], t[T_IN_CHANNELS]), np.float32)
    out_ring = carray(address(t[T_OUT_RING]), (t[T_OUT_FRAMES], t[T_OUT_CHANNELS]), np.float32)
    outdata = carray(output, (frames, t[T_OUT_CHANNELS]), np.float32)
    count_status(np.int64(status_flags), counters)
    start = counters[FRAMES]
    if t[T_CAPTURE] != 0:
        write_ring(in_ring, carray(input_, (frames, t[T_IN_CHANNELS]), np.float32), start, counters, fstate)
    render(outdata, start, in_ring, out_ring, counters, fstate, t[T_BUFFERS], t[T_LATENCY], t[T_FADE])
    if t[T_REC_RING] != 0:
        rec_ring = carray(address(t[T_REC_RING]), (t[T_REC_FRAMES], t[T_OUT_CHANNELS]), np.float32)
        store_ring(rec_ring, outdata, counters[REC_WRITTEN])
    release_fence()
    if t[T_CAPTURE] != 0:
        counters[IN_WRITTEN] = start + frames
    if t[T_REC_RING] != 0:
        counters[REC_WRITTEN] += frames
    counters[FRAMES] = start + frames
    return PA_CONTINUE
