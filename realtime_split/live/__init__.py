"""Live audio: the session, its sound devices or JACK client, and the bridge between an audio callback and the
inference worker.

| module | concept |
|---|---|
| ``session.py`` | ``LiveSession``: picks the rate and block, builds the bridge, runs the file reader and recorder |
| ``devices.py`` | PortAudio's devices (``list_devices()``); ``JACK``, ``SPEAKERS`` and the block sizes a stream takes |
| ``jack_client.py`` | the session's own JACK client: ports, the compiled process callback, latency ranges |
| ``bridge.py`` | ``RealtimeBridge``: rings, counters, the worker thread, the delay it adds, readings by name |
| ``callbacks.py`` | the compiled C callbacks that the audio system calls, and the LLVM intrinsics they need |
| ``kernels.py`` | numba kernels the callback and the worker run on the rings |
| ``slots.py`` | slot numbers of the arrays the callback shares with Python threads; PortAudio's flag bits |
| ``readings.py`` | what a session reports: ``Latency``, ``LiveStats``, ``Levels`` |

Slot numbers stay in bridge.py, callbacks.py and kernels.py. Nothing is imported here: ``devices.py`` and
``readings.py`` load without the audio callback, which ``bridge.py`` compiles (or loads from numba's cache)
when it is imported, so ``realtime_split`` loads ``LiveSession`` only on first use.
"""
