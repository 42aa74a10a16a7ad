"""A real JACK server (jackd2, dummy backend) and a JACK client that plays into and records from a program.

Tests and benchmarks/bench_live.py use it to run live audio end to end without a sound card:
``JackServer`` starts ``jackd -d dummy`` under a private server name (exported as
JACK_DEFAULT_SERVER so every subprocess, PortAudio included, talks to it) and stops it by PID,
also when the test process dies (``dies_with_parent``, which the tests' program launchers use too).
``Harness`` is one JACK client whose output ports feed the program's input ports and whose
input ports record the program's output ports, so played and recorded frames share one
timeline and the measured delay is exact to the sample.
"""

from __future__ import annotations

import atexit
import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RATE = 44100  # the live tests' server (``jack_server`` in conftest.py)
PERIOD = 256
PORTAUDIO_IN = r"PortAudio.*:in_"
PORTAUDIO_OUT = r"PortAudio.*:out_"


def jackd_path() -> str | None:
    return shutil.which("jackd")


@functools.cache
def _prctl():
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


def dies_with_parent(death_signal: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the kernel sends the child ``death_signal`` when the process
    (the thread) that started it dies, even by SIGKILL or a segmentation fault, when no cleanup code runs.
    So a test session that crashes leaves no server or program running. Linux only; elsewhere a no-op."""
    if not os.path.exists("/proc/self"):
        return lambda: None
    prctl, parent = _prctl(), os.getpid()  # looked up before the fork: the child only calls

    def bind() -> None:
        prctl(1, death_signal)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call above
            os.kill(os.getpid(), death_signal)

    return bind


_SHM_REGISTRY = "/dev/shm/jack-shm-registry"


def stale_server_names(prefix: str = "rs-test-") -> list[str]:
    """Names starting with ``prefix`` that JACK's shared-memory registry still holds for a server that died
    without unregistering (killed by SIGKILL). The registry has eight slots for the whole machine and JACK
    reclaims a dead server's slot only for a server of the same name, so dead uniquely named servers pile
    up until jackd says "too many servers already active". Read-only; the layout is jackd2's ``shm.h``
    (magic, ..., then eight ``{pid_t pid; char name[257]}``, ``jack-<uid>:<server name>:``)."""
    try:
        with open(_SHM_REGISTRY, "rb") as f:
            head = f.read(4096)
    except OSError:
        return []
    if head[:4] != b"KCAJ" or len(head) < 24:  # JACK's magic number, "JACK" as a little-endian uint32
        return []
    found = []
    for slot in range(8):
        at = 24 + slot * 264
        pid = int.from_bytes(head[at:at + 4], "little", signed=True)
        name = head[at + 4:at + 4 + 257].split(b"\0", 1)[0].decode(errors="replace")
        server = name.split(":", 1)[1].rstrip(":") if ":" in name else ""
        if pid > 0 and server.startswith(prefix) and not _alive(pid):
            found.append(server)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JackServer:
    """``jackd -d dummy`` under a private name; a context manager that restores the environment.

    What a test session starts, it stops, however the session ends: ``stop()`` first closes the harness
    clients still open on the server (libjack keeps one global state per process, and a client left open on
    a server that stopped corrupts it for the next server's clients: see ``close_clients``), an ``atexit``
    hook stops servers a failing test left running, and the kernel stops jackd if this process dies
    (``dies_with_parent``, SIGTERM so jackd unregisters itself). Slots that dead servers left in JACK's
    registry are reclaimed when jackd finds no free slot (``stale_server_names``)."""

    running: ClassVar[set[JackServer]] = set()  # started and not stopped: the atexit hook stops them

    def __init__(self, rate: int = 44100, period: int = 256, name: str | None = None):
        self.rate, self.period = rate, period
        self.name = name or f"rs-test-{uuid.uuid4().hex[:8]}"
        self.process: subprocess.Popen | None = None
        self.clients: weakref.WeakSet = weakref.WeakSet()  # Harnesses and client() clients on this server
        self._saved_env: dict[str, str | None] = {}

    @property
    def env(self) -> dict[str, str]:
        """Variables that point a process at this server and keep JACK from starting or reserving others."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_NO_START_SERVER": "1"}

    def start(self, timeout: float = 10.0) -> JackServer:
        import jack

        path = jackd_path()
        if path is None:
            raise RuntimeError("jackd not found; install jackd2")
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        JackServer.running.add(self)
        jack.set_error_function(lambda message: None)  # "cannot connect" while the server starts up
        try:
            for attempt in range(2):
                self.process = subprocess.Popen(
                    # -t: a client may take 2 s (not jackd2's 500 ms) to answer the server's requests (connect,
                    # graph changes), so a loaded two-core machine does not turn a connection into an error
                    [path, "-n", self.name, "-t", "2000", "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
                    preexec_fn=dies_with_parent(signal.SIGTERM),
                )
                if self._wait_ready(jack, timeout, reclaim=attempt == 0):
                    break
        finally:
            jack.set_error_function()
        return self

    def _wait_ready(self, jack, timeout: float, reclaim: bool) -> bool:
        """Whether the server answers; False once it gave up on a full registry that ``reclaim`` freed."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                self.process.stderr.close()
                if reclaim and "too many servers" in err.lower() and _reclaim(stale_server_names()):
                    return False
                self.stop()
                raise RuntimeError(f"jackd exited with {self.process.returncode}: {err.strip()[-500:]}")
            try:
                client = jack.Client("rs-probe", no_start_server=True, servername=self.name)
            except jack.JackOpenError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("jackd did not become ready") from None
                time.sleep(0.05)
                continue
            client.close()
            return True

    def client(self, name: str = "rs-probe"):
        """A ``jack.Client`` on this server that ``stop()`` closes if the test does not (see ``close_clients``)."""
        import jack

        client = jack.Client(name, no_start_server=True, servername=self.name)
        self.clients.add(client)
        return client

    def close_clients(self) -> None:
        """Close this process's clients of the server while it still runs. libjack (jackd2) keeps one state per
        process: once a client's server stops, the next client opened anywhere makes libjack free the stale
        client under its wrapper, and closing that wrapper later (or collecting it) tears down the state the
        live clients use, so their next call (``jack_get_ports`` in a polling loop) crashes."""
        for client in list(self.clients):
            client.close()
        self.clients.clear()

    def stop(self) -> None:
        self.close_clients()
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:  # its registry slot stays taken: reclaimed by the next start
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        JackServer.running.discard(self)

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _reclaim(names: list[str]) -> bool:
    """Free the registry slots of dead servers ``names`` the way JACK does: a server of the same name takes the
    slot over, and unregisters when it stops. Whether there were any."""
    for name in names:
        with JackServer(name=name):
            pass
    return bool(names)


@atexit.register
def _stop_running_servers() -> None:
    """Servers a test left running (an error between start and stop) stop with the session."""
    for server in list(JackServer.running):
        server.stop()


# Slots of the int64 array a Harness shares with its compiled process callback (JACK's ``arg``).
# Written once before activation:
H_CHANNELS = 0       # output ports (played)
H_RECORDING = 1      # address of the recording array
H_RECORD_FRAMES = 2  # its rows
# Written only by Python (play, start_recording), read by the callback:
H_SIGNAL = 3         # address of the signal the next play request plays
H_SIGNAL_FRAMES = 4
H_PLAY_REQUEST = 5   # incremented by play() after H_SIGNAL/H_SIGNAL_FRAMES are set
H_RECORD = 6         # 1 once recording starts
# Written only by the callback, read by Python:
H_CLOCK = 7          # frames since activation, advanced once per process callback
H_PLAY_SEEN = 8      # last play request the callback picked up
H_PLAYING = 9        # address of the signal being played
H_PLAYING_FRAMES = 10
H_PLAY_POS = 11      # -1: silent; >= 0: next frame of the signal to play
H_PLAY_START = 12    # clock of the signal's first frame
H_RECORDED = 13      # frames in the recording
H_RECORD_START = 14  # clock of recording[0]
H_RECORD_CHANNELS = 15  # input ports (recorded); written once before activation
H_PORTS = 16         # then the port pointers: the output ports, then the input ports


@functools.cache
def _process_callback():
    """The harness's JACK process callback, compiled once per process.

    A numba ``cfunc`` with JACK's ``JackProcessCallback`` signature that libjack calls directly, so
    the harness never takes the GIL or allocates on JACK's real-time thread (a Python callback did,
    every cycle, and that made the server report xruns the program under test did not cause: see
    docs/benchmarks.md). Not cached on disk: ``jack_port_get_buffer``'s address is compiled in, and
    it differs from process to process."""
    import ctypes

    import jack
    from numba import carray, cfunc, types

    from realtime_split.live.callbacks import address, release_fence

    # numba types a ctypes void * result as an integer, so the buffer comes back as an address
    get_buffer = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_uint32)(
        int(jack._ffi.cast("uintptr_t", jack._lib.jack_port_get_buffer)))

    @cfunc(types.intc(types.uint32, types.voidptr), error_model="numpy")
    def process(nframes, arg):
        """Play the requested signal into the output ports, record the input ports; copies only."""
        head = carray(arg, H_PORTS, np.int64)
        channels, recorded = head[H_CHANNELS], head[H_RECORD_CHANNELS]
        s = carray(arg, H_PORTS + channels + recorded, np.int64)
        frames = np.int64(nframes)
        clock = s[H_CLOCK]
        request = s[H_PLAY_REQUEST]
        if request != s[H_PLAY_SEEN]:
            s[H_PLAYING] = s[H_SIGNAL]
            s[H_PLAYING_FRAMES] = s[H_SIGNAL_FRAMES]
            s[H_PLAY_POS] = 0
            s[H_PLAY_START] = clock
            release_fence()
            s[H_PLAY_SEEN] = request
        pos = s[H_PLAY_POS]
        length = s[H_PLAYING_FRAMES] if pos >= 0 else 0
        signal = carray(address(s[H_PLAYING]), (length, channels), np.float32)
        for c in range(channels):
            out = carray(address(get_buffer(address(s[H_PORTS + c]), nframes)), frames, np.float32)
            for i in range(frames):
                out[i] = signal[pos + i, c] if pos >= 0 and pos + i < length else 0.0
        if pos >= 0:
            s[H_PLAY_POS] = pos + frames if pos + frames < length else -1
        if s[H_RECORD] != 0:
            done = s[H_RECORDED]
            n = min(frames, s[H_RECORD_FRAMES] - done)
            if n > 0:
                if done == 0:
                    s[H_RECORD_START] = clock
                recording = carray(address(s[H_RECORDING]), (s[H_RECORD_FRAMES], recorded), np.float32)
                for c in range(recorded):
                    inp = carray(address(get_buffer(address(s[H_PORTS + channels + c]), nframes)), frames, np.float32)
                    for i in range(n):
                        recording[done + i, c] = inp[i]
                release_fence()
                s[H_RECORDED] = done + n
        s[H_CLOCK] = clock + frames
        return 0

    return process


def _shut_down(client, *keep_alive) -> None:
    """Deactivate and close ``client``; ``keep_alive`` (the arrays its process callback reads and
    writes) is released only afterwards, when this finalizer drops it."""
    try:
        client.deactivate()
        client.close()
    except Exception:  # the server may already be gone (a test that kills it)
        pass


class Harness:
    """One JACK client that plays ``signal`` into a program's input ports and records its output ports
    (``channels`` output ports to play, ``record_channels`` input ports to record, as many by default).

    Play and record happen in the same process callback, so a frame recorded in callback ``k``
    and a frame played in callback ``k`` share one timeline (the callback counter): no timestamps,
    which JACK gets wrong for a callback that runs late. The connection harness -> program ->
    harness is a feedback loop, which JACK breaks by delivering the program's output one period
    later, so ``delay()`` subtracts exactly one period (``loop_periods``).

    The process callback is compiled (``_process_callback``): it shares one int64 array (``H_*``
    slots) with Python, each slot written by one side only, and copies between the ports and
    preallocated arrays. Every array it touches stays referenced until the client is deactivated
    and closed (``close()``, or a finalizer when the harness is dropped without it).
    """

    loop_periods = 1

    def __init__(self, server: JackServer, channels: int = 2, record_seconds: float = 30.0,
                 record_channels: int | None = None):
        import jack

        from realtime_split.live.bridge import resident_zeros

        process = _process_callback()
        self.channels = channels
        self.record_channels = recorded = channels if record_channels is None else record_channels
        self.client = jack.Client("rs-harness", no_start_server=True, servername=server.name)
        self.outports = [self.client.outports.register(f"out_{c + 1}") for c in range(channels)]
        self.inports = [self.client.inports.register(f"in_{c + 1}") for c in range(recorded)]
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self.recording = resident_zeros((int(record_seconds * self.rate), recorded))  # no page faults on JACK's thread
        self._signals: list[np.ndarray] = []  # every signal played, alive until the client is closed
        self._state = np.zeros(H_PORTS + channels + recorded, np.int64)
        self._state[[H_CHANNELS, H_RECORD_CHANNELS, H_RECORDING, H_RECORD_FRAMES]] = (
            channels, recorded, self.recording.ctypes.data, len(self.recording))
        self._state[[H_PLAY_POS, H_PLAY_START, H_RECORD_START]] = -1
        ports = [int(jack._ffi.cast("uintptr_t", port._ptr)) for port in self.outports + self.inports]
        self._state[H_PORTS:] = ports
        self._close = weakref.finalize(self, _shut_down, self.client, self._state, self.recording, self._signals)
        server.clients.add(self)  # closed before the server stops, whatever the test does
        if jack._lib.jack_set_process_callback(self.client._ptr, jack._ffi.cast("JackProcessCallback", process.address),
                                               jack._ffi.cast("void *", self._state.ctypes.data)) != 0:
            self.close()
            raise RuntimeError("JACK refused the harness's process callback")
        self.client.activate()

    @property
    def play_start(self) -> int:
        """Clock of the first frame of the signal ``play`` was last given; -1 until it starts playing."""
        seen = self._state[H_PLAY_SEEN] == self._state[H_PLAY_REQUEST]  # read before H_PLAY_START
        return int(self._state[H_PLAY_START]) if seen else -1

    @property
    def record_start(self) -> int:
        """Clock of ``recording[0]``; -1 until recording starts."""
        return int(self._state[H_RECORD_START])

    @property
    def recorded(self) -> int:
        return int(self._state[H_RECORDED])

    def wait_for_ports(self, regex: str, count: int, timeout: float = 60.0, process: subprocess.Popen | None = None):
        """The names of ``count`` ports matching ``regex`` once they exist (the program opened its stream)."""
        import jack

        from realtime_split.live.jack_client import port_names

        deadline = time.monotonic() + timeout
        while True:
            names = sorted(port_names(jack, self.client, regex))  # names only: the program's ports come and go
            if len(names) >= count:
                return names[:count]
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the program exited with {process.returncode} before opening its ports")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JACK ports matching {regex!r} after {timeout} s")
            time.sleep(0.05)

    def connect(self, program_inputs: list[str] | None = None, program_outputs: list[str] | None = None) -> None:
        """Wire the harness into the program's inputs and its outputs into the harness, replacing the
        connections PortAudio makes to the system ports (which would mix in the dummy capture's silence)."""
        for c, name in enumerate(program_inputs or []):
            for other in self.client.get_all_connections(name):
                self.client.disconnect(other, name)
            self._connect(self.outports[c % self.channels].name, name)
        for c, name in enumerate(program_outputs or []):
            for other in self.client.get_all_connections(name):
                self.client.disconnect(name, other)
            self._connect(name, self.inports[c % self.record_channels].name)

    def _connect(self, source: str, destination: str, attempts: int = 3) -> None:
        """Connect two ports, asking again when a busy server refused (-1) while both ports still exist."""
        import jack

        from realtime_split.live.jack_client import port_names

        for attempt in range(attempts):
            try:
                self.client.connect(source, destination)
                return
            except jack.JackError:
                names = set(port_names(jack, self.client, ""))
                if attempt == attempts - 1 or not {source, destination} <= names:
                    raise
                time.sleep(0.2)

    def connect_portaudio(self, in_channels: int = 2, out_channels: int = 2, process=None, timeout: float = 60.0):
        """Wait for a PortAudio stream (input and/or output) and wire it to the harness."""
        inputs = self.wait_for_ports(PORTAUDIO_IN, in_channels, timeout, process) if in_channels else None
        outputs = self.wait_for_ports(PORTAUDIO_OUT, out_channels, timeout, process) if out_channels else None
        self.connect(inputs, outputs)

    def start_recording(self) -> None:
        self._state[H_RECORD] = 1

    def play(self, signal: np.ndarray) -> None:
        """Play ``signal`` from the next process cycle on (replacing whatever was playing)."""
        signal = np.ascontiguousarray(signal, np.float32)
        if signal.ndim == 1:
            signal = np.repeat(signal[:, None], self.channels, axis=1)
        if signal.shape[1:] != (self.channels,):
            raise ValueError(f"signal must have {self.channels} channels, got shape {signal.shape}")
        deadline = time.monotonic() + 5.0
        while self._state[H_PLAY_SEEN] != self._state[H_PLAY_REQUEST]:  # the callback may still read the slots
            if time.monotonic() > deadline:
                raise TimeoutError("JACK did not pick up the previous signal (is the server running?)")
            time.sleep(0.001)
        self._signals.append(signal)
        self._state[[H_SIGNAL, H_SIGNAL_FRAMES]] = signal.ctypes.data, len(signal)
        self._state[H_PLAY_REQUEST] += 1  # after the signal's slots: the callback reads them once it sees this

    def wait_played(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.play_start < 0 or self._state[H_PLAY_POS] >= 0:
            if time.monotonic() > deadline:
                raise TimeoutError("JACK did not play the signal (is the server running?)")
            time.sleep(0.01)

    def take(self) -> np.ndarray:
        return self.recording[:self.recorded].copy()

    def delay(self, reference: np.ndarray, offset_in_signal: int = 0, channel: int = 0) -> tuple[int, float]:
        """(delay in frames through the program, normalized correlation peak) of ``reference`` found in
        the recording, where ``reference`` starts ``offset_in_signal`` frames into the played signal."""
        ref = np.asarray(reference)
        lag, norm = find(ref[:, channel] if ref.ndim > 1 else ref, self.take()[:, channel])
        played_at = self.play_start + offset_in_signal
        return self.record_start + lag - played_at - self.loop_periods * self.period, norm

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MidiSender:
    """A JACK client with one MIDI output port: ``send(message)`` puts it at offset 0 of the next cycle, whose
    frame time is noted in ``sent_at``. A Python process callback: fine for a test's or a benchmark's sender,
    never for the program under test."""

    def __init__(self, server: JackServer, name: str = "rs-midi-sender"):
        self.client = server.client(name)
        self.port = self.client.midi_outports.register("out")
        self.queue: collections.deque = collections.deque()
        self.sent_at: collections.deque = collections.deque()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self.port.clear_buffer()
        while self.queue:
            self.port.write_midi_event(0, self.queue.popleft())
            self.sent_at.append(self.client.last_frame_time)

    def send(self, message: bytes) -> None:
        self.queue.append(message)


def find(reference: np.ndarray, recording: np.ndarray) -> tuple[int, float]:
    """(index in ``recording`` where ``reference`` fits best, normalized correlation there: 1 = same shape)."""
    rec, ref = np.asarray(recording, np.float64), np.asarray(reference, np.float64)
    size = 1 << (len(rec) + len(ref) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[:len(rec)]
    lag = int(np.argmax(np.abs(corr)))
    seg = rec[lag:lag + len(ref)]
    return lag, float(np.abs(corr[lag]) / (np.linalg.norm(ref) * max(np.linalg.norm(seg), 1e-12)))


def find_each(pieces: list[np.ndarray], recording: np.ndarray) -> tuple[list[float], list[float]]:
    """Each piece found in ``recording`` on its own (``find``): (correlations, recorded/piece levels). Tests take
    medians, so one period JACK drops or moves under a stalled machine spoils one piece, not the verdict."""
    correlations, levels = [], []
    for piece in pieces:
        lag, correlation = find(piece, recording)
        correlations.append(correlation)
        levels.append(float(np.linalg.norm(recording[lag:lag + len(piece)]) / np.linalg.norm(piece)))
    return correlations, levels


def click_train(rate: int, seconds: float, every: float = 0.25, seed: int = 0) -> np.ndarray:
    """Short white-noise bursts every ``every`` seconds: sharp correlation peaks, no periodic ambiguity
    within one burst interval because every burst is different."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate), np.float32)
    burst = int(0.005 * rate)
    for start in range(int(0.05 * rate), len(out) - burst, int(every * rate)):
        out[start:start + burst] = rng.uniform(-0.5, 0.5, burst)
    return out


def max_jump(x: np.ndarray) -> float:
    """Largest sample-to-sample difference (a dropout or click in a sine shows up as a big jump)."""
    return float(np.max(np.abs(np.diff(x, axis=0)))) if len(x) > 1 else 0.0


def parse_latency_line(text: str) -> dict[str, int]:
    """The sample counts from the CLI's 'latency ... = separator N + buffers M samples [+ PortAudio K samples]'
    line (``host``: K, what PortAudio's JACK host API holds; 0 with JACK ports of the program's own)."""
    m = re.search(r"separator (\d+) \+ buffers (\d+) samples( \+ PortAudio (\d+) samples)?", text)
    if not m:
        raise AssertionError(f"no latency line in:\n{text}")
    return {"separator": int(m.group(1)), "buffers": int(m.group(2)), "host": int(m.group(4) or 0)}


def reported_xruns(text: str) -> int:
    """The xruns of a session, from the CLI's summary ('xruns: N ...'). With JACK ports of its own the program
    counts every xrun the JACK server reported anywhere in its graph; through PortAudio, every block
    PortAudio flagged. When the server does not keep its period (a loaded machine, a stalled virtual CPU),
    JACK runs its clients out of step for a cycle, so delays measured across clients move by a period and
    sounds drop out whatever the program does: tests that measure those run a session again."""
    m = re.search(r"xruns: (\d+)", text)
    if not m:
        raise AssertionError(f"no xrun count in:\n{text}")
    return int(m.group(1))


SESSION_ATTEMPTS = 3  # sessions a test records until one runs without an xrun


def first_session_without_xruns(record: Callable[[int], dict]) -> dict:
    """``record(attempt)`` (a dict with the session's ``"xruns"``) up to ``SESSION_ATTEMPTS`` times: the first
    session without xruns, or the last one (see ``reported_xruns`` for why)."""
    for attempt in range(SESSION_ATTEMPTS):
        session = record(attempt)
        if session["xruns"] == 0:
            break
    return session


def skip_because_of_xruns(session: dict, what: str) -> None:
    """Skip (naming the measurement) when the session, the last of ``SESSION_ATTEMPTS``, had xruns: the
    environment, not the program, then decides delays and dropouts. Call it only once a measurement is off."""
    import pytest

    if session["xruns"]:
        pytest.skip(f"xruns in all {SESSION_ATTEMPTS} sessions ({session['xruns']} in the last): this machine did "
                    f"not keep JACK's period, so {what}")


# Programs under test ------------------------------------------------------------------------------------------------

def program_env(**extra) -> dict:
    """The environment for a program under test: this checkout's ``realtime_split`` first."""
    paths = [str(REPO), os.environ.get("PYTHONPATH")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def launch(*args, script: str | None = None, **extra_env) -> subprocess.Popen:
    """The CLI (or ``script``) with ``args``, stdout and stderr piped; it dies with the test process."""
    command = [sys.executable, script] if script else [sys.executable, "-m", "realtime_split"]
    return subprocess.Popen([*command, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=program_env(**extra_env), cwd=REPO, preexec_fn=dies_with_parent())


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a launched program; a program that does not stop fails the test."""
    import pytest

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the program did not stop:\n{err}")
    return proc.returncode, out, err


def sine(seconds: float, freq: float = 440.0, amp: float = 0.5, rate: int = RATE) -> np.ndarray:
    """A sine with 10 ms raised-cosine fades, so its own onset is not a jump."""
    n = int(seconds * rate)
    x = amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)
    ramp = int(0.01 * rate)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    x[:ramp] *= fade
    x[-ramp:] *= fade[::-1]
    return x.astype(np.float32)


def click_delays(harness: Harness, clicks: np.ndarray) -> list[tuple[int, float]]:
    """(delay, recorded/played level) of every click of the signal the harness played (clicks first).
    Tests use the median level: a rare missed deadline on a loaded machine plays one click dry (at
    full level) and must not decide the result."""
    starts = np.flatnonzero(np.diff((clicks != 0).astype(np.int8)) == 1) + 1
    rec = harness.take()[:, 0]
    found = []
    for s in starts:
        burst = clicks[s:s + int(0.005 * harness.rate)]
        d, _ = harness.delay(burst, offset_in_signal=s)
        at = harness.play_start + s + d + harness.loop_periods * harness.period - harness.record_start
        found.append((d, float(np.std(rec[at:at + len(burst)]) / np.std(burst))))
    return found
