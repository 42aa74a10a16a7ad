"""MIDI controllers without JACK (live/midi_input.py): real ``mido`` messages through the same map as JACK's
``midi_in`` onto a real session's mix, the one-line errors, and a virtual ALSA port where the machine has the
ALSA sequencer."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from cli_helpers import REPO, fails
from realtime_split import DeviceError, LiveSession, ParameterError
from realtime_split.live.midi_input import SEQUENCER, MidiInput
from realtime_split.live.midi_map import MidiMap, cc_to_db

mido = pytest.importorskip("mido", reason="the control extra (mido) is not installed")
RATE = 44100
NO_SEQUENCER = not os.path.exists(SEQUENCER)


def own_stream_session(model, **options) -> LiveSession:
    """A session that separates without a sound card: the test (or the app) owns the stream."""
    return LiveSession(model, stems="all", open_stream=False, sample_rate=RATE, blocksize=256, **options).start()


def test_controller_messages_change_a_playing_sessions_mix_through_the_jack_paths_map(scaled_model, tmp_path):
    with own_stream_session(scaled_model) as session:
        midi = MidiInput()
        midi.attach(session, MidiMap.default(session.mix.names))
        assert session.mix.names == ("vocals", "drums", "bass", "other")
        midi.handle(mido.Message("control_change", channel=1, control=7, value=64))  # channel 2: drums
        midi.handle(mido.Message("note_on", channel=0, note=0, velocity=100))  # vocals' mute
        midi.handle(mido.Message("note_on", channel=3, note=1, velocity=90))  # other's solo
        midi.handle(mido.Message("note_on", channel=3, note=1, velocity=0))  # the release: no second toggle
        midi.handle(mido.Message("control_change", channel=0, control=10, value=3))  # not bound
        midi.handle(mido.Message("clock"))
        midi.handle(mido.Message("sysex", data=[1, 2, 3]))
        mix = session.mix
        assert mix["drums"].gain_db == pytest.approx(cc_to_db(64))
        assert mix["vocals"].muted and mix["other"].soloed and not mix["bass"].soloed
        assert (midi.applied, midi.ignored) == (3, 4)
        midi.handle(mido.Message("note_on", channel=0, note=0, velocity=100))  # a second press unmutes
        midi.handle(mido.Message("control_change", channel=1, control=7, value=0))
        assert not session.mix["vocals"].muted and session.mix["drums"].gain_db == -math.inf

        mapping = tmp_path / "nano.txt"
        mapping.write_text("bass gain cc 1\nbass mute cc 2 channel 16\n")
        midi.attach(session, MidiMap.read(mapping, session.mix.names))
        midi.handle(mido.Message("control_change", channel=0, control=1, value=127))
        midi.handle(mido.Message("control_change", channel=15, control=2, value=127))  # a CC switch sets
        midi.handle(mido.Message("control_change", channel=1, control=7, value=127))  # the default map is gone
        assert session.mix["bass"].gain_db == 0.0 and session.mix["bass"].muted
        assert session.mix["drums"].gain_db == -math.inf
    assert midi.error is None


def test_without_mido_the_cli_says_what_to_install_in_one_line(scaled_model):
    script = ("import sys; sys.modules['mido'] = None; from realtime_split.cli import main; "
              f"sys.exit(main(['--input', 'mic', '--midi', '--model', {str(scaled_model)!r}, '--no-progress']))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert err.startswith("realtime-split: error: ") and "\n" not in err, err
    assert "pip install 'realtime-split[control]'" in err


@pytest.mark.skipif(not NO_SEQUENCER, reason="this machine has an ALSA sequencer (see the virtual port test)")
def test_without_the_alsa_sequencer_the_error_names_it_and_the_fix(scaled_model, capsys):
    with pytest.raises(DeviceError, match=r"ALSA sequencer \(/dev/snd/seq\).*modprobe snd-seq.*--input jack"):
        own_stream_session(scaled_model, midi=True)
    err = fails(capsys, "--input", "mic", "--midi", "nanoKONTROL", model=scaled_model, contains="/dev/snd/seq")
    assert "ALSA lib" not in err  # rtmidi is not asked, so ALSA prints nothing of its own


@pytest.mark.skipif(NO_SEQUENCER, reason="no ALSA sequencer (/dev/snd/seq)")
def test_a_controller_on_a_virtual_alsa_port_drives_the_mix(scaled_model):
    controller = mido.Backend("mido.backends.rtmidi").open_output("rs-test-controller", virtual=True)
    try:
        with pytest.raises(ParameterError, match=r"midi='no such port' matches no MIDI input port; the inputs "
                                                 r"are: .*rs-test-controller"):
            own_stream_session(scaled_model, midi="no such port")
        with own_stream_session(scaled_model, midi="RS-TEST-CONTROLLER") as session:
            assert session.midi_port is not None and "rs-test-controller" in session.midi_port
            controller.send(mido.Message("control_change", channel=0, control=7, value=64))
            controller.send(mido.Message("note_on", channel=2, note=0, velocity=100))
            deadline = time.monotonic() + 10
            while not session.mix["bass"].muted and time.monotonic() < deadline:
                time.sleep(0.01)
            assert session.mix["bass"].muted
            assert session.mix["vocals"].gain_db == pytest.approx(cc_to_db(64))
    finally:
        controller.close()


def test_midi_learn_binds_the_next_control_change_to_the_stems_gain_and_writes_the_map(scaled_model, tmp_path):
    from realtime_split.live.midi_map import MidiLearn

    path = tmp_path / "learned.map"
    with own_stream_session(scaled_model) as session:
        stems = session.mix.names
        with pytest.raises(ParameterError, match=r"midi_learn='kazoo=x.map': stem 'kazoo' is not one of vocals"):
            MidiLearn(MidiMap.default(stems), "kazoo=x.map", stems)
        with pytest.raises(ParameterError, match=r"midi_learn='bass': give STEM=FILE"):
            MidiLearn(MidiMap.default(stems), "bass", stems)
        midi = MidiInput()
        learn = MidiLearn(MidiMap.default(stems), f"bass={path}", stems)
        midi.attach(session, learn)
        midi.handle(mido.Message("note_on", channel=2, note=0, velocity=100))  # a note teaches nothing: bass mutes
        assert learn.learned is None and not path.exists() and session.mix["bass"].muted
        midi.handle(mido.Message("control_change", channel=4, control=21, value=100))  # the knob moved: learned
        midi.handle(mido.Message("control_change", channel=4, control=22, value=0))  # only the first is learned
        midi.handle(mido.Message("control_change", channel=2, control=7, value=0))  # bass's old control is gone
        assert session.mix["bass"].gain_db == pytest.approx(cc_to_db(100))
        assert learn.learned is not None and learn.learned.line() == "bass gain cc 21 channel 5"
    assert "bass gain cc 21 channel 5\n" in path.read_text()
    again = MidiMap.read(path, stems)  # what --midi-map reads next time
    assert set(again.bindings) == set(learn.mapping.bindings)
    assert [b.line() for b in again.bindings if b.stem == "bass"] == [
        "bass mute note 0 channel 3", "bass solo note 1 channel 3", "bass gain cc 21 channel 5"]
    with pytest.raises(ParameterError, match=r"midi_learn= learns from the messages of a MIDI port; pass midi=True"):
        LiveSession(scaled_model, midi_learn=f"bass={path}")
