"""Live mode: ``--input mic`` (or a file played in real time) separated to the speakers.

The pieces: devices.py picks the sound card, realtime_bridge.py keeps the audio callback
real-time safe while a worker thread separates, status.py reports. This module wires them to the
command line and owns the non-audio threads that touch files: a reader that feeds a file into
the bridge ahead of playback, and a writer that saves what was played (``--output FILE``). Both
finalize on Ctrl-C, on errors and when the device disappears, so nothing played is lost.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soxr

from . import devices
from .audio_files import STDIO, AudioWriter, file_identity, open_input, output_format
from .cli import LIVE_INPUT, LIVE_OUTPUT, announce_model
from .errors import UserError, signals_deferred
from .realtime_bridge import END, FRAMES, RealtimeBridge
from .separator import StreamingSeparator
from .status import Latency, StatusLine, summary
from .stems import linear_gains

POLL_SECONDS = 0.05
# A device rate other than the model's: short soxr filters add ~14 ms instead of ~43 ms at 48 kHz.
LIVE_RESAMPLING = "LQ"
LIVE_THREADS = 1  # one ONNX Runtime thread on the real-time worker: steady under load (see inference.session_options)
PREBUFFER_SECONDS = 0.25  # file playback: separated audio ready before the stream starts


def list_devices() -> int:
    return devices.list_devices()


def run(args: argparse.Namespace) -> int:
    sd = devices.import_sounddevice()
    source = _source(args)
    record = _record_path(args)
    stems = args.stem or ("all" if args.gain else "vocals")  # a gain alone means "the mix, re-balanced"

    reader = None
    if source is None:
        in_dev = devices.find_device(sd, args.input_device, "input")
        in_ch = devices.channels_for(sd, in_dev, "input")
    else:
        in_dev = None
        reader = open_input(source, args.channels)
        in_ch = reader.channels
    try:
        out_dev = devices.find_device(sd, args.output_device, "output")
        out_ch = devices.channels_for(sd, out_dev, "output")
        sep = _separator(args, sd, stems, reader, in_dev, in_ch, out_dev, out_ch)
        announce_model(args, sep)
        return _play(args, sd, sep, reader, in_dev, out_dev, out_ch, record)
    finally:
        if reader is not None:
            reader.close()


def _source(args: argparse.Namespace) -> Path | None:
    """None for the microphone, else the file to play."""
    if len(args.input) != 1:
        raise UserError("live mode plays one input; pass --input mic or --input FILE --output speakers")
    if args.input[0] == LIVE_INPUT:
        return None
    if args.offline:
        raise UserError("--offline separates files, not live playback; drop it or pass --output DIR/")
    return Path(args.input[0])


def _record_path(args: argparse.Namespace) -> Path | None:
    if args.output in (None, LIVE_OUTPUT):
        return None
    path = Path(args.output)
    if args.output.endswith(("/", "\\")) or path.is_dir():
        raise UserError(f"live mode records the monitored sound to one file; pass --output FILE.wav, not {args.output}")
    if args.input[0] != LIVE_INPUT and file_identity(path) is not None and \
            file_identity(path) == file_identity(args.input[0]):
        raise UserError(f"the recording {path} is the input file {args.input[0]}; writing it would destroy that "
                        "input, so choose another --output")
    return path


def _separator(args, sd, stems, reader, in_dev, in_ch, out_dev, out_ch):
    """A separator at a rate the devices accept: the model's (or the file's) if possible, else the
    device's default with the separator resampling."""

    def build(rate):
        # No --latency: the model's default preset; no --model: the bundled model for it (fast, at balanced).
        return StreamingSeparator(model=args.model, stems=stems, provider=args.provider, latency=args.latency,
                                  hop=args.hop, sample_rate=rate, channels=in_ch, gains=args.gain or None,
                                  threads=LIVE_THREADS, resample_quality=LIVE_RESAMPLING)

    if reader is not None:
        rate = devices.choose_samplerate(sd, reader.samplerate, None, in_ch, out_dev, out_ch)
        return build(rate)
    sep = build(None)
    rate = devices.choose_samplerate(sd, sep.model_sample_rate, in_dev, in_ch, out_dev, out_ch)
    return sep if rate == sep.sample_rate else build(rate)


def _dry_gain(sep: StreamingSeparator) -> float:
    """Level of the unseparated fallback on a missed deadline: the loudest selected stem's gain."""
    return float(np.max(linear_gains(sep.stems, sep.gains_db)))


