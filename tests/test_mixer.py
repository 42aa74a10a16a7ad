"""The live mixer without a sound card: the bridge's compiled callbacks driven block by block while the mix
changes, and the ``Mix`` vocabulary files and live sessions share.

The scaled test model makes each stem a known share of the input (vocals 0.5, drums 0.25, bass and other
0.125) and a constant input makes every output sample show the gain the callback applied at that frame.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from bridge_helpers import RATE, F
from realtime_split import Mix, ParameterError, Separator, StreamingSeparator
from realtime_split.live.bridge import RAMP_SECONDS, RealtimeBridge
from realtime_split.live.slots import MISSED
from realtime_split.stems import parse_gains

SHARES = np.array([0.5, 0.25, 0.125, 0.125])
LEVEL = 0.5  # the constant input


def mixer_bridge(model, stems="vocals", gains=None, **options) -> RealtimeBridge:
    sep = StreamingSeparator(model, stems=stems, gains=gains, sample_rate=RATE, mixer=True)
    return RealtimeBridge(sep, RATE, F, 2, live_input=True, gains=sep.mix.factors(), **options)


def play(bridge: RealtimeBridge, blocks: int, changes: dict | None = None, idle=range(0)) -> np.ndarray:
    """``blocks`` blocks of the constant input through the duplex callback; before block ``k`` in ``changes``,
    ``bridge.set_mix(changes[k])``; the worker catches up after every block not in ``idle``."""
    callback = bridge.duplex_callback()
    x = np.full((F, 2), LEVEL, np.float32)
    out = np.zeros((blocks * F, 2), np.float32)
    for k in range(blocks):
        if changes and k in changes:
            bridge.set_mix(changes[k])
        callback(x, out[k * F:(k + 1) * F], F, None, None)
        if k not in idle:
            while bridge.step():
                pass
    return out[:, 0]


def test_a_live_separator_separates_every_stem_and_mutes_those_not_selected(scaled_model):
    sep = StreamingSeparator(scaled_model, stems="drums", gains="drums=-6", sample_rate=RATE, mixer=True)
    assert sep.stems == ("drums", "vocals", "bass", "other")  # the selection first: its ports and meters lead
    assert [(s.name, s.gain_db, s.muted) for s in sep.mix.stems] == [
        ("drums", -6.0, False), ("vocals", 0.0, True), ("bass", 0.0, True), ("other", 0.0, True)]
    np.testing.assert_allclose(sep.mix.factors(), [10 ** (-6 / 20), 0, 0, 0])
    x = np.full((4096, 2), LEVEL, np.float32)
    stems = sep.process(x)  # unity gain: the host mixes
    np.testing.assert_allclose(stems[:, -1, 0], LEVEL * SHARES[[1, 0, 2, 3]], rtol=1e-6)


def test_a_gain_change_is_heard_from_the_next_block_ramped_over_five_ms(scaled_model):
    bridge = mixer_bridge(scaled_model, stems="all")
    ramp = round(RAMP_SECONDS * RATE)
    assert bridge.ramp == ramp == 220
    start = bridge.delay + 4 * F  # separated output is playing by then
    change_block = start // F + 4
    quieter = Mix.of(("vocals", "drums", "bass", "other"), {"vocals": -12.0})
    out = play(bridge, change_block + 6, {change_block: quieter.factors()})
    full = LEVEL * SHARES.sum()
    at = change_block * F
    np.testing.assert_allclose(out[start:at], full, rtol=1e-6)  # untouched until the block that took the change
    after = LEVEL * (SHARES[0] * 10 ** (-12 / 20) + SHARES[1:].sum())
    np.testing.assert_allclose(out[at + ramp:], after, rtol=1e-6)  # there after exactly the ramp
    steps = np.diff(out[at - 1:at + ramp + 1])
    assert np.all(steps <= 0) and np.max(np.abs(steps)) <= (full - after) / ramp + 1e-7  # a line, no step
    assert out[at] < full  # the ramp starts on the block's first frame
    assert bridge.mix_taken() == (True, at, 0)
    assert bridge.counters[MISSED] == 0


def test_mute_is_silence_after_the_ramp_and_solo_plays_only_the_soloed(scaled_model):
    bridge = mixer_bridge(scaled_model, stems="vocals")
    names = ("vocals", "drums", "bass", "other")
    base = Mix.of(names, muted=names[1:])
    k = bridge.delay // F + 4
    out = play(bridge, k + 12, {k: base.with_mute("vocals").factors(), k + 4: Mix.of(names).with_solo("bass").factors(),
                                k + 8: base.with_mute("vocals", False).with_mute("drums", False).factors()})
    ramp = bridge.ramp
    np.testing.assert_allclose(out[(k - 1) * F:k * F], LEVEL * 0.5, rtol=1e-6)  # vocals alone, as selected
    assert not out[k * F + ramp:(k + 4) * F].any()  # muted: exact silence (far below -90 dBFS)
    np.testing.assert_allclose(out[(k + 4) * F + ramp:(k + 8) * F], LEVEL * 0.125, rtol=1e-6)  # bass soloed
    np.testing.assert_allclose(out[(k + 8) * F + ramp:], LEVEL * 0.75, rtol=1e-6)  # vocals and drums


def test_a_missed_deadline_plays_the_dry_input_at_the_mixs_level(scaled_model):
    """The dry fallback follows the mix: at the loudest audible stem's amplitude, so muting everything
    silences a miss too."""
    bridge = mixer_bridge(scaled_model, stems="all")
    k = bridge.delay // F + 4
    names = ("vocals", "drums", "bass", "other")
    out = play(bridge, k + 30, {k: Mix.of(names, {"drums": -6.0}, muted=("vocals",)).factors()},
               idle=range(k + 4, k + 24))
    stalled = slice((k + 10) * F, (k + 24) * F)
    np.testing.assert_allclose(out[stalled], LEVEL * 1.0, rtol=1e-6)  # bass and other, at 0 dB, are the loudest
    assert bridge.counters[MISSED] > 0
    bridge = mixer_bridge(scaled_model, stems="all")
    silent = Mix.of(names, muted=names).factors()
    out = play(bridge, k + 30, {k: silent}, idle=range(k + 4, k + 24))
    assert not out[k * F + bridge.ramp:].any()


def test_each_jack_stem_pair_follows_its_own_gain(scaled_model, fake_libjack):
    from test_live_bridge import jack_bridge

    bridge = jack_bridge(scaled_model, fake_libjack)
    buffers, call = bridge.jack_buffers, bridge.jack_call
    k = bridge.delay // F + 4
    played = np.zeros((10, (k + 4) * F), np.float32)
    for j in range(k + 4):
        if j == k:
            bridge.set_mix([1.0, 0.5, 0.0, 2.0])
        buffers["in"][:] = LEVEL
        call(F)
        played[:8, j * F:(j + 1) * F] = buffers["out"]
        played[8:, j * F:(j + 1) * F] = buffers["dry"]
        while bridge.step():
            pass
    settled = slice(k * F + bridge.ramp, None)
    for pair, (share, gain) in enumerate(zip(SHARES, [1.0, 0.5, 0.0, 2.0])):
        np.testing.assert_allclose(played[2 * pair:2 * pair + 2, settled], LEVEL * share * gain, rtol=1e-6)
    np.testing.assert_allclose(played[8:, settled], LEVEL)  # the dry pair is the input, whatever the mix


@pytest.fixture(scope="module")
def fake_libjack():
    from numba import cfunc, types

    @cfunc(types.voidptr(types.voidptr, types.uint32))
    def get_buffer(port, frames):
        return port

    @cfunc(types.uint64())
    def get_time():
        return 0

    return get_buffer, get_time


def test_changing_the_mix_allocates_nothing_in_the_callback(scaled_model):
    from numba.core.runtime import _nrt_python

    bridge = mixer_bridge(scaled_model, stems="all")
    callback = bridge.duplex_callback()
    x = np.full((F, 2), LEVEL, np.float32)
    out = np.zeros((F, 2), np.float32)
    rng = np.random.default_rng(0)
    for _ in range(4):
        callback(x, out, F, None, None)
        bridge.step()
    _nrt_python.memsys_enable_stats()
    try:
        allocated = 0  # by numba's runtime inside the callback (the worker's calls from Python do allocate)
        for _ in range(40):
            bridge.set_mix(rng.uniform(0, 2, 4))
            before = _nrt_python.memsys_get_stats_alloc()
            callback(x, out, F, None, None)
            allocated += _nrt_python.memsys_get_stats_alloc() - before
            bridge.step()
    finally:
        _nrt_python.memsys_disable_stats()
    assert allocated == 0


def test_a_mix_names_its_stems_and_refuses_what_it_cannot_play():
    mix = Mix.of(("vocals", "drums", "bass", "other"), {"drums": -6.0}, muted=("bass",))
    assert mix["drums"].gain_db == -6.0 and mix["bass"].muted and mix.names[0] == "vocals"
    soloed = mix.with_solo("vocals")
    np.testing.assert_allclose(soloed.factors(), [1, 0, 0, 0])
    assert soloed.gains_db == {"vocals": 0.0, "drums": -math.inf, "bass": -math.inf, "other": -math.inf}
    assert str(mix) == "vocals, drums -6 dB, bass muted, other"
    assert mix.with_gain("vocals", -math.inf).factors()[0] == 0.0
    with pytest.raises(ParameterError, match=r"stem='kazoo' is not in this mix; its stems are vocals, drums") as e:
        mix.with_gain("kazoo", 0)
    assert e.value.parameter == "stem"
    for bad in (math.nan, 41.0, "loud", True):
        with pytest.raises(ParameterError, match=r"^db=") as e:
            mix.with_gain("vocals", bad)
        assert e.value.parameter == "db"


def test_files_take_the_same_mix(scaled_model, tmp_path):
    """A ``Mix`` is what ``gains=`` takes for files too: a muted stem is -inf in the file's mix."""
    mix = Mix.of(("vocals", "drums", "bass", "other"), {"drums": -6.0}, muted=("vocals",))
    assert parse_gains(mix, mix.names) == {"vocals": -math.inf, "drums": -6.0, "bass": 0.0, "other": 0.0}
    separator = Separator(scaled_model, stems="all", gains=mix, latency="balanced")
    assert separator.mix == mix.with_mute("vocals", False).with_gain("vocals", -math.inf)
    x = np.full((8192, 2), LEVEL, np.float32)
    stems = separator.separate(x, RATE).stems
    assert not stems["vocals"].any()
    np.testing.assert_allclose(stems["drums"][-1], LEVEL * 0.25 * 10 ** (-6 / 20), rtol=1e-5)


