"""The real-time bridge without a sound card: its compiled audio callback (the same machine code
PortAudio runs) driven block by block through ctypes, its worker step scheduled by the test, so
late inference happens exactly when the test says.

A real StreamingSeparator on the scaled test model (vocals = 0.5 x mix) runs behind it; the dry
fallback plays the mix at 1.0, so every output sample shows which path it came from.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import re
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import onnx_models
from bridge_helpers import RATE, F, bridge_for, run_live, sine
from jack_harness import max_jump
from realtime_split import StreamingSeparator
from realtime_split.cli_status import StatusLine, summary
from realtime_split.live.bridge import RealtimeBridge, budget_blocks
from realtime_split.live.readings import Latency
from realtime_split.live.slots import (
    IN_WRITTEN,
    INPUT_OVERFLOWS,
    MISSED,
    NONFINITE,
    OUTPUT_UNDERFLOWS,
    PA_INPUT_OVERFLOW,
    PA_OUTPUT_UNDERFLOW,
    SKIPS,
)


def delayed(x: np.ndarray, d: int, n: int) -> np.ndarray:
    """The first ``n`` frames of ``x`` delayed by ``d``."""
    return np.concatenate([np.zeros((d, x.shape[1]), x.dtype), x[:n - d]])


def test_output_is_the_separation_delayed_by_separator_latency_plus_buffers(scaled_model):
    bridge = bridge_for(scaled_model)
    x = sine(1.0)
    out = run_live(bridge, x)
    # The hop (256) is the block: the worker's budget of two blocks (8 ms) costs one block, then the fade.
    assert bridge.budget_blocks == 2
    assert bridge.buffers == F + bridge.fade
    d = bridge.latency + bridge.buffers
    np.testing.assert_allclose(out, 0.5 * delayed(x, d, len(out)), atol=1e-6)
    assert bridge.counters[MISSED] == 0


def test_a_worker_within_one_block_adds_nothing_to_the_separators_latency(scaled_model):
    """The hop's run finishes the output for the hop after its boundary too: with a budget of one block the
    bridge adds only the fade."""
    bridge = bridge_for(scaled_model, inference_budget=0.001)
    assert bridge.budget_blocks == 1 and bridge.buffers == bridge.fade
    x = sine(0.5)
    out = run_live(bridge, x)
    np.testing.assert_allclose(out, 0.5 * delayed(x, bridge.delay, len(out)), atol=1e-6)
    assert bridge.counters[MISSED] == 0


def test_late_inference_plays_the_dry_mix_with_the_same_delay_and_no_click(scaled_model):
    bridge = bridge_for(scaled_model)
    x = sine(1.5)
    out = run_live(bridge, x, worker_idle=range(60, 80))
    d = bridge.latency + bridge.buffers
    ref = delayed(x, d, len(out))
    # Continuous: the sine's own steepest step (2 pi f / rate of full scale) plus a fade's share.
    slope = 2 * np.pi * 440 / RATE * 0.5
    assert max_jump(out[:, 0]) < slope + 0.5 / bridge.fade + 1e-4
    # During the stall the listener hears the mix itself, sample-aligned with the separation.
    stalled = slice(66 * F, 80 * F)
    np.testing.assert_allclose(out[stalled], ref[stalled], atol=1e-6)
    # Every block not fully separated is counted; the worker restarted once, then separation resumed.
    assert 20 <= bridge.counters[MISSED] <= 20 + (d + bridge.buffers) // F + 2
    assert bridge.counters[SKIPS] == 1
    tail = slice(len(out) - 20 * F, len(out))
    np.testing.assert_allclose(out[tail], 0.5 * ref[tail], atol=1e-6)


@pytest.mark.parametrize("blocksize, rate", [(128, RATE), (100, RATE), (256, 48000), (128, 48000)])
def test_the_worker_may_take_its_budget_of_blocks_and_not_a_block_more(tmp_path, scaled_model, blocksize, rate):
    """The buffers give the worker ``budget_blocks`` block periods for each callback's input: a worker that
    always takes exactly that long never misses; one block slower and it does, so the buffers are no larger
    than that guarantee needs (also at 48 kHz, where the hop's boundaries fall inside blocks)."""
    t = np.arange(int(0.6 * rate)) / rate
    x = np.repeat((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None], 2, axis=1)
    for extra, misses in ((0, False), (1, True)):
        sep = StreamingSeparator(scaled_model, stems="vocals", sample_rate=rate)
        bridge = RealtimeBridge(sep, rate, blocksize, 2, live_input=True, max_chunks=64)
        callback, takes = bridge.duplex_callback(), bridge.budget_blocks + extra
        out = np.zeros_like(x[:len(x) // blocksize * blocksize])
        for j in range(len(out) // blocksize):
            # Before callback j the worker has finished the input of callbacks up to j - takes.
            arrived = int(bridge.counters[IN_WRITTEN])
            bridge.counters[IN_WRITTEN] = min(arrived, max(0, j - takes + 1) * blocksize)
            while bridge.step():
                pass
            bridge.counters[IN_WRITTEN] = arrived
            block = slice(j * blocksize, (j + 1) * blocksize)
            callback(x[block], out[block], blocksize, None, None)
        assert (bridge.counters[MISSED] > 0) == misses, (extra, bridge.counters[MISSED])
        assert bridge.counters[SKIPS] == 0


@pytest.mark.parametrize("blocksize, budget, buffers", [
    (256, 2, 256 + 44),             # hop = block: (budget - 1) blocks and the fade
    (128, 3, 2 * 128 + 44),         # the hop is two blocks
    (1024, 1, 1024 - 256 + 44),     # four hops per block: the block's last hop is needed one block later
    (100, 4, 144 + 252 + 44),       # 100 and 256 share only 4: some hops end 4 samples into a block
])
def test_buffers_follow_the_worker_budget_and_where_hops_end_in_blocks(scaled_model, blocksize, budget, buffers):
    bridge = bridge_for(scaled_model, blocksize=blocksize)
    assert (bridge.budget_blocks, bridge.buffers) == (budget, buffers)
    x = sine(0.5)
    out = run_live(bridge, x)
    assert bridge.counters[MISSED] == 0
    np.testing.assert_allclose(out, 0.5 * delayed(x, bridge.delay, len(out)), atol=1e-6)


def test_a_short_stall_is_caught_up_without_restarting_the_separator(scaled_model):
    bridge = bridge_for(scaled_model)
    x = sine(1.0)
    out = run_live(bridge, x, worker_idle=range(60, 64))
    d = bridge.latency + bridge.buffers
    ref = delayed(x, d, len(out))
    assert bridge.counters[SKIPS] == 0
    assert 1 <= bridge.counters[MISSED] <= 4
    # Separation resumes right after the stall, with its context intact (no warm-up, no restart).
    resumed = slice(66 * F, len(out))
    np.testing.assert_allclose(out[resumed], 0.5 * ref[resumed], atol=1e-6)
    assert max_jump(out[:, 0]) < 2 * np.pi * 440 / RATE * 0.5 + 0.5 / bridge.fade + 1e-4


def test_a_separator_that_resamples_keeps_the_reported_delay(tmp_path):
    """A 48 kHz model behind a 44.1 kHz device: the separator resamples, the bridge's hop-sized chunks
    follow the stream rate, and the output is still the separation delayed by exactly the reported latency."""
    model = onnx_models.make_scaled_identity_model(tmp_path / "48k.onnx", [0.5, 0.25, 0.125, 0.125],
                                                 onnx_models.test_info(sample_rate=48000))
    bridge = bridge_for(model)
    assert bridge.chunk == round(256 * RATE / 48000)
    x = sine(1.0)
    out = run_live(bridge, x)
    d = bridge.latency + bridge.buffers
    steady = slice(d + 2048, len(out))
    np.testing.assert_allclose(out[steady], 0.5 * delayed(x, d, len(out))[steady], atol=2e-3)
    assert bridge.counters[MISSED] == 0


def test_nan_and_inf_input_is_silenced_and_counted(scaled_model):
    bridge = bridge_for(scaled_model)
    x = sine(0.2)
    x[1000:1010, 0] = np.nan
    x[2000, 1] = np.inf
    out = run_live(bridge, x)
    assert np.isfinite(out).all()
    assert bridge.counters[NONFINITE] == 11


def test_the_audio_callback_allocates_no_audio_buffers(scaled_model):
    """Called from a Python callback (as examples/karaoke_monitor.py does): only the few bytes of
    Python call overhead; a copy of one block would be 8 kB."""
    bridge = bridge_for(scaled_model, blocksize=1024, record=True)
    callback = bridge.duplex_callback()
    x = sine(1.0)
    out = np.zeros_like(x)
    blocks = [slice(k * 1024, (k + 1) * 1024) for k in range(len(x) // 1024)]
    for b in blocks[:5]:
        callback(x[b], out[b], 1024, None, None)
        bridge.step()
    from numba.core.runtime import _nrt_python

    tracemalloc.start()
    _nrt_python.memsys_enable_stats()
    try:
        peaks, compiled = [], 0
        for b in blocks[5:]:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            allocations = _nrt_python.memsys_get_stats_alloc()
            callback(x[b], out[b], 1024, None, None)
            compiled += _nrt_python.memsys_get_stats_alloc() - allocations
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
            bridge.step()
    finally:
        _nrt_python.memsys_disable_stats()
        tracemalloc.stop()
    assert compiled == 0  # numba's runtime allocated nothing inside the compiled callback
    assert max(peaks) < 4096


def test_an_xrun_counts_once_however_many_directions_portaudio_flags(scaled_model):
    """PortAudio's JACK host flags every JACK xrun as an input overflow and an output underflow at once."""
    sd = pytest.importorskip("sounddevice", reason="sounddevice (PortAudio) builds the callback's status flags")
    bridge = bridge_for(scaled_model)
    callback = bridge.duplex_callback()
    x, out = sine(0.1), np.zeros((F, 2), np.float32)
    for k, flags in enumerate([PA_INPUT_OVERFLOW | PA_OUTPUT_UNDERFLOW, 0, PA_OUTPUT_UNDERFLOW]):
        callback(x[k * F:(k + 1) * F], out, F, None, sd.CallbackFlags(flags))
    assert bridge.xruns == 2
    assert (bridge.counters[INPUT_OVERFLOWS], bridge.counters[OUTPUT_UNDERFLOWS]) == (1, 2)


def test_a_block_the_compiled_callback_would_overrun_is_refused(scaled_model):
    callback = bridge_for(scaled_model).duplex_callback()
    x = sine(0.1)
    with pytest.raises(ValueError, match="C-contiguous float32 of shape"):
        callback(x[:F], np.zeros((F, 1), np.float32), F, None, None)  # a mono buffer for a stereo stream
    with pytest.raises(ValueError, match="C-contiguous float32 of shape"):
        callback(x[:F].astype(np.float64), np.zeros((F, 2), np.float32), F, None, None)


def test_file_playback_plays_every_input_sample_separated_then_ends(scaled_model):
    sep = StreamingSeparator(scaled_model, stems="vocals", sample_rate=RATE)
    bridge = RealtimeBridge(sep, RATE, F, 2, live_input=False)
    assert (bridge.budget_blocks, bridge.buffers) == (0, 0)  # the worker runs ahead: no deadline budget, no buffers
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (RATE // 2 + 123, 2)).astype(np.float32)
    bridge.write_input(x)
    bridge.input_done = True
    callback = bridge.output_callback()
    out = np.zeros((len(x) + sep.latency_samples + 2 * F, 2), np.float32)
    k = 0
    while not bridge.finished:
        while bridge.step():
            pass
        callback(out[k:k + F], F, None, None)
        k += F
    # File playback has no bridge buffers: the separator's latency only, then its flushed tail.
    np.testing.assert_allclose(out[sep.latency_samples:sep.latency_samples + len(x)], 0.5 * x, atol=1e-6)
    assert not out[sep.latency_samples + len(x):].any()
    assert bridge.counters[MISSED] == 0


def test_status_line_redraws_one_line_with_meters_latency_load_and_counters(scaled_model):
    bridge = bridge_for(scaled_model)
    run_live(bridge, sine(0.2))
    latency = Latency(bridge.latency, bridge.buffers, 0.0058, RATE)
    stream = io.StringIO()
    session = SimpleNamespace(stats=lambda: bridge.stats(latency), levels=bridge.levels)  # as LiveSession reads it
    status = StatusLine(session, enabled=True, stream=stream, interval=0.0, width=120)
    status.update(1.0)
    status.update(1.2)
    status.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    line = text.split("\r")[1]  # the first redraw; the second shows the (silent) time since
    assert "in    -6 dB [######]" in line and "vocals   -12 dB [#####-]" in line  # 0.5 in, 0.25 out
    assert f"{latency.total_ms:.0f} ms" in line and "load " in line and "missed 0" in line and "xruns 0" in line
    assert StatusLine(bridge, stream=io.StringIO()).enabled is False  # not a TTY: no line


def test_status_line_fits_a_narrow_terminal_with_four_stems(scaled_model):
    sep = StreamingSeparator(scaled_model, stems="all", sample_rate=RATE)
    bridge = RealtimeBridge(sep, RATE, F, 2, live_input=True)
    run_live(bridge, sine(0.2))
    status = StatusLine(bridge, enabled=True)
    line = status.line(12.5, width=80)
    assert len(line) < 80
    assert re.fullmatch(r"12\.5s in -6 voc -12 dru -18 bas -24 oth -24 17ms load \d+% missed 0 xruns 0", line)


def test_summary_names_duration_misses_xruns_and_load(scaled_model):
    bridge = bridge_for(scaled_model)
    run_live(bridge, sine(1.0), worker_idle=range(50, 60))
    stats = bridge.stats()
    text = summary(dataclasses.replace(stats, recording=Path("x.wav"), recorded_seconds=1.0))
    assert text.startswith("realtime-split: played 1.0 s live with latency ")
    assert f"separator {bridge.latency} + buffers {bridge.buffers} samples" in text
    assert f"missed deadlines: {bridge.counters[MISSED]} blocks of 256" in text and bridge.counters[MISSED] > 0
    # More than 0.1 % late: the summary names the option that gives the separation more time, and its cost.
    budget = 1000 * bridge.budget_blocks * 256 / RATE
    hint = re.search(r"more than 0\.1 % of the blocks were late: --inference-budget ([\d.]+) would give the "
                     rf"separation {2 * budget:.1f} ms instead of {budget:.1f} ms, for {budget:.1f} ms more latency",
                     text)
    assert hint and budget_blocks(float(hint[1]), RATE, 256) == 2 * bridge.budget_blocks  # what it promises
    assert "inference-budget" not in summary(dataclasses.replace(stats, missed_deadlines=0))
    assert "xruns: 0 (0 input overflows, 0 output underflows)" in text
    assert re.search(r"inference load p50 \d+% p99 \d+% of the hop budget \(worker at normal priority\)", text)
    assert text.endswith("recorded 1.0 s to x.wav.")


# --- the JACK process callback, driven without a server ----------------------------------------------

@pytest.fixture(scope="module")
def fake_libjack():
    """Stand-ins for the two libjack functions the compiled JACK callback calls by address: a port's buffer
    is the port pointer itself (here the address of a numpy buffer), and the clock stands still."""
    from numba import cfunc, types

    @cfunc(types.voidptr(types.voidptr, types.uint32))
    def get_buffer(port, frames):
        return port

    @cfunc(types.uint64())
    def get_time():
        return 0

    return get_buffer, get_time


def jack_bridge(model, fake_libjack, blocksize: int = F):
    """A bridge with one pair of output buffers per stem and a dry pair, wired as JackClient.attach wires it;
    ``bridge.jack_call(frames)`` runs its JACK process callback."""
    sep = StreamingSeparator(model, stems="all", sample_rate=RATE)
    bridge = RealtimeBridge(sep, RATE, blocksize, 2, live_input=True, stem_outputs=True)
    buffers = {"in": np.zeros((2, blocksize), np.float32), "out": np.zeros((8, blocksize), np.float32),
               "dry": np.zeros((2, blocksize), np.float32)}
    ports = ([b.ctypes.data for b in buffers[name]] for name in ("in", "out", "dry"))
    process, user_data = bridge.jack_callback(*ports, fake_libjack[0].address, fake_libjack[1].address)
    call = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)(process)
    bridge.jack_buffers = buffers  # alive as long as the bridge
    bridge.jack_call = lambda frames: call(frames, user_data)
    return bridge


def test_the_jack_callback_puts_each_stem_on_its_ports_and_the_input_on_the_dry_ports(scaled_model, fake_libjack):
    from numba.core.runtime import _nrt_python

    from realtime_split.live.slots import PERIOD_CHANGES

    bridge = jack_bridge(scaled_model, fake_libjack)
    buffers, call = bridge.jack_buffers, bridge.jack_call
    x = sine(1.0)
    blocks = len(x) // F
    played = np.zeros((10, blocks * F), np.float32)
    allocated = 0  # by numba's runtime during the callbacks (the worker's calls from Python do allocate)
    _nrt_python.memsys_enable_stats()
    try:
        for k in range(blocks):
            buffers["in"][:] = x[k * F:(k + 1) * F].T
            before = _nrt_python.memsys_get_stats_alloc()
            assert call(F) == 0
            allocated += _nrt_python.memsys_get_stats_alloc() - before
            played[:8, k * F:(k + 1) * F] = buffers["out"]
            played[8:, k * F:(k + 1) * F] = buffers["dry"]
            while bridge.step():
                pass
    finally:
        _nrt_python.memsys_disable_stats()
    assert allocated == 0  # the compiled callback allocates nothing, ever
    reference = delayed(x, bridge.delay, blocks * F).T
    for pair, scale in enumerate([0.5, 0.25, 0.125, 0.125, 1.0]):  # vocals, drums, bass, other, dry
        np.testing.assert_allclose(played[2 * pair:2 * pair + 2], scale * reference, atol=1e-6)
    assert bridge.counters[MISSED] == 0

    buffers["out"][:] = 1.0
    assert call(F // 2) == 0  # the server's period changed: silence, counted, nothing captured
    assert not buffers["out"][:, :F // 2].any() and bridge.counters[PERIOD_CHANGES] == 1


def test_a_late_worker_fades_every_stem_port_to_its_share_of_the_dry_input(scaled_model, fake_libjack):
    bridge = jack_bridge(scaled_model, fake_libjack)
    buffers, call = bridge.jack_buffers, bridge.jack_call
    x = sine(1.0)
    out = np.zeros((8, 80 * F), np.float32)
    for k in range(80):
        buffers["in"][:] = x[k * F:(k + 1) * F].T
        call(F)
        out[:, k * F:(k + 1) * F] = buffers["out"]
        if not 50 <= k < 70:
            while bridge.step():
                pass
    reference = delayed(x, bridge.delay, 80 * F).T
    stalled = slice(56 * F, 70 * F)
    for pair in range(4):  # each stem's port plays a quarter of the mix: the four still add up to it
        np.testing.assert_allclose(out[2 * pair:2 * pair + 2, stalled], 0.25 * reference[:, stalled], atol=1e-6)
    assert bridge.counters[MISSED] >= 14