def _play(args, sd, sep, reader, in_dev, out_dev, out_ch, record: Path | None) -> int:
    rate = int(sep.sample_rate)
    hop = max(1, round(sep.geometry.hop * rate / sep.model_sample_rate))
    blocksize = args.blocksize or hop
    if not 16 <= blocksize <= 16384:
        raise UserError(f"--blocksize {blocksize}: choose between 16 and 16384 frames (e.g. 256)")
    fmt = _output_format(record, args) if record else None  # a bad --output fails before any device opens
    bridge = RealtimeBridge(sep, rate, blocksize, out_ch, live_input=reader is None,
                            dry_gain=_dry_gain(sep), record=record is not None)
    stream = _open_stream(sd, bridge, reader is None, in_dev, out_dev)
    device_latency = sum(stream.latency) if reader is None else stream.latency
    latency = Latency(bridge.latency, bridge.buffers, device_latency, rate)
    names = devices.describe(sd, out_dev) if in_dev is None else \
        f"{devices.describe(sd, in_dev)} -> {devices.describe(sd, out_dev)}"
    print(f"realtime-split: live {', '.join(sep.stems)} from {reader.path if reader else 'the microphone'} "
          f"({names}), block {blocksize}, hop {hop}: {latency}", file=sys.stderr, flush=True)
    status = StatusLine(bridge, latency, enabled=False if args.no_progress else None)
    feeder = saver = None
    vanished = False
    try:
        if record is not None:
            assert fmt is not None  # found above for every recording
            saver = _Saver(_open_writer(record, rate, out_ch, fmt), bridge)
        bridge.start()
        if reader is not None:
            feeder = _Feeder(reader, bridge, rate)
            feeder.start()
            _prebuffer(bridge, feeder, rate)
        if saver is not None:
            saver.start()
        try:
            stream.start()
        except sd.PortAudioError as exc:
            raise UserError(f"cannot start the audio device: {exc}; see --list-devices") from None
        vanished = _wait(args, stream, bridge, feeder, status, rate)
    finally:
        with signals_deferred():  # a second Ctrl-C or a SIGTERM must not interrupt finalizing the recording
            if vanished:
                devices.abandon_portaudio(sd)
            else:
                _close_stream(stream)
            bridge.stop()
            if feeder is not None:
                feeder.stop()
            saved = saver.stop() if saver is not None else None
            status.close()
            print(summary(bridge, latency, saved), file=sys.stderr, flush=True)
    for error in (bridge.error, feeder.error if feeder else None, saver.error if saver else None):
        if error is not None:
            raise error
    if vanished:
        kept = f"; the recording up to then is in {record}" if record else ""
        raise UserError(f"the audio device stopped after {bridge.seconds_played:.1f} s (unplugged, or the sound "
                        f"server quit){kept}")
    return 0


def _open_stream(sd, bridge: RealtimeBridge, duplex: bool, in_dev, out_dev):
    """A duplex stream for the microphone (low latency), an output stream for file playback, both
    running the bridge's compiled callback."""
    try:
        if duplex:
            return bridge.open_stream(sd, device=(in_dev, out_dev), latency="low")
        return bridge.open_stream(sd, device=out_dev, latency="high")
    except sd.PortAudioError as exc:
        raise UserError(f"cannot open the audio device: {exc}; pick another with --input-device/--output-device "
                        "(see --list-devices)") from None


def _output_format(path: Path, args) -> tuple[str, str]:
    return output_format(path, args.file_format, args.subtype)


def _open_writer(path: Path, rate: int, channels: int, fmt: tuple[str, str]) -> AudioWriter:
    if str(path) != STDIO:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write to {path.parent}: {exc.strerror or exc}; choose another --output") from None
    return AudioWriter(path, rate, channels, *fmt)


def _prebuffer(bridge: RealtimeBridge, feeder: _Feeder, rate: int) -> None:
    """File playback starts once a quarter second is separated (or the whole, shorter, file)."""
    while bridge.buffered() < PREBUFFER_SECONDS * rate and bridge.counters[END] < 0:
        if bridge.error or feeder.error:
            return
        time.sleep(0.005)


def _wait(args, stream, bridge: RealtimeBridge, feeder, status: StatusLine, rate: int) -> bool:
    """Run until --duration, the end of the file, an error in a thread, or Ctrl-C (KeyboardInterrupt).
    True when the device vanished: the stream stopped or its callbacks stopped coming."""
    stall_limit = max(1.0, 20 * bridge.blocksize / rate)
    started = time.monotonic()
    last_frames, last_progress = -1, started
    while True:
        time.sleep(POLL_SECONDS)
        now = time.monotonic()
        status.update(now - started)
        if args.duration is not None and now - started >= args.duration:
            return False
        if bridge.finished or bridge.error or (feeder is not None and feeder.error):
            return False
        frames = int(bridge.counters[FRAMES])
        if frames != last_frames:
            last_frames, last_progress = frames, now
        if not stream.active or now - last_progress > stall_limit:
            return True


def _close_stream(stream) -> None:
    """Stop without playing out what is queued (Ctrl-C means now) and release the device."""
    stream.abort()
    stream.close()


class _Feeder:
    """Reads the input file on its own thread and feeds the bridge ahead of playback, resampled to
    the stream rate if the device refused the file's rate."""

    def __init__(self, reader, bridge: RealtimeBridge, rate: int):
        self.reader, self.bridge, self.rate = reader, bridge, rate
        self.error: BaseException | None = None
        self._running = False
        self._thread = threading.Thread(target=self._run, name="realtime-split-reader", daemon=True)
        self._resampler = None
        if reader.samplerate != rate:
            self._resampler = soxr.ResampleStream(reader.samplerate, rate, reader.channels, dtype="float32")

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._thread.join()

    def _run(self) -> None:
        try:
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
        except BaseException as exc:
            self.error = exc

    def _put(self, block: np.ndarray) -> None:
        while self._running and self.bridge.input_space() < len(block):
            time.sleep(0.01)
        if self._running:
            self.bridge.write_input(np.ascontiguousarray(block, np.float32))


class _Saver:
    """Writes what the callback played to ``--output FILE`` from its own thread, never the callback."""

    def __init__(self, writer, bridge: RealtimeBridge):
        self.writer, self.bridge = writer, bridge
        self.frames = 0
        self.error: BaseException | None = None
        self._running = False
        self._thread = threading.Thread(target=self._run, name="realtime-split-writer", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def _run(self) -> None:
        try:
            while self._running:
                self.frames += self.bridge.drain_recording(self.writer.write)
                time.sleep(0.1)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> str:
        """Save the rest and finalize the file (its header), whatever happened before."""
        self._running = False
        if self._thread.is_alive():
            self._thread.join()
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
        rate = self.bridge.samplerate
        lost = f", {self.bridge.record_lost / rate:.1f} s lost to a slow disk" if self.bridge.record_lost else ""
        return f"recorded {self.frames / rate:.1f} s to {self.writer.path}{lost}"

