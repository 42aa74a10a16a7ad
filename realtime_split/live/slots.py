"""Slot numbers of the arrays the audio callback shares with Python threads, and the audio APIs' constants.

Each array is preallocated by ``RealtimeBridge`` and reached by the compiled callbacks through
addresses (``table``). Every slot has one writer: "callback" slots are written only by the audio
callback (or, for ``IN_WRITTEN`` in file playback, only by the reader thread), "worker" slots only by
the worker thread, "notifier" slots only by the audio system's notification thread (JACK's xrun
callback); the other sides only read them.
"""

# counters[] slots (int64). Positions are stream sample indices (rings.py).
FRAMES = 0          # callback: frames played (= frames captured for live input)
IN_WRITTEN = 1      # callback (live) / reader (file): input samples in in_ring
PROCESSED = 2       # worker: input samples the separator has consumed
WET_FROM = 3        # worker: first output position that is separated again after a skip
END = 4             # worker: output position where file playback ends (-1: live, no end)
MISSED = 5          # callback: blocks that missed their deadline (played dry, fully or partly)
INPUT_OVERFLOWS = 6   # callback: PortAudio input overflow flags
OUTPUT_UNDERFLOWS = 7  # callback: PortAudio output underflow flags
NONFINITE = 8       # callback/reader: NaN/Inf input samples replaced by 0
SKIPS = 9           # worker: times the worker skipped ahead after falling max_chunks behind
REC_WRITTEN = 10    # callback: frames copied into rec_ring
XRUNS = 11          # callback: blocks PortAudio flagged with any under- or overflow (JACK flags both kinds at once)
READY = 12          # worker: separated output that is final; out_ring holds it up to position buffers + READY
JACK_XRUNS = 13     # notifier: xruns the JACK server reported (anywhere in its graph)
PERIOD_CHANGES = 14  # callback: JACK cycles whose size was not the period the bridge was made for (played silent)
LONGEST_CYCLE = 15  # callback: the JACK callback's longest run, in microseconds (jack_get_time)
LATE_CYCLES = 16    # callback: JACK cycles in which the callback itself ran longer than a period (xruns it caused)
MIX_VERSION = 17    # control: bumped after each write of mix_targets (LiveSession's control threads, under its lock)
MIX_SEEN = 18       # callback: the MIX_VERSION it last took
MIX_AT = 19         # callback: the output position from which it ramps toward that version's targets
MIX_TIME = 20       # callback (JACK): the server's frame time of that cycle (jack_last_frame_time)
MIDI_WRITTEN = 21   # callback (JACK): MIDI messages copied into midi_ring
N_COUNTERS = 22

# fstate[] slots (float64): callback-owned mixing state and meters.
WET = 0             # current weight of the separated signal (1) versus the dry fallback (0)
IN_PEAK = 1         # peak input level since the status thread last reset it
N_FSTATE = 2

# table[] slots (int64): what the compiled callbacks get as their user data. numba would freeze global
# arrays into the compiled code as constants, so the bridge's arrays reach it as addresses and shapes;
# the bridge keeps the arrays (and the table) alive as long as itself.
T_IN_RING = 0       # address of in_ring (frames, channels)
T_IN_FRAMES = 1     # its rows
T_IN_CHANNELS = 2   # its channels (= the stream's input channels)
T_OUT_RING = 3      # address of out_ring (frames, outputs, channels)
T_OUT_FRAMES = 4
T_OUTPUTS = 5       # outputs in it: one per stem (the callback mixes them, or plays each on its own ports)
T_OUT_CHANNELS = 6  # channels of each output (= the stream's output channels, and rec_ring's)
T_REC_RING = 7      # 0: no recording
T_REC_FRAMES = 8
T_COUNTERS = 9
T_FSTATE = 10
T_MIX_TARGETS = 11  # address of the mix's target amplitude per stem (float64; control writes, callback reads)
T_WEIGHTS = 12      # address of the callback's scratch: the separated signal's weight per frame (float64)
T_WEIGHT_FRAMES = 13
T_BUFFERS = 14
T_LATENCY = 15
T_FADE = 16
T_CAPTURE = 17      # 1: the callback captures the input; 0: output only (file playback)
# JACK only (jack_client.py):
T_GET_BUFFER = 18   # address of libjack's jack_port_get_buffer
T_GET_TIME = 19     # address of libjack's jack_get_time
T_IN_PORTS = 20     # address of an int64 array of the input ports (jack_port_t *), one per input channel
T_OUT_PORTS = 21    # address of the output ports: pair o's channel c at o * channels + c
T_DRY_PORTS = 22    # address of the dry ports, one per channel (0: none)
T_PERIOD = 23       # the JACK period the bridge was made for
T_PERIOD_US = 24    # its length in microseconds
T_FRAME_TIME = 25   # address of libjack's jack_last_frame_time (0: none, PortAudio)
T_CLIENT = 26       # the jack_client_t * it takes
# The mixer (both callbacks):
T_MIX_STATE = 27    # address of the callback's ramp state per stem: current amplitude, step, target it ramps to
T_GAINS = 28        # address of the callback's scratch: (stems, T_WEIGHT_FRAMES) amplitudes, one per frame
T_RAMP = 29         # frames a gain change takes
T_MIXED = 30        # 1: the callback sums the stems into one output (speakers, out_L/R); 0: one output per stem
T_OUT_PAIRS = 31    # JACK: output port groups (1 when mixed, else one per stem)
# JACK MIDI (midi_in; 0: none):
T_MIDI_PORT = 32    # the midi_in port (jack_port_t *)
T_MIDI_COUNT = 33   # address of libjack's jack_midi_get_event_count
T_MIDI_GET = 34     # address of libjack's jack_midi_event_get
T_MIDI_EVENT = 35   # address of the callback's jack_midi_event_t (int64 x 3: time, size, buffer)
T_MIDI_RING = 36    # address of midi_ring (rows, 4) uint8: status, data 1, data 2, size
T_MIDI_ROWS = 37
N_TABLE = 38

# PortAudio's PaStreamCallbackFlags and PaStreamCallbackResult (portaudio.h)
PA_INPUT_UNDERFLOW = 0x1
PA_INPUT_OVERFLOW = 0x2
PA_OUTPUT_UNDERFLOW = 0x4
PA_OUTPUT_OVERFLOW = 0x8
PA_CONTINUE = 0
