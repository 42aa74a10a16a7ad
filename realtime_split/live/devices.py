"""Finding the sound card: PortAudio (through sounddevice) with errors a user can act on; what a live session
plays from and to (``SPEAKERS``, ``JACK``) and the block sizes its streams may use, which the command line
checks with the same words without loading the audio callback.

Devices are chosen like python-sounddevice's examples do (an index or a name substring,
``int_or_str``), with two differences: a name matching several devices is an error listing
them instead of a guess, and when JACK is running its devices are preferred over ALSA's
default, which on many machines is a ``jack``/``pulse`` plugin device or nothing at all.

A device that is missing or refuses the stream is a ``DeviceError`` (an ``OSError``); a device
argument that matches none, or several, is a ``ParameterError`` naming ``input_device=`` or
``output_device=``.
"""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass

from ..errors import DeviceError, ParameterError

JACK = "jack"  # input= / output=: JACK ports of the session's own client (jack_client.py), not a PortAudio device
SPEAKERS = "speakers"  # output=: the default output device (PortAudio)
BLOCKSIZES = (16, 16384)  # frames per audio callback a stream may use
JACK_HOSTAPI = "JACK Audio Connection Kit"
NO_DEVICE_HINT = "is a sound server running? list devices with list_devices()"


@dataclass(frozen=True)
class AudioDevice:
    """One sound device as PortAudio reports it; ``index`` or a substring of ``name`` selects it."""

    index: int
    name: str
    hostapi: str
    input_channels: int
    output_channels: int
    default_samplerate: float
    default_input: bool  # what a live session uses for input when no input_device is given
    default_output: bool


def check_blocksize(blocksize: int) -> int:
    """``blocksize``, or a ParameterError naming the frames a stream may use per callback."""
    if (isinstance(blocksize, bool) or not isinstance(blocksize, numbers.Integral)
            or not BLOCKSIZES[0] <= blocksize <= BLOCKSIZES[1]):
        raise ParameterError(f"blocksize={blocksize!r}: choose between {BLOCKSIZES[0]} and {BLOCKSIZES[1]} "
                             "frames (e.g. 256); without blocksize= the block is the latency preset's hop", "blocksize")
    return blocksize


def import_sounddevice():
    """``import sounddevice``, turning a missing PortAudio library into an instruction."""
    try:
        import sounddevice
    except OSError as exc:
        if sys.platform == "darwin":
            fix = "brew install portaudio"
        elif sys.platform.startswith("linux"):
            fix = "sudo apt-get install libportaudio2 (Fedora: sudo dnf install portaudio)"
        else:
            fix = "pip install --force-reinstall sounddevice"
        raise DeviceError(f"live audio needs the PortAudio library, which is missing ({exc}); "
                          f"install it: {fix}") from None
    return sounddevice


def abandon_portaudio(sd) -> None:
    """Leave a stream whose device vanished open and skip PortAudio's cleanup at exit.

    Closing it, or ``Pa_Terminate`` at interpreter exit, makes PortAudio's JACK host API fail an
    assertion when the server has died, which aborts Python and loses the exit code. The process
    is about to end and the device is gone, so there is nothing left to release.
    """
    import atexit

    atexit.unregister(sd._exit_handler)


def int_or_str(text: str | int | None) -> int | str | None:
    """A device given by index (``3``) or by name substring (``USB``), as in sounddevice's examples."""
    if text is None or isinstance(text, int):
        return text
    try:
        return int(text)
    except ValueError:
        return text


def _channels_key(kind: str) -> str:
    return f"max_{kind}_channels"


def _label(sd, index: int, device: dict) -> str:
    hostapi = sd.query_hostapis(device["hostapi"])["name"]
    return (f"{index} {device['name']} ({hostapi}, {device['max_input_channels']} in, "
            f"{device['max_output_channels']} out)")


def _jack_hostapi(sd) -> int | None:
    """Index of PortAudio's JACK host API when it found a running JACK server."""
    for index, api in enumerate(sd.query_hostapis()):
        if api["name"] == JACK_HOSTAPI and api["devices"]:
            return index
    return None


def default_device(sd, kind: str) -> int:
    """The device live mode uses for ``kind`` ("input"/"output") when none is given."""
    devices = sd.query_devices()
    jack = _jack_hostapi(sd)
    candidates = []
    if jack is not None:
        candidates.append(sd.query_hostapis(jack)[f"default_{kind}_device"])
    candidates.append(sd.default.device[0 if kind == "input" else 1])
    for api in sd.query_hostapis():
        candidates.append(api[f"default_{kind}_device"])
    for index in candidates:
        if index is not None and 0 <= index < len(devices) and devices[index][_channels_key(kind)] > 0:
            return int(index)
    raise DeviceError(f"no {kind} device found; {NO_DEVICE_HINT}", f"{kind}_device")


