"""Live audio end to end through a real JACK server (jackd2, dummy backend) that the tests start.

The program under test runs as a subprocess (the CLI or an example) and opens a PortAudio stream
on JACK; tests/jack_harness.py plays known signals into its input ports and records its output
ports. The scaled test model makes the vocals exactly 0.5 x the mix, so a recording shows both
the delay and that separation, not the dry fallback, reached the speakers.

Delay formula checked here (stream-rate samples, input port to output port):

    measured = separator latency + bridge buffers + blocksize

all three printed by the CLI ("+ PortAudio N samples": the block PortAudio's JACK host API holds when
a fixed block size is requested). The device's own latency (the system ports' capture/playback
latency) is outside this path and reported separately, as PortAudio reports it.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import onnx_models
from jack_harness import (
    PERIOD,
    RATE,
    REPO,
    Harness,
    JackServer,
    click_delays,
    click_train,
    find_each,
    finish,
    first_session_without_xruns,
    launch,
    max_jump,
    parse_latency_line,
    reported_xruns,
    sine,
    skip_because_of_xruns,
)

NO_DEVICE = ("realtime-split: error: no input device found; is a sound server running? "
             "list devices with --list-devices")


@pytest.fixture(scope="module")
def mic_session(jack_server, scaled_model, tmp_path_factory):
    """One live CLI session, mic to speakers, recording to a file: clicks, then a sine, then Ctrl-C. Run again
    while xruns are reported (jack_harness.first_session_without_xruns)."""
    return first_session_without_xruns(
        lambda attempt: record_mic_session(jack_server, scaled_model, tmp_path_factory.mktemp(f"live{attempt}")))


def record_mic_session(server: JackServer, model, folder: Path) -> dict:
    recording = folder / "monitor.wav"
    clicks = click_train(RATE, 1.0, every=0.25)
    tone = sine(1.5)
    signal_ = np.concatenate([clicks, tone])
    with Harness(server, record_seconds=20) as harness:
        proc = launch("--input", "mic", "--stem", "vocals", "--model", model, "--output", recording)
        harness.connect_portaudio(process=proc)
        harness.start_recording()
        time.sleep(0.3)
        harness.play(signal_)
        harness.wait_played()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc)
        return {"code": code, "stderr": err, "harness": harness, "clicks": clicks, "tone_start": len(clicks),
                "tone": tone, "recording": recording, "xruns": reported_xruns(err)}


@pytest.mark.slow
@pytest.mark.jack
def test_live_delay_is_separator_latency_plus_buffers_plus_one_block(mic_session):
    """Through PortAudio: its JACK host API holds one block on top of what the CLI reports (with --input jack
    --output jack there is no such block: tests/test_jack_ports.py)."""
    reported = parse_latency_line(mic_session["stderr"])
    assert reported["host"] == PERIOD  # --blocksize defaults to the hop, 256; the status line says PortAudio's part
    expected = reported["separator"] + reported["buffers"] + reported["host"]
    delays = [d for d, _ in click_delays(mic_session["harness"], mic_session["clicks"])]
    print(f"expected {expected} samples, measured {delays}")
    assert len(delays) == 4
    if any(d != expected for d in delays):
        skip_because_of_xruns(mic_session, f"JACK moved clicks (expected {expected}, measured {delays})")
    assert all(d == expected for d in delays), (expected, delays)


@pytest.mark.slow
@pytest.mark.jack
def test_live_speakers_get_the_separated_stem(mic_session):
    gains = [g for _, g in click_delays(mic_session["harness"], mic_session["clicks"])]
    assert np.median(gains) == pytest.approx(0.5, abs=0.02)  # vocals = 0.5 x mix in the scaled model


@pytest.mark.slow
@pytest.mark.jack
def test_live_output_is_continuous(mic_session):
    """A sine in gives a sine out: no gap or click (a missed deadline crossfades to the dry mix)."""
    harness, tone = mic_session["harness"], mic_session["tone"]
    reported = parse_latency_line(mic_session["stderr"])
    delay = reported["separator"] + reported["buffers"] + PERIOD
    start = (harness.play_start + mic_session["tone_start"] + delay + harness.loop_periods * harness.period
             - harness.record_start)
    out = harness.take()[start - PERIOD:start + len(tone) + PERIOD, 0]
    steepest = 2 * np.pi * 440 / RATE * np.abs(tone).max()  # the dry fallback plays it at full level
    jump = max_jump(out)
    if jump >= 1.2 * steepest:
        skip_because_of_xruns(mic_session, f"the sine dropped out (a jump of {jump:.2f})")
    assert jump < 1.2 * steepest
    middle = out[PERIOD + len(tone) // 4:PERIOD + 3 * len(tone) // 4]
    envelope = np.lib.stride_tricks.sliding_window_view(np.abs(middle), 2 * RATE // 440).max(axis=1)
    if envelope.min() <= 0.2:
        skip_because_of_xruns(mic_session, f"the sine fell silent (envelope {envelope.min():.2f})")
    assert envelope.min() > 0.2  # never silent: at least 0.5 x 0.5 minus a little


@pytest.mark.slow
@pytest.mark.jack
def test_ctrl_c_exits_130_with_summary_and_a_finalized_recording(mic_session):
    err = mic_session["stderr"]
    assert mic_session["code"] == 130, err
    assert "Traceback" not in err
    lines = err.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("realtime-split: played "))
    assert "missed deadlines" in lines[summary] and "xruns" in lines[summary] and "inference load p50" in lines[summary]
    assert "realtime-split: interrupted" in lines[summary + 1:], err
    audio, rate = sf.read(mic_session["recording"], dtype="float32")
    assert rate == RATE and audio.shape[1] == 2
    assert len(audio) > 2.5 * RATE  # clicks and sine were all played before Ctrl-C
    # The file holds exactly what the speakers got: every click the speakers played is in the file, same
    # shape. Clicks are compared one by one (median), since an xrun moves or drops a period at the ports only.
    speakers = mic_session["harness"].take()[:, 0]
    correlations, levels = find_each([speakers[at:at + 1024] for at in click_onsets(speakers)], audio[:, 0])
    assert len(correlations) == 4, correlations
    if np.median(correlations) <= 0.99:
        skip_because_of_xruns(mic_session, f"the speakers' clicks differ from the file's ({correlations})")
    assert np.median(correlations) > 0.99, correlations
    assert np.median(levels) == pytest.approx(1.0, abs=0.01)  # the same level, not just the same shape


def click_onsets(recording: np.ndarray, quiet: float = 0.1) -> list[int]:
    """Where each of the four clicks starts in a recording of the mic session: the first four sounds that
    follow ``quiet`` seconds of silence (the fifth is the sine)."""
    loud = np.flatnonzero(np.abs(recording) > 0.01)
    starts = [int(loud[0])] + [int(b) for a, b in zip(loud[:-1], loud[1:]) if b - a > quiet * RATE]
    return starts[:4]


@pytest.mark.slow
@pytest.mark.jack
def test_file_played_live_at_a_rate_the_device_refuses(jack_server, scaled_model, tmp_path):
    """A 48 kHz file on a 44.1 kHz server: the stream opens at 44.1 kHz, the file is resampled, and the
    program stops by itself after the separator's tail."""
    import soxr

    song = tmp_path / "song.wav"
    rng = np.random.default_rng(3)
    content = np.zeros((int(1.5 * 48000), 2), np.float32)
    for start in range(int(0.5 * 48000), len(content) - 480, 12000):  # bursts after half a second of silence
        content[start:start + 480] = rng.uniform(-0.5, 0.5, (480, 1))
    sf.write(song, content, 48000)
    with Harness(jack_server, record_seconds=10) as harness:
        harness.start_recording()
        proc = launch("--input", song, "--output", "speakers", "--stem", "vocals", "--model", scaled_model,
                      "--no-progress")
        harness.connect_portaudio(in_channels=0, process=proc)
        code, _, err = finish(proc)
        recorded = harness.take()[:, 0]
    assert code == 0, err
    assert "44100 Hz" in err
    reference = soxr.resample(content[:, 0], 48000, RATE)
    # Burst by burst (medians), so that one period JACK drops under a stalled machine does not decide.
    bursts = [reference[at - PERIOD // 2:at + PERIOD]
              for at in range(int(0.5 * RATE), len(reference) - 2 * PERIOD, int(0.25 * RATE))]
    correlations, levels = find_each(bursts, recorded)
    assert len(correlations) == 4
    assert np.median(correlations) > 0.95, correlations  # the file's content, resampled, reached the speakers
    assert np.median(levels) == pytest.approx(0.5, abs=0.05)  # as vocals (0.5 x mix), not the dry fallback


@pytest.mark.slow
@pytest.mark.jack
def test_device_vanishing_mid_run_stops_cleanly_and_keeps_the_recording(jack_server, tmp_path):
    # Also a model at 48 kHz, which the 44.1 kHz server refuses: the stream opens at 44.1 kHz and the
    # separator resamples.
    model = onnx_models.make_identity_model(tmp_path / "48k.onnx", onnx_models.test_info(sample_rate=48000))
    recording = tmp_path / "kept.flac"
    with JackServer(rate=RATE, period=PERIOD) as doomed:
        harness = Harness(doomed, record_seconds=5)
        proc = launch("--input", "mic", "--model", model, "--output", recording, **doomed.env)
        harness.connect_portaudio(process=proc)
        harness.play(sine(3.0))
        time.sleep(1.0)
        harness.close()
    code, _, err = finish(proc)
    assert code == 2, err
    assert "realtime-split: error: the audio device stopped after" in err and str(recording) in err
    assert "Traceback" not in err and "Fatal" not in err
    assert "at 44100 Hz" in err
    audio, rate = sf.read(recording)
    assert rate == RATE and len(audio) > 0.5 * RATE


@pytest.mark.slow
@pytest.mark.jack
def test_list_devices_shows_the_jack_device_as_default(jack_server):
    code, out, err = finish(launch("--list-devices"))
    assert code == 0, err
    assert "><   0 system, JACK Audio Connection Kit (2 in, 2 out, 44100 Hz)" in out


@pytest.mark.slow
@pytest.mark.jack
def test_a_device_name_that_matches_nothing_lists_the_candidates(jack_server, scaled_model):
    code, _, err = finish(launch("--input", "mic", "--input-device", "usb headset", "--model", scaled_model))
    assert code == 2
    assert err.strip() == ("realtime-split: error: --input-device 'usb headset' matches no input device; "
                           "input devices: 0 system (JACK Audio Connection Kit, 2 in, 2 out)")


@pytest.mark.slow  # the command in a subprocess for a whole run: 2-4 s each (CONTRIBUTING: the fast tier)
def test_no_sound_server_is_a_one_line_error(scaled_model):
    quiet = {"JACK_DEFAULT_SERVER": "realtime-split-no-such-server", "JACK_NO_START_SERVER": "1"}
    code, out, err = finish(launch("--list-devices", **quiet))
    if code == 0:
        pytest.skip(f"this machine has sound devices outside JACK, so 'no device' cannot happen:\n{out}")
    code, _, err = finish(launch("--input", "mic", "--model", scaled_model, **quiet))
    assert code == 2
    assert err.strip() == NO_DEVICE


@pytest.mark.slow
@pytest.mark.jack
def test_karaoke_example_mutes_the_vocals_in_its_own_callback(jack_server, scaled_model):
    clicks = click_train(RATE, 1.0, every=0.25)
    with Harness(jack_server, record_seconds=10) as harness:
        proc = launch("--model", scaled_model, "--seconds", "2.5", script=str(REPO / "examples" / "karaoke_monitor.py"))
        harness.connect_portaudio(process=proc)
        harness.start_recording()
        time.sleep(0.3)
        harness.play(clicks)
        harness.wait_played()
        code, out, err = finish(proc)
    assert code == 0, err
    separator, buffers = (int(v) for v in re.search(r"separator (\d+) \+ buffers (\d+)", out).groups())
    found = click_delays(harness, clicks)
    assert all(abs(d - (separator + buffers + PERIOD)) <= PERIOD for d, _ in found), found
    # drums + bass + other = 0.25 + 0.125 + 0.125 of the mix: the vocals (0.5) are gone.
    assert np.median([g for _, g in found]) == pytest.approx(0.5, abs=0.02)

