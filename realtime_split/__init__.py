"""realtime-split: separate music into stems while it plays.

``StreamingSeparator`` takes audio blocks of any size and returns the stems,
delayed by a fixed ``latency_samples``. It runs an ONNX model (see
docs/model-format.md) with ONNX Runtime; TensorFlow is never imported here.
"""

from .errors import ModelFormatError, UserError
from .separator import StreamingSeparator

__version__ = "0.1.0"
__all__ = ["StreamingSeparator", "UserError", "ModelFormatError", "__version__"]
