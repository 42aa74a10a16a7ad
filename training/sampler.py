"""Training windows: random crops of cached tracks, augmented, with targets and a presence mask.

A window is ``(mix, targets, presence)``: ``mix`` ``(W, 2)`` is the sum of the
window's stems; ``targets`` ``(W, G, 2)`` holds one signal per loss target and
``presence`` ``(G,)`` says which targets the track defines. The loss targets
(``TargetLayout``) are the model's stems plus, for a vocals/drums/bass/other
model, "accompaniment" = drums + bass + other, so a dataset that only has
vocals and accompaniment (MIR-1K) still trains every output it can.

Every batch is drawn from ``numpy.random.default_rng([seed, epoch, step, ...])``,
so a run is reproducible and a resumed epoch sees the batches it would have seen.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import cast

import numpy as np

from .augment import augment_stems, change_speed, source_length, speed_ratio
from .cache import CachedTrack
from .config import AugmentConfig

ACCOMPANIMENT = "accompaniment"
ACCOMPANIMENT_PARTS = ("drums", "bass", "other")


class TargetLayout:
    """Which signals the loss compares: ``names[g]`` is predicted as ``sum_s matrix[s, g] * stem_s``."""

    def __init__(self, model_stems: tuple[str, ...]):
        self.model_stems = tuple(model_stems)
        names = list(self.model_stems)
        if ACCOMPANIMENT not in names and all(p in names for p in ACCOMPANIMENT_PARTS):
            names.append(ACCOMPANIMENT)
        self.names = tuple(names)
        self.matrix = np.zeros((len(self.model_stems), len(self.names)), np.float32)
        for s, stem in enumerate(self.model_stems):
            self.matrix[s, s] = 1.0
            if stem in ACCOMPANIMENT_PARTS and len(self.names) > len(self.model_stems):
                self.matrix[s, -1] = 1.0

    def targets(self, stems: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mix, targets, presence)`` for one window's stems (each ``(W, 2)``)."""
        window = next(iter(stems.values())).shape[0]
        targets = np.zeros((window, len(self.names), 2), np.float32)
        presence = np.zeros(len(self.names), np.float32)
        for g, name in enumerate(self.names):
            signal = stems.get(name)
            if signal is None and name == ACCOMPANIMENT and name in self.model_stems:
                # A vocals/accompaniment model learns accompaniment from 4-stem data as the parts' sum.
                if all(p in stems for p in ACCOMPANIMENT_PARTS):
                    signal = functools.reduce(operator.add, (stems[p] for p in ACCOMPANIMENT_PARTS))
            if signal is not None:
                targets[:, g] = signal
                presence[g] = 1.0
        return mixture(stems), targets, presence


