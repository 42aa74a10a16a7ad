"""Karaoke monitor: your own sounddevice app hears the microphone with the vocals removed.

A StreamingSeparator runs on a worker thread inside a RealtimeBridge; your callback only calls
the bridge's copy-only callback and then does its own (allocation-free) processing, so the audio
thread never waits for inference. If inference is late, the bridge plays the unseparated mix
for a moment instead of a dropout. (An app with no processing of its own can skip the Python
callback altogether: ``bridge.open_stream(sd)`` hands PortAudio the bridge's compiled callback,
so the audio thread never waits for the GIL; that is what ``realtime-split --input mic`` does.)

    python examples/karaoke_monitor.py --model model.onnx --seconds 30
"""

import argparse
import time

import sounddevice as sd

from realtime_split import StreamingSeparator
from realtime_split.devices import default_device, int_or_str
from realtime_split.realtime_bridge import MISSED, RealtimeBridge

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", help="ONNX model (default: the bundled one)")
parser.add_argument("--device", type=int_or_str, help="input and output device (index or name substring)")
parser.add_argument("--seconds", type=float, default=30.0, help="how long to run")
parser.add_argument("--volume", type=float, default=1.0, help="your app's own output volume")
args = parser.parse_args()

device = args.device if args.device is not None else (default_device(sd, "input"), default_device(sd, "output"))
rate = int(sd.query_devices(device if args.device is not None else device[1])["default_samplerate"])
separator = StreamingSeparator(args.model, stems="all", gains={"vocals": float("-inf")}, sample_rate=rate)
blocksize = 256
bridge = RealtimeBridge(separator, rate, blocksize, out_channels=2, live_input=True)
separate = bridge.duplex_callback()


def callback(indata, outdata, frames, time_info, status):
    separate(indata, outdata, frames, time_info, status)  # the mix minus the vocals, delayed
    outdata *= args.volume  # in place: nothing allocated on the audio thread


bridge.start()
with sd.Stream(device=device, samplerate=rate, blocksize=blocksize, channels=2, dtype="float32",
               callback=callback) as stream:
    print(f"karaoke: separator {bridge.latency} + buffers {bridge.buffers} samples "
          f"+ device {1000 * sum(stream.latency):.1f} ms at {rate} Hz", flush=True)
    try:
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
bridge.stop()
print(f"missed deadlines: {bridge.counters[MISSED]} blocks, xruns: {bridge.xruns}")
