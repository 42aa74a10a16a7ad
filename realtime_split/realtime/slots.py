"""Slot numbers of the arrays the audio callback shares with Python threads, and PortAudio's flag bits.

Each array is preallocated by ``RealtimeBridge`` and reached by the compiled callback through
addresses (``table``). Every slot has one writer: "callback" slots are written only by the audio
callback (or, for ``IN_WRITTEN`` in file playback, only by the reader thread), "worker" slots only by
the worker thread; the other side only reads them.
"""

# counters[] slots (int64).
FRAMES = 0          # callback: frames played (= frames captured for live input)
IN_WRITTEN = 1      # callback (live) / reader (file): input samples in in_ring
PROCESSED = 2       # worker: input samples separated; out_ring holds output up to buffers + PROCESSED
WET_FROM = 3        # worker: first output position that is separated again after a skip
END = 4             # worker: output position where file playback ends (-1: live, no end)
MISSED = 5          # callback: blocks that missed their deadline (played dry, fully or partly)
INPUT_OVERFLOWS = 6   # callback: PortAudio input overflow flags
OUTPUT_UNDERFLOWS = 7  # callback: PortAudio output underflow flags
NONFINITE = 8       # callback/reader: NaN/Inf input samples replaced by 0
SKIPS = 9           # worker: times the worker skipped ahead after falling max_chunks behind
REC_WRITTEN = 10    # callback: frames copied into rec_ring
XRUNS = 11          # callback: blocks PortAudio flagged with any under- or overflow (JACK flags both kinds at once)
N_COUNTERS = 12

# fstate[] slots (float64): callback-owned mixing state and meters.
WET = 0             # current weight of the separated signal (1) versus the dry fallback (0)
DRY_GAIN = 1        # level of the dry fallback
IN_PEAK = 2         # peak input level since the status thread last reset it
N_FSTATE = 3

# table[] slots (int64): what the compiled callback gets through PortAudio's userData. numba would
# freeze global arrays into the compiled code as constants, so the bridge's arrays reach it as
# addresses and shapes; the bridge keeps the arrays (and the table) alive as long as itself.
T_IN_RING = 0       # address of in_ring
T_IN_FRAMES = 1     # its rows
T_IN_CHANNELS = 2   # its channels (= the stream's input channels)
T_OUT_RING = 3
T_OUT_FRAMES = 4
T_OUT_CHANNELS = 5  # = the stream's output channels (and rec_ring's)
T_REC_RING = 6      # 0: no recording
T_REC_FRAMES = 7
T_COUNTERS = 8
T_FSTATE = 9
T_BUFFERS = 10
T_LATENCY = 11
T_FADE = 12
T_CAPTURE = 13      # 1: duplex stream, the callback captures the input; 0: output only (file playback)
N_TABLE = 14

# PortAudio's PaStreamCallbackFlags and PaStreamCallbackResult (portaudio.h)
PA_INPUT_UNDERFLOW = 0x1
PA_INPUT_OVERFLOW = 0x2
PA_OUTPUT_UNDERFLOW = 0x4
PA_OUTPUT_OVERFLOW = 0x8
PA_CONTINUE = 0
