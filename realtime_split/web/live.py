"""The page's live session: one ``LiveSession`` at a time, started, read, mixed and stopped for the page.

``levels()`` returns the peaks since the previous call, so one reader must own it: the push loop calls
``poll()`` 20 times a second and every connected page gets the same reading. Starting loads a model and
opens devices (a second or more), so the routes run ``start`` on a worker thread; a session that ends by
itself (its file played out, the device or the JACK server gone) is stopped here and its one-line error
kept for the page. Mixing goes straight to the session (``set_gain``, ``mute``, ``solo``), which the
audio callback hears from its next block on.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from ..errors import ParameterError, UserError
from ..registry import bundled_models, by_latency


def presets() -> list[dict[str, Any]]:
    """Every bundled model's presets with their delay, shortest first: the live page's choices."""
    out = []
    for model in bundled_models():
        rate = model.info.sample_rate
        for name, geometry in by_latency(model.info):
            out.append({"model": model.name, "preset": name, "ms": round(1000 * geometry.latency / rate, 1),
                        "default": name == model.info.default_preset})
    return out


def devices() -> dict[str, list[str]]:
    """PortAudio's input and output devices by name (empty without a sound server)."""
    try:
        from ..live.devices import list_devices

        found = list_devices()
    except (UserError, OSError):
        found = []
    return {"inputs": [d.name for d in found if d.input_channels > 0],
            "outputs": [d.name for d in found if d.output_channels > 0]}


class LiveHolder:
    """The one live session and its latest readings."""

    def __init__(self) -> None:
        self.session: Any = None
        self.state = "stopped"  # stopped, starting, running
        self.error: str | None = None
        self.description: dict[str, Any] = {}
        self._reading: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, *, model: str | None, latency: str | None, input: str | Path | None, output: str | None,
              input_device: str | None = None, output_device: str | None = None,
              connect: list[str] | None = None) -> None:
        """Start a session (on a worker thread: it loads the model and opens the devices)."""
        from ..live.session import LiveSession

        with self._lock:
            if self.state != "stopped":
                raise ParameterError("a live session is running already; stop it first", "live")
            self.state, self.error, self._reading = "starting", None, {}
        try:
            session = LiveSession(model, input=input, output=output, stems="all", latency=latency or None,
                                  input_device=input_device or None, output_device=output_device or None,
                                  connect=connect or None, jack_name="realtime-split-ui")
            session.start()
        except UserError as exc:
            self.state, self.error = "stopped", str(exc)
            raise
        except BaseException as exc:
            self.state, self.error = "stopped", f"{type(exc).__name__}: {exc}"
            raise
        self.session = session
        self.description = {"model": session.separator.model_path.stem if session.separator else model,
                            "preset": session.separator.preset if session.separator else latency,
                            "input": str(input) if input is not None else (session.input_device_name or "default"),
                            "output": session.output_device_name, "ports": session.jack_ports}
        self.state = "running"

    def stop(self) -> None:
        """Stop the session (the recording and the file reader finish as with Ctrl-C); errors go to the page."""
        with self._lock:
            session, self.session = self.session, None
            if session is None:
                return
            self.state = "stopped"
        try:
            session.stop()
        except UserError as exc:
            self.error = str(exc)

    def poll(self) -> dict[str, Any]:
        """The session's readings now (called by the push loop alone: ``levels()`` resets the peaks)."""
        session = self.session
        if session is not None and self.state == "running":
            try:
                if session.wait(0):  # ended by itself: the file played out, the device or server gone
                    self._reading = self._read(session)
                    self.stop()
                else:
                    self._reading = self._read(session)
            except Exception as exc:  # noqa: BLE001 - whatever a reading raises, the page shows it
                self.error = f"{type(exc).__name__}: {exc}"
                self.stop()
        return {"state": self.state, "error": self.error, "session": self.description if self.state != "stopped"
                else None, **self._reading}

    def _read(self, session) -> dict[str, Any]:
        stats, levels = session.stats(), session.levels()
        latency = stats.latency
        mix = getattr(session, "mix", None)
        return {
            "levels": {"input": levels.input, **levels.stems},
            "latency_ms": round(latency.total_ms, 1), "latency_text": str(latency),
            "missed_deadlines": stats.missed_deadlines, "xruns": stats.xruns, "restarts": stats.restarts,
            "seconds": round(stats.seconds_played, 2), "load": round(stats.load, 3),
            "mix": [{"stem": s.name, "db": s.gain_db if math.isfinite(s.gain_db) else None, "muted": s.muted,
                     "soloed": s.soloed} for s in mix.stems] if mix is not None else None,
        }

    def control(self, action: str, stem: str, value) -> None:
        """A fader, mute or solo from the page, straight to the running session's mix."""
        session = self.session
        if session is None:
            raise ParameterError("no live session is running; start one first", "live")
        if not hasattr(session, "set_gain"):
            raise ParameterError("this build has no live mixer", "live")
        if action == "gain":
            session.set_gain(stem, -math.inf if value is None else float(value))
        elif action == "mute":
            session.mute(stem, bool(value))
        elif action == "solo":
            session.solo(stem, bool(value))
        else:
            raise ParameterError(f"action={action!r}: give gain, mute or solo", "action")
