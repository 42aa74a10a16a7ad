"""Decode cache, window sampler and augmentation: the mixture is always the sum of the stems it trains on."""

from __future__ import annotations

import os
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from extras import SCIPY
from training.augment import augment_stems, band_limit, change_speed, source_length, speed_ratio
from training.cache import AudioCache, CachedTrack
from training.config import AugmentConfig
from training.datasets import TrackRef, open_dataset
from training.sampler import Source, TargetLayout, WindowSampler, validation_windows

FOUR = ("vocals", "drums", "bass", "other")
W = 256
NO_AUGMENT = AugmentConfig(gain_db=(0.0, 0.0), channel_swap=0, polarity=0, mono=0, remix=0, band_limit=0)
EVERYTHING = AugmentConfig(gain_db=(-6.0, 3.0), channel_swap=0.5, polarity=0.5, mono=0.5, remix=1.0, band_limit=0.5,
                           band_limit_hz=2000.0, speed=0.5)


def cached(name: str, stems: tuple[str, ...], n: int, seed: int) -> CachedTrack:
    audio = np.random.default_rng(seed).normal(0, 0.1, (n, len(stems), 2)).astype(np.float16)
    return CachedTrack(name, stems, audio)


def musdb_like(count: int = 3) -> list[CachedTrack]:
    return [cached(f"song{i}", FOUR, 1000 + 300 * i, i) for i in range(count)]


def mir_like(count: int = 3) -> list[CachedTrack]:
    return [cached(f"clip{i}", ("vocals", "accompaniment"), 600 + 50 * i, 10 + i) for i in range(count)]


def sampler(tracks, augment=EVERYTHING, stems=FOUR) -> WindowSampler:
    return WindowSampler([Source("test", tracks)], TargetLayout(stems), W, augment, 8000)


@pytest.mark.parametrize("augment", [NO_AUGMENT, pytest.param(EVERYTHING, marks=SCIPY)])
def test_mix_is_the_sum_of_the_augmented_stems(augment):
    rng = np.random.default_rng(0)
    mix, targets, presence = sampler(musdb_like(), augment).batch(rng, 8)
    assert mix.shape == (8, W, 2) and targets.shape == (8, W, 5, 2) and presence.shape == (8, 5)
    np.testing.assert_array_equal(presence, np.tile([1, 1, 1, 1, 0], (8, 1)))
    np.testing.assert_allclose(mix, targets[:, :, :4].sum(axis=2), atol=1e-6)
    assert np.abs(mix).max() > 0.05


@SCIPY
def test_vocals_accompaniment_data_trains_vocals_and_the_sum_of_the_rest():
    mix, targets, presence = sampler(mir_like()).batch(np.random.default_rng(1), 6)
    assert TargetLayout(FOUR).names == FOUR + ("accompaniment",)
    np.testing.assert_array_equal(presence, np.tile([1, 0, 0, 0, 1], (6, 1)))
    np.testing.assert_allclose(mix, targets[:, :, 0] + targets[:, :, 4], atol=1e-6)
    assert not targets[:, :, 1:4].any()


def test_layout_maps_predicted_stems_to_targets():
    layout = TargetLayout(FOUR)
    np.testing.assert_array_equal(layout.matrix[:, 4], [0, 1, 1, 1])  # accompaniment = drums + bass + other
    np.testing.assert_array_equal(layout.matrix[:, :4], np.eye(4))
    two = TargetLayout(("vocals", "accompaniment"))
    assert two.names == ("vocals", "accompaniment")
    stems = {s: np.full((4, 2), i + 1.0, np.float32) for i, s in enumerate(FOUR)}
    mix, targets, presence = two.targets(stems)
    np.testing.assert_array_equal(presence, [1, 1])
    np.testing.assert_allclose(targets[:, 1], 2 + 3 + 4)  # a 2-stem model learns the parts' sum
    np.testing.assert_allclose(mix, 10)


def test_short_tracks_are_zero_padded():
    track = cached("short", FOUR, 100, 0)
    mix, targets, _ = sampler([track], NO_AUGMENT).example(np.random.default_rng(0))
    assert mix.shape == (W, 2)
    np.testing.assert_allclose(targets[:100, 0], track.audio[:, 0].astype(np.float32))
    assert not mix[100:].any()


