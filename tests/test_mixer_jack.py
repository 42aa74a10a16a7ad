"""The live mixer through a real JACK server (jackd2, dummy backend): a ``LiveSession`` with JACK ports in this
process, its mix changed from another thread while tests/jack_harness.py plays into its input ports and records
its stem ports.

The input is a constant 0.5 and the scaled test model makes the vocals 0.5 x the input, so every recorded
sample of ``vocals_L`` is 0.25 x the gain the session applied at that frame: the recording shows where a change
starts, how it ramps and where it ends, to the sample.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from jack_harness import PERIOD, RATE, Harness, MidiSender
from realtime_split.live.bridge import RAMP_SECONDS

pytestmark = [pytest.mark.slow, pytest.mark.jack]

LEVEL = 0.5
VOCALS = 0.5 * LEVEL  # the vocals port at 0 dB
RECORDED = ("vocals", "drums", "bass", "dry")  # the left port of each, recorded in this order
CLIENT = "rs-mixer"


def clock_offset(harness: Harness, bridge) -> int:
    """The harness clock minus the session's output position, both advanced once per JACK cycle: the value read
    most often between cycles (a read that falls between the two callbacks of one cycle is off by a period)."""
    from jack_harness import H_CLOCK
    from realtime_split.live.slots import FRAMES

    seen: dict[int, int] = {}
    for _ in range(60):
        offset = int(harness._state[H_CLOCK]) - int(bridge.counters[FRAMES])
        seen[offset] = seen.get(offset, 0) + 1
        time.sleep(0.0013)
    return max(seen, key=seen.__getitem__)


ATTEMPTS = 3


def undisturbed(record):
    """``record()`` (a dict with the session's ``stats``) up to ``ATTEMPTS`` times: the first session without xruns
    or missed deadlines, whose recorded levels are exactly the mix's, or the last one. On a machine that does
    not keep JACK's period a block now and then plays dry (at another level), whatever the mixer does."""
    for _ in range(ATTEMPTS):
        found = record()
        if found["steady"] and not (found["stats"].xruns or found["stats"].missed_deadlines):
            break
    return found


def skip_if_disturbed(found) -> None:
    """Skip when even the last session was disturbed: blocks played dry (at another level), or a cycle that ran
    for one client and not the other moved the session's clock against the recording's."""
    stats = found["stats"]
    if stats.xruns or stats.missed_deadlines or not found["steady"]:
        pytest.skip(f"{stats.xruns} xruns, {stats.missed_deadlines} missed deadlines, clocks "
                    f"{'steady' if found['steady'] else 'moved'} in the last of {ATTEMPTS} sessions: this machine did "
                    "not keep JACK's period, so the recorded levels say nothing about the mixer")


@pytest.fixture(scope="module")
def mixed_session(jack_server, scaled_model):
    """One session (``stems="vocals"``: the others start muted) while a control thread changes the mix:
    vocals -12 dB, drums in (unmuted), vocals muted, bass in, drums soloed. Returns the recording and where each
    change was heard from, in recording samples (a session again while JACK reports xruns: ``undisturbed``)."""
    return undisturbed(lambda: record_mixed_session(jack_server, scaled_model))


def record_mixed_session(jack_server, scaled_model) -> dict:
    from realtime_split import LiveSession

    steps = [("set_gain", "vocals", -12.0), ("mute", "drums", False), ("mute", "vocals", True),
             ("mute", "bass", False), ("solo", "drums", True)]
    with Harness(jack_server, record_channels=len(RECORDED), record_seconds=8) as harness, \
            LiveSession(scaled_model, input="jack", output="jack", stems="vocals", jack_name=CLIENT) as session:
        harness.connect(harness.wait_for_ports(f"{CLIENT}:in_", 2),
                        [f"{CLIENT}:{name}_L" for name in RECORDED])
        harness.play(np.full((RATE * 6, 2), LEVEL, np.float32))
        harness.start_recording()
        time.sleep(0.5)
        bridge = session._bridge
        offset = clock_offset(harness, bridge)
        heard, errors = [], []

        def control() -> None:  # another thread than the one that started the session
            try:
                for method, stem, value in steps:
                    getattr(session, method)(stem, value)
                    heard.append(session.mix_heard_from())
                    time.sleep(0.3)
            except BaseException as exc:  # noqa: BLE001  (reported by the test below)
                errors.append(exc)

        worker = threading.Thread(target=control)
        worker.start()
        worker.join()
        time.sleep(0.2)
        steady = offset == clock_offset(harness, bridge)  # no cycle ran for one client only: the mapping held
        stats = session.stats()
        mix = session.mix
        recording = harness.take()
        start = harness.record_start
    assert not errors, errors
    # The session's output position q is recorded one period later (JACK breaks the harness -> session ->
    # harness loop there) at harness clock q + offset.
    at = [q + offset + harness.loop_periods * PERIOD - start for q in heard]
    return {"recording": recording, "at": at, "stats": stats, "mix": mix, "steady": steady}


def test_a_gain_change_from_another_thread_is_heard_from_the_stated_sample_ramped(mixed_session):
    skip_if_disturbed(mixed_session)
    vocals = mixed_session["recording"][:, 0]
    at = mixed_session["at"][0]
    ramp = round(RAMP_SECONDS * RATE)
    quieter = VOCALS * 10 ** (-12 / 20)
    np.testing.assert_allclose(vocals[at - PERIOD:at], VOCALS, rtol=1e-6)  # the old level up to the stated sample
    assert vocals[at] < VOCALS  # the ramp starts there
    np.testing.assert_allclose(vocals[at + ramp:at + ramp + PERIOD], quieter, rtol=1e-6)  # the new level after it
    steps = np.abs(np.diff(vocals[at - 1:at + ramp + 1]))
    assert steps.max() <= (VOCALS - quieter) / ramp + 1e-7  # no step larger than the ramp's


def test_a_stem_brought_in_and_a_mute_and_a_solo(mixed_session):
    skip_if_disturbed(mixed_session)
    recording, at = mixed_session["recording"], mixed_session["at"]
    ramp = round(RAMP_SECONDS * RATE)
    vocals, drums, bass, dry = (recording[:, i] for i in range(4))
    assert not drums[:at[1]].any()  # drums start muted (stems="vocals")
    np.testing.assert_allclose(drums[at[1] + ramp:at[2]], 0.25 * LEVEL, rtol=1e-6)  # brought in
    muted = vocals[at[2] + ramp:at[3]]
    assert len(muted) and np.max(np.abs(muted)) < 10 ** (-90 / 20)  # mute: below -90 dBFS after the ramp
    np.testing.assert_allclose(bass[at[3] + ramp:at[4]], 0.125 * LEVEL, rtol=1e-6)
    soloed = slice(at[4] + ramp, at[4] + ramp + RATE // 10)
    np.testing.assert_allclose(drums[soloed], 0.25 * LEVEL, rtol=1e-6)  # a solo keeps the soloed stem
    assert not bass[soloed].any()  # and silences the others
    np.testing.assert_allclose(dry[at[0]:at[4] + RATE // 10], LEVEL)  # the dry ports never follow the mix


def test_changing_the_mix_misses_no_deadline_and_the_mix_reads_back(mixed_session):
    stats, mix = mixed_session["stats"], mixed_session["mix"]
    if stats.xruns:
        pytest.skip(f"{stats.xruns} xruns in all {ATTEMPTS} sessions: this machine did not keep JACK's period, so a "
                    "missed deadline would say nothing about the mixer")
    assert stats.missed_deadlines == 0
    assert [(s.name, s.gain_db, s.muted, s.soloed) for s in mix.stems] == [
        ("vocals", -12.0, True, False), ("drums", 0.0, False, True), ("bass", 0.0, False, False),
        ("other", 0.0, True, False)]


def test_midi_control_changes_on_midi_in_move_the_ports_levels(jack_server, scaled_model):
    """CC 7 on channel 1 sets the first stem's gain (GM's curve: 64 -> -11.9 dB); note 0 on channel 2 toggles the
    second stem's mute: silence below -90 dBFS after the ramp; unbound messages change nothing."""
    from realtime_split.live.midi_map import cc_to_db

    found = undisturbed(lambda: record_midi_session(jack_server, scaled_model))
    skip_if_disturbed(found)
    recording, heard, mix = found["recording"], found["at"], found["mix"]
    ramp = round(RAMP_SECONDS * RATE)
    vocals, drums = recording[:, 0], recording[:, 1]
    assert mix["vocals"].gain_db == pytest.approx(cc_to_db(64)) and mix["bass"] == mix["bass"].__class__("bass")
    quieter = VOCALS * 10 ** (cc_to_db(64) / 20)
    at = heard[0]
    np.testing.assert_allclose(vocals[at - PERIOD:at], VOCALS, rtol=1e-6)
    np.testing.assert_allclose(vocals[at + ramp:heard[1]], quieter, rtol=1e-6)
    assert np.abs(np.diff(vocals[at - 1:at + ramp + 1])).max() <= (VOCALS - quieter) / ramp + 1e-7
    np.testing.assert_allclose(drums[heard[0]:heard[1]], 0.25 * LEVEL, rtol=1e-6)
    muted = drums[heard[1] + ramp:heard[1] + ramp + RATE // 10]
    assert np.max(np.abs(muted)) < 10 ** (-90 / 20)


def record_midi_session(jack_server, scaled_model) -> dict:
    from realtime_split import LiveSession

    sender = MidiSender(jack_server)  # there first: the session connects its port to midi_in at start
    with Harness(jack_server, record_channels=2, record_seconds=8) as harness, \
            LiveSession(scaled_model, input="jack", output="jack", stems="all", jack_name=CLIENT,
                        midi=sender.port.name) as session:
        assert session.jack_ports["midi_in"] == [f"{CLIENT}:midi_in"]
        assert session.connections == [(sender.port.name, f"{CLIENT}:midi_in")]
        harness.connect(harness.wait_for_ports(f"{CLIENT}:in_", 2), [f"{CLIENT}:vocals_L", f"{CLIENT}:drums_L"])
        harness.play(np.full((RATE * 6, 2), LEVEL, np.float32))
        harness.start_recording()
        time.sleep(0.5)
        offset = clock_offset(harness, session._bridge)
        heard = []
        for message, changed in ((bytes([0xB0, 7, 64]), lambda mix: mix["vocals"].gain_db < 0),
                                 (bytes([0x91, 0, 100]), lambda mix: mix["drums"].muted)):
            sender.send(bytes([0xB5, 7, 10]))  # channel 6: bound to nothing
            sender.send(message)
            deadline = time.monotonic() + 10
            while not changed(session.mix):
                assert time.monotonic() < deadline, "the MIDI message changed nothing"
                time.sleep(0.001)
            heard.append(session.mix_heard_from() + offset + harness.loop_periods * PERIOD - harness.record_start)
            time.sleep(0.3)
        steady = offset == clock_offset(harness, session._bridge)
        recording = harness.take()
        mix = session.mix
        sender.client.deactivate()
        sender.client.close()
        stats = session.stats()
    return {"recording": recording, "at": heard, "mix": mix, "stats": stats, "steady": steady}


def test_midi_learn_on_jacks_midi_in_binds_the_first_control_and_writes_the_map(jack_server, scaled_model, tmp_path):
    """``--midi-learn bass=FILE`` through JACK: the first control change on ``midi_in`` is bound to the bass gain
    and written to FILE as a map line; the same control then moves the bass fader."""
    from realtime_split import LiveSession
    from realtime_split.live.midi_map import cc_to_db

    path = tmp_path / "learned.map"
    sender = MidiSender(jack_server)
    try:
        with LiveSession(scaled_model, input="jack", output="jack", stems="all", jack_name=CLIENT,
                         midi=sender.port.name, midi_learn=f"bass={path}") as session:
            assert session.midi_learned is None and not path.exists()
            sender.send(bytes([0xB4, 21, 100]))  # CC 21 on channel 5: learned and applied
            deadline = time.monotonic() + 10
            while session.midi_learned is None:
                assert time.monotonic() < deadline, "no control change was learned"
                time.sleep(0.005)
            assert session.midi_learned == "bass gain cc 21 channel 5"
            while session.mix["bass"].gain_db != pytest.approx(cc_to_db(100)):
                assert time.monotonic() < deadline, "the learned control change did not set the bass gain"
                time.sleep(0.005)
            sender.send(bytes([0xB4, 21, 64]))  # the learned knob now moves the bass fader
            while session.mix["bass"].gain_db != pytest.approx(cc_to_db(64)):
                assert time.monotonic() < deadline, "the learned control did not move the bass gain"
                time.sleep(0.005)
    finally:
        sender.client.deactivate()
        sender.client.close()
    assert "bass gain cc 21 channel 5" in path.read_text().splitlines()