def mixture(stems: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of the stems; an "accompaniment" stem already contains drums, bass and other."""
    parts = [a for name, a in stems.items() if not (ACCOMPANIMENT in stems and name in ACCOMPANIMENT_PARTS)]
    return cast(np.ndarray, np.sum(parts, axis=0, dtype=np.float32))


@dataclass
class Source:
    """The cached tracks of one ``--data`` entry; remixing only combines stems within a source."""

    name: str
    tracks: list[CachedTrack]
    weight: float = 1.0


class WindowSampler:
    def __init__(self, sources: list[Source], layout: TargetLayout, window: int, augment: AugmentConfig,
                 sample_rate: int):
        self.sources = sources
        self.layout = layout
        self.window = window
        self.augment = augment
        self.sample_rate = sample_rate
        weights = np.array([s.weight for s in sources], np.float64)
        self.source_p = weights / weights.sum()
        # Tracks are drawn in proportion to their length, so every second of audio is equally likely.
        self.track_p = [_length_weights(s.tracks) for s in sources]
        # Per source and stem, once: the tracks that have the stem and their weights (remix and borrowing).
        self._having = [_tracks_having(s.tracks, p) for s, p in zip(sources, self.track_p)]
        # Per source: the other sources that can lend it vocals, and their sampling weights.
        self._lenders = []
        for k in range(len(sources)):
            lenders = [j for j in range(len(sources)) if j != k and "vocals" in self._having[j]]
            self._lenders.append((lenders, self.source_p[lenders] / self.source_p[lenders].sum() if lenders else None))

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        examples = [self.example(rng) for _ in range(size)]
        mix, targets, presence = (np.stack(parts) for parts in zip(*examples))
        return mix, targets, presence

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = rng.choice(len(self.sources), p=self.source_p)
        tracks, p = self.sources[k].tracks, self.track_p[k]
        base = tracks[rng.choice(len(tracks), p=p)]
        speed = speed_ratio(rng, self.augment)
        length = source_length(self.window, speed)  # samples to read: more or fewer than a window at another speed
        if rng.random() < self.augment.remix:
            # Each stem from a random track of the same source that has it, at its own offset.
            picks = {stem: self._crop_stem(k, stem, length, rng) for stem in base.stems}
        else:
            start = _offset(len(base), length, rng)
            picks = {stem: _read(base, stem, start, length) for stem in base.stems}
        borrowed = self._borrow_vocals(k, picks, length, rng)
        names = list(picks)
        stems = np.stack([picks[n] for n in names])
        if speed is not None:
            stems = change_speed(stems, speed, self.window)
        augmented = augment_stems(stems, rng, self.augment, self.sample_rate, band_limited=borrowed)
        return self.layout.targets(dict(zip(names, augmented)))

    def _borrow_vocals(self, k: int, picks: dict[str, np.ndarray], length: int, rng: np.random.Generator) -> bool:
        """Maybe replace the window's vocals with a crop from another source's track (in place); True if done.

        MUSDB18 has minutes of singing, MIR-1K hours but over karaoke backings: borrowing puts each
        source's singing over the other's instruments, so every window keeps exact stems. The window is
        then band-limited, because one of the two is a 16 kHz recording in the shipped recipe.
        """
        if self.augment.borrow_vocals <= 0 or "vocals" not in picks:
            return False  # off: no random draw, so runs without borrowing sample exactly as before
        lenders, lender_p = self._lenders[k]
        if not lenders or rng.random() >= self.augment.borrow_vocals:
            return False
        picks["vocals"] = self._crop_stem(lenders[rng.choice(len(lenders), p=lender_p)], "vocals", length, rng)
        return True

    def _crop_stem(self, k: int, stem: str, length: int, rng: np.random.Generator) -> np.ndarray:
        """``stem`` from a random track of source ``k`` that has it (in proportion to length), at a random offset."""
        having, q = self._having[k][stem]
        return _crop(self.sources[k].tracks[having[rng.choice(len(having), p=q)]], stem, length, rng)

    def batches(self, seed: int, epoch: int, steps: range, size: int, stream: int = 0):
        """Batches for the given steps of an epoch, each from its own seeded generator."""
        for step in steps:
            yield self.batch(np.random.default_rng([seed, epoch, step, stream]), size)


def validation_windows(tracks: list[CachedTrack], layout: TargetLayout, window: int, hop: int,
                       count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed set of ``count`` unaugmented windows spread evenly over the tracks (``hop`` apart at most)."""
    candidates = [(t, start) for t in tracks for start in range(0, max(len(t) - window, 0) + 1, hop)]
    chosen = np.unique(np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int))
    examples = [layout.targets({s: _read(t, s, start, window) for s in t.stems})
                for t, start in (candidates[i] for i in chosen)]
    mix, targets, presence = (np.stack(parts) for parts in zip(*examples))
    return mix, targets, presence


def _tracks_having(tracks: list[CachedTrack], p: np.ndarray) -> dict[str, tuple[list[int], np.ndarray]]:
    """``{stem: (indices of the tracks that have it, their weights p renormalized)}``."""
    out = {}
    for stem in dict.fromkeys(s for t in tracks for s in t.stems):
        having = [i for i, t in enumerate(tracks) if stem in t.stems]
        out[stem] = (having, p[having] / p[having].sum())
    return out


def _length_weights(tracks: list[CachedTrack]) -> np.ndarray:
    lengths = np.array([len(t) for t in tracks], np.float64)
    return lengths / lengths.sum()


def _offset(length: int, window: int, rng: np.random.Generator) -> int:
    return int(rng.integers(0, max(length - window, 0) + 1))


def _crop(track: CachedTrack, stem: str, window: int, rng: np.random.Generator) -> np.ndarray:
    return _read(track, stem, _offset(len(track), window, rng), window)


def _read(track: CachedTrack, stem: str, start: int, window: int) -> np.ndarray:
    """``window`` stereo samples of one stem as float32 (mono spread to both channels), zero-padded at the end."""
    out = np.zeros((window, 2), np.float32)
    piece = track.audio[start:start + window, track.stems.index(stem)]
    out[: len(piece)] = piece
    return out
