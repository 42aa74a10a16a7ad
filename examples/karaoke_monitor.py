"""Karaoke monitor: your own sounddevice app hears the microphone with the vocals removed.

A LiveSession opened with ``open_stream=False`` separates on its worker thread while your stream
runs; your callback calls ``session.callback`` (it only copies) and then does its own
(allocation-free) processing, so the audio thread never waits for inference. If inference is
late, the session plays the unseparated mix for a moment instead of a dropout. (An app with no
processing of its own lets the session open the devices itself: ``LiveSession(...).start()``
hands PortAudio a compiled callback, so the audio thread never waits for the GIL; that is what
``realtime-split --input mic`` does.)

    python examples/karaoke_monitor.py --model model.onnx --seconds 30
"""

import argparse
import time

import sounddevice as sd

from realtime_split import LiveSession, list_devices

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", help="ONNX model (default: the bundled one)")
parser.add_argument("--device", help="input and output device: index or name substring (default: the session's)")
parser.add_argument("--seconds", type=float, default=30.0, help="how long to run")
parser.add_argument("--volume", type=float, default=1.0, help="your app's own output volume")
args = parser.parse_args()

devices = list_devices()
if args.device is not None:
    chosen = next(d for d in devices if args.device in (str(d.index), d.name) or args.device.lower() in d.name.lower())
    device, rate = chosen.index, int(chosen.default_samplerate)
else:  # the input and output a live session would pick (JACK's when it runs)
    device = (next(d.index for d in devices if d.default_input), next(d.index for d in devices if d.default_output))
    rate = int(next(d for d in devices if d.default_output).default_samplerate)
blocksize = 256

session = LiveSession(args.model, stems="all", gains={"vocals": float("-inf")}, open_stream=False,
                      sample_rate=rate, blocksize=blocksize)
with session:
    separate = session.callback

    def callback(indata, outdata, frames, time_info, status):
        separate(indata, outdata, frames, time_info, status)  # the mix minus the vocals, delayed
        outdata *= args.volume  # in place: nothing allocated on the audio thread

    with sd.Stream(device=device, samplerate=rate, blocksize=blocksize, channels=2, dtype="float32",
                   callback=callback) as stream:
        print(f"karaoke: separator {session.latency.separator} + buffers {session.latency.buffers} samples "
              f"+ device {1000 * sum(stream.latency):.1f} ms at {rate} Hz", flush=True)
        try:
            time.sleep(args.seconds)
        except KeyboardInterrupt:
            pass
stats = session.stats()
print(f"missed deadlines: {stats.missed_deadlines} blocks, xruns: {stats.xruns}")
