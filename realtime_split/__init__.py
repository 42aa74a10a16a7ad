"""realtime-split: separate music into stems while it plays.

- Whole arrays and files: ``separate(audio, sample_rate)``, ``separate_file(input, output)``, or a
  ``Separator`` that keeps its model loaded for many; the stems line up with the input.
- Streams: ``StreamingSeparator`` takes audio blocks of any size and returns the stems, delayed
  by a fixed ``latency_samples``.
- Live audio: ``LiveSession`` (microphone, JACK ports or a file to the speakers or to one pair of JACK
  ports per stem, or inside an application's own audio callback), with named counters in ``LiveStats``
  and a mix of every stem changed while it plays (``set_gain``, ``mute``, ``solo``; a ``Mix``, which files
  take as ``gains=`` too); ``list_devices()``.
- A catalogue: ``batch(inputs, output)`` separates many files on worker processes or a Ray cluster,
  resumably (a manifest in ``output``), and returns a ``BatchResult``.
- Models: ``Model.load(name | path)`` loads one once for any number of separators and streams (at any
  sample rate and channel count); ``bundled_models()`` lists the bundled ones.
- Errors: ``ParameterError`` (a ``ValueError``), ``AudioIOError`` and ``DeviceError`` (``OSError``\\ s),
  all ``UserError``\\ s.

It runs an ONNX model (see docs/model-format.md) with ONNX Runtime; TensorFlow is never imported here.
"""

from typing import TYPE_CHECKING

from .api import Separation, Separator, separate, separate_file
from .catalogue.job import BatchFile, BatchProgress, BatchResult, batch
from .errors import AudioIOError, DeviceError, ModelFormatError, ParameterError, UserError
from .file_mode import FileResult, Progress
from .live.devices import AudioDevice, list_devices
from .live.readings import Latency, Levels, LiveStats
from .mix import Mix, StemMix
from .model import Model
from .registry import BundledModel, bundled_models
from .separator import SeparatorStats, StreamingSeparator

if TYPE_CHECKING:
    from .live.session import LiveSession

__version__ = "0.1.0"
__all__ = [
    "separate", "separate_file", "Separator", "Separation", "FileResult", "Progress",
    "batch", "BatchResult", "BatchFile", "BatchProgress",
    "StreamingSeparator", "SeparatorStats", "Mix", "StemMix",
    "LiveSession", "LiveStats", "Levels", "Latency", "AudioDevice", "list_devices",
    "Model", "BundledModel", "bundled_models",
    "UserError", "ParameterError", "ModelFormatError", "AudioIOError", "DeviceError",
    "__version__",
]


def __getattr__(name: str):
    """``LiveSession`` loads on first use: importing it compiles the audio callback, which file work never needs."""
    if name == "LiveSession":
        from .live.session import LiveSession

        return LiveSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