@SCIPY
def test_batches_are_reproducible_per_seed_epoch_and_step():
    s = sampler(musdb_like())
    a = list(s.batches(seed=3, epoch=1, steps=range(2, 4), size=2))
    b = list(s.batches(seed=3, epoch=1, steps=range(3, 4), size=2))  # a resumed epoch starting at step 3
    np.testing.assert_array_equal(a[1][0], b[0][0])
    assert not np.array_equal(a[0][0], a[1][0])
    c = next(s.batches(seed=4, epoch=1, steps=range(2, 3), size=2))
    assert not np.array_equal(a[0][0], c[0])


def test_remix_combines_stems_of_different_tracks():
    tracks = musdb_like(4)
    mix, targets, _ = sampler(tracks, replace(NO_AUGMENT, remix=1.0)).example(np.random.default_rng(5))
    def source_of(signal):
        return {t.name for t in tracks for k in range(4) for start in range(len(t) - W + 1)
                if np.array_equal(t.audio[start:start + W, k].astype(np.float32), signal)}
    origins = set().union(*(source_of(targets[:, g]) for g in range(4)))
    assert len(origins) > 1


def test_augmentations():
    rng = np.random.default_rng(0)
    stems = np.random.default_rng(1).normal(0, 0.1, (3, W, 2)).astype(np.float32)
    swap = augment_stems(stems, rng, replace(NO_AUGMENT, channel_swap=1.0), 8000)
    np.testing.assert_array_equal(swap, stems[:, :, ::-1])
    flip = augment_stems(stems, rng, replace(NO_AUGMENT, polarity=1.0), 8000)
    np.testing.assert_array_equal(flip, -stems)
    mono = augment_stems(stems, rng, replace(NO_AUGMENT, mono=1.0), 8000)
    np.testing.assert_allclose(mono[..., 0], stems.mean(axis=2))
    np.testing.assert_array_equal(mono[..., 0], mono[..., 1])
    gain = augment_stems(stems, rng, replace(NO_AUGMENT, gain_db=(-6.0, -6.0)), 8000)
    np.testing.assert_allclose(gain, stems * 10 ** (-6 / 20), rtol=1e-5)


def test_band_limit_removes_everything_above_the_cutoff():
    stems = np.random.default_rng(0).normal(0, 0.1, (2, 4096, 2)).astype(np.float32)
    limited = band_limit(stems, 2000.0, 8000)
    spectrum = np.abs(np.fft.rfft(limited, axis=1))
    freqs = np.fft.rfftfreq(4096, 1 / 8000)
    assert spectrum[:, freqs > 2000].max() < 1e-3 * spectrum[:, freqs < 2000].max()


@SCIPY
@pytest.mark.parametrize("semitones", [-2, -1, 1, 2])
def test_speed_change_moves_pitch_by_the_ratio_and_keeps_the_level_to_the_window_edges(semitones):
    rate, window, tone = 8000, 2048, 500.0
    speed = Fraction(2.0 ** (semitones / 12)).limit_denominator(48)
    t = np.arange(source_length(window, speed)) / rate
    stems = np.broadcast_to(np.sin(2 * np.pi * tone * t)[None, :, None], (3, len(t), 2)).astype(np.float32)
    out = change_speed(stems, speed, window)
    assert out.shape == (3, window, 2)
    peak = np.abs(np.fft.rfft(out[0, :, 0] * np.hanning(window))).argmax() * rate / window
    assert peak == pytest.approx(tone * float(speed), abs=rate / window)
    for edge in (out[0, :64, 0], out[0, -64:, 0]):
        assert np.abs(edge).max() == pytest.approx(1.0, abs=0.02)


def test_speed_ratios_are_whole_semitones_and_off_by_default():
    rng = np.random.default_rng(0)
    assert speed_ratio(rng, AugmentConfig()) is None
    assert rng.random() == np.random.default_rng(0).random()  # off draws nothing: other runs sample as before
    drawn = {speed_ratio(rng, AugmentConfig(speed=1.0, speed_semitones=2)) for _ in range(200)}
    semitones = sorted(round(12 * np.log2(float(s)), 2) for s in drawn)
    assert semitones == pytest.approx([-2, -1, 1, 2], abs=0.02)


