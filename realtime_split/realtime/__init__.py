"""The real-time side of live audio: the bridge between an audio callback and the inference worker.

| module | concept |
|---|---|
| ``slots.py`` | slot numbers of the arrays the callback shares with Python threads; PortAudio's flag bits |
| ``memory.py`` | page residency: buffers the callback writes are mapped before it runs |
| ``intrinsics.py`` | LLVM intrinsics numba lacks: an int64 address as a pointer, a release fence |
| ``kernels.py`` | numba kernels the callback and the worker run on the rings |
| ``callbacks.py`` | the compiled C callbacks that the audio system calls |
| ``priority.py`` | real-time scheduling for the worker thread |
| ``bridge.py`` | ``RealtimeBridge``: rings, counters, the worker thread, the delay it adds |
"""

from .bridge import RealtimeBridge

__all__ = ["RealtimeBridge"]
