"""Stateful models (metadata ``state``): the runtime carries their state from run to run.

A small ONNX file with memory (tests/onnx_models.py ``make_stateful_model``: its masks switch from
one stem to another after a number of frames, counted in its state) shows the runtime carries the
state across runs, presets and block sizes and restores it on ``reset()``. (The streaming U-Net that
trained and exported such models, with its export tests, lives on branch experiments/streaming-unet.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from onnx_models import make_stateful_model, stateful_info
from realtime_split import StreamingSeparator
from realtime_split.errors import ModelFormatError
from realtime_split.model_format import Geometry, StftGeometry, parse_metadata

ROOT = Path(__file__).resolve().parents[1]
VOCALS, DRUMS = (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)
SWITCH = 40  # frames of 16 samples: the masks move from vocals to drums at sample 640


def _stream(sep: StreamingSeparator, mix: np.ndarray, block: int) -> np.ndarray:
    """The stems aligned with ``mix`` ``(n, 2)``: ``(S, n, 2)``."""
    parts = [sep.process(mix[i:i + block]) for i in range(0, len(mix), block)] + [sep.flush()]
    return np.concatenate(parts, axis=1)[:, sep.latency_samples:sep.latency_samples + len(mix)]


@pytest.fixture
def switching(tmp_path) -> Path:
    return make_stateful_model(tmp_path / "switch.onnx", VOCALS, DRUMS, SWITCH)


@pytest.mark.parametrize("preset,block", [("low", 16), ("low", 7), ("balanced", 100), ("offline", 1000)])
def test_state_is_carried_from_run_to_run_at_every_preset_and_block_size(switching, preset, block):
    mix = (0.3 * np.random.default_rng(0).standard_normal((2000, 2))).astype(np.float32)
    sep = StreamingSeparator(str(switching), latency=preset)
    assert sep.latency_samples == sep.geometry.hop + 16  # frames per run + the synthesis window's second half
    stems = _stream(sep, mix, block)
    # Frame j covers samples [16 j - 48, 16 j + 16); its synthesis the last 32 of them. Before the
    # switch every sample is vocals, from the first all-drums frame on every sample is drums.
    before, after = slice(0, 16 * SWITCH - 16), slice(16 * SWITCH + 16, len(mix) - 16)
    np.testing.assert_allclose(stems[0, before], mix[before], atol=1e-5)
    np.testing.assert_allclose(stems[1, after], mix[after], atol=1e-5)
    assert np.abs(stems[0, after]).max() < 1e-5 and np.abs(stems[1, before]).max() < 1e-5


def test_reset_restores_the_initial_state(switching):
    mix = (0.3 * np.random.default_rng(1).standard_normal((1500, 2))).astype(np.float32)
    sep = StreamingSeparator(str(switching), latency="low")
    first = _stream(sep, mix, 64)
    carried = _stream(sep, mix, 64)  # no reset: the model remembers the first stream
    sep.reset()
    again = _stream(sep, mix, 64)
    np.testing.assert_array_equal(again, first)
    assert np.abs(carried[0]).max() < 1e-5  # all drums: the state had passed the switch
    np.testing.assert_allclose(carried[1, :-16], mix[:-16], atol=1e-5)


def test_stateful_metadata_round_trips_and_bad_state_is_refused():
    info = stateful_info()
    assert parse_metadata(info.to_metadata()) == info
    props = info.to_metadata()
    with pytest.raises(ModelFormatError, match="needs format_version 3"):
        parse_metadata({**props, "realtime_split.format_version": "2"})
    with pytest.raises(ModelFormatError, match="JSON list"):
        parse_metadata({**props, "realtime_split.state": '{"input": "count"}'})
    hann = dataclasses.replace(info, frontend=StftGeometry(64, 16, 32))
    with pytest.raises(ModelFormatError, match="lowdelay"):
        parse_metadata(hann.to_metadata())
    crossfaded = dataclasses.replace(info, presets={"low": Geometry(64, 16, 8, 16)})
    with pytest.raises(ModelFormatError, match="whole number of frames"):
        parse_metadata(crossfaded.to_metadata())
    with pytest.raises(ModelFormatError, match="synthesis = 2 \\* hop"):
        StftGeometry(64, 16, 32, window="lowdelay", synthesis=16).validate("model")


def test_a_state_the_graph_lacks_is_refused_with_the_contract(tmp_path):
    info = stateful_info()
    wrong = dataclasses.replace(info, state=(dataclasses.replace(info.state[0], shape=(3,)),))
    path = make_stateful_model(tmp_path / "wrong.onnx", VOCALS, DRUMS, SWITCH, wrong)
    with pytest.raises(ModelFormatError, match="state input 'count' must be float32 \\[batch, 3\\]"):
        StreamingSeparator(str(path), latency="low")


def test_lowdelay_windows_reconstruct_and_delay_only_the_synthesis_length():
    g = StftGeometry(2048, 256, 512, window="lowdelay", synthesis=512).validate("model")
    analysis, synthesis = g.lowdelay_windows()
    assert np.all(synthesis[:2048 - 512] == 0)  # a frame's output needs only its last 512 samples
    total = np.zeros(256 * 20 + 2048)
    for k in range(20):
        total[256 * k:256 * k + 2048] += analysis * synthesis
    np.testing.assert_allclose(total[2048:256 * 20], 1.0, atol=1e-6)


def test_an_explicit_hop_runs_whole_frames_or_is_refused(switching):
    sep = StreamingSeparator(str(switching), latency="low", hop=48)
    assert (sep.geometry.hop, sep.latency_samples) == (48, 64)
    mix = (0.3 * np.random.default_rng(2).standard_normal((1500, 2))).astype(np.float32)
    np.testing.assert_allclose(_stream(sep, mix, 100)[0, :16 * SWITCH - 16], mix[:16 * SWITCH - 16], atol=1e-5)
    with pytest.raises(ModelFormatError, match="multiple of 16"):
        StreamingSeparator(str(switching), latency="low", hop=40)


def test_frames_final_ahead_of_process_are_the_ones_process_returns_next(switching):
    """Live mode plays a run's finished hop before the next input arrives (``ahead``): a stateful
    runner's kept region is final as a stateless one's is."""
    mix = (0.3 * np.random.default_rng(4).standard_normal((1200, 2))).astype(np.float32)
    sep = StreamingSeparator(str(switching), latency="balanced")
    early = sep.ahead().copy()
    seen = 0
    for start in range(0, 1200, 100):
        out = sep.process(mix[start:start + 100])
        n = min(early.shape[1], 100)
        np.testing.assert_array_equal(out[:, :n], early[:, :n])
        seen += n
        early = sep.ahead().copy()
        assert early.shape[1] == sep.frames_ahead
    assert seen >= 200  # the check compared real samples
