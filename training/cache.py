"""Decode every track once, at the model rate, into float16 memmaps.

Decoding a .stem.mp4 costs far more than a training step, so the sampler
reads windows from ``<cache_dir>/<key>.f16`` (shape ``(samples, stems, channels)``,
one contiguous read per window) described by ``<key>.json``. Tracks whose stems
are all mono (MIR-1K) are stored with one channel, halving their size. The key hashes
the source files' paths, modification times and sizes and the model rate, so
an edited file or another rate is decoded again; stale entries are simply
never read (delete the folder to reclaim space).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .datasets import TrackRef

CACHE_VERSION = 2


@dataclass(frozen=True)
class CachedTrack:
    """A decoded track: ``audio[i, k]`` is sample i of stem ``stems[k]`` (float16, 1 or 2 channels)."""

    name: str
    stems: tuple[str, ...]
    audio: np.ndarray

    def __len__(self) -> int:
        return self.audio.shape[0]


class AudioCache:
    def __init__(self, root: str | Path, sample_rate: int):
        self.root = Path(root)
        self.sample_rate = int(sample_rate)

    def key(self, track: TrackRef) -> str:
        sources = []
        for stem, file in track.files:
            stat = file.stat()
            sources.append([stem, str(file.resolve()), stat.st_mtime_ns, stat.st_size])
        blob = json.dumps([CACHE_VERSION, track.kind, sources, self.sample_rate])
        return hashlib.sha1(blob.encode()).hexdigest()[:20]

    def get(self, track: TrackRef) -> CachedTrack:
        """The cached track, decoding and writing it first if needed."""
        key = self.key(track)
        index, data = self.root / f"{key}.json", self.root / f"{key}.f16"
        if not index.exists():
            self._write(track, index, data)
        meta = json.loads(index.read_text())
        shape = (meta["length"], len(meta["stems"]), meta["channels"])
        audio = np.memmap(data, dtype=np.float16, mode="r", shape=shape)
        return CachedTrack(meta["name"], tuple(meta["stems"]), audio)

    def get_all(self, tracks: list[TrackRef], desc: str = "caching audio", progress: bool = True) -> list[CachedTrack]:
        bar = tqdm(tracks, desc=desc, unit="track", leave=False, mininterval=1.0, disable=not progress)
        return [self.get(t) for t in bar]

    def _write(self, track: TrackRef, index: Path, data: Path) -> None:
        _, stems = track.load(self.sample_rate)
        names = tuple(stems)
        audio = np.stack([stems[s] for s in names], axis=1).astype(np.float16)
        if np.array_equal(audio[..., 0], audio[..., 1]):
            audio = audio[..., :1]  # mono sources; the sampler spreads them to both channels
        self.root.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a concurrent or interrupted writer never leaves a half entry;
        # the JSON appears last and marks the entry complete.
        tmp = f".{os.getpid()}.tmp"
        audio.tofile(data.with_name(data.name + tmp))
        os.replace(data.with_name(data.name + tmp), data)
        meta = {"name": track.name, "stems": list(names), "length": len(audio), "channels": audio.shape[2],
                "sample_rate": self.sample_rate,
                "source": str(track.path)}
        index.with_name(index.name + tmp).write_text(json.dumps(meta))
        os.replace(index.with_name(index.name + tmp), index)