def find_device(sd, spec: str | int | None, kind: str) -> int:
    """Resolve ``input_device``/``output_device`` (index, name substring or None) to a device index."""
    spec = int_or_str(spec)
    if spec is None:
        return default_device(sd, kind)
    devices = sd.query_devices()
    usable = [i for i, d in enumerate(devices) if d[_channels_key(kind)] > 0]
    if not usable:
        raise DeviceError(f"no {kind} device found; {NO_DEVICE_HINT}", f"{kind}_device")
    listing = "; ".join(_label(sd, i, devices[i]) for i in usable)
    parameter = f"{kind}_device"
    if isinstance(spec, int):
        if spec not in usable:
            raise ParameterError(f"{parameter}={spec}: no {kind} device with that index; {kind} devices: {listing}",
                                 parameter)
        return spec
    wanted = spec.lower()
    matches = [i for i in usable
               if wanted in f"{devices[i]['name']}, {sd.query_hostapis(devices[i]['hostapi'])['name']}".lower()]
    if len(matches) > 1:
        exact = [i for i in matches if devices[i]["name"].lower() == wanted]
        jack = _jack_hostapi(sd)
        preferred = [i for i in (exact or matches) if devices[i]["hostapi"] == jack]
        if len(exact) == 1:
            return exact[0]
        if len(preferred) == 1:
            return preferred[0]
    if not matches:
        raise ParameterError(f"{parameter}={spec!r} matches no {kind} device; {kind} devices: {listing}", parameter)
    if len(matches) > 1:
        several = "; ".join(_label(sd, i, devices[i]) for i in matches)
        raise ParameterError(f"{parameter}={spec!r} matches several {kind} devices, pass an index or a longer name: "
                             f"{several}", parameter)
    return matches[0]


def channels_for(sd, device: int, kind: str, wanted: int = 2) -> int:
    """Stereo when the device has two channels or more, else mono."""
    return max(1, min(wanted, int(sd.query_devices(device)[_channels_key(kind)])))


def choose_samplerate(sd, wanted: int, input_device: int | None, in_channels: int,
                      output_device: int, out_channels: int) -> int:
    """``wanted`` if both devices accept it, else the device's own default rate (the separator
    then resamples); a DeviceError if they accept neither."""
    def accepted(rate: float) -> bool:
        try:
            if input_device is not None:
                sd.check_input_settings(device=input_device, channels=in_channels, samplerate=rate, dtype="float32")
            sd.check_output_settings(device=output_device, channels=out_channels, samplerate=rate, dtype="float32")
        except (sd.PortAudioError, ValueError):
            return False
        return True

    if accepted(wanted):
        return int(wanted)
    device = input_device if input_device is not None else output_device
    fallback = int(sd.query_devices(device)["default_samplerate"])
    if accepted(fallback):
        return fallback
    names = " and ".join(sd.query_devices(d)["name"] for d in {input_device, output_device} if d is not None)
    raise DeviceError(f"{names} accept neither {wanted} Hz nor {fallback} Hz; pick other devices (input_device=, "
                      "output_device=; see list_devices())")


def is_jack(sd, device: int) -> bool:
    """Whether ``device`` is one of PortAudio's JACK host API's."""
    return sd.query_hostapis(sd.query_devices(device)["hostapi"])["name"] == JACK_HOSTAPI


def describe(sd, device: int) -> str:
    info = sd.query_devices(device)
    return f"{info['name']} ({sd.query_hostapis(info['hostapi'])['name']})"


def list_devices() -> list[AudioDevice]:
    """Every sound device PortAudio sees (empty without a sound server), with the input and output a live
    session uses by default marked."""
    sd = import_sounddevice()
    defaults: dict[str, int | None] = {}
    for kind in ("input", "output"):
        try:
            defaults[kind] = default_device(sd, kind)
        except DeviceError:
            defaults[kind] = None
    return [AudioDevice(index, info["name"], sd.query_hostapis(info["hostapi"])["name"],
                        int(info["max_input_channels"]), int(info["max_output_channels"]),
                        float(info["default_samplerate"]), index == defaults["input"], index == defaults["output"])
            for index, info in enumerate(sd.query_devices())]