def test_set_mix_from_many_threads_never_tears_a_target(scaled_model):
    """Control threads write whole targets: the callback reads each stem's target as one of the values written."""
    bridge = mixer_bridge(scaled_model, stems="all")
    values = {0.0, 0.25, 1.0}
    stop = threading.Event()

    def writer(v: float) -> None:
        while not stop.is_set():
            bridge.set_mix([v] * 4)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (0.25, 1.0)]
    for t in threads:
        t.start()
    try:
        seen = {float(v) for _ in range(2000) for v in bridge.mix_targets}
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen <= values


def test_midi_options_are_checked_and_a_map_file_names_its_bad_line(scaled_model, tmp_path):
    from realtime_split import LiveSession
    from realtime_split.live.midi_map import MidiMap, cc_to_db

    LiveSession(scaled_model, midi="[")  # without JACK a part of a port's name (tests/test_midi_input.py)
    with pytest.raises(ParameterError, match=r"midi='\[' is not a valid regular expression") as e:
        LiveSession(scaled_model, input="jack", midi="[")
    assert e.value.parameter == "midi"
    with pytest.raises(ParameterError, match=r"pass midi=True too"):
        LiveSession(scaled_model, input="jack", midi_map="map.txt")
    stems = ("vocals", "drums", "bass", "other")
    good = tmp_path / "good.txt"
    good.write_text("# my controller\nvocals gain cc 1\ndrums mute note 36 channel 10  # pad\n")
    mapping = MidiMap.read(good, stems)
    assert [(b.stem, b.action, b.number, b.channel) for b in mapping.bindings] == [
        ("vocals", "gain", 1, 0), ("drums", "mute", 36, 9)]
    bad = tmp_path / "bad.txt"
    bad.write_text("vocals gain cc 1\nkazoo gain cc 2\n")
    with pytest.raises(ParameterError, match=r"line 2: stem 'kazoo' is not one of vocals, drums, bass, other"):
        MidiMap.read(bad, stems)
    bad.write_text("vocals gain cc 200\n")
    with pytest.raises(ParameterError, match=r"line 1: 'vocals gain cc 200': numbers are 0-127"):
        MidiMap.read(bad, stems)
    assert cc_to_db(127) == 0.0 and cc_to_db(0) == -math.inf and cc_to_db(64) == pytest.approx(-11.9, abs=0.05)


