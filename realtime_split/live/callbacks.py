"""The audio callbacks: compiled C functions that PortAudio and JACK call directly, never Python.

``stream_callback`` is a numba ``cfunc`` with PortAudio's ``PaStreamCallback`` signature, handed to
PortAudio as a C function pointer (``RealtimeBridge.open_stream``); ``jack_process`` has JACK's
``JackProcessCallback`` signature and is registered with libjack itself (jack_client.py).
Neither touches the interpreter, so neither waits for the GIL that the worker, the status line or
the writer may hold (a Python callback did, on every block, and that made the JACK process thread
late: see docs/benchmarks.md). They allocate nothing (``carray`` only wraps existing memory), take
no locks, log nothing and do no I/O; ``error_model="numpy"`` leaves no Python exception to raise.
Their user data is the bridge's ``table`` (slots.py).

They need a few LLVM intrinsics numba does not offer (defined first): an address reaches compiled code
as an int64 (a slot of the table) and ``carray`` needs a pointer (``address``); ring data must become
visible before the counter that publishes it, whatever the compiler or the CPU would reorder
(``release_fence`` between the two, and ``acquire_fence`` on the reading side where the order matters:
the mix's targets after their version); libjack's functions are called through their addresses.
"""

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from .kernels import (
    count_status,
    decide,
    ramp_gains,
    render_channel,
    render_dry,
    store_ring,
    write_channel,
    write_ring,
)
from .slots import (
    END,
    FRAMES,
    IN_WRITTEN,
    LATE_CYCLES,
    LONGEST_CYCLE,
    MIDI_WRITTEN,
    MIX_AT,
    MIX_SEEN,
    MIX_TIME,
    MIX_VERSION,
    N_COUNTERS,
    N_FSTATE,
    N_TABLE,
    PA_CONTINUE,
    PERIOD_CHANGES,
    REC_WRITTEN,
    T_BUFFERS,
    T_CAPTURE,
    T_CLIENT,
    T_COUNTERS,
    T_DRY_PORTS,
    T_FADE,
    T_FRAME_TIME,
    T_FSTATE,
    T_GAINS,
    T_GET_BUFFER,
    T_GET_TIME,
    T_IN_CHANNELS,
    T_IN_FRAMES,
    T_IN_PORTS,
    T_IN_RING,
    T_LATENCY,
    T_MIDI_COUNT,
    T_MIDI_EVENT,
    T_MIDI_GET,
    T_MIDI_PORT,
    T_MIDI_RING,
    T_MIDI_ROWS,
    T_MIX_STATE,
    T_MIX_TARGETS,
    T_MIXED,
    T_OUT_CHANNELS,
    T_OUT_FRAMES,
    T_OUT_PAIRS,
    T_OUT_PORTS,
    T_OUT_RING,
    T_OUTPUTS,
    T_PERIOD,
    T_PERIOD_US,
    T_RAMP,
    T_REC_FRAMES,
    T_REC_RING,
    T_WEIGHT_FRAMES,
    T_WEIGHTS,
)


