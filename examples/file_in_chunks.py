"""Feed a file to StreamingSeparator in chunks of random size and write one file per stem.

The separator returns every chunk's stems ``latency_samples`` late (``process``). To get stems that
line up with the input sample for sample (as a DAW or a file writer needs), ``aligned(chunks)`` drops
the first ``latency_samples`` output frames and appends ``flush()``, the frames still inside.

    python examples/file_in_chunks.py song.wav stems/ --model model.onnx
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from realtime_split import StreamingSeparator

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("input", help="audio file (mono or stereo)")
parser.add_argument("output", type=Path, help="directory for <stem>.wav")
parser.add_argument("--model", help="ONNX model (default: the bundled one)")
parser.add_argument("--seed", type=int, default=0, help="seed of the random chunk sizes")
args = parser.parse_args()

rng = np.random.default_rng(args.seed)
with sf.SoundFile(args.input) as f:
    sep = StreamingSeparator(args.model, sample_rate=f.samplerate, channels=min(f.channels, 2))
    args.output.mkdir(parents=True, exist_ok=True)
    writers = [sf.SoundFile(args.output / f"{stem}.wav", "w", f.samplerate, sep.channels, "FLOAT")
               for stem in sep.stems]

    def chunks():
        """The input in chunks of random size."""
        while len(chunk := f.read(int(rng.integers(1, 5000)), dtype="float32", always_2d=True)):
            yield chunk[:, :sep.channels]

    for stems in sep.aligned(chunks()):  # lined up with the input: the delay dropped, the tail flushed
        for writer, stem in zip(writers, stems):
            writer.write(stem)
    for writer in writers:
        writer.close()
print(f"{len(sep.stems)} stems in {args.output}/, aligned with {args.input} "
      f"(separator latency {sep.latency_samples} samples compensated)")