def test_the_recording_holds_the_mix_as_heard(scaled_model):
    bridge = mixer_bridge(scaled_model, stems="all", record=True)
    k = bridge.delay // F + 4
    out = play(bridge, k + 4, {k: [0.0, 1.0, 1.0, 1.0]})
    saved = []
    bridge.drain_recording(lambda frames: saved.append(frames[:, 0].copy()))
    np.testing.assert_array_equal(np.concatenate(saved), out)  # what played, vocals faded out, is what was saved
    np.testing.assert_allclose(out[k * F + bridge.ramp:], LEVEL * 0.5, rtol=1e-6)


@pytest.fixture
def own_stream_session(scaled_model):
    """A real session in an application's own stream (``open_stream=False``): no device needed."""
    from realtime_split import LiveSession

    session = LiveSession(scaled_model, stems="vocals", open_stream=False, sample_rate=RATE, blocksize=F)
    with pytest.raises(RuntimeError, match="has not started"):
        session.set_gain("vocals", -6)
    with session:
        yield session


def test_the_library_names_what_it_cannot_set(own_stream_session):
    session = own_stream_session
    assert session.mix.names == ("vocals", "drums", "bass", "other") and session.mix["drums"].muted
    for call, parameter in ((lambda: session.set_gain("kazoo", 0), "stem"), (lambda: session.mute("Vocals"), "stem"),
                            (lambda: session.set_gain("vocals", "loud"), "db"),
                            (lambda: session.set_gain("vocals", math.inf), "db"),
                            (lambda: session.set_mix(Mix.of(("vocals",))), "mix")):
        with pytest.raises(ParameterError) as e:
            call()
        assert e.value.parameter == parameter
    session.set_mix(session.mix.with_gain("bass", -3).with_mute("bass", False))
    assert session.mix["bass"] == type(session.mix["bass"])("bass", -3.0, False, False)
    assert session.mix_heard_from(timeout=0.05) is None  # no audio callback has run: nothing heard yet


