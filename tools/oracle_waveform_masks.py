"""The ceiling of per-sample waveform masks: oracle masks computed from the true stems.

For the 14 MUSDB18 validation previews, the best masks m with stem = m * mix sample by sample,
restricted to [0, 1] (projected onto the simplex: softmax-like masks that sum to 1) or clipped to
wider ranges, and the SNR (dB, median over tracks) they would reach. Quoted in docs/model-card.md.

    python3 tools/oracle_waveform_masks.py
"""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # bench_quality (its DATA)

from bench_quality import DATA  # noqa: E402
from training.datasets import open_dataset  # noqa: E402

STEMS = ("vocals", "drums", "bass", "other")


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the probability simplex (Duchi et al. 2008)."""
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1
    k = np.arange(1, v.shape[1] + 1)
    rho = v.shape[1] - 1 - np.argmax((u - css / k > 0)[:, ::-1], axis=1)
    return np.maximum(v - (css[np.arange(len(v)), rho] / (rho + 1))[:, None], 0)


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2) + 1e-12))


def print_table(first_column: str, results: dict[str, dict[str, list[float]]]) -> None:
    """A markdown table: one row per variant, the median over tracks per stem."""
    print(f"| {first_column} | " + " | ".join(STEMS) + " |")
    print("|---|" + "---:|" * len(STEMS))
    for variant, scores in results.items():
        print(f"| {variant} | " + " | ".join(f"{np.median(scores[n]):.2f}" for n in STEMS) + " |")


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    variants = ["[0, 1], sum 1", "[0, 1]", "[-1, 2]", "[-2, 3]"]
    results = {v: {s: [] for s in STEMS} for v in variants}
    for track in open_dataset("musdb", data, "valid"):
        _, stems = track.load()
        s = np.stack([stems[n] for n in STEMS])
        mix = s.sum(0)
        ratio = s / np.where(np.abs(mix) < 1e-6, 1e-6, mix)
        simplex = project_to_simplex(ratio.transpose(1, 2, 0).reshape(-1, len(STEMS)))
        masks = {variants[0]: simplex.reshape(mix.shape + (len(STEMS),)).transpose(2, 0, 1),
                 variants[1]: np.clip(ratio, 0, 1), variants[2]: np.clip(ratio, -1, 2),
                 variants[3]: np.clip(ratio, -2, 3)}
        for v, m in masks.items():
            for i, name in enumerate(STEMS):
                results[v][name].append(snr(s[i], m[i] * mix))
    print_table("oracle mask range", results)


if __name__ == "__main__":
    main()
