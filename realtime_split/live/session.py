"""Live sessions: the microphone (or a file played in real time) separated to the speakers, to JACK ports
(one stereo pair per stem), or inside an application's own audio callback.

``LiveSession`` wires the pieces: devices.py picks the sound card, jack_client.py opens JACK ports,
bridge.py keeps the audio callback real-time safe while a worker thread separates and names what it
counts (readings.py). Both start paths, PortAudio's and JACK's, share the separator, bridge and reader
set-up (``_make_bridge``, ``_start_bridge``). This module also owns the non-audio threads that touch
files: a reader that feeds a file into the bridge ahead of playback, and a writer that saves what was
played (``record=``). Both finalize on ``stop()`` (also after Ctrl-C, errors, or the device
disappearing), so nothing played is lost.

Nothing here prints; the command line shows ``stats()`` and ``levels()`` (cli_status.py).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..audio_files import (
    STDIO,
    AudioReader,
    AudioWriter,
    ChannelSelection,
    file_identity,
    name_problem,
    open_input,
    output_format,
    readable,
)
from ..errors import AudioIOError, DeviceError, ParameterError, UserError, signals_deferred
from ..mix import Mix, check_db
from ..model import Model
from ..output_set import OutputSet
from ..resampling import playback_resampler
from ..separator import StreamingSeparator
from . import devices
from .bridge import INFERENCE_BUDGET, RealtimeBridge, stream_hop
from .devices import JACK, SPEAKERS, check_blocksize
from .readings import Latency, Levels, LiveStats

POLL_SECONDS = 0.05
# A device rate other than the model's: the low-delay filters add 1.1 ms at 48 kHz (soxr's "LQ" added 12.7 ms).
LIVE_RESAMPLING = "LD"
LIVE_THREADS = 1  # one ONNX Runtime thread on the real-time worker: steady under load (see inference.session_options)
PREBUFFER_SECONDS = 0.25  # file playback: separated audio ready before the stream starts
OWN_STREAM_CHANNELS = 2  # open_stream=False: the application's stream is stereo in and out
JACK_CHANNELS = 2  # JACK: a stereo pair of ports in, and per output


class LiveSession:
    """Separate live audio with a fixed, reported latency: ``start()``, read ``stats()``, ``stop()``.

    ``input``: None for the default input device (or ``input_device``), ``"jack"`` for input ports of the
    session's own JACK client (``in_L``, ``in_R``), or an audio file played in real time. ``output``:
    ``"speakers"`` (the default): the selected ``stems`` (default the vocals), with ``gains`` in dB (or a
    ``Mix``), are summed to the output device (with ``input="jack"``: to the ports ``out_L``, ``out_R``);
    ``"jack"``: one pair of JACK ports per stem (``vocals_L``, ``vocals_R``, ...) and the input delayed like
    them (``dry_L``, ``dry_R``), each port's latency set to the session's delay. Every stem the model
    separates plays, those not in ``stems`` muted: ``stems`` and ``gains`` are the initial ``mix``, which
    ``set_gain``, ``mute``, ``solo`` and ``set_mix`` change while it plays (from any thread; each change is
    heard from the next audio block on, ramped over 5 ms). ``midi=True`` with JACK ports adds the MIDI input
    port ``midi_in`` (``midi="PATTERN"``: connected to the MIDI output ports of other clients that the regular
    expression matches, e.g. ``midi="a2j"``); without JACK it opens the first ALSA/CoreMIDI input port through
    mido and python-rtmidi (the ``control`` extra; ``midi="NAME"``: the first whose name contains NAME,
    e.g. ``midi="nanoKONTROL"``). Its control changes and notes change the mix (live/midi_map.py: CC 7 on
    channels 1-4 for the stems' gains, notes 0 and 1 for mute and solo, or the bindings of the file
    ``midi_map``); ``midi_port`` names the port. ``midi_learn="STEM=FILE"``: the first control change that
    arrives becomes STEM's gain, and the map with it is written to FILE (for ``midi_map`` next time).
    ``connect``: JACK port patterns to connect
    at start, ``"PATTERN"`` for sources into the input ports, ``"vocals=PATTERN"`` for a pair's
    destinations; ``jack_name``: the client's name. ``record`` also saves what is played on a sound
    device to a file (``format``, ``subtype``). ``model``, ``latency`` (a preset; None: the model's default,
    balanced on the fast model), ``hop`` and ``provider`` are ``StreamingSeparator``'s (a name or file loads
    with one ONNX Runtime thread, steadiest beside audio; a ``Model`` keeps its own); ``channels`` picks
    two channels (1-based, ``"3,4"``) of a file with more; ``blocksize``: frames per audio callback (None:
    the hop; with JACK, the server's period). ``inference_budget``: seconds the separation may take for
    one callback's input before that block plays dry, rounded up to whole blocks (None: 8 ms); each
    block beyond the first adds one block of delay.

    ``open_stream=False`` opens no device: the application runs its own stereo, float32 duplex stream at
    ``sample_rate`` (None: the model's) with ``blocksize`` frames and calls ``session.callback`` from
    its callback; the session then only separates (and records).

    A context manager: ``with LiveSession(...) as session:`` starts it and stops it on the way out.
    Errors are ``ParameterError`` (a ``ValueError``), ``AudioIOError`` or ``DeviceError`` (``OSError``).
    """

    def __init__(self, model: str | os.PathLike | Model | None = None, *, input: str | os.PathLike | None = None,
                 record: str | os.PathLike | None = None, stems: str | Iterable[str] = "vocals",
                 gains: Mapping[str, float] | str | Iterable[str] | Mix | None = None, latency: str | None = None,
                 hop: int | None = None, provider: str = "auto", channels: ChannelSelection = None,
                 input_device: int | str | None = None, output_device: int | str | None = None,
                 blocksize: int | None = None, format: str | None = None, subtype: str | None = None,
                 open_stream: bool = True, sample_rate: int | None = None, output: str | None = None,
                 connect: str | Iterable[str] | None = None, jack_name: str | None = None,
                 inference_budget: float | None = None, midi: bool | str = False,
                 midi_map: str | os.PathLike | None = None, midi_learn: str | None = None):
        self._jack_input = input is not None and os.fspath(input) == JACK
        self._jack_output = output == JACK
        self._connect = [connect] if isinstance(connect, str) else list(connect or [])
        _check_jack_options(self._jack_input, self._jack_output, input, output, record, open_stream,
                            input_device, output_device, self._connect, jack_name)
        if inference_budget is not None and (isinstance(inference_budget, bool) or not (
                isinstance(inference_budget, (int, float)) and 0 < inference_budget <= 1.0)):
            raise ParameterError(f"inference_budget={inference_budget!r}: give seconds between 0 and 1, e.g. "
                                 "inference_budget=0.008", "inference_budget")
        self._budget = INFERENCE_BUDGET if inference_budget is None else float(inference_budget)
        if midi_map is not None and not midi:
            raise ParameterError("midi_map= maps the messages of a MIDI port; pass midi=True too", "midi_map")
        if midi_learn is not None and not midi:
            raise ParameterError("midi_learn= learns from the messages of a MIDI port; pass midi=True too",
                                 "midi_learn")
        self._midi_learn = midi_learn
        self._learn: Any = None  # the MidiLearn, once started with midi_learn=
        if isinstance(midi, str) and (self._jack_input or self._jack_output):
            try:
                re.compile(midi)  # a regular expression, before a server is asked
            except re.error as exc:
                raise ParameterError(f"midi={midi!r} is not a valid regular expression ({exc}); it names the MIDI "
                                     "ports to connect to midi_in, e.g. midi='a2j'", "midi") from None
        self._midi = bool(midi) or isinstance(midi, str)
        self._midi_source = midi if isinstance(midi, str) and midi else None
        self._midi_map = midi_map
        self._midi_reader: _MidiReader | None = None  # on JACK
        self._midi_input: Any = None  # otherwise: a live.midi_input.MidiInput
        self._jack_name = jack_name
        if self._jack_input:
            input = None
        if sample_rate is not None:
            sample_rate = limits.sample_rate(sample_rate)  # refused here, not when start() builds the engine
        if blocksize is not None:
            check_blocksize(blocksize)
        if not open_stream and input is not None:
            raise ParameterError("input= plays a file through the session's own stream; with open_stream=False "
                                 "your application's stream brings the input", "input")
        if open_stream and sample_rate is not None:
            raise ParameterError("sample_rate= is for open_stream=False; with its own stream the session picks "
                                 "a rate the devices accept", "sample_rate")
        self._input = None if input is None else Path(input)
        self._record = None if record is None else Path(record)
        if record is not None and self._record is not None:
            text = os.fspath(record)
            problem = name_problem(self._record)
            if problem:
                raise AudioIOError(f"cannot write {text}: {problem}; pass another record=", "record")
            if text.endswith(("/", "\\")) or os.path.isdir(self._record):
                raise ParameterError(f"record={text!r} is a folder; a live session records the monitored sound to "
                                     "one file, e.g. record='monitor.wav'", "record")
            if self._input is not None and file_identity(self._record) is not None and \
                    file_identity(self._record) == file_identity(self._input):
                raise ParameterError(f"the recording {self._record} is the input file {self._input}; writing it "
                                     "would destroy that input, so pass another record=", "record")

        self._model: Model | None = None

        def load() -> Model:  # once, by start(); an application's own Model keeps its threads
            if self._model is None:
                threads = None if isinstance(model, Model) else LIVE_THREADS
                self._model = Model.load(model, provider, threads, latency=latency)
            return self._model

        def build(rate: int | None, channels: int) -> StreamingSeparator:
            return StreamingSeparator(load(), stems=stems, latency=latency, hop=hop, sample_rate=rate,
                                      channels=channels, gains=gains, resample_quality=LIVE_RESAMPLING, mixer=True)

        self._load = load
        self._build = build
        self._channels = channels
        self._devices = (input_device, output_device)
        self._blocksize = blocksize
        self._format = (format, subtype)
        self._open_stream = open_stream
        self._sample_rate = sample_rate
        self._started = self._stopped = False
        self._vanished = False
        self._sd: Any = None  # sounddevice, once imported
        self._stream: Any = None
        self._jack: Any = None  # the JackClient, once opened
        self._reader: AudioReader | None = None
        self._bridge: RealtimeBridge | None = None
        self._feeder: _Feeder | None = None
        self._saver: _Saver | None = None
        self._latency: Latency | None = None  # once started
        self._mix: Mix | None = None  # once started: what the parameter block holds
        self._mix_lock = threading.Lock()  # among the threads that change the mix (never taken by the audio thread)
        self._callback: Callable | None = None
        self._started_at = 0.0
        self._last_frames, self._last_progress = -1, 0.0
        self.separator: StreamingSeparator | None = None  # the engine, once started
        self.input_device_name: str | None = None  # the devices in use, once started (None: none opened)
        self.output_device_name: str | None = None
        self.blocksize: int = 0  # frames per callback and hop at the stream's rate, once started
        self.hop: int = 0
        self.jack_ports: dict[str, list[str]] = {}  # with JACK, once started: "in" and each output pair's port names
        self.connections: list[tuple[str, str]] = []  # the JACK connections connect= made
        self.midi_port: str | None = None  # with midi=, once started: the MIDI port whose messages change the mix

    # ----------------------------------------------------------------- starting
    def start(self) -> LiveSession:
        """Load the model, open the devices (unless ``open_stream=False``) and start playing."""
        if self._started:
            raise RuntimeError("this LiveSession was started already; make a new one")
        self._started = True
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        return self

    def _start(self) -> None:
        if self._jack_input or self._jack_output:
            self._start_jack()
            return
        if self._midi:  # before the model loads: a missing library or port is the first thing said
            from .midi_input import MidiInput

            self._midi_input = MidiInput(self._midi_source).open()
            self.midi_port = self._midi_input.name
        in_dev = out_dev = None
        device_latency = 0.0
        host_frames = 0
        if self._open_stream:
            sd = self._sd = devices.import_sounddevice()
            if self._input is None:
                in_dev = devices.find_device(sd, self._devices[0], "input")
                in_ch = devices.channels_for(sd, in_dev, "input")
            else:
                self._reader = open_input(self._input, self._channels)
                in_ch = self._reader.channels
            out_dev = devices.find_device(sd, self._devices[1], "output")
            out_ch = devices.channels_for(sd, out_dev, "output")
            self.output_device_name = devices.describe(sd, out_dev)
            self.input_device_name = devices.describe(sd, in_dev) if in_dev is not None else None
            sep = self._separator_for(sd, in_dev, in_ch, out_dev, out_ch)
        else:
            in_ch = out_ch = OWN_STREAM_CHANNELS
            sep = self._build(self._sample_rate, in_ch)
        rate = int(sep.sample_rate)
        record = self._record
        fmt = output_format(record, *self._format) if record else None  # a bad format fails before a device opens
        live_input = self._reader is None
        bridge = self._make_bridge(sep, self._blocksize, out_ch, live_input=live_input, record=record is not None)
        if self._open_stream:
            sd = self._sd
            self._stream = _open_stream(sd, bridge, live_input, in_dev, out_dev)
            device_latency = sum(self._stream.latency) if live_input else self._stream.latency
            # PortAudio's JACK host API holds one block between its ports and the callback (measured:
            # tests/test_live_jack.py); other host APIs keep theirs inside the device latency they report.
            host_frames = self.blocksize if live_input and out_dev is not None and devices.is_jack(sd, out_dev) else 0
        else:
            self._callback = bridge.duplex_callback()
        latency = Latency(bridge.latency, bridge.buffers, device_latency, rate, host_frames=host_frames)
        if record is not None:
            assert fmt is not None  # found above for every recording
            self._saver = _Saver(*_open_writer(record, rate, out_ch, fmt), bridge)
        self._latency = latency
        self._start_bridge()
        if self._midi_input is not None:
            self._midi_input.attach(self, self._midi_mapping(sep))
        if self._saver is not None:
            self._saver.start()
        if self._stream is not None:
            try:
                self._stream.start()
            except self._sd.PortAudioError as exc:
                raise DeviceError(f"cannot start the audio device: {exc}; see list_devices()") from None
        self._started_at = self._last_progress = time.monotonic()

    def _start_jack(self) -> None:
        """The session's own JACK client: its ports, the compiled process callback, the ports' latency."""
        from .jack_client import CLIENT_NAME, MIXED, JackClient

        client = self._jack = JackClient(self._jack_name or CLIENT_NAME)
        rate, period = client.rate, client.period
        if self._blocksize is not None and self._blocksize != period:
            raise ParameterError(f"blocksize={self._blocksize}: with JACK the block is the server's period, {period} "
                                 "frames here; leave blocksize out, or restart the JACK server with that period",
                                 "blocksize")
        if self._input is not None:
            self._reader = open_input(self._input, self._channels)
            in_ch = self._reader.channels
        else:
            in_ch = JACK_CHANNELS
        sep = self._build(rate, in_ch)  # resamples if the server's rate is not the model's
        live_input = self._jack_input
        bridge = self._make_bridge(sep, period, JACK_CHANNELS, live_input=live_input, stem_outputs=self._jack_output)
        pairs = list(sep.stems) if self._jack_output else [MIXED]
        client.register(inputs=live_input, outputs=pairs, dry=self._jack_output, midi=self._midi)
        client.attach(bridge)
        self.jack_ports = {"in": [p.name for p in client.inputs]}
        for i, name in enumerate(client.pairs):
            ports = client.dry if name == "dry" else client.outputs[2 * i:2 * i + 2]
            self.jack_ports[name] = [p.name for p in ports]
        latency = Latency(bridge.latency, bridge.buffers, 0.0, rate, between_ports=True, from_file=not live_input)
        self._latency = latency
        self.input_device_name = f"JACK ports {client.name}:in_L/R" if live_input else None
        self.output_device_name = f"JACK ports {client.name}:" + ", ".join(f"{name}_L/R" for name in client.pairs)
        if self._midi:
            self._midi_reader = _MidiReader(bridge, self, self._midi_mapping(sep))
            self.jack_ports["midi_in"] = [client.midi_in.name]
            self.midi_port = client.midi_in.name
        self._start_bridge()
        if self._midi_reader is not None:
            self._midi_reader.start()
        client.activate()
        self.connections = client.connect(self._connect)
        if self._midi_source is not None:
            self.connections += client.connect_midi(self._midi_source)
        self._started_at = self._last_progress = time.monotonic()

    def _midi_mapping(self, sep: StreamingSeparator):
        """The MIDI map of ``midi_map=`` or the default one, for the stems ``sep`` separates (live/midi_map.py),
        learning a control for ``midi_learn=``'s stem if given."""
        from .midi_map import MidiLearn, MidiMap

        stems = sep.mix.names
        mapping = MidiMap.default(stems) if self._midi_map is None else MidiMap.read(self._midi_map, stems)
        if self._midi_learn is None:
            return mapping
        self._learn = MidiLearn(mapping, self._midi_learn, stems)
        return self._learn

    @property
    def midi_learned(self) -> str | None:
        """With ``midi_learn=``: the binding learned (as the map file's line), once a control change arrived."""
        learned = self._learn.learned if self._learn is not None else None
        return learned.line() if learned is not None else None

    def _make_bridge(self, sep: StreamingSeparator, blocksize: int | None, out_channels: int, *, live_input: bool,
                     record: bool = False, stem_outputs: bool = False) -> RealtimeBridge:
        """Both start paths: the bridge for ``sep`` at its rate, with ``blocksize`` frames per callback (None: the
        hop at that rate)."""
        self.separator = sep
        self.hop = stream_hop(sep)
        self.blocksize = blocksize or check_blocksize(self.hop)
        self._mix = sep.mix
        self._bridge = RealtimeBridge(sep, int(sep.sample_rate), self.blocksize, out_channels, live_input=live_input,
                                      gains=sep.mix.factors(), record=record, stem_outputs=stem_outputs,
                                      inference_budget=self._budget)
        return self._bridge

    def _start_bridge(self) -> None:
        """Both start paths, before the audio starts: the worker, and for file playback the reader and a quarter
        second separated ahead."""
        bridge = self._bridge
        assert bridge is not None  # made by _make_bridge
        bridge.start()
        if self._reader is not None:
            self._feeder = _Feeder(self._reader, bridge, bridge.samplerate)
            self._feeder.start()
            _prebuffer(bridge, self._feeder, bridge.samplerate)

    def _separator_for(self, sd, in_dev, in_ch: int, out_dev, out_ch: int) -> StreamingSeparator:
        """A separator at a rate the devices accept: the model's (or the file's) if possible, else the
        device's default with the separator resampling."""
        if self._reader is not None:
            return self._build(devices.choose_samplerate(sd, self._reader.samplerate, None, in_ch, out_dev, out_ch),
                               in_ch)
        rate = devices.choose_samplerate(sd, self._load().info.sample_rate, in_dev, in_ch, out_dev, out_ch)
        return self._build(rate, in_ch)

    # ----------------------------------------------------------------- while it plays
    def _ready(self) -> tuple[RealtimeBridge, Latency]:
        if self._bridge is None or self._latency is None:
            raise RuntimeError("this LiveSession has not started; call start() first")
        return self._bridge, self._latency

    @property
    def latency(self) -> Latency:
        """Input to output delay, by component (the device's part is 0 with ``open_stream=False``)."""
        return self._ready()[1]

    @property
    def callback(self) -> Callable:
        """With ``open_stream=False``: the ``sounddevice.Stream`` callback ``(indata, outdata, frames, time,
        status)`` that plays the separation into ``outdata`` (copies only; call it from your own callback)."""
        if self._callback is None:
            raise RuntimeError("callback is for LiveSession(open_stream=False) once started")
        return self._callback

    @property
    def elapsed(self) -> float:
        """Seconds since the session started playing."""
        return time.monotonic() - self._started_at if self._started_at else 0.0

    def stats(self) -> LiveStats:
        """The counters so far (missed deadlines, xruns, load...); also after ``stop()``."""
        bridge, latency = self._ready()
        return bridge.stats(latency, self._record, self._saver.frames if self._saver else 0)

    def levels(self) -> Levels:
        """Peak levels of the input and of each stem since the previous call."""
        return self._ready()[0].levels()

    # ----------------------------------------------------------------- the mix, while it plays
    @property
    def mix(self) -> Mix:
        """The mix playing now (every stem the model separates: each one's gain, mute and solo), as a ``Mix``."""
        self._ready()
        assert self._mix is not None  # set with the bridge
        return self._mix

    def set_mix(self, mix: Mix) -> None:
        """Play ``mix`` (a ``Mix`` of this session's stems, e.g. ``session.mix.with_gain("vocals", -6)``): each
        stem's level moves to it over 5 ms from the next audio block on. Safe from any thread."""
        bridge = self._ready()[0]
        if not isinstance(mix, Mix) or mix.names != self.mix.names:
            raise ParameterError(f"mix={mix!r}: give a Mix of this session's stems ({', '.join(self.mix.names)}), "
                                 "e.g. session.mix.with_gain('vocals', -6)", "mix")
        with self._mix_lock:
            self._apply(bridge, mix)

    def _change(self, how: Callable[[Mix], Mix]) -> None:
        bridge = self._ready()[0]
        with self._mix_lock:  # read, change and write as one step: two threads never undo each other's change
            self._apply(bridge, how(self.mix))

    def _apply(self, bridge: RealtimeBridge, mix: Mix) -> None:
        self._mix = mix
        bridge.set_mix(mix.factors())

    def set_gain(self, stem: str, db: float) -> None:
        """Stem ``stem``'s gain in dB (up to +40, or -inf), heard from the next audio block on, ramped over 5 ms."""
        check_db(db)
        self._change(lambda mix: mix.with_gain(stem, db))

    def mute(self, stem: str, on: bool = True) -> None:
        """Mute stem ``stem`` (``on=False``: unmute), ramped over 5 ms like a gain."""
        self._change(lambda mix: mix.with_mute(stem, on))

    def solo(self, stem: str, on: bool = True) -> None:
        """Solo stem ``stem`` (``on=False``: release it): while any stem is soloed, only the soloed ones play."""
        self._change(lambda mix: mix.with_solo(stem, on))

    def mix_heard_from(self, timeout: float = 1.0) -> int | None:
        """The output position (frames since the session started) from which the latest mix change is heard:
        the first frame of the audio block that took it, the start of its ramp. None if the audio callback
        has not run within ``timeout`` seconds (a stopped device)."""
        bridge = self._ready()[0]
        deadline = time.monotonic() + timeout
        while True:
            taken, at, _ = bridge.mix_taken()
            if taken:
                return at
            if time.monotonic() > deadline:
                return None
            time.sleep(0.0005)

    def _ended(self) -> bool:
        """Whether the session stopped by itself: the file played out, a thread failed, or the device vanished
        (its stream stopped, or its callbacks stopped coming)."""
        bridge = self._ready()[0]
        if bridge.finished or bridge.error or (self._feeder is not None and self._feeder.error):
            return True
        if self._jack is not None:
            if bridge.period_changed or self._jack.shut_down.is_set():
                self._vanished = True
            if self._stopped:
                return self._vanished
        elif self._stream is None or self._stopped:
            return self._vanished
        now = time.monotonic()
        frames = bridge.frames_played
        if frames != self._last_frames:
            self._last_frames, self._last_progress = frames, now
        stopped = self._stream is not None and not self._stream.active
        if stopped or now - self._last_progress > max(1.0, 20 * bridge.blocksize / bridge.samplerate):
            self._vanished = True
        return self._vanished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session ends by itself (a file played out, an error, the device gone) or ``timeout``
        seconds pass; True if it ended. Live input never ends by itself: ``stop()`` ends it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended():
            remaining = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(POLL_SECONDS, remaining))
        return True

    # ----------------------------------------------------------------- stopping
    def stop(self) -> LiveStats:
        """Stop playing, finalize the recording and return the final counters; raises what went wrong in the
        session's threads or with the device (the recording is kept either way). Calling it again only
        returns the counters."""
        if not self._started or self._stopped:
            return self.stats()
        error = self._finish()
        if error is not None:
            raise error
        return self.stats()

    def _finish(self) -> BaseException | None:
        """Release everything once and return the first failure, if any."""
        self._ended()  # last look: a device that vanished must not be closed (see devices.abandon_portaudio)
        self._stopped = True
        with signals_deferred():  # a second Ctrl-C or a SIGTERM must not interrupt finalizing the recording
            self._release()
        bridge = self._ready()[0]
        for error in (bridge.error, self._feeder.error if self._feeder else None,
                      self._saver.error if self._saver else None,
                      self._midi_reader.error if self._midi_reader else None,
                      self._midi_input.error if self._midi_input else None):
            if error is not None:
                return error
        if self._vanished and self._jack is not None:
            if bridge.period_changed:
                return DeviceError(f"the JACK server changed its period from {bridge.blocksize} frames after "
                                   f"{bridge.seconds_played:.1f} s, so the delay reported no longer holds; start the "
                                   "session again")
            return DeviceError(f"the JACK server stopped after {bridge.seconds_played:.1f} s (or it dropped this "
                               "client)")
        if self._vanished:
            kept = f"; the recording up to then is in {self._record}" if self._record else ""
            return DeviceError(f"the audio device stopped after {bridge.seconds_played:.1f} s (unplugged, or the "
                               f"sound server quit){kept}")
        return None

    def _release(self) -> None:
        """Close the stream, stop the threads, finalize the recording, close the input: whatever was opened."""
        self._stopped = True
        try:
            if self._jack is not None:
                self._jack.close()  # the process callback stops before the bridge it reads is released
            if self._stream is not None:
                if self._vanished:
                    devices.abandon_portaudio(self._sd)
                else:
                    _close_stream(self._stream)
        finally:
            if self._midi_reader is not None:
                self._midi_reader.stop()
            if self._midi_input is not None:
                self._midi_input.close()
            if self._bridge is not None:
                self._bridge.stop()
            if self._feeder is not None:
                self._feeder.stop()
            if self._saver is not None:
                self._saver.stop()
            if self._reader is not None:
                self._reader.close()

    def __enter__(self) -> LiveSession:
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.stop()
        elif not self._stopped:
            self._finish()  # already failing: finalize, keep the exception that is on its way out


def _check_jack_options(jack_input: bool, jack_output: bool, input, output, record, open_stream: bool,
                        input_device, output_device, connect: list[str], jack_name: str | None) -> None:
    """Refuse the combinations of JACK ports and other options that cannot work, naming the fix, and the client
    names and port patterns JACK cannot take, before a server is asked."""
    from .jack_client import check_client_name, check_pattern

    if output not in (None, SPEAKERS, JACK):
        raise ParameterError(f"output={output!r}: a live session plays to output='speakers' or output='jack'; to "
                             "save what it plays pass record=", "output")
    if not (jack_input or jack_output):
        if connect:
            raise ParameterError("connect= wires JACK ports; it needs input='jack' or output='jack'", "connect")
        if jack_name is not None:
            raise ParameterError("jack_name= names the session's JACK client; it needs input='jack' or "
                                 "output='jack'", "jack_name")
        return
    if jack_name is not None:
        check_client_name(jack_name)
    for text in connect:
        check_pattern(text)
    if jack_output and not jack_input and input is None:
        raise ParameterError("output='jack' takes its input from JACK ports or a file: pass input='jack' (and "
                             "connect= to wire a source) or input='song.flac'", "output")
    if not open_stream:
        raise ParameterError("open_stream=False runs in your application's stream; JACK ports (input='jack', "
                             "output='jack') are the session's own", "open_stream")
    if record is not None:
        raise ParameterError(f"record={os.fspath(record)!r}: a recording saves what a sound device plays; with JACK "
                             "ports record them where they go (your DAW, or jack_capture)", "record")
    for name, value in (("input_device", input_device), ("output_device", output_device)):
        if value is not None:
            raise ParameterError(f"{name}= picks a sound device; with JACK ports connect them instead, e.g. "
                                 "connect='system:capture'", name)


def _open_stream(sd, bridge: RealtimeBridge, duplex: bool, in_dev, out_dev):
    """A duplex stream for the microphone (low latency), an output stream for file playback, both
    running the bridge's compiled callback."""
    try:
        if duplex:
            return bridge.open_stream(sd, device=(in_dev, out_dev), latency="low")
        return bridge.open_stream(sd, device=out_dev, latency="high")
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot open the audio device: {exc}; pick another (input_device=, output_device=; "
                          "see list_devices())") from None


def _open_writer(path: Path, rate: int, channels: int, fmt: tuple[str, str]) -> tuple[AudioWriter, OutputSet]:
    """The recording's writer, under a temporary name its ``OutputSet`` (locked: one session per file) renames."""
    if str(path) != STDIO:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AudioIOError(f"cannot write to {path.parent}: {exc.strerror or exc}; pass another record=",
                               "record") from None
    owned = OutputSet([path], parameter="record")
    owned.lock()
    try:
        return AudioWriter(path, rate, channels, *fmt, target=owned.temporary(path)), owned
    except BaseException:
        owned.discard([path])
        owned.release()
        raise


def _prebuffer(bridge: RealtimeBridge, feeder: _Feeder, rate: int) -> None:
    """File playback starts once a quarter second is separated (or the whole, shorter, file)."""
    while bridge.buffered() < PREBUFFER_SECONDS * rate and not bridge.all_separated:
        if bridge.error or feeder.error:
            return
        time.sleep(0.005)


def _close_stream(stream) -> None:
    """Stop without playing out what is queued (stopping means now) and release the device."""
    stream.abort()
    stream.close()


class _SessionThread:
    """One of the session's helper threads (file reader, MIDI reader, recording writer): started and stopped with
    the session; what goes wrong in ``_run`` is kept in ``error``, which the session reports when it stops."""

    NAME = "realtime-split"

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._running = False
        self._thread = threading.Thread(target=self._guarded, name=self.NAME, daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread.is_alive():
            self._thread.join()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        raise NotImplementedError


class _Feeder(_SessionThread):
    """Reads the input file on its own thread and feeds the bridge ahead of playback, resampled to
    the stream rate if the device refused the file's rate."""

    NAME = "realtime-split-reader"

    def __init__(self, reader, bridge: RealtimeBridge, rate: int):
        super().__init__()
        self.reader, self.bridge, self.rate = reader, bridge, rate
        self._resampler = None
        if reader.samplerate != rate:
            self._resampler = playback_resampler(reader.samplerate, rate, reader.channels)

    def _run(self) -> None:
        buf = np.zeros((4096, self.reader.channels), np.float32)
        while self._running:
            block = self.reader.read(buf)
            last = len(block) == 0
            if self._resampler is not None:
                block = self._resampler.resample_chunk(block, last=last)
            for start in range(0, len(block), 1024):
                self._put(block[start:start + 1024])
            if last:
                break
        self.bridge.input_done = True

    def _put(self, block: np.ndarray) -> None:
        while self._running and self.bridge.input_space() < len(block):
            time.sleep(0.01)
        if self._running:
            self.bridge.write_input(np.ascontiguousarray(block, np.float32))


class _MidiReader(_SessionThread):
    """Applies what arrives on ``midi_in`` to the mix: the JACK callback copies the raw messages into the bridge's
    MIDI ring, this thread reads it every millisecond and calls the session's ``set_gain``, ``mute``, ``solo``
    through the map. (Parsing here keeps the callback a copy; the millisecond is part of the delay the
    benchmark measures.)"""

    POLL = 0.001
    NAME = "realtime-split-midi"

    def __init__(self, bridge: RealtimeBridge, session: LiveSession, mapping):
        super().__init__()
        self.bridge, self.session, self.mapping = bridge, session, mapping
        self.applied = self.ignored = 0

    def _run(self) -> None:
        while self._running:
            for status, data1, data2 in self.bridge.read_midi():
                if self.mapping.apply(self.session, status, data1, data2):
                    self.applied += 1
                else:
                    self.ignored += 1
            time.sleep(self.POLL)


class _Saver(_SessionThread):
    """Writes what the callback played to the recording from its own thread, never the callback."""

    NAME = "realtime-split-writer"

    def __init__(self, writer: AudioWriter, owned: OutputSet, bridge: RealtimeBridge):
        super().__init__()
        self.writer, self.owned, self.bridge = writer, owned, bridge
        self.frames = 0
        self._closed = False

    def _run(self) -> None:
        while self._running:
            self.frames += self.bridge.drain_recording(self.writer.write)
            time.sleep(0.1)

    def stop(self) -> None:
        """Save the rest and finalize the file (its header), whatever happened before."""
        super().stop()
        if self._closed:
            return
        self._closed = True
        try:
            if self.error is None:
                self.frames += self.bridge.drain_recording(self.writer.write)
        except UserError as exc:  # the disk filled up: what was written is kept
            self.error = exc
        finally:
            try:
                self.writer.close()
            except UserError as exc:
                self.error = self.error or exc
            finally:  # the recording takes its name if it decodes (a full disk may leave a flac that does not)
                path = self.writer.path
                try:
                    if readable(self.writer.target):
                        self.owned.commit([path])
                    else:
                        self.owned.discard([path])
                except UserError as exc:
                    self.error = self.error or exc
                finally:
                    self.owned.release()