@intrinsic
def address(typingctx, value):
    """The int64 ``value`` (an address from a table) as a ``void *`` that ``carray`` accepts."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(types.int64), codegen


@intrinsic
def release_fence(typingctx):
    """Memory writes before it become visible before stores after it: ring data before the counters
    that publish it."""
    def codegen(context, builder, signature, args):
        builder.fence("release")
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def acquire_fence(typingctx):
    """Memory reads after it see at least what was written before the store a read before it saw: the mix's
    targets after the version that announces them."""
    def codegen(context, builder, signature, args):
        builder.fence("acquire")
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def call_get_buffer(typingctx, function, port, frames):
    """``function(port, frames)`` for a C function ``void *f(void *, uint32_t)`` at the int64 address
    ``function``, its result as an int64 address: libjack's ``jack_port_get_buffer``, called from compiled
    code without the interpreter (its address is data, so the cfunc caches on disk)."""
    def codegen(context, builder, signature, args):
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(pointer, [pointer, ir.IntType(32)])
        target = builder.inttoptr(args[0], kind.as_pointer())
        result = builder.call(target, [builder.inttoptr(args[1], pointer), builder.trunc(args[2], ir.IntType(32))])
        return builder.ptrtoint(result, ir.IntType(64))
    return types.int64(types.int64, types.int64, types.int64), codegen


@intrinsic
def call_get_time(typingctx, function):
    """``function()`` for a C function ``uint64_t f(void)`` at the int64 address ``function`` (libjack's
    ``jack_get_time``: microseconds), as an int64."""
    def codegen(context, builder, signature, args):
        kind = ir.FunctionType(ir.IntType(64), [])
        return builder.call(builder.inttoptr(args[0], kind.as_pointer()), [])
    return types.int64(types.int64), codegen


@intrinsic
def call_u32(typingctx, function, client):
    """``function(pointer)`` for a C function ``uint32_t f(void *)`` at the int64 address ``function`` (libjack's
    ``jack_last_frame_time``: the server's frame count at the start of this cycle; ``jack_midi_get_event_count``),
    as an int64."""
    def codegen(context, builder, signature, args):
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(ir.IntType(32), [pointer])
        result = builder.call(builder.inttoptr(args[0], kind.as_pointer()), [builder.inttoptr(args[1], pointer)])
        return builder.zext(result, ir.IntType(64))
    return types.int64(types.int64, types.int64), codegen


@intrinsic
def call_midi_event_get(typingctx, function, event, buffer, index):
    """``function(event, buffer, index)`` for libjack's ``int jack_midi_event_get(jack_midi_event_t *, void *,
    uint32_t)`` at the int64 address ``function``, as an int64 (0: the event is in ``event``)."""
    def codegen(context, builder, signature, args):
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(ir.IntType(32), [pointer, pointer, ir.IntType(32)])
        result = builder.call(builder.inttoptr(args[0], kind.as_pointer()),
                              [builder.inttoptr(args[1], pointer), builder.inttoptr(args[2], pointer),
                               builder.trunc(args[3], ir.IntType(32))])
        return builder.sext(result, ir.IntType(64))
    return types.int64(types.int64, types.int64, types.int64, types.int64), codegen


@njit(cache=True, nogil=True, error_model="numpy")
def take_mix(counters, start, frame_time):
    """Whether to take a new mix from the control threads: its version moved and is even (odd while a control
    thread writes the targets), so the targets are read in the block whose start is noted as where it is heard."""
    version = counters[MIX_VERSION]
    if version != counters[MIX_SEEN] and version % 2 == 0:
        acquire_fence()
        counters[MIX_AT] = start
        counters[MIX_TIME] = frame_time
        counters[MIX_SEEN] = version
        return True
    return False


PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)
JACK_PROCESS_CALLBACK = types.intc(types.uint32, types.voidptr)


@cfunc(PA_STREAM_CALLBACK, cache=True, error_model="numpy")
def stream_callback(input_, output, frame_count, time_info, status_flags, user_data):
    """PortAudio's ``PaStreamCallback`` (float32 interleaved buffers): capture into ``in_ring`` (duplex),
    render the mix of ``out_ring``'s stems at the mixer's gains, copy what it played into ``rec_ring``, then publish
    the counters."""
    t = carray(user_data, N_TABLE, np.int64)
    frames = np.int64(frame_count)
    counters = carray(address(t[T_COUNTERS]), N_COUNTERS, np.int64)
    fstate = carray(address(t[T_FSTATE]), N_FSTATE, np.float64)
    in_ring = carray(address(t[T_IN_RING]), (t[T_IN_FRAMES], t[T_IN_CHANNELS]), np.float32)
    out_ring = carray(address(t[T_OUT_RING]), (t[T_OUT_FRAMES], t[T_OUTPUTS], t[T_OUT_CHANNELS]), np.float32)
    weights = carray(address(t[T_WEIGHTS]), t[T_WEIGHT_FRAMES], np.float64)
    stems = t[T_OUTPUTS]
    targets = carray(address(t[T_MIX_TARGETS]), stems, np.float64)
    mix_state = carray(address(t[T_MIX_STATE]), 3 * stems, np.float64)
    gains = carray(address(t[T_GAINS]), (stems, t[T_WEIGHT_FRAMES]), np.float64)
    out_ch = t[T_OUT_CHANNELS]
    outdata = carray(output, (frames, out_ch), np.float32)
    count_status(np.int64(status_flags), counters)
    start = counters[FRAMES]
    if t[T_CAPTURE] != 0:
        write_ring(in_ring, start, carray(input_, (frames, t[T_IN_CHANNELS]), np.float32), counters, fstate)
    take = take_mix(counters, start, 0)
    done = np.int64(0)
    while done < frames:  # in pieces of the weights' size (PortAudio gives the fixed block size: one piece)
        n = min(frames - done, t[T_WEIGHT_FRAMES])
        decide(start + done, n, counters, fstate, t[T_BUFFERS], t[T_FADE], weights)
        ramp_gains(targets, mix_state, n, t[T_RAMP], gains, take)
        take = False  # taken into mix_state by the first piece
        for c in range(out_ch):
            render_channel(outdata[done:done + n, c], weights, gains, True, start + done, in_ring, out_ring, 0, c,
                           counters[END], t[T_BUFFERS], t[T_LATENCY])
        done += n
    if t[T_REC_RING] != 0:
        rec_ring = carray(address(t[T_REC_RING]), (t[T_REC_FRAMES], out_ch), np.float32)
        store_ring(rec_ring, counters[REC_WRITTEN], outdata)
    release_fence()
    if t[T_CAPTURE] != 0:
        counters[IN_WRITTEN] = start + frames
    if t[T_REC_RING] != 0:
        counters[REC_WRITTEN] += frames
    counters[FRAMES] = start + frames
    return PA_CONTINUE


@cfunc(JACK_PROCESS_CALLBACK, cache=True, error_model="numpy")
def jack_process(nframes, user_data):
    """JACK's ``JackProcessCallback``: one float32 buffer per port (``jack_port_get_buffer`` through its
    address). Capture the input ports into ``in_ring``, render every output's pair of ports from
    ``out_ring`` and the dry ports from ``in_ring``, publish the counters, and time itself. A cycle of
    another size than the period the bridge was made for (the server's buffer size changed) plays
    silence and is counted: the delay the bridge reported no longer holds, and the session stops."""
    t = carray(user_data, N_TABLE, np.int64)
    began = call_get_time(t[T_GET_TIME])
    frames = np.int64(nframes)
    counters = carray(address(t[T_COUNTERS]), N_COUNTERS, np.int64)
    fstate = carray(address(t[T_FSTATE]), N_FSTATE, np.float64)
    in_ch = t[T_IN_CHANNELS]
    out_ch = t[T_OUT_CHANNELS]
    pairs = t[T_OUT_PAIRS]
    get = t[T_GET_BUFFER]
    out_ports = carray(address(t[T_OUT_PORTS]), pairs * out_ch, np.int64)
    if frames != t[T_PERIOD] or frames > t[T_WEIGHT_FRAMES]:
        for p in range(pairs * out_ch):
            carray(address(call_get_buffer(get, out_ports[p], frames)), frames, np.float32)[:] = 0.0
        if t[T_DRY_PORTS] != 0:
            dry_ports = carray(address(t[T_DRY_PORTS]), out_ch, np.int64)
            for c in range(out_ch):
                carray(address(call_get_buffer(get, dry_ports[c], frames)), frames, np.float32)[:] = 0.0
        counters[PERIOD_CHANGES] += 1
        return 0
    in_ring = carray(address(t[T_IN_RING]), (t[T_IN_FRAMES], in_ch), np.float32)
    stems = t[T_OUTPUTS]
    out_ring = carray(address(t[T_OUT_RING]), (t[T_OUT_FRAMES], stems, out_ch), np.float32)
    weights = carray(address(t[T_WEIGHTS]), t[T_WEIGHT_FRAMES], np.float64)
    targets = carray(address(t[T_MIX_TARGETS]), stems, np.float64)
    mix_state = carray(address(t[T_MIX_STATE]), 3 * stems, np.float64)
    gains = carray(address(t[T_GAINS]), (stems, t[T_WEIGHT_FRAMES]), np.float64)
    start = counters[FRAMES]
    if t[T_CAPTURE] != 0:
        in_ports = carray(address(t[T_IN_PORTS]), in_ch, np.int64)
        for c in range(in_ch):
            buffer = carray(address(call_get_buffer(get, in_ports[c], frames)), frames, np.float32)
            write_channel(in_ring, start, buffer, c, counters, fstate)
    if t[T_MIDI_PORT] != 0:  # the raw channel messages of midi_in, for the session's MIDI thread to apply
        midi = call_get_buffer(get, t[T_MIDI_PORT], frames)
        event = carray(address(t[T_MIDI_EVENT]), 3, np.int64)
        ring = carray(address(t[T_MIDI_RING]), (t[T_MIDI_ROWS], 4), np.uint8)
        written = counters[MIDI_WRITTEN]
        for e in range(call_u32(t[T_MIDI_COUNT], midi)):
            if call_midi_event_get(t[T_MIDI_GET], t[T_MIDI_EVENT], midi, e) == 0 and 1 <= event[1] <= 3:
                data = carray(address(event[2]), event[1], np.uint8)
                row = written & (t[T_MIDI_ROWS] - 1)
                ring[row, 1] = 0
                ring[row, 2] = 0
                for b in range(event[1]):
                    ring[row, b] = data[b]
                ring[row, 3] = event[1]
                written += 1
        release_fence()
        counters[MIDI_WRITTEN] = written
    take = False
    if counters[MIX_VERSION] != counters[MIX_SEEN]:
        take = take_mix(counters, start, call_u32(t[T_FRAME_TIME], t[T_CLIENT]) if t[T_FRAME_TIME] != 0 else 0)
    decide(start, frames, counters, fstate, t[T_BUFFERS], t[T_FADE], weights)
    ramp_gains(targets, mix_state, frames, t[T_RAMP], gains, take)
    end = counters[END]
    mixed = t[T_MIXED] != 0
    for o in range(pairs):
        for c in range(out_ch):
            buffer = carray(address(call_get_buffer(get, out_ports[o * out_ch + c], frames)), frames, np.float32)
            render_channel(buffer, weights, gains, mixed, start, in_ring, out_ring, o, c, end, t[T_BUFFERS],
                           t[T_LATENCY])
    if t[T_DRY_PORTS] != 0:
        dry_ports = carray(address(t[T_DRY_PORTS]), out_ch, np.int64)
        for c in range(out_ch):
            buffer = carray(address(call_get_buffer(get, dry_ports[c], frames)), frames, np.float32)
            render_dry(buffer, start, in_ring, c, out_ch, t[T_BUFFERS], t[T_LATENCY])
    release_fence()
    if t[T_CAPTURE] != 0:
        counters[IN_WRITTEN] = start + frames
    counters[FRAMES] = start + frames
    took = call_get_time(t[T_GET_TIME]) - began
    if took > counters[LONGEST_CYCLE]:
        counters[LONGEST_CYCLE] = took
    if took > t[T_PERIOD_US]:
        counters[LATE_CYCLES] += 1
    return 0
