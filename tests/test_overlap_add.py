"""The numba kernels the engine is made of: rings, crossfades, sanitizing, stem mapping."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_split import overlap_add as ola
from realtime_split.rings import ring_size


@pytest.mark.parametrize("length", [0, 1, 2, 7, 64, 1000])
def test_crossfade_pair_sums_to_one_and_is_symmetric(length):
    fade_in, fade_out = ola.crossfade_pair(length)
    assert fade_in.dtype == fade_out.dtype == np.float32
    np.testing.assert_allclose(fade_in + fade_out, 1.0, atol=1e-7)
    np.testing.assert_allclose(fade_out, fade_in[::-1], atol=1e-7)
    assert np.all(np.diff(fade_in) > 0)


@pytest.mark.parametrize("length, size", [(1, 1), (2, 2), (3, 4), (4096, 4096), (4097, 8192)])
def test_ring_size_is_the_next_power_of_two(length, size):
    assert ring_size(length) == size


def test_write_ring_wraps_duplicates_mono_and_sanitizes():
    ring = np.zeros((8, 2), np.float32)
    stereo = np.arange(12, dtype=np.float32).reshape(6, 2)
    stereo[2, 1] = np.nan
    stereo[3, 0] = np.inf
    assert ola.write_ring(ring, np.int64(6), stereo, 1, 5) == 2  # positions 6..10 -> slots 6, 7, 0, 1, 2
    assert ring[[6, 7, 0, 1, 2]].tolist() == [[2, 3], [4, 0], [0, 7], [8, 9], [10, 11]]

    mono = np.array([[1.0], [-np.inf], [3.0]], np.float32)
    assert ola.write_ring(ring, np.int64(-2), mono, 0, 3) == 1  # negative positions wrap too
    assert ring[[6, 7, 0]].tolist() == [[1, 1], [0, 0], [3, 3]]


def test_sanitize_counts_and_zeroes_only_the_first_rows():
    frames = np.array([[np.nan, 1.0], [2.0, -np.inf], [np.nan, np.nan]], np.float32)
    assert ola.sanitize(frames, 2) == 2
    assert frames[:2].tolist() == [[0, 1], [2, 0]]
    assert np.isnan(frames[2]).all()


def test_gather_windows_reads_the_latest_window_for_each_hop():
    ring = np.zeros((16, 2), np.float32)
    signal = np.stack([np.arange(1, 21), -np.arange(1, 21)], axis=1).astype(np.float32)  # positions 0..19
    ola.write_ring(ring, np.int64(0), signal, 0, 20)
    batch = np.zeros((3, 2, 4), np.float32)
    ola.gather_windows(ring, np.int64(12), 3, 3, batch)  # windows end at 12, 15, 18
    assert batch[:, 0].tolist() == [[9, 10, 11, 12], [12, 13, 14, 15], [15, 16, 17, 18]]
    np.testing.assert_array_equal(batch[:, 1], -batch[:, 0])


def test_overlap_add_of_constant_outputs_reconstructs_the_constant():
    """Complementary fades: wherever two kept regions overlap their weights sum to one."""
    hop, fade, keep_start, count = 6, 3, 2, 5
    fade_in, fade_out = ola.crossfade_pair(fade)
    outputs = np.ones((count, 2, 2, 16), np.float32)
    outputs[:, 1] = 2.0
    acc = np.zeros((64, 2, 2), np.float32)
    assert ola.overlap_add(outputs, count, keep_start, hop + fade, fade_in, fade_out, acc, np.int64(10), hop) == 0
    inner = slice(10 + fade, 10 + count * hop)  # away from the first fade-in and the last fade-out
    np.testing.assert_allclose(acc[inner, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(acc[inner, 1], 2.0, atol=1e-6)
    np.testing.assert_allclose(acc[10:10 + fade, 0, 0], fade_in)
    assert not acc[:10].any() and not acc[10 + count * hop + fade:].any()


def test_overlap_add_drops_non_finite_model_outputs():
    outputs = np.ones((1, 1, 2, 8), np.float32)
    outputs[0, 0, 0, 3] = np.nan
    acc = np.zeros((8, 1, 2), np.float32)
    fade_in, fade_out = ola.crossfade_pair(0)
    assert ola.overlap_add(outputs, 1, 0, 8, fade_in, fade_out, acc, np.int64(0), 8) == 1
    assert acc[:, 0, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 1]


def test_read_output_maps_stems_gains_accompaniment_and_clears():
    acc = np.zeros((8, 2, 2), np.float32)  # model stems: vocals, drums
    acc[:, 0] = [1, 2]
    acc[:, 1] = [5, 6]
    mix = np.full((8, 2), 10.0, np.float32)
    sources = np.array([1, -1, 0], np.int64)  # drums, mix - vocals, vocals
    gains = np.array([1.0, 0.5, 0.0], np.float32)
    out = np.full((3, 4, 2), 99.0, np.float32)
    ola.read_output(acc, mix, np.int64(-1), 3, sources, gains, out, 1)
    assert out[:, 0].tolist() == [[99, 99]] * 3  # before out_offset: untouched
    assert out[:, 1].tolist() == [[0, 0]] * 3  # position -1 is before the stream: silence
    assert out[0, 2:].tolist() == [[5, 6]] * 2
    assert out[1, 2:].tolist() == [[4.5, 4]] * 2
    assert out[2, 2:].tolist() == [[0, 0]] * 2
    assert not acc[[7, 0, 1]].any() and acc[2:7].all()

    acc[:, 0] = [1, 3]
    mono = np.zeros((1, 2, 1), np.float32)
    ola.read_output(acc, mix, np.int64(3), 2, np.array([0], np.int64), np.ones(1, np.float32), mono, 0)
    assert mono[0, :, 0].tolist() == [2, 2]  # mean of left and right


def test_warm_up_compiles_every_kernel():
    ola.warm_up()
    for kernel in (ola.write_ring, ola.sanitize, ola.gather_windows, ola.overlap_add, ola.read_output):
        assert kernel.signatures, kernel
