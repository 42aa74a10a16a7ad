"""Would a post-filter that makes the stems add up to the mix help a trained model? (docs/model-card.md)

Runs a training checkpoint on each of the 14 MUSDB18 validation previews in one piece (for the shipped
model within 0.12 dB of streaming at ``balanced``; see probe_checkpoints.py for where that fails) and
scores, with museval like bench_quality:
- ``raw``: the model's stems;
- ``masks / sum``: its sigmoid masks divided by their sum over stems, in the learned filterbank;
- ``wiener N pP``: one Wiener step in an N-point STFT, mask_i = |S_i|^P / sum_j |S_j|^P times the mix;
- ``other = residual``: other replaced by mix - vocals - drums - bass.

    python3 tools/probe_postfilters.py runs/default/best.keras
"""

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # bench_quality (its DATA)

import keras  # noqa: E402
from scipy.signal import istft, stft  # noqa: E402

from bench_quality import DATA  # noqa: E402
from training.datasets import open_dataset  # noqa: E402
from training.evaluate import bsseval_sdr  # noqa: E402

STEMS = ("vocals", "drums", "bass", "other")
PAD = 2048


def padded(mix: np.ndarray) -> np.ndarray:
    """``(n, 2)`` mix -> ``(1, m, 2)`` model input, m a multiple of PAD; the stems are its ``[PAD:PAD + n]``."""
    return np.pad(mix, ((PAD, (-len(mix)) % PAD + PAD), (0, 0)))[None].astype(np.float32)


def print_header(title: str, first_column: str) -> None:
    """The title and the head of a markdown table with one column per stem."""
    print(f"{title}\n")
    print(f"| {first_column} | " + " | ".join(STEMS) + " |")
    print("|---|" + "---:|" * len(STEMS))


def print_row(name: str, scores: list[np.ndarray]) -> None:
    """One table row: the median SDR per stem over the tracks' scores."""
    print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in np.nanmedian(np.array(scores), axis=0)) + " |", flush=True)


def print_spec_table(title: str, first_column: str, specs: list[str], separator_for) -> None:
    """One row per command-line spec: ``separator_for(spec)`` gives a function from an ``(n, 2)`` mix
    to ``(S, n, 2)`` stems, scored on every validation preview; ``{n}`` in ``title`` is the track count."""
    tracks = []
    for track in open_dataset("musdb", DATA, "valid"):
        _, stems = track.load(44100)
        tracks.append(np.stack([stems[s] for s in STEMS]))
    print_header(title.format(n=len(tracks)), first_column)
    for spec in specs:
        separate = separator_for(spec)
        print_row(spec, [bsseval_sdr(references, separate(references.sum(axis=0)), 44100) for references in tracks])


def wiener(estimates: np.ndarray, mix: np.ndarray, n_fft: int, power: float) -> np.ndarray:
    """``(S, n, 2)`` estimates -> ``(S, n, 2)`` stems that add up to ``mix``."""
    def spec(x):
        return stft(x.T, nperseg=n_fft, noverlap=n_fft * 3 // 4)[2]

    mixture = spec(mix)
    weights = np.stack([(np.abs(spec(e)) ** power).sum(axis=0) for e in estimates])  # channels pooled
    weights /= weights.sum(axis=0, keepdims=True) + 1e-10
    return np.stack([istft(w * mixture, nperseg=n_fft, noverlap=n_fft * 3 // 4)[1].T[: len(mix)] for w in weights])


def main(checkpoint: str) -> None:
    model = keras.saving.load_model(checkpoint, compile=False)
    parts = keras.Model(model.input, [model.get_layer("masks").output, model.get_layer("analysis").output])
    synthesis = model.get_layer("synthesis")
    scores: dict[str, list[np.ndarray]] = {}
    for track in open_dataset("musdb", DATA, "valid"):
        rate, stems = track.load(44100)
        references = np.stack([stems[s] for s in STEMS])
        mix = references.sum(axis=0)
        n = len(mix)
        masks, basis = (np.asarray(a) for a in parts(padded(mix), training=False))

        def stems_from(m, basis=basis, n=n):
            return np.asarray(synthesis(m * basis[:, :, None, :]))[0, PAD:PAD + n].transpose(1, 0, 2)

        raw = stems_from(masks)
        residual = raw.copy()
        residual[3] = mix - raw[:3].sum(axis=0)
        variants = {"raw": raw, "masks / sum": stems_from(masks / (masks.sum(axis=2, keepdims=True) + 1e-6)),
                    "other = residual": residual}
        for n_fft in (512, 2048):
            for power in (1, 2):
                variants[f"wiener {n_fft} p{power}"] = wiener(raw, mix, n_fft, power)
        for name, estimates in variants.items():
            scores.setdefault(name, []).append(bsseval_sdr(references, estimates, rate))
        print(f"  {track.name}", file=sys.stderr, flush=True)
    print_header(f"`python3 tools/probe_postfilters.py {checkpoint}`: median SDR over {len(scores['raw'])} "
                 "tracks, dB", "variant")
    for name, values in scores.items():
        print_row(name, values)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 tools/probe_postfilters.py RUN/best.keras")
    main(sys.argv[1])