def test_borrowed_vocals_come_from_the_other_source_over_this_sources_band_limited_instruments():
    musdb, mir = musdb_like(), mir_like()
    freqs = np.fft.rfftfreq(W, 1 / 8000)

    def windows(borrow):
        augment = replace(NO_AUGMENT, borrow_vocals=borrow, band_limit_hz=1000.0)
        s = WindowSampler([Source("musdb", musdb), Source("mir", mir)], TargetLayout(FOUR), W, augment, 8000)
        return s.batch(np.random.default_rng(2), 16)

    def own_vocals(window):  # vocals and drums from the same MUSDB18-like track at the same offset
        return any(np.array_equal(t.audio[start:start + W, :2].astype(np.float32), window[:, :2])
                   for t in musdb for start in range(len(t) - W + 1))

    mix, targets, presence = windows(1.0)
    four = presence[:, 1] == 1  # windows drawn from the 4-stem source keep all four stems trained
    assert four.any() and (~four).any()
    np.testing.assert_array_equal(presence[four], np.tile([1, 1, 1, 1, 0], (four.sum(), 1)))
    np.testing.assert_allclose(mix[four], targets[four, :, :4].sum(axis=2), atol=1e-6)
    np.testing.assert_allclose(mix[~four], targets[~four, :, 0] + targets[~four, :, 4], atol=1e-6)
    for window in targets:  # every borrowed window is low-passed as a whole
        spectrum = np.abs(np.fft.rfft(window, axis=0))
        assert spectrum[freqs > 1000].max() < 1e-3 * spectrum[freqs < 1000].max()
    assert not any(own_vocals(w) for w in targets[four])
    _, targets, presence = windows(0.0)  # off: every 4-stem window sings its own track's vocals
    assert all(own_vocals(w) for w in targets[presence[:, 1] == 1])


def test_validation_windows_are_fixed_and_unaugmented():
    tracks = musdb_like()
    first = validation_windows(tracks, TargetLayout(FOUR), W, 128, 10)
    again = validation_windows(tracks, TargetLayout(FOUR), W, 128, 10)
    assert len(first[0]) == 10
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first[1][0, :, 0], tracks[0].audio[:W, 0].astype(np.float32))


def test_cache_decodes_once_at_the_model_rate(tmp_path, monkeypatch):
    clip = tmp_path / "data" / "clip_1"
    clip.mkdir(parents=True)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    sf.write(clip / "vocals.ogg", tone, 16000)
    sf.write(clip / "accompaniment.ogg", tone * 0.5, 16000)
    track = open_dataset("folder", tmp_path / "data")[0]
    cache = AudioCache(tmp_path / "cache", 8000)
    entry = cache.get(track)
    assert entry.stems == ("vocals", "accompaniment") and entry.audio.dtype == np.float16
    assert abs(len(entry) - 8000) <= 1 and entry.audio.shape[2] == 1  # mono files are cached as one channel
    _, reference = track.load(8000)
    np.testing.assert_allclose(entry.audio[:, 0], reference["vocals"][:, :1], atol=1e-3)
    window = WindowSampler([Source("clips", [entry])], TargetLayout(FOUR), W, NO_AUGMENT, 8000).example(
        np.random.default_rng(0))[1]
    assert window[:, 0].any() and np.array_equal(window[:, 0, 0], window[:, 0, 1])

    def no_decoding(self, sample_rate=None):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(TrackRef, "load", no_decoding)
    again = AudioCache(tmp_path / "cache", 8000).get(track)
    np.testing.assert_array_equal(again.audio, entry.audio)
    with pytest.raises(AssertionError, match="decoded again"):
        AudioCache(tmp_path / "cache", 16000).get(track)  # another rate is another entry
    stat = (clip / "vocals.ogg").stat()
    os.utime(clip / "vocals.ogg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        cache.get(track)  # an edited source file is decoded again
