"""One loaded model, many streams: ``Model.load`` opens a model once, and separators at any rate and
channel count (``StreamingSeparator``, ``Separator``, ``LiveSession``) run on it without loading again.

Loads are counted by watching ONNX Runtime open sessions (the real ``InferenceSession``, subclassed only
to count), so a test fails if anything opens the model file a second time. The conv model makes every
output sample depend on a whole window, so a stream that shared state with another would show it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf

import realtime_split as rs
from cli_helpers import music
from realtime_split import Model, ParameterError, Separator, StreamingSeparator

RATE = 44100
STREAMS = [(44100, 2), (44100, 1), (48000, 2), (48000, 1)]


@pytest.fixture
def sessions(monkeypatch) -> list[Path]:
    """The model files ONNX Runtime opens from now on (real sessions: the class is only subclassed to count)."""
    opened: list[Path] = []

    class Counted(ort.InferenceSession):
        def __init__(self, path, *args, **kwargs):
            opened.append(Path(path))
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", Counted)
    return opened


def blocks(x: np.ndarray, sizes: list[int]):
    """``x`` cut into blocks of the given sizes, cycled (a 0 is an empty block)."""
    start, i = 0, 0
    while start < len(x):
        size = sizes[i % len(sizes)]
        yield x[start:start + size]
        start, i = start + size, i + 1


def test_one_model_loaded_once_serves_streams_at_44_1_and_48_khz_mono_and_stereo(conv_model, sessions):
    model = Model.load(conv_model)
    streams = {key: StreamingSeparator(model, latency="low", sample_rate=key[0], channels=key[1]) for key in STREAMS}

    assert sessions == [Path(conv_model)]  # the one load; four streams opened nothing more
    assert all(s.model is model and s.info is model.info for s in streams.values())
    # Each stream gives what a separator that loaded the file itself gives, even when the streams are driven in
    # turns: they share the session, not their rings, resamplers or runners.
    inputs = {key: music(0.5, key[0], key[1], seed=key[1]) for key in STREAMS}
    got: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in STREAMS}
    for start in range(0, 24000, 1000):
        for key, stream in streams.items():
            got[key].append(stream.process(inputs[key][start:start + 1000]))
    for key in STREAMS:
        own = StreamingSeparator(conv_model, latency="low", sample_rate=key[0], channels=key[1])
        np.testing.assert_allclose(np.concatenate(got[key], axis=1), own.process(inputs[key]), atol=1e-6)


def test_streams_of_one_model_run_on_separate_threads(conv_model):
    model = Model.load(conv_model)
    keys = [(44100, 2), (48000, 1), (44100, 2)]
    inputs = [music(0.5, rate, channels, seed=i) for i, (rate, channels) in enumerate(keys)]
    expected = [StreamingSeparator(conv_model, latency="low", sample_rate=rate, channels=channels).process(x)
                for (rate, channels), x in zip(keys, inputs)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        stream = StreamingSeparator(model, latency="low", sample_rate=keys[i][0], channels=keys[i][1])
        x = inputs[i]
        results[i] = np.concatenate([stream.process(x[j:j + 128]) for j in range(0, len(x), 128)], axis=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(len(keys)):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-6)  # (batched runs: rounding only)


def test_a_name_or_path_still_loads_its_own_model(conv_model, sessions):
    first = StreamingSeparator(conv_model, latency="low")
    second = StreamingSeparator(str(conv_model), latency="low", sample_rate=48000)

    assert len(sessions) == 2 and first.model is not second.model
    assert first.model.path == second.model.path == Path(conv_model)
    assert first.model.name == str(conv_model)


def test_a_separator_loads_its_model_once_for_48_khz_mono_input_and_files(conv_model, sessions, tmp_path):
    separator = Separator(conv_model, stems="vocals")
    mono48 = separator.separate(music(1.0, 48000, 1, seed=1)[:, 0], 48000)
    stereo44 = separator.separate(music(1.0, RATE, 2, seed=2), RATE)
    sf.write(tmp_path / "song.wav", music(1.0, 22050, 1, seed=3), 22050)
    separator.separate_file(tmp_path / "song.wav", tmp_path / "vocals.wav")

    assert sessions == [Path(conv_model)]
    assert mono48.stems["vocals"].shape == (48000,) and stereo44.stems["vocals"].shape == (RATE, 2)
    assert sf.info(tmp_path / "vocals.wav").frames == 22050


def test_a_separator_takes_a_loaded_model(conv_model, sessions):
    model = Model.load(conv_model)
    x = music(1.0, 48000, 2, seed=6)

    got = Separator(model, stems="vocals").separate(x, 48000)

    assert sessions == [Path(conv_model)]
    np.testing.assert_array_equal(got.stems["vocals"], Separator(conv_model, stems="vocals").separate(x, 48000)
                                  .stems["vocals"])


@pytest.mark.parametrize("rate, channels", [(44100, 2), (48000, 1)])
def test_the_aligned_iterator_equals_separate(conv_model, rate, channels):
    x = music(2.0, rate, channels, seed=7)
    expected = Separator(conv_model).separate(x, rate).stems  # offline, soxr HQ when resampling
    stream = StreamingSeparator(conv_model, latency="offline", sample_rate=rate, channels=channels,
                                resample_quality="HQ")

    for _ in range(2):  # a second pass starts the stream afresh
        parts = [part.copy() for part in stream.aligned(blocks(x, [0, 17, 4096, 100_000, 1]))]
        joined = np.concatenate(parts, axis=1)
        assert joined.shape == (len(stream.stems), len(x), channels)
        for i, name in enumerate(stream.stems):
            np.testing.assert_array_equal(joined[i], expected[name])


def test_the_aligned_iterator_yields_one_array_per_block_then_the_tail(identity_model):
    stream = StreamingSeparator(identity_model, stems="vocals", latency="low")
    x = music(0.1, RATE, 2, seed=8)
    sizes = [100, stream.latency_samples, len(x) - 100 - stream.latency_samples]

    parts = [part.copy() for part in stream.aligned(blocks(x, sizes))]

    assert len(parts) == 4 and parts[0].shape[1] == 0  # the first block's output is all delay
    np.testing.assert_allclose(np.concatenate(parts, axis=1)[0], x, atol=1e-6)  # the identity model: the input


def test_a_model_is_used_as_it_is_and_refuses_other_session_settings(conv_model, sessions):
    model = Model.load(conv_model, provider="cpu", threads=1)

    assert Model.load(model) is model and Model.load(model, provider="cpu", threads=1) is model
    assert StreamingSeparator(model).provider == "CPUExecutionProvider" and model.threads == 1
    with pytest.raises(ParameterError, match=r"threads=2, but the model .* was loaded with threads=1") as caught:
        StreamingSeparator(model, threads=2)
    assert caught.value.parameter == "threads"
    with pytest.raises(ParameterError, match=r"provider='cuda', but .* provider='cpu'") as caught:
        Separator(model, provider="cuda")
    assert caught.value.parameter == "provider"
    assert len(sessions) == 1


def test_a_models_errors_name_the_parameter(tmp_path, conv_model):
    with pytest.raises(ParameterError, match="not found") as caught:
        Model.load(tmp_path / "absent.onnx")
    assert caught.value.parameter == "model"
    with pytest.raises(ParameterError, match="threads") as caught:
        Model.load(conv_model, threads=0)
    assert caught.value.parameter == "threads"
    with pytest.raises(ParameterError, match=r"model '.*conv.onnx' has no latency preset 'kazoo'") as caught:
        StreamingSeparator(Model.load(conv_model), latency="kazoo")
    assert caught.value.parameter == "latency"


def test_a_live_session_loads_its_model_once_at_the_rate_it_runs(conv_model, sessions):
    session = rs.LiveSession(conv_model, open_stream=False, sample_rate=48000, blocksize=256)
    with session:
        assert session.separator is not None and session.separator.sample_rate == 48000
        assert session.separator.model.threads == 1  # a name or file: one ONNX Runtime thread beside audio
    assert sessions == [Path(conv_model)]

    model = Model.load(conv_model, threads=2)
    with rs.LiveSession(model, open_stream=False, sample_rate=48000, blocksize=256) as session:
        assert session.separator is not None and session.separator.model is model  # an app's Model, as it is
    assert len(sessions) == 2