def test_keys_choose_a_stem_and_step_its_gain_to_silence_and_back(own_stream_session):
    from realtime_split.cli_keys import FLOOR_DB, Keys

    session = own_stream_session
    keys = Keys(session, enabled=False)
    assert not keys.enabled  # not a terminal: nothing is read
    keys.feed("2m")  # drums: unmuted (they started muted)
    assert keys.selected == 1 and not session.mix["drums"].muted
    keys.feed("s9")  # solo; there is no ninth stem
    assert session.mix["drums"].soloed and keys.selected == 1
    keys.feed("1\x1b[")  # an arrow split over two reads
    keys.feed("B")
    assert session.mix["vocals"].gain_db == -1.0
    keys.feed("+" * 3 + "\x1b[A")
    assert session.mix["vocals"].gain_db == 3.0
    keys.feed("0" + "-" * 61)
    assert session.mix["vocals"].gain_db == -math.inf
    keys.feed("+")
    assert session.mix["vocals"].gain_db == FLOOR_DB


def test_the_status_line_shows_the_mix_and_keeps_its_counters_on_a_narrow_terminal(own_stream_session):
    from realtime_split.cli_status import StatusLine

    session = own_stream_session
    session.set_gain("vocals", -6)
    session.mute("bass", False)
    session.solo("bass")
    status = StatusLine(session, enabled=True, selected=lambda: 0)
    wide = status.line(12.5, width=250)
    assert ("| >vocals  -inf dB [------] -6dB drums  -inf dB [------] M bass  -inf dB [------] S other  -inf dB "
            "[------] M | 17 ms |") in wide  # no sound has played: every meter at -inf
    for width in (100, 80, 70):
        narrow = status.line(12.5, width=width)
        assert len(narrow) < width and narrow.endswith("missed 0 xruns 0"), narrow
    assert status.line(12.5, width=80) == "12.5s >voc -6dB dru M bas S oth M 17ms load 0% missed 0 xruns 0"


