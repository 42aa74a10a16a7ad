"""``LiveSession`` through a real JACK server (jackd2, dummy backend), as an application runs it.

The application is tests/live_session_app.py, a subprocess (PortAudio finds the server that
tests/jack_harness.py starts); the harness plays known signals into its input and records its
output. The scaled test model makes the vocals exactly 0.5 x the mix, so the recording and the
levels show that the session separated, and the clicks' delay shows the latency it reported.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jack_harness import PERIOD, RATE, Harness, click_delays, click_train, finish, launch
from realtime_split import StreamingSeparator

pytestmark = [pytest.mark.slow, pytest.mark.jack]
APP = str(Path(__file__).with_name("live_session_app.py"))


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_session_starts_separates_the_microphone_and_stops_with_named_counters(jack_server, scaled_model,
                                                                                 tmp_path):
    recording = tmp_path / "monitor.wav"
    clicks = click_train(RATE, 1.0, every=0.25)
    with Harness(jack_server, record_seconds=10) as harness:
        proc = launch("--model", scaled_model, "--record", recording, "--seconds", "3", script=APP)
        harness.connect_portaudio(process=proc)
        harness.start_recording()
        time.sleep(0.3)
        harness.play(clicks)
        harness.wait_played()
        code, out, err = finish(proc)
        found = click_delays(harness, clicks)
    assert code == 0, err
    started, ended = lines(out)
    latency = started["latency"]
    assert latency["separator"] == StreamingSeparator(scaled_model).latency_samples  # balanced, no resampling
    assert latency["samplerate"] == RATE and started["blocksize"] == started["hop"] == PERIOD
    assert started["stems"] == ["vocals", "drums", "bass", "other"]  # every stem separated, to bring in live
    assert started["heard"] == ["vocals"]  # the others start muted
    # What the speakers got: the vocals (0.5 x the clicks), as late as the session said.
    assert latency["host_frames"] == PERIOD  # PortAudio's JACK host API: one block on top
    assert all(d == latency["separator"] + latency["buffers"] + latency["host_frames"] for d, _ in found), found
    assert np.median([g for _, g in found]) == pytest.approx(0.5, abs=0.02)

    assert ended["ended"] is False  # the microphone never ends by itself: stop() (leaving the with) ended it
    stats = ended["stats"]
    assert 2.5 < stats["seconds_played"] < 5.0
    blocks = stats["seconds_played"] * RATE / PERIOD
    for name in ("missed_deadlines", "restarts", "xruns", "input_overflows", "output_underflows",
                 "nonfinite_inputs", "nonfinite_outputs"):
        assert isinstance(stats[name], int) and 0 <= stats[name] < blocks, (name, stats)
    assert stats["nonfinite_inputs"] == stats["nonfinite_outputs"] == 0
    assert 0 < stats["load_p50"] <= stats["load_p99"] and stats["blocksize"] == PERIOD
    assert stats["latency"] == latency and stats["recording"] == str(recording)
    frames = sf.info(str(recording)).frames
    assert stats["recorded_seconds"] == pytest.approx(frames / RATE, abs=1e-6)
    assert stats["recorded_seconds"] == pytest.approx(stats["seconds_played"], abs=0.3)
    levels = ended["levels"]
    assert levels["input"] > 0.1 and levels["stems"]["vocals"] == pytest.approx(0.5 * levels["input"], rel=0.01)


def test_a_file_played_live_ends_by_itself(jack_server, scaled_model, tmp_path):
    sf.write(tmp_path / "song.wav", 0.3 * np.random.default_rng(1).standard_normal((int(0.8 * RATE), 2)), RATE)
    with Harness(jack_server, record_seconds=10) as harness:
        proc = launch("--model", scaled_model, "--input", tmp_path / "song.wav", "--seconds", "30", script=APP)
        harness.connect_portaudio(in_channels=0, process=proc)
        code, out, err = finish(proc)
    assert code == 0, err
    _, ended = lines(out)
    assert ended["ended"] is True  # played out, long before the 30 s it would wait
    assert 0.8 <= ended["stats"]["seconds_played"] < 3.0
    assert ended["stats"]["recording"] is None and ended["stats"]["recorded_seconds"] == 0


def test_a_device_that_matches_nothing_is_a_value_error_naming_the_parameter(jack_server, scaled_model):
    code, out, err = finish(launch("--model", scaled_model, "--input-device", "usb headset", script=APP))
    assert code == 0, err
    (error,) = lines(out)
    assert error["error"] == "ParameterError" and "ValueError" in error["kinds"]
    assert error["parameter"] == "input_device"
    assert error["message"] == ("input_device='usb headset' matches no input device; input devices: "
                                "0 system (JACK Audio Connection Kit, 2 in, 2 out)")
