"""The command line's keys change the mix while it plays: the CLI on a pseudo-terminal (``pty``), playing a file to
JACK stem ports that tests/jack_harness.py records, through a real JACK server.

The file is a constant 0.5 and the scaled test model makes the vocals 0.25 and the drums 0.125 on their ports, so
the recording shows every change the keys make.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from jack_harness import RATE, REPO, Harness, dies_with_parent, program_env

pytestmark = [pytest.mark.slow, pytest.mark.jack]

LEVEL = 0.5
CLIENT = "rs-keys"
DOWN = "\x1b[B"


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "dc.wav"
    sf.write(path, np.full((int(3.0 * RATE), 2), LEVEL, np.float32), RATE, subtype="FLOAT")
    return path


def command(song, model) -> list[str]:
    return [sys.executable, "-m", "realtime_split", "--input", str(song), "--output", "jack", "--model", str(model),
            "--jack-name", CLIENT]


def wait_for_sound(harness: Harness, seconds: float = 0.3, timeout: float = 60.0) -> None:
    """Until the recorded vocals port has played ``seconds`` of sound."""
    deadline = time.monotonic() + timeout
    while np.count_nonzero(harness.recording[:harness.recorded, 0]) < seconds * RATE:
        assert time.monotonic() < deadline, "no sound on the vocals port"
        time.sleep(0.02)


def test_keys_on_a_terminal_mute_a_stem_and_move_a_gain(jack_server, scaled_model, song):
    master, slave = pty.openpty()
    shown = bytearray()

    def drain() -> None:  # what the program writes to its terminal (the status line), so it never blocks
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            shown.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with Harness(jack_server, record_channels=2, record_seconds=10) as harness:
        harness.start_recording()
        proc = subprocess.Popen(command(song, scaled_model), stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
                                env=program_env(COLUMNS="200"), preexec_fn=dies_with_parent())
        try:
            harness.connect(None, harness.wait_for_ports(f"{CLIENT}:vocals_L", 1, process=proc)
                            + harness.wait_for_ports(f"{CLIENT}:drums_L", 1, process=proc))
            wait_for_sound(harness)
            os.write(master, b"2m")  # the drums, muted
            os.write(master, ("1" + DOWN * 6).encode())  # the vocals, 6 dB down
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(slave)
        recording = harness.take()
    reader.join(timeout=5)
    os.close(master)
    text = shown.decode(errors="replace")
    assert code == 0, text
    vocals, drums = recording[:, 0], recording[:, 1]
    sounding = np.flatnonzero(vocals)
    first, last = sounding[0], sounding[-1]
    # Medians: on a loaded machine a block may miss its deadline and play dry, at another level.
    assert np.median(vocals[first + 100:first + 2000]) == pytest.approx(0.5 * LEVEL, rel=1e-5)  # before the keys
    connected = np.flatnonzero(drums)[0]  # the harness connected this port a moment after the vocals
    assert np.median(drums[connected + 100:connected + 2000]) == pytest.approx(0.25 * LEVEL, rel=1e-5)
    end = slice(last - RATE // 4, last - 100)  # after them, to the end of the file
    assert np.median(vocals[end]) == pytest.approx(0.5 * LEVEL * 10 ** (-6 / 20), rel=1e-5)
    assert np.count_nonzero(drums[end]) < 0.05 * (RATE // 4)
    lines = text.split("\r")
    assert any(">vocals" in line and "-6dB" in line and "drums" in line and " M" in line for line in lines), text


def test_without_a_terminal_nothing_reads_standard_input(jack_server, scaled_model, song):
    """Keys piped in stay in the pipe, unread, and the mix stays as it started."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"2m")
    with Harness(jack_server, record_channels=2, record_seconds=10) as harness:
        harness.start_recording()
        proc = subprocess.Popen([*command(song, scaled_model), "--duration", "1"], stdin=read_end,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                env=program_env(), preexec_fn=dies_with_parent())
        harness.connect(None, harness.wait_for_ports(f"{CLIENT}:vocals_L", 1, process=proc)
                        + harness.wait_for_ports(f"{CLIENT}:drums_L", 1, process=proc))
        _, err = proc.communicate(timeout=60)
        recording = harness.take()
    os.close(write_end)
    try:
        os.set_blocking(read_end, False)
        left = os.read(read_end, 16)
    finally:
        os.close(read_end)
    assert proc.returncode == 0, err
    assert left == b"2m"
    vocals, drums = recording[:, 0], recording[:, 1]
    sounding = np.flatnonzero(drums)
    assert len(sounding) > RATE // 2
    # The drums play to the end, with the vocals (a block that missed its deadline may play dry at another level,
    # which a loaded machine decides, so the level is the median's).
    assert abs(int(sounding[-1]) - int(np.flatnonzero(vocals)[-1])) < 2 * 256
    assert np.median(drums[sounding[0]:sounding[-1]]) == pytest.approx(0.25 * LEVEL, rel=1e-5)
