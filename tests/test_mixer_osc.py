"""OSC changes a live run's mix: the CLI with ``--osc`` on a real JACK server, messages over real UDP on 127.0.0.1
(python-osc's client), the ``/mix`` query's reply read from a socket, garbage datagrams counted and ignored."""

from __future__ import annotations

import math
import signal
import socket
import time

import pytest

from jack_harness import finish, launch

pytestmark = [pytest.mark.slow, pytest.mark.jack]


def started_on(proc) -> int:
    """The port the run's OSC line names (``--osc 127.0.0.1:0`` takes any free one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if "OSC on 127.0.0.1:" in line:
            return int(line.split("OSC on 127.0.0.1:")[1].split(":")[0])
    proc.kill()
    pytest.fail(f"no OSC line: {proc.communicate()}")


def query(sock: socket.socket, port: int) -> dict[str, float]:
    """``/mix``'s reply: every stem's gain, mute and solo as ``{"/stem/vocals/gain": -6.0, ...}``."""
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    sock.sendto(OscMessageBuilder("/mix").build().dgram, ("127.0.0.1", port))
    found = {}
    while len(found) < 12:
        message = OscMessage(sock.recv(1024))
        found[message.address] = message.params[0]
    return found


def test_osc_changes_gain_mute_and_solo_and_ignores_garbage(jack_server, scaled_model):
    pytest.importorskip("pythonosc", reason="OSC control needs python-osc (the control extra)")
    from pythonosc.osc_message_builder import OscMessageBuilder

    proc = launch("--input", "jack", "--output", "jack", "--stem", "vocals", "--model", scaled_model,
                  "--osc", "127.0.0.1:0", "--no-progress", "--jack-name", "rs-osc")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        port = started_on(proc)
        before = query(sock, port)
        def send(address: str, value) -> None:  # from the socket the replies come back to
            message = OscMessageBuilder(address)
            message.add_arg(value)
            sock.sendto(message.build().dgram, ("127.0.0.1", port))

        send("/stem/vocals/gain", -6.0)
        send("/stem/drums/mute", 0)
        send("/stem/bass/solo", 1)
        sock.sendto(b"\x00\xffnot osc at all", ("127.0.0.1", port))  # not OSC: ignored, counted
        send("/stem/kazoo/gain", 0.0)  # no such stem
        send("/stem/vocals/gain", "loud")  # no number
        send("/stem/vocals/mute", 7)  # neither 0 nor 1
        after = query(sock, port)
        assert proc.poll() is None  # garbage never stops the session
    finally:
        sock.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc)
    assert before["/stem/vocals/gain"] == 0.0 and before["/stem/drums/mute"] == 1  # --stem vocals: others muted
    assert after["/stem/vocals/gain"] == -6.0 and after["/stem/vocals/mute"] == 0
    assert after["/stem/drums/mute"] == 0 and after["/stem/bass/solo"] == 1 and after["/stem/other/mute"] == 1
    assert not math.isnan(after["/stem/bass/gain"])
    assert code == 130, err
    assert "OSC: 5 messages handled, 4 malformed ignored" in err  # 2 queries and 3 changes; 4 bad ones


def test_osc_beyond_loopback_warns_and_a_bad_port_is_one_line(jack_server, scaled_model):
    pytest.importorskip("pythonosc", reason="OSC control needs python-osc (the control extra)")
    code, _, err = finish(launch("--input", "jack", "--model", scaled_model, "--osc", "99999"))
    assert code == 2 and err.strip() == ("realtime-split: error: --osc 99999: give a UDP port (1-65535), or "
                                         "HOST:PORT to listen beyond this machine, e.g. --osc 9000"), err
    code, _, err = finish(launch("--input", "jack", "--model", scaled_model, "--osc", "0.0.0.0:0", "--duration",
                                 "0.3", "--no-progress", "--jack-name", "rs-osc"))
    assert code == 0, err
    assert "warning: OSC listens on 0.0.0.0, beyond this machine, without authentication" in err
