"""A real JACK server (jackd2, dummy backend) and a JACK client that plays into and records from a program.

Tests and benchmarks/bench_live.py use it to run live audio end to end without a sound card:
``JackServer`` starts ``jackd -d dummy`` under a private server name (exported as
JACK_DEFAULT_SERVER so every subprocess, PortAudio included, talks to it) and stops it by PID.
``Harness`` is one JACK client whose output ports feed the program's input ports and whose
input ports record the program's output ports, so played and recorded frames share one
timeline and the measured delay is exact to the sample.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import numpy as np

PORTAUDIO_IN = r"PortAudio.*:in_"
PORTAUDIO_OUT = r"PortAudio.*:out_"


def jackd_path() -> str | None:
    return shutil.which("jackd")


class JackServer:
    """``jackd -d dummy`` under a private name; a context manager that restores the environment."""

    def __init__(self, rate: int = 44100, period: int = 256, name: str | None = None):
        self.rate, self.period = rate, period
        self.name = name or f"rs-test-{uuid.uuid4().hex[:8]}"
        self.process: subprocess.Popen | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def env(self) -> dict[str, str]:
        """Variables that point a process at this server and keep JACK from starting or reserving others."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_NO_START_SERVER": "1"}

    def start(self, timeout: float = 10.0) -> "JackServer":
        import jack

        path = jackd_path()
        if path is None:
            raise RuntimeError("jackd not found; install jackd2")
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self.process = subprocess.Popen(
            [path, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
        )
        jack.set_error_function(lambda message: None)  # "cannot connect" while the server starts up
        try:
            self._wait_ready(jack, timeout)
        finally:
            jack.set_error_function()
        return self

    def _wait_ready(self, jack, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
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
            return

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
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

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Harness:
    """One JACK client that plays ``signal`` into a program's input ports and records its output ports.

    Play and record happen in the same process callback, so a frame recorded in callback ``k``
    and a frame played in callback ``k`` share one timeline (the callback counter): no timestamps,
    which JACK gets wrong for a callback that runs late. The connection harness -> program ->
    harness is a feedback loop, which JACK breaks by delivering the program's output one period
    later, so ``delay()`` subtracts exactly one period (``loop_periods``).
    """

    loop_periods = 1

    def __init__(self, server: JackServer, channels: int = 2, record_seconds: float = 30.0):
        import jack

        self.channels = channels
        self.client = jack.Client("rs-harness", no_start_server=True, servername=server.name)
        self.outports = [self.client.outports.register(f"out_{c + 1}") for c in range(channels)]
        self.inports = [self.client.inports.register(f"in_{c + 1}") for c in range(channels)]
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self.signal = np.zeros((0, channels), np.float32)
        self.clock = 0  # frames since activation, advanced once per process callback
        self._play_pos = -1  # -1: silent; >= 0: next frame of the signal to play
        self.play_start = -1  # clock of the signal's first frame
        self.recording = np.zeros((int(record_seconds * self.rate), channels), np.float32)
        self.recorded = 0
        self.record_start = -1  # clock of recording[0]
        self._record = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        """JACK process callback: copies only."""
        pos = self._play_pos
        for c, port in enumerate(self.outports):
            buf = port.get_array()
            buf.fill(0.0)
            if pos >= 0:
                chunk = self.signal[pos:pos + frames, c]
                buf[:len(chunk)] = chunk
        if pos >= 0:
            if pos == 0:
                self.play_start = self.clock
            self._play_pos = pos + frames if pos + frames < len(self.signal) else -1
        if self._record:
            n = min(frames, len(self.recording) - self.recorded)
            if self.recorded == 0:
                self.record_start = self.clock
            for c, port in enumerate(self.inports):
                self.recording[self.recorded:self.recorded + n, c] = port.get_array()[:n]
            self.recorded += n
        self.clock += frames

    def wait_for_ports(self, regex: str, count: int, timeout: float = 60.0, process: subprocess.Popen | None = None):
        """The names of ``count`` ports matching ``regex`` once they exist (the program opened its stream)."""
        deadline = time.monotonic() + timeout
        while True:
            names = sorted(p.name for p in self.client.get_ports(regex))
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
            self.client.connect(self.outports[c % self.channels], name)
        for c, name in enumerate(program_outputs or []):
            for other in self.client.get_all_connections(name):
                self.client.disconnect(name, other)
            self.client.connect(name, self.inports[c % self.channels])

    def connect_portaudio(self, in_channels: int = 2, out_channels: int = 2, process=None, timeout: float = 60.0):
        """Wait for a PortAudio stream (input and/or output) and wire it to the harness."""
        inputs = self.wait_for_ports(PORTAUDIO_IN, in_channels, timeout, process) if in_channels else None
        outputs = self.wait_for_ports(PORTAUDIO_OUT, out_channels, timeout, process) if out_channels else None
        self.connect(inputs, outputs)

    def start_recording(self) -> None:
        self._record = True

    def play(self, signal: np.ndarray) -> None:
        signal = np.asarray(signal, np.float32)
        if signal.ndim == 1:
            signal = np.repeat(signal[:, None], self.channels, axis=1)
        self.signal = signal
        self.play_start = -1
        self._play_pos = 0

    def wait_played(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self._play_pos >= 0 or self.play_start < 0:
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
        try:
            self.client.deactivate()
            self.client.close()
        except Exception:  # the server may already be gone (a test that kills it)
            pass

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find(reference: np.ndarray, recording: np.ndarray) -> tuple[int, float]:
    """(index in ``recording`` where ``reference`` fits best, normalized correlation there: 1 = same shape)."""
    rec, ref = np.asarray(recording, np.float64), np.asarray(reference, np.float64)
    size = 1 << (len(rec) + len(ref) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[:len(rec)]
    lag = int(np.argmax(np.abs(corr)))
    seg = rec[lag:lag + len(ref)]
    return lag, float(np.abs(corr[lag]) / (np.linalg.norm(ref) * max(np.linalg.norm(seg), 1e-12)))


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
    """The sample counts from the CLI's 'latency ... = separator N + buffers M samples' line."""
    m = re.search(r"separator (\d+) \+ buffers (\d+) samples", text)
    if not m:
        raise AssertionError(f"no latency line in:\n{text}")
    return {"separator": int(m.group(1)), "buffers": int(m.group(2))}
