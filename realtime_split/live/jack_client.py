"""Live audio as a JACK client of its own: stems on their own ports, a compiled process callback.

``JackClient`` opens a client on the running JACK server (jackd, or PipeWire's JACK layer, which
implements the same libjack API) with the JACK-Client package, registers the ports a live session
asks for (``in_L``/``in_R``; one stereo pair per stem, ``vocals_L``/``vocals_R``...; ``dry_L``/``dry_R``,
the input delayed like the stems; or one mixed pair ``out_L``/``out_R``), and hands libjack the
bridge's compiled process callback (``callbacks.jack_process``) as a C function pointer,
with the bridge's table as its argument. JACK-Client's own process callbacks are Python functions
that take the GIL on JACK's real-time thread; this one never enters the interpreter, allocates
nothing and calls only ``jack_port_get_buffer``, ``jack_get_time`` and ``jack_last_frame_time`` (by
address, from compiled code).

The ports' latency is set in a latency callback, as JACK's latency API asks: each output's capture
latency is its inputs' plus the session's delay, each input's playback latency its outputs' plus the
delay, so ``jack_port_get_latency_range`` reports the measured delay to any client (a DAW aligns
recordings with it). JACK-Client has no latency API, so those calls go to the same libjack through
ctypes; the callback runs on JACK's notification thread, not the process thread. So do the xrun and
shutdown callbacks, which only store a counter and a flag.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import DeviceError, ParameterError
from .bridge import RealtimeBridge

CLIENT_NAME = "realtime-split"
CHANNELS = ("L", "R")
DRY = "dry"
MIXED = "out"
MIDI_IN = "midi_in"
CAPTURE, PLAYBACK = 0, 1  # jack_latency_callback_mode_t
NO_SERVER = ("no JACK server is running; start one (jackd -d alsa, or PipeWire with its JACK layer, "
             "pipewire-jack), or set JACK_DEFAULT_SERVER to the one you run")


@functools.cache
def _quiet():
    """A compiled no-op for libjack's error and info functions: its own lines ("Cannot read socket fd...",
    "Server is not running") are not for the user, who gets one line from the session instead, and a
    compiled function takes no GIL on whichever libjack thread reports."""
    from numba import cfunc, types

    @cfunc(types.void(types.voidptr), cache=True)
    def quiet(message):
        pass

    return quiet


class _Range(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


_LATENCY_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)


def import_jack():
    """The JACK-Client package (``import jack``), its absence an instruction."""
    try:
        import jack
    except ImportError:
        raise DeviceError("JACK ports need the JACK-Client package: pip install 'realtime-split[jack]'") from None
    except OSError as exc:  # JACK-Client is there, libjack is not
        raise DeviceError(f"JACK ports need the JACK library ({exc}); install it: sudo apt-get install "
                          "libjack-jackd2-0 (or PipeWire's pipewire-jack)") from None
    return jack


def libjack() -> ctypes.CDLL:
    """libjack through ctypes: the library JACK-Client loaded (one per process), for what JACK-Client lacks."""
    name = ctypes.util.find_library("jack")
    if name is None:
        raise DeviceError("the JACK library is missing; install it: sudo apt-get install libjack-jackd2-0")
    lib = ctypes.CDLL(name)
    for function in (lib.jack_port_get_latency_range, lib.jack_port_set_latency_range):
        function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_Range)]
        function.restype = None
    lib.jack_set_latency_callback.argtypes = [ctypes.c_void_p, _LATENCY_CALLBACK, ctypes.c_void_p]
    lib.jack_set_latency_callback.restype = ctypes.c_int
    lib.jack_recompute_total_latencies.argtypes = [ctypes.c_void_p]
    for function in (lib.jack_set_error_function, lib.jack_set_info_function):
        function.argtypes = [ctypes.c_void_p]
        function.restype = None
    return lib


def _address(jack, pointer) -> int:
    return int(jack._ffi.cast("uintptr_t", pointer))


def _function_address(function) -> int:
    address = ctypes.cast(function, ctypes.c_void_p).value
    if not address:
        raise DeviceError("the JACK library lacks a function this program calls; update libjack")
    return int(address)


def latency_range(port_pointer: int, mode: int, lib: ctypes.CDLL | None = None) -> tuple[int, int]:
    """``jack_port_get_latency_range`` of a port (its ``jack_port_t *`` as an int): (min, max) frames."""
    found = _Range()
    (lib or libjack()).jack_port_get_latency_range(port_pointer, mode, ctypes.byref(found))
    return found.min, found.max


def port_names(jack, client, pattern: str = "", *, is_audio: bool = False, is_input: bool = False,
               is_output: bool = False, is_midi: bool = False) -> list[str]:
    """The names of the ports matching ``pattern`` (a JACK regular expression), from one ``jack_get_ports`` call.

    JACK-Client's ``Client.get_ports`` looks each listed name up again (``jack_port_by_name``) to build a
    port object, and raises when the port vanished in between (another client closing its stream), so a
    listing taken while other clients come and go fails at random. Names alone need no second lookup.
    ``client`` is a ``jack.Client``."""
    lib, ffi = jack._lib, jack._ffi
    flags = (lib.JackPortIsInput if is_input else 0) | (lib.JackPortIsOutput if is_output else 0)
    kind = jack._AUDIO if is_audio else jack._MIDI if is_midi else b""
    names = lib.jack_get_ports(client._ptr, pattern.encode(), kind, flags)
    if not names:
        return []
    try:
        found: list[str] = []
        while names[len(found)]:  # the strings live in the server's shared memory: copy them now
            found.append(ffi.string(names[len(found)]).decode(errors="replace"))
        return found
    finally:
        lib.jack_free(names)


class JackClient:
    """A JACK client for one live session: ``open`` it, ``register`` the ports, ``attach`` a bridge,
    ``activate``, ``connect``; ``close`` when done. ``rate`` and ``period`` are the server's."""

    def __init__(self, name: str = CLIENT_NAME):
        self.jack = jack = import_jack()
        self.lib = lib = libjack()
        quiet = _quiet().address  # libjack's own lines on stderr, until close()
        lib.jack_set_error_function(quiet)
        lib.jack_set_info_function(quiet)
        try:
            self.client = jack.Client(name, no_start_server=True)
        except jack.JackOpenError:
            self._speak()
            raise DeviceError(NO_SERVER) from None
        self.name = self.client.name  # JACK may have made it unique ("realtime-split-01")
        self.rate = int(self.client.samplerate)
        self.period = int(self.client.blocksize)
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []  # output o's channel c at o * 2 + c
        self.dry: list[Any] = []
        self.midi_in: Any = None  # the MIDI input port, if registered
        self.delay = 0
        self.shut_down = threading.Event()  # the server stopped, or threw the client out
        self._active = False
        self._keep: list[Any] = []  # what libjack calls back into, alive until the client is closed
        self._bridge: RealtimeBridge | None = None

    def register(self, inputs: bool, outputs: Sequence[str], dry: bool, midi: bool = False) -> None:
        """Ports ``in_L``/``in_R`` (if ``inputs``), ``<name>_L``/``<name>_R`` per name of ``outputs``,
        ``dry_L``/``dry_R`` (if ``dry``) and the MIDI input ``midi_in`` (if ``midi``)."""
        try:
            if inputs:
                self.inputs = [self.client.inports.register(f"in_{c}") for c in CHANNELS]
            self.outputs = [self.client.outports.register(f"{name}_{c}") for name in outputs for c in CHANNELS]
            if dry:
                self.dry = [self.client.outports.register(f"{DRY}_{c}") for c in CHANNELS]
            if midi:
                self.midi_in = self.client.midi_inports.register(MIDI_IN)
        except self.jack.JackError as exc:
            raise DeviceError(f"JACK refused a port: {exc}") from None

    def attach(self, bridge: RealtimeBridge) -> None:
        """Make the bridge's compiled callback the client's process callback, and report the bridge's delay."""
        jack, lib = self.jack, self.lib
        self._bridge = bridge
        self.delay = bridge.delay
        in_ports, out_ports, dry_ports = ([_address(jack, p._ptr) for p in group]
                                          for group in (self.inputs, self.outputs, self.dry))
        client = self.client
        process, user_data = bridge.jack_callback(in_ports, out_ports, dry_ports,
                                                  _function_address(lib.jack_port_get_buffer),
                                                  _function_address(lib.jack_get_time),
                                                  _function_address(lib.jack_last_frame_time),
                                                  _address(jack, client._ptr), self._midi())
        if jack._lib.jack_set_process_callback(client._ptr, jack._ffi.cast("JackProcessCallback", process),
                                               jack._ffi.cast("void *", user_data)) != 0:
            raise DeviceError("JACK refused the process callback")
        client.set_xrun_callback(lambda delayed_usecs: bridge.count_jack_xrun())  # JACK's notification thread
        client.set_shutdown_callback(lambda status, reason: self.shut_down.set())
        callback = _LATENCY_CALLBACK(self._on_latency)
        self._keep.append(callback)
        if lib.jack_set_latency_callback(_address(jack, client._ptr), callback, None) != 0:
            raise DeviceError("JACK refused the latency callback")

    def _midi(self) -> tuple[int, int, int] | None:
        """The midi_in port and the two libjack functions the callback reads it with."""
        if self.midi_in is None:
            return None
        lib = self.lib
        return (_address(self.jack, self.midi_in._ptr), _function_address(lib.jack_midi_get_event_count),
                _function_address(lib.jack_midi_event_get))

    def _on_latency(self, mode: int, arg) -> None:
        """JACK's latency callback (notification thread): the session's delay on top of what reaches it."""
        try:
            lib, jack = self.lib, self.jack
            if mode == CAPTURE:
                sources, targets = self.inputs, self.outputs + self.dry
            else:
                sources, targets = self.outputs + self.dry, self.inputs
            if not targets:
                return
            found = [latency_range(_address(jack, p._ptr), mode, lib) for p in sources]
            low = max((r[0] for r in found), default=0)
            high = max((r[1] for r in found), default=0)
            span = _Range(low + self.delay, high + self.delay)
            for port in targets:
                lib.jack_port_set_latency_range(_address(jack, port._ptr), mode, ctypes.byref(span))
        except BaseException:  # noqa: BLE001  (nothing may escape into libjack; the ports keep their last range)
            pass

    def activate(self) -> None:
        try:
            self.client.activate()
        except self.jack.JackError as exc:
            raise DeviceError(f"cannot activate the JACK client: {exc}") from None
        self._active = True
        self.lib.jack_recompute_total_latencies(_address(self.jack, self.client._ptr))

    @property
    def pairs(self) -> list[str]:
        """The names of this client's output pairs: the stems (or ``out``), then ``dry`` if it has one."""
        names = [port.shortname[:-2] for port in self.outputs[::2]]
        return names + ([DRY] if self.dry else [])

    def connect(self, patterns: Iterable[str]) -> list[tuple[str, str]]:
        """Connect the ports ``patterns`` name (see ``parse_connect``) and return the connections made."""
        made = []
        pairs = self.pairs
        for target, pattern in (parse_connect(p, pairs) for p in patterns):
            if target is None:
                found = self._others(pattern, is_output=True)
                if not found:
                    self._no_match(pattern, is_output=True, pairs=pairs)
                if not self.inputs:
                    raise ParameterError(f"connect={pattern!r} names sources, but this session has no input ports "
                                         "(it plays a file); connect its outputs with connect='STEM=PORTS'", "connect")
                sources = found if len(found) > 1 else found * len(self.inputs)
                made += [(src, dst.name) for src, dst in zip(sources, self.inputs)]
            else:
                found = self._others(pattern, is_output=False)
                if not found:
                    self._no_match(pattern, is_output=False, pairs=pairs)
                ours = self._pair(target)
                destinations = found if len(found) > 1 else found * len(ours)
                made += [(src.name, dst) for src, dst in zip(ours, destinations)]
        return self._connect_all(made)

    def connect_midi(self, pattern: str) -> list[tuple[str, str]]:
        """Connect the MIDI output ports of other clients that ``pattern`` (a regular expression) matches to
        ``midi_in``, and return the connections made."""
        mine = f"{self.name}:"
        found = [name for name in port_names(self.jack, self.client, pattern, is_midi=True, is_output=True)
                 if not name.startswith(mine)]
        if not found:
            listing = ", ".join(n for n in port_names(self.jack, self.client, "", is_midi=True, is_output=True)
                                if not n.startswith(mine))[:400] or "none"
            raise ParameterError(f"midi={pattern!r} matches no MIDI output port of another JACK client; MIDI output "
                                 f"ports: {listing}", "midi")
        made = [(name, self.midi_in.name) for name in found]
        return self._connect_all(made)

    def _connect_all(self, made: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Make the connections ``made`` lists (one already there is fine) and return them."""
        for source, destination in made:
            try:
                self.client.connect(source, destination)
            except self.jack.JackError as exc:
                if "already exists" not in str(exc):
                    raise DeviceError(f"JACK could not connect {source} to {destination}: {exc}") from None
        return made

    def _others(self, pattern: str, is_output: bool) -> list[str]:
        mine = f"{self.name}:"
        names = port_names(self.jack, self.client, pattern, is_audio=True, is_output=is_output,
                           is_input=not is_output)
        return [name for name in names if not name.startswith(mine)]

    def _pair(self, target: str) -> list[Any]:
        if target == DRY:
            return self.dry
        index = self.pairs.index(target)
        return self.outputs[2 * index:2 * index + 2]

    def _no_match(self, pattern: str, is_output: bool, pairs: Sequence[str]):
        other = self._others(pattern, is_output=not is_output)
        kind = "output" if is_output else "input"
        if other and is_output:
            raise ParameterError(f"connect={pattern!r} matches only input ports ({', '.join(other[:4])}); to send "
                                 f"an output there name it: connect='{pairs[0]}={pattern}'", "connect")
        listing = ", ".join(self._others("", is_output=is_output)[:8]) or "none"
        raise ParameterError(f"connect={pattern!r} matches no {kind} port of another JACK client; {kind} ports: "
                             f"{listing}", "connect")

    def close(self) -> None:
        """Deactivate (the callback stops before anything it reads is released) and close."""
        try:
            if self._active:
                self.client.deactivate()
            self.client.close()
        except Exception:  # noqa: BLE001  (the server may be gone; there is nothing left to release)
            pass
        self._active = False
        self._speak()

    def _speak(self) -> None:
        """libjack's default error and info functions again."""
        self.lib.jack_set_error_function(None)
        self.lib.jack_set_info_function(None)


_CONNECT = re.compile(r"^(?P<target>[A-Za-z_][\w-]*)=(?P<pattern>.+)$")


MAX_CLIENT_NAME = 63  # characters: JACK's client name size (64) less its terminating NUL


def check_client_name(name: str) -> None:
    """A name JACK can give the client and its ports (``NAME:vocals_L``): 1 to 63 characters, no colon
    (the colon separates a port's client from its own name; JACK would open the client and garble every port)."""
    if not isinstance(name, str) or not name or len(name.encode()) > MAX_CLIENT_NAME or ":" in name:
        raise ParameterError(f"jack_name={name!r}: a JACK client's name has 1 to {MAX_CLIENT_NAME} characters and no "
                             f"colon; pass e.g. jack_name={CLIENT_NAME + '-2'!r}", "jack_name")


def check_pattern(text: str) -> None:
    """A ``connect=`` entry whose pattern (after ``NAME=``, if any) is a regular expression, before any JACK
    server is asked: a pattern that cannot compile would otherwise match nothing and be reported as such."""
    found = _CONNECT.match(text)
    for pattern in (text, found["pattern"]) if found and ":" not in found["target"] else (text,):
        try:
            re.compile(pattern)
            return
        except re.error as exc:
            reason = exc
    raise ParameterError(f"connect={text!r} is not a valid regular expression ({reason}); JACK port patterns are "
                         "regular expressions, e.g. connect='system:capture' or connect='vocals=system:playback'",
                         "connect")


def parse_connect(text: str, pairs: Sequence[str]) -> tuple[str | None, str]:
    """``PATTERN`` (other clients' output ports feed the input ports, in order) or ``NAME=PATTERN`` (the output
    pair ``NAME`` of ``pairs``, a stem, ``dry`` or ``out``, feeds the input ports ``PATTERN`` matches, a regular
    expression as JACK takes it): (NAME or None, PATTERN)."""
    found = _CONNECT.match(text)
    if not found or ":" in found["target"]:
        if not text:
            raise ParameterError("connect='' names no ports; pass e.g. connect='mpv' or "
                                 "connect='vocals=system:playback'", "connect")
        return None, text
    target = found["target"]
    if target not in pairs:
        raise ParameterError(f"connect={text!r}: {target!r} is not one of this session's outputs; choose one of "
                             f"{', '.join(pairs)}", "connect")
    return target, found["pattern"]
