"""Open Sound Control for a live session's mix (python-osc, the ``control`` extra): TouchOSC, Open Stage Control
or any OSC sender drives the stems' gains, mutes and solos over UDP.

Addresses (``NAME`` a stem of the session's mix):

- ``/stem/NAME/gain DB``: the gain in dB (a number up to +40; -inf silences);
- ``/stem/NAME/mute 0|1`` and ``/stem/NAME/solo 0|1``;
- ``/mix``: a query; the reply, to the sender's address and port, is the same three messages per stem with
  the current values, so a layout's faders and buttons follow the mix.

It listens on 127.0.0.1 unless a host is given: OSC has no authentication, so anyone who can reach the port
can change the mix (the command line warns when the host is not a loopback address). A message that is not
OSC, names no stem, or carries a value that is no gain is counted (``ignored``) and dropped: nothing a
datagram holds stops the session. The server runs on its own thread and calls ``LiveSession.set_gain``,
``mute`` and ``solo``, which are safe from any thread.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from typing import Any

from ..errors import DeviceError, ParameterError
from ..mix import Mix

DEFAULT_HOST = "127.0.0.1"
QUERY = "/mix"


def parse_address(text: str) -> tuple[str, int]:
    """``"9000"`` or ``"HOST:9000"`` (``"[::1]:9000"`` for IPv6) -> (host, port)."""
    text = str(text).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ParameterError(f"osc={text!r}: give a UDP port (1-65535), or HOST:PORT to listen beyond this "
                             "machine, e.g. osc='9000'", "osc")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OscControl:
    """An OSC server that changes ``session``'s mix; ``start()`` it (or use it as a context manager) after the
    session started, ``stop()`` it before. ``address``: ``"PORT"`` or ``"HOST:PORT"`` (port 0: any free one;
    ``port`` says which). ``handled`` and ``ignored`` count the messages."""

    def __init__(self, session, address: str | int):
        self.session = session
        self.host, self.port = parse_address(str(address))
        self.handled = 0
        self.ignored = 0
        self._server: Any = None
        self._builder: Any = None  # python-osc's message builder, once started
        self._thread: threading.Thread | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def start(self) -> OscControl:
        try:
            from pythonosc import dispatcher, osc_message_builder, osc_packet as packet, osc_server
        except ImportError:
            raise DeviceError("OSC control needs python-osc: pip install 'realtime-split[control]'") from None
        control = self

        class Dispatcher(dispatcher.Dispatcher):
            def call_handlers_for_packet(self, data, client_address):
                try:
                    messages = packet.OscPacket(data).messages
                except packet.ParseError:
                    control.ignored += 1
                    return []
                for timed in messages:
                    control.handle(timed.message.address, list(timed.message.params), client_address)
                return []

        class Server(osc_server.BlockingOSCUDPServer):
            def verify_request(self, request, client_address):
                if super().verify_request(request, client_address):
                    return True
                control.ignored += 1  # not even the start of an OSC message or bundle
                return False

            def handle_error(self, request, client_address):  # nothing a datagram does may end the server
                control.ignored += 1

        self._builder = osc_message_builder
        try:
            self._server = Server((self.host, self.port), Dispatcher())
        except OSError as exc:
            raise ParameterError(f"osc='{self.host}:{self.port}': cannot listen there ({exc.strerror or exc}); pick "
                                 "another port, e.g. osc='9001'", "osc") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="realtime-split-osc", daemon=True)
        self._thread.start()
        return self

    def handle(self, address: str, args: list, reply_to) -> None:
        """One message: a change of the mix, or the ``/mix`` query; anything else is counted as ignored."""
        parts = address.split("/")
        try:
            if address == QUERY and not args:
                self._reply(reply_to)
            elif len(parts) == 4 and parts[0] == "" and parts[1] == "stem" and len(args) == 1:
                stem, what, value = parts[2], parts[3], args[0]
                if what == "gain":
                    self.session.set_gain(stem, _number(value))
                elif what in ("mute", "solo") and _number(value) in (0.0, 1.0):
                    getattr(self.session, what)(stem, bool(_number(value)))
                else:
                    raise ValueError(address)
            else:
                raise ValueError(address)
        except (ValueError, TypeError):  # ParameterError is a ValueError: a stem or a value the mix cannot take
            self.ignored += 1
            return
        self.handled += 1

    def _reply(self, reply_to) -> None:
        mix: Mix = self.session.mix
        for stem in mix.stems:
            for what, value in (("gain", stem.gain_db), ("mute", int(stem.muted)), ("solo", int(stem.soloed))):
                message = self._builder.OscMessageBuilder(f"/stem/{stem.name}/{what}")
                message.add_arg(float(value) if what == "gain" else value)
                self._server.socket.sendto(message.build().dgram, reply_to)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OscControl:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(value)
    return float(value)
