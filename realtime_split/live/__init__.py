"""Live audio: the session, its devices or JACK client, and the bridge between an audio callback and the
inference worker.

| module | concept |
|---|---|
| ``session.py`` | ``LiveSession``: devices or JACK client, bridge, file reader, recording |
| ``devices.py`` | finding the sound card (PortAudio through sounddevice); ``list_devices()`` |
| ``jack_client.py`` | the session's own JACK client: ports, the compiled process callback, latency ranges |
| ``bridge.py`` | ``RealtimeBridge``: rings, counters, the worker thread, the delay it adds |
| ``callbacks.py`` | the compiled C callbacks that the audio system calls |
| ``kernels.py`` | numba kernels the callback and the worker run on the rings |
| ``slots.py`` | slot numbers of the arrays the callback shares with Python threads; PortAudio's flag bits |
| ``intrinsics.py`` | LLVM intrinsics numba lacks: an int64 address as a pointer, a release fence |
| ``memory.py`` | page residency: buffers the callback writes are mapped before it runs |
| ``priority.py`` | real-time scheduling for the worker thread |

Nothing is imported here: ``devices.py`` loads without the audio callback, which ``session.py`` compiles
(or loads from numba's cache) when it is imported.
"""
