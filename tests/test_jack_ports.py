"""Stems on JACK ports (``--input jack --output jack``), through a real JACK server (jackd2, dummy backend).

The CLI runs as a subprocess with its own JACK client; tests/jack_harness.py plays noise bursts into its
input ports and records all ten of its output ports (four stem pairs and the dry pair) in the same
process callback, so every delay is exact to the sample. With the scaled test model every stem is a
known fraction of the mix (vocals 0.5, drums 0.25, bass and other 0.125), so each port's level shows
which stem it carries.

What is checked, at 44.1 and 48 kHz with periods of 128 and 256 frames: the delay between the ports
equals the latency the program reports (separator + buffers), to the sample, for every burst on every
port; each stem's ports carry that stem; the dry ports carry the input as late as the stems; ``--connect``
connects; the ports' latency ranges are the reported delay on top of what reaches them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import onnx_models
from jack_harness import (
    Harness,
    JackServer,
    click_train,
    dies_with_parent,
    first_session_without_xruns,
    jackd_path,
    parse_latency_line,
    reported_xruns,
    skip_because_of_xruns,
)

pytestmark = [pytest.mark.slow, pytest.mark.jack]

REPO = Path(__file__).resolve().parents[1]
# (server rate, period, whether the model runs at 48 kHz unresampled: metadata native_rates, as the fast model)
CASES = [(44100, 256, False), (44100, 128, False), (48000, 256, False), (48000, 128, False), (48000, 256, True)]
PAIRS = ("vocals", "drums", "bass", "other", "dry")
LEVELS = (0.5, 0.25, 0.125, 0.125, 1.0)  # the scaled model's stems, then the dry input
CLIENT = "realtime-split"


def launch(*args, env: dict | None = None) -> subprocess.Popen:
    paths = [str(REPO), os.environ.get("PYTHONPATH")]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.Popen([sys.executable, "-m", "realtime_split", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment, cwd=REPO,
                            preexec_fn=dies_with_parent())


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the program did not stop:\n{err}")
    return proc.returncode, err


def requires_jack() -> None:
    if jackd_path() is None:
        pytest.skip("jackd not found: JACK port tests need a real JACK server (apt-get install jackd2)")
    pytest.importorskip("jack", reason="JACK-Client plays and records the test signals (pip install JACK-Client)")


def listed(client, pattern: str) -> list[str]:
    """The names of the ports matching ``pattern`` (names only: ports that vanish meanwhile cannot fail it)."""
    import jack

    from realtime_split.live.jack_client import port_names

    return port_names(jack, client, pattern)


def ports(harness: Harness, proc: subprocess.Popen, names) -> list[str]:
    found = []
    for name in names:
        found += harness.wait_for_ports(f"{CLIENT}:{name}_", 2, process=proc)
    return found


@pytest.fixture(scope="module", params=CASES, ids=[f"{r}Hz-{p}" + ("-native" if n else "") for r, p, n in CASES])
def session(request, scaled_model, scaled_native48_model):
    """One ``--input jack --output jack --stem all`` session on a server at one rate and period: bursts in,
    all ten output ports recorded; run again while the JACK server reports xruns
    (jack_harness.first_session_without_xruns)."""
    requires_jack()
    rate, period, native = request.param
    model = scaled_native48_model if native else scaled_model
    found = first_session_without_xruns(lambda attempt: record_session(rate, period, model))
    return {**found, "native": native}


def record_session(rate: int, period: int, model) -> dict:
    clicks = click_train(rate, 1.5, every=0.25)
    with JackServer(rate=rate, period=period) as server, Harness(server, record_channels=10,
                                                                 record_seconds=12) as harness:
        proc = launch("--input", "jack", "--output", "jack", "--stem", "all", "--model", model, "--no-progress")
        inputs = harness.wait_for_ports(f"{CLIENT}:in_", 2, process=proc)
        outputs = ports(harness, proc, PAIRS)
        harness.connect(inputs, outputs)
        harness.start_recording()
        time.sleep(0.3)
        harness.play(clicks)
        harness.wait_played()
        time.sleep(0.2)
        code, err = stop(proc)
        starts = np.flatnonzero(np.diff((clicks != 0).astype(np.int8)) == 1) + 1
        recording = harness.take()
        burst = int(0.005 * rate)
        found = {}  # port -> [(delay, level)] per burst
        for channel, port in enumerate(outputs):
            found[port] = []
            for s in starts:
                d, _ = harness.delay(clicks[s:s + burst], offset_in_signal=s, channel=channel)
                at = harness.play_start + s + d + harness.loop_periods * harness.period - harness.record_start
                level = np.std(recording[at:at + burst, channel]) / np.std(clicks[s:s + burst])
                found[port].append((d, float(level)))
    return {"rate": rate, "period": period, "code": code, "stderr": err, "outputs": outputs, "found": found,
            "xruns": reported_xruns(err)}


def test_the_delay_between_the_ports_is_the_reported_latency_to_the_sample(session):
    reported = parse_latency_line(session["stderr"])
    expected = reported["separator"] + reported["buffers"]
    assert session["code"] == 130, session["stderr"]
    assert "input port to output port" in session["stderr"] and f"at {session['rate']} Hz" in session["stderr"]
    delays = {port: [d for d, _ in bursts] for port, bursts in session["found"].items()}
    print(f"{session['rate']} Hz, period {session['period']}: reported {expected} samples, measured {delays}")
    assert all(len(d) == 6 for d in delays.values())
    exact = all(d == expected for per_port in delays.values() for d in per_port)
    if not exact:
        measured = sorted({int(d) for per_port in delays.values() for d in per_port})
        skip_because_of_xruns(session, f"JACK itself moved bursts at {session['rate']} Hz / {session['period']} "
                                       f"frames (reported {expected}, measured {measured})")
    assert exact, (expected, delays)


def test_the_delay_meets_the_budget_of_the_models_latency_one_period_and_one_millisecond(session):
    """At 44.1 kHz (the model's rate) with a period of 256 frames the worker's 8 ms budget is two periods: the
    delay is the model's latency, one period and the 1 ms fade. With 128 frames the budget is three periods,
    one more. At a native rate the same holds in that rate's samples: no resampler, and a hop of whole
    periods."""
    reported = parse_latency_line(session["stderr"])
    rate, period = session["rate"], session["period"]
    if session["native"]:
        assert reported["separator"] == onnx_models.TEST_PRESETS["balanced"].latency
    if rate == 44100 or session["native"]:
        extra_periods = 1 if period == 256 else 2
        assert reported["buffers"] == extra_periods * period + int(0.001 * rate)


def test_each_stem_port_carries_that_stem_and_the_dry_ports_the_input(session):
    """At 44.1 kHz every port's level is its stem's share of the input exactly. At 48 kHz the stems pass the
    resampler, whose band ends at 19 kHz, so white bursts lose a little of their level on every stem alike
    (the dry ports are not resampled): the stems' levels against each other are exact, against the dry ports
    a little lower."""
    level = {(pair, side): np.median([g for _, g in session["found"][f"{CLIENT}:{pair}_{side}"]])
             for pair in PAIRS for side in "LR"}
    for side in "LR":
        assert level["dry", side] == pytest.approx(1.0, abs=0.01)
        band = 1.0 if session["rate"] == 44100 else level["vocals", side] / LEVELS[0]
        assert 0.85 < band <= 1.0 + 1e-3
        for pair, share in zip(PAIRS[:4], LEVELS[:4]):
            assert level[pair, side] == pytest.approx(share * band, rel=0.02), (pair, side, level)


def test_connect_wires_other_clients_ports_and_the_latency_ranges_add_the_delay(scaled_model):
    """``--connect system:capture`` feeds the inputs from the dummy driver's capture ports and
    ``--connect vocals=system:playback`` sends the vocals to its playback ports; each port's latency range
    is then what reaches it plus the reported delay, as JACK's latency API reports it to any client."""
    requires_jack()
    import jack

    from realtime_split.live.jack_client import CAPTURE, PLAYBACK, latency_range

    with JackServer(rate=44100, period=256) as server:
        proc = launch("--input", "jack", "--output", "jack", "--stem", "vocals,drums", "--model", scaled_model,
                      "--connect", "system:capture", "--connect", "vocals=system:playback", "--no-progress")
        probe = server.client()
        try:
            deadline = time.monotonic() + 60
            while not listed(probe, f"{CLIENT}:vocals_R") or not probe.get_all_connections(f"{CLIENT}:vocals_R"):
                assert proc.poll() is None, stop(proc)
                assert time.monotonic() < deadline, "no connection after 60 s"
                time.sleep(0.05)
            time.sleep(0.3)  # the latency callbacks after the last connection

            def connected(name: str) -> list[str]:
                return [p.name for p in probe.get_all_connections(name)]

            def latency(name: str, mode: int) -> tuple[int, int]:
                return latency_range(int(jack._ffi.cast("uintptr_t", probe.get_port_by_name(name)._ptr)), mode)

            assert connected(f"{CLIENT}:in_L") == ["system:capture_1"]
            assert connected(f"{CLIENT}:in_R") == ["system:capture_2"]
            assert connected(f"{CLIENT}:vocals_L") == ["system:playback_1"]
            assert connected(f"{CLIENT}:vocals_R") == ["system:playback_2"]
            assert connected(f"{CLIENT}:drums_L") == [] and connected(f"{CLIENT}:dry_L") == []
            ranges = {name: (latency(f"{CLIENT}:{name}", CAPTURE), latency(f"{CLIENT}:{name}", PLAYBACK))
                      for name in ("in_L", "vocals_L", "drums_R", "dry_L")}
            captured = latency("system:capture_1", CAPTURE)
            played = latency("system:playback_1", PLAYBACK)
        finally:
            probe.close()
            code, err = stop(proc)
    assert code == 130, err
    assert "realtime-split: connected system:capture_1 -> realtime-split:in_L" in err
    reported = parse_latency_line(err)
    delay = reported["separator"] + reported["buffers"]
    assert captured[1] > 0 and played[1] > 0  # the dummy driver's own latency, so the sums below mean something
    for name in ("vocals_L", "drums_R", "dry_L"):  # every output: the capture latency that reaches it + the delay
        assert ranges[name][0] == (captured[0] + delay, captured[1] + delay), (name, ranges)
    assert ranges["in_L"][1] == (played[0] + delay, played[1] + delay), ranges  # the playback latency it feeds


def test_a_connect_pattern_that_matches_nothing_names_the_ports_there_are(scaled_model):
    requires_jack()
    with JackServer(rate=44100, period=256):
        proc = launch("--input", "jack", "--output", "jack", "--model", scaled_model, "--connect", "no-such-player")
        _, err = proc.communicate(timeout=60)
        code = proc.returncode
    assert code == 2
    assert err.strip() == ("realtime-split: error: --connect no-such-player matches no output port of another JACK "
                           "client; output ports: system:capture_1, system:capture_2")


def test_jack_input_alone_plays_the_stems_mix_on_one_pair(scaled_model):
    """``--input jack`` without ``--output jack``: the selected stems' mix on ``out_L``/``out_R``, as late as
    reported."""
    requires_jack()
    clicks = click_train(44100, 1.0, every=0.25)
    with JackServer(rate=44100, period=256) as server, Harness(server, record_seconds=8) as harness:
        proc = launch("--input", "jack", "--stem", "vocals", "--model", scaled_model, "--no-progress")
        harness.connect(harness.wait_for_ports(f"{CLIENT}:in_", 2, process=proc),
                        harness.wait_for_ports(f"{CLIENT}:out_", 2, process=proc))
        assert not listed(harness.client, f"{CLIENT}:dry_")  # no dry pair without stem ports
        harness.start_recording()
        time.sleep(0.3)
        harness.play(clicks)
        harness.wait_played()
        code, err = stop(proc)
        starts = np.flatnonzero(np.diff((clicks != 0).astype(np.int8)) == 1) + 1
        found = [harness.delay(clicks[s:s + 220], offset_in_signal=s) for s in starts]
        recording = harness.take()[:, 0]
        levels = []
        for (d, _), s in zip(found, starts):
            at = harness.play_start + s + d + harness.period - harness.record_start
            levels.append(np.std(recording[at:at + 220]) / np.std(clicks[s:s + 220]))
    assert code == 130, err
    reported = parse_latency_line(err)
    assert [d for d, _ in found] == [reported["separator"] + reported["buffers"]] * len(starts)
    assert np.median(levels) == pytest.approx(0.5, abs=0.01)  # the vocals


def test_a_file_played_to_stem_ports_ends_by_itself(scaled_model, tmp_path):
    """``--input FILE --output jack``: the file's stems on their ports (the dry pair is the file itself), and the
    program stops once the file and the separator's tail have played."""
    requires_jack()
    import soundfile as sf

    rate = 44100
    content = np.zeros((int(1.2 * rate), 2), np.float32)
    rng = np.random.default_rng(5)
    for start in range(int(0.3 * rate), len(content) - 441, rate // 4):
        content[start:start + 441] = rng.uniform(-0.5, 0.5, (441, 1))
    sf.write(tmp_path / "song.wav", content, rate, subtype="FLOAT")
    with JackServer(rate=rate, period=256) as server, Harness(server, record_channels=10,
                                                             record_seconds=8) as harness:
        harness.start_recording()
        # The program wires its pairs to the harness itself as it starts (--connect): a file plays from the start,
        # so a harness that waited for the ports to appear and then connected them could find the file over.
        wiring = [f"--connect={pair}=rs-harness:in_({2 * i + 1}|{2 * i + 2})$" for i, pair in enumerate(PAIRS)]
        proc = launch("--input", tmp_path / "song.wav", "--output", "jack", "--model", scaled_model, "--no-progress",
                      *wiring)
        _, err = proc.communicate(timeout=60)
        recording = harness.take()
    assert proc.returncode == 0, err
    assert "from " + str(tmp_path / "song.wav") in err
    dry = recording[:, 8]
    assert np.abs(dry).max() == pytest.approx(0.5, abs=0.02)
    for pair, level in zip(PAIRS[:4], LEVELS[:4]):  # every stem port: its share of the file, in step with dry
        np.testing.assert_allclose(recording[:, 2 * PAIRS.index(pair)], level * dry, atol=1e-6)


def test_a_jack_server_that_goes_away_is_one_line_after_the_summary(scaled_model):
    requires_jack()

    server = JackServer(rate=44100, period=256).start()
    try:
        proc = launch("--input", "jack", "--output", "jack", "--model", scaled_model, "--no-progress")
        probe = server.client()
        deadline = time.monotonic() + 60
        while not listed(probe, f"{CLIENT}:dry_R"):
            assert proc.poll() is None and time.monotonic() < deadline, stop(proc)
            time.sleep(0.05)
        probe.close()
        time.sleep(1.0)
    finally:
        server.stop()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("realtime-split: error: the JACK server stopped after "), err
    assert lines[-2].startswith("realtime-split: played "), err
    assert all(line.startswith("realtime-split: ") for line in lines), err  # nothing from libjack itself