@pytest.fixture(scope="module")
def fake_midi():
    """Stand-ins for libjack's two MIDI calls: a "port buffer" is an int64 array [count, (size, address) ...]."""
    from numba import carray, cfunc, types

    @cfunc(types.uint32(types.voidptr))
    def event_count(buffer):
        return carray(buffer, 1, np.int64)[0]

    @cfunc(types.int32(types.voidptr, types.voidptr, types.uint32))
    def event_get(event, buffer, index):
        head = carray(buffer, 1 + 2 * (index + 1), np.int64)
        out = carray(event, 3, np.int64)
        out[0] = 0
        out[1] = head[1 + 2 * index]
        out[2] = head[2 + 2 * index]
        return 0

    return event_count, event_get


def test_the_jack_callback_copies_midi_in_for_the_midi_thread_and_allocates_nothing(scaled_model, fake_libjack,
                                                                                      fake_midi, own_stream_session):
    import ctypes

    from numba.core.runtime import _nrt_python

    from realtime_split.live.midi_map import MidiMap, cc_to_db

    sep = StreamingSeparator(scaled_model, stems="all", sample_rate=RATE, mixer=True)
    bridge = RealtimeBridge(sep, RATE, F, 2, live_input=True, stem_outputs=True, gains=sep.mix.factors())
    ports = {"in": np.zeros((2, F), np.float32), "out": np.zeros((8, F), np.float32)}
    messages = [np.array(m, np.uint8) for m in ([0xB0, 7, 64], [0x91, 0, 100], [0xF8], [0xF0] + [1] * 6)]
    midi_port = np.zeros(1 + 2 * len(messages), np.int64)
    midi_port[0] = len(messages)
    midi_port[1::2] = [len(m) for m in messages]
    midi_port[2::2] = [m.ctypes.data for m in messages]
    process, user_data = bridge.jack_callback(
        [b.ctypes.data for b in ports["in"]], [b.ctypes.data for b in ports["out"]], [],
        fake_libjack[0].address, fake_libjack[1].address,
        midi=(midi_port.ctypes.data, fake_midi[0].address, fake_midi[1].address))
    call = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)(process)
    _nrt_python.memsys_enable_stats()
    try:
        before = _nrt_python.memsys_get_stats_alloc()
        call(F, user_data)
        allocated = _nrt_python.memsys_get_stats_alloc() - before
    finally:
        _nrt_python.memsys_disable_stats()
    assert allocated == 0
    # Channel messages of 1 to 3 bytes are kept as they came (a clock tick too); a longer system exclusive is not.
    assert bridge.read_midi() == [(0xB0, 7, 64), (0x91, 0, 100), (0xF8, 0, 0)]
    assert bridge.read_midi() == []

    session = own_stream_session  # a real session's mix (stems="vocals": drums muted) takes them
    mapping = MidiMap.default(session.mix.names)
    assert [mapping.apply(session, *m) for m in [(0xB0, 7, 64), (0x91, 0, 100), (0xF8, 0, 0), (0x81, 0, 0)]] == [
        True, True, False, False]  # a note-off changes nothing
    assert session.mix["vocals"].gain_db == cc_to_db(64) and not session.mix["drums"].muted  # the note toggled it
