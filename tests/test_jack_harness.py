"""The JACK test harness and the live session's port lookups hold up where a crashing test run showed they did not.

A full ``pytest`` run died with a segmentation fault while the harness polled for a program's ports and left
its jackd and the program running. What is checked here, each with real jackd servers and processes:
listing ports while another client registers and drops its own never fails (for the harness and for
``--connect``); a harness left open on a server that stops does not break the next server's clients;
a test process that is killed takes its jackd and the programs it launched with it; and JACK's
registry slots that killed servers leave do not keep the next server from starting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jack_harness import Harness, JackServer, dies_with_parent, jackd_path

pytestmark = [pytest.mark.slow, pytest.mark.jack]

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# A JACK client that keeps two output ports and registers and drops four more, as fast as it can.
CHURN = """
import sys, jack
client = jack.Client("churner", no_start_server=True, servername=sys.argv[1])
keep = [client.outports.register(f"keep_{c}") for c in (1, 2)]
client.activate()
print("ready", flush=True)
while True:
    ports = [client.outports.register(f"out_{k}") for k in range(4)]
    for port in ports:
        port.unregister()
"""


@pytest.fixture(autouse=True)
def _requires_jack():
    if jackd_path() is None:
        pytest.skip("jackd not found: these tests need a real JACK server (apt-get install jackd2)")
    pytest.importorskip("jack", reason="JACK-Client opens the harness's client (pip install JACK-Client)")


def python(script: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), str(REPO),
                                                                      os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env, cwd=REPO, text=True,
                            preexec_fn=dies_with_parent(), **popen)


@pytest.fixture
def churning_server():
    """A server with a client whose ports come and go all the time (and two that stay: ``churner:keep_*``)."""
    with JackServer() as server:
        churner = python(CHURN, server.name, stdout=subprocess.PIPE)
        try:
            assert churner.stdout.readline().strip() == "ready"
            yield server
        finally:
            churner.kill()
            churner.wait()


def test_the_harness_finds_ports_while_another_client_registers_and_drops_its_own(churning_server):
    with Harness(churning_server) as harness:
        deadline = time.monotonic() + 3.0
        polls = 0
        while time.monotonic() < deadline:
            names = harness.wait_for_ports("churner:", 2, timeout=5)
            assert len(names) == 2 and all(name.startswith("churner:") for name in names)
            polls += 1
    assert polls > 100


def test_connect_finds_a_players_ports_while_another_client_registers_and_drops_its_own(churning_server):
    """``--connect churner`` lists the player's output ports while other ports of it come and go: the ports
    that stay are always found (a lookup of a vanished port made the whole listing fail: "matches no port")."""
    from realtime_split.live.jack_client import JackClient

    client = JackClient("rs-connect-test")
    try:
        deadline = time.monotonic() + 3.0
        listings = 0
        while time.monotonic() < deadline:
            found = client._others("churner:", is_output=True)
            assert {"churner:keep_1", "churner:keep_2"} <= set(found), found
            listings += 1
    finally:
        client.close()
    assert listings > 100


def test_a_harness_left_open_on_a_stopped_server_does_not_break_the_next_servers_clients():
    """A test that fails between opening a harness and closing it leaves the client open when its server stops.
    libjack then frees that client when the next one opens, and collecting the stale one tore down the state
    of the live clients: the next port listing crashed the process (run in a child here)."""
    script = """
        import gc
        from jack_harness import Harness, JackServer
        first = JackServer().start()
        left_open = Harness(first)
        first.stop()
        with JackServer() as second, Harness(second) as harness:
            del left_open
            gc.collect()
            for _ in range(20):
                assert len(harness.wait_for_ports("system:", 4, timeout=5)) == 4
        print("ok")
    """
    done = python(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0 and out.strip() == "ok", err[-2000:]


def test_a_killed_test_process_takes_its_jack_server_and_its_programs_with_it():
    """SIGKILL (or a segmentation fault) runs no cleanup code: the kernel stops what the process started."""
    script = """
        import signal, subprocess, sys, time
        from jack_harness import JackServer, dies_with_parent
        server = JackServer().start()
        program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                   preexec_fn=dies_with_parent())
        print(server.process.pid, program.pid, server.name, flush=True)
        time.sleep(600)
    """
    parent = python(script, stdout=subprocess.PIPE)
    try:
        server_pid, program_pid, name = parent.stdout.readline().split()
        assert alive(int(server_pid)) and alive(int(program_pid))
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    while (alive(int(server_pid)) or alive(int(program_pid))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(int(program_pid)), "the program outlived the test process"
    assert not alive(int(server_pid)), "jackd outlived the test process"
    from jack_harness import stale_server_names

    assert name not in stale_server_names()  # jackd stopped cleanly (SIGTERM): it left no registry slot taken


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_registry_slots_of_killed_servers_do_not_keep_the_next_server_from_starting():
    """jackd refuses to start ("too many servers already active") once JACK's registry, eight slots per machine,
    is full of servers that were killed. Run in private /dev/shm and IPC namespaces, so the full registry
    does not stop other servers on this machine."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--mount", "--ipc", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare with mount and IPC namespaces (root) to fill a private JACK registry")
    script = """
        import os, signal, subprocess, time
        from jack_harness import JackServer
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev/shm"], check=True)
        for k in range(8):
            server = JackServer(name=f"rs-test-killed-{k}").start()
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            server.stop()
        refused = subprocess.run(["jackd", "-n", "rs-other", "-d", "dummy"], capture_output=True, text=True,
                                 timeout=30)
        assert "too many servers" in refused.stderr.lower(), refused.stderr
        with JackServer() as server:
            print("started", server.name)
    """
    done = subprocess.run([unshare, "--mount", "--ipc", "--propagation", "private", sys.executable, "-c",
                           textwrap.dedent(script)], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])})
    assert done.returncode == 0 and done.stdout.startswith("started rs-test-"), done.stderr[-2000:]
