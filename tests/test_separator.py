"""StreamingSeparator on real ONNX Runtime sessions: exact delay, exact windows, stems, resampling, errors."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnx_models import TEST_PRESETS, make_identity_model, test_info as make_info
from realtime_split import StreamingSeparator, UserError, overlap_add as ola, resampling
from realtime_split.errors import ModelFormatError
from realtime_split.model_format import Geometry

SIZES = [1, 127, 128, 129, 255, 4096]
STEMS = ("vocals", "drums", "bass", "other")


def noise(frames: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-1, 1, (frames, channels))).astype(np.float32)


def random_sizes(seed: int, high: int = 3000) -> list[int]:
    return [int(n) for n in np.random.default_rng(seed).integers(0, high, 200)]


def stream(sep: StreamingSeparator, x: np.ndarray, sizes) -> np.ndarray:
    """Feed ``x`` in blocks of the given sizes (cycled); return all outputs plus flush with the
    first latency_samples dropped, i.e. what should line up with ``x``."""
    outputs, done, i = [], 0, 0
    while done < len(x):
        n = sizes[i % len(sizes)]
        block = x[done:done + n]
        out = sep.process(block)
        assert out.shape == (len(sep.stems), len(block), x.shape[1]) and out.dtype == np.float32
        outputs.append(out)
        done += len(block)
        i += 1
    tail = sep.flush()
    assert tail.shape == (len(sep.stems), sep.latency_samples, x.shape[1])
    y = np.concatenate(outputs + [tail], axis=1)[:, sep.latency_samples:]
    assert y.shape[1] == len(x)
    return y


def offline_reference(model_path, x: np.ndarray, g: Geometry) -> np.ndarray:
    """The geometry written out plainly: the run after input sample ``e`` (every hop) sees ``x[e-window:e]``
    (zeros outside the signal) and its kept region, faded in and out, is added at ``e - latency``."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    fade_in, fade_out = ola.crossfade_pair(g.crossfade)
    weights = np.ones(g.keep_length, np.float32)
    weights[:g.crossfade] = fade_in
    weights[g.keep_length - g.crossfade:] = fade_out
    total = len(x)
    pad = g.window + g.latency  # positions from -pad up to total + pad
    padded = np.zeros((2, total + 2 * pad), np.float32)
    padded[:, pad:pad + total] = x.T
    y = None
    for end in range(g.hop, total + g.latency + g.hop, g.hop):
        window = padded[:, pad + end - g.window:pad + end]
        out = session.run(None, {"mix": window[None]})[0][0]  # [stems, 2, window]
        if y is None:
            y = np.zeros((out.shape[0], 2, total + 2 * pad), np.float32)
        kept = out[:, :, g.keep_start:g.keep_start + g.keep_length] * weights
        start = pad + end - g.latency
        y[:, :, start:start + g.keep_length] += kept
    return y[:, :, pad:pad + total].transpose(0, 2, 1)


# --- exact delay ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["low", "balanced", "quality", "offline"])
def test_identity_output_is_input_delayed_by_latency_for_any_block_sizes(identity_model, preset):
    sep = StreamingSeparator(identity_model, latency=preset)
    assert sep.latency_samples == TEST_PRESETS[preset].latency
    assert sep.latency_seconds == pytest.approx(sep.latency_samples / 44100)
    x = noise(9000)
    for sizes in ([1], SIZES[1:], random_sizes(1)):
        sep.reset()
        y = stream(sep, x, sizes)
        np.testing.assert_allclose(y, np.broadcast_to(x, y.shape), atol=1e-6)


def test_explicit_hop_overrides_the_preset(identity_model):
    sep = StreamingSeparator(identity_model, latency="balanced", hop=100)
    assert (sep.geometry.hop, sep.geometry.crossfade, sep.geometry.window) == (100, 64, 2048)
    assert sep.latency_samples == 100 + 64 + 128
    x = noise(7000)
    y = stream(sep, x, random_sizes(2, 700))
    np.testing.assert_allclose(y, np.broadcast_to(x, y.shape), atol=1e-6)


def test_first_latency_samples_are_silence_and_preallocated_out_is_used(identity_model):
    sep = StreamingSeparator(identity_model, stems="vocals")
    x = noise(1000)
    out = np.full((1, 1000, 2), 7.0, np.float32)
    assert sep.process(x, out=out) is out
    assert not out[0, :sep.latency_samples].any()
    np.testing.assert_allclose(out[0, sep.latency_samples:], x[:1000 - sep.latency_samples], atol=1e-6)
    with pytest.raises(ValueError, match="out= must be"):
        sep.process(x, out=np.zeros((1, 999, 2), np.float32))


@pytest.mark.parametrize("caller_rate, quality", [(None, "HQ"), (48000, "HQ"), (22050, "HQ"), (48000, "LQ"),
                                                 (48000, "LD"), (96000, "LD"), (22050, "LD"), (88200, "LD")])
def test_impulse_arrives_exactly_latency_samples_later(identity_model, caller_rate, quality):
    sep = StreamingSeparator(identity_model, stems="vocals", sample_rate=caller_rate, resample_quality=quality)
    assert sep.sample_rate == (caller_rate or 44100) and sep.model_sample_rate == 44100
    x = np.zeros((12000, 2), np.float32)
    x[5000] = 1.0
    y = np.concatenate([sep.process(x[i:i + 300]) for i in range(0, len(x), 300)], axis=1)
    peak = int(np.argmax(np.abs(y[0, :, 0])))
    assert abs(peak - (5000 + sep.latency_samples)) <= 1, (peak, sep.latency_samples)
    if caller_rate is None:
        assert peak == 5000 + sep.latency_samples and y[0, peak, 0] == pytest.approx(1.0)
        assert sep.latency_samples == TEST_PRESETS["balanced"].latency


@pytest.mark.parametrize("preset", ["low", "balanced", "quality", "offline"])
@pytest.mark.parametrize("caller_rate", [48000, 96000])
def test_low_delay_resampling_adds_at_most_two_ms_at_every_preset(identity_model, preset, caller_rate):
    """The default ("LD") adds the two filters' half lengths and less than a sample to align: 1.1 ms, where soxr's
    recipes hold back whole blocks (about 40 ms for "HQ", 13 ms even for "LQ")."""
    native = StreamingSeparator(identity_model, latency=preset)
    ld = StreamingSeparator(identity_model, latency=preset, sample_rate=caller_rate)
    lq = StreamingSeparator(identity_model, latency=preset, sample_rate=caller_rate, resample_quality="LQ")
    hq = StreamingSeparator(identity_model, latency=preset, sample_rate=caller_rate, resample_quality="HQ")
    added = ld.latency_seconds - native.latency_seconds
    assert 0.001 < added <= 0.002
    assert ld.latency_samples < lq.latency_samples < hq.latency_samples


def test_an_unknown_resampling_recipe_names_the_choices(identity_model):
    with pytest.raises(UserError, match=r"resample_quality must be one of LD, LQ, MQ, HQ, VHQ, got 'best'"):
        StreamingSeparator(identity_model, sample_rate=48000, resample_quality="best")


@pytest.mark.parametrize("caller_rate", [48000, 96000, 32000])
def test_low_delay_filters_pass_the_band_and_stop_aliases(identity_model, caller_rate):
    """Through caller rate -> 44.1 kHz -> caller rate: flat to 18 kHz (where the band allows), a tone the model's
    rate cannot carry is gone."""
    def gain(freq: float) -> float:
        sep = StreamingSeparator(identity_model, stems="vocals", sample_rate=caller_rate, channels=1)
        t = np.arange(caller_rate // 2) / caller_rate
        y = sep.process((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))[0, :, 0]
        return float(np.std(y[len(y) // 2:]) / np.std(0.5 * np.sin(2 * np.pi * freq * t)))

    top = min(18000, 0.39 * caller_rate)
    for freq in (100, 1000, 10000, top):
        assert gain(freq) == pytest.approx(1.0, abs=0.012), freq  # within 0.1 dB
    if caller_rate > 44100:
        assert gain(23000) < 1e-3  # above 22.05 kHz: stopped (-60 dB)


@pytest.mark.parametrize("caller_rate", [48000, 22050])
def test_resampled_stream_keeps_its_fixed_delay_for_any_block_sizes(identity_model, caller_rate):
    sep = StreamingSeparator(identity_model, stems="vocals,drums", sample_rate=caller_rate, channels=1)
    t = np.arange(30000) / caller_rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)[:, None]
    y = stream(sep, x, random_sizes(3, 300)[:60] + [1] * 60 + [4096])
    edge = 2000  # resampling filters ring at the signal's start and end
    np.testing.assert_allclose(y[:, edge:-edge], np.broadcast_to(x, y.shape)[:, edge:-edge], atol=2e-3)
    assert sep.stats.resampler_underruns == 0


# --- exact windows ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, hop", [("low", None), ("balanced", None), ("offline", None), ("quality", 200)])
def test_streaming_matches_offline_windowed_processing(conv_model, preset, hop):
    sep = StreamingSeparator(conv_model, latency=preset, hop=hop)
    x = noise(6000, seed=4)
    expected = offline_reference(conv_model, x, sep.geometry)
    y = stream(sep, x, SIZES[1:] + [1, 1, 3000])
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_batched_runs_equal_one_by_one(conv_model):
    x = noise(16 * 256 * 2 + 100, seed=5)
    batched = StreamingSeparator(conv_model, max_batch=16)
    single = StreamingSeparator(conv_model, max_batch=1)
    y_batched = batched.process(x)
    y_single = np.concatenate([single.process(x[i:i + 256]) for i in range(0, len(x), 256)], axis=1)
    np.testing.assert_array_equal(y_batched, y_single)
    assert batched.stats.runs == single.stats.runs == len(x) // 256
    assert batched.stats.batches == 2 and single.stats.batches == len(x) // 256
    assert batched.stats.last_inference_seconds > 0 and batched.stats.avg_inference_seconds > 0


def test_separators_run_independently_on_threads(conv_model):
    x = noise(8000, seed=6)
    expected = [StreamingSeparator(conv_model, latency=p).process(x) for p in ("low", "quality")]
    results = {}

    def work(i, preset):
        sep = StreamingSeparator(conv_model, latency=preset)
        results[i] = np.concatenate([sep.process(x[j:j + 128]) for j in range(0, len(x), 128)], axis=1)

    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate(("low", "quality"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-6)


def test_reset_starts_a_fresh_stream(conv_model):
    sep = StreamingSeparator(conv_model)
    x = noise(3000, seed=7)
    first = sep.process(x)
    sep.process(noise(1234, seed=8))
    sep.reset()
    np.testing.assert_array_equal(sep.process(x), first)


def test_no_kernel_compiles_after_construction(identity_model):
    StreamingSeparator(identity_model)
    for channels in (1, 2):
        StreamingSeparator(identity_model, stems="vocals,accompaniment", channels=channels, sample_rate=48000)
    kernels = (ola.write_ring, ola.sanitize, ola.gather_windows, ola.overlap_add, ola.read_output,
               resampling.store, resampling.store_input, resampling.fir)
    before = [len(k.signatures) for k in kernels]
    for channels in (1, 2):
        for rate in (None, 48000):
            sep = StreamingSeparator(identity_model, stems="vocals,accompaniment", channels=channels, sample_rate=rate)
            sep.process(noise(3000, channels).astype(np.float64))
            sep.ahead()
            sep.flush()
    assert [len(k.signatures) for k in kernels] == before


# --- stems, gains, channels, bad samples -----------------------------------------------------------

def delayed(x: np.ndarray, sep: StreamingSeparator) -> np.ndarray:
    return np.concatenate([np.zeros((sep.latency_samples, x.shape[1]), np.float32), x])[:len(x)]


def test_scaled_model_stems_and_order(scaled_model):
    sep = StreamingSeparator(scaled_model, stems="other,vocals,drums")
    assert sep.stems == ("other", "vocals", "drums")
    x = noise(4000)
    y = sep.process(x)
    d = delayed(x, sep)
    for stem, scale in zip(sep.stems, (0.125, 0.5, 0.25)):
        np.testing.assert_allclose(y[sep.stems.index(stem)], scale * d, atol=1e-6)
    assert StreamingSeparator(scaled_model).stems == STEMS


def test_accompaniment_is_mix_minus_vocals(scaled_model):
    sep = StreamingSeparator(scaled_model, stems=["vocals", "accompaniment"])
    x = noise(4000, seed=9)
    y = sep.process(x)
    d = delayed(x, sep)
    np.testing.assert_allclose(y[1], 0.5 * d, atol=1e-6)
    np.testing.assert_allclose(y[0] + y[1], d, atol=1e-6)


def test_gains_in_db_including_mute(scaled_model):
    x = noise(3000, seed=10)
    for gains in ({"vocals": -math.inf, "drums": -6.0}, ["vocals=-inf", "drums=-6"], "vocals=-inf,drums=-6"):
        sep = StreamingSeparator(scaled_model, gains=gains)
        y = sep.process(x)
        d = delayed(x, sep)
        assert not y[0].any()
        np.testing.assert_allclose(y[1], 0.25 * 10 ** (-6 / 20) * d, atol=1e-6)
        np.testing.assert_allclose(y[2], 0.125 * d, atol=1e-6)


def test_mono_in_mono_out(scaled_model):
    sep = StreamingSeparator(scaled_model, stems="vocals", channels=1)
    x = noise(3000, channels=1, seed=11)
    y = sep.process(x[:, 0])  # (n,) is mono too
    assert y.shape == (1, 3000, 1)
    np.testing.assert_allclose(y[0], 0.5 * delayed(x, sep), atol=1e-6)


@pytest.mark.parametrize("caller_rate", [None, 48000])
def test_non_finite_input_becomes_silence_and_is_counted(identity_model, caller_rate):
    sep = StreamingSeparator(identity_model, stems="vocals", sample_rate=caller_rate)
    x = noise(6000, seed=12)
    x[100, 0] = np.nan
    x[2000:2010] = np.inf
    x[3000, 1] = -np.inf
    y = np.concatenate([sep.process(x), sep.flush()], axis=1)
    assert np.isfinite(y).all()
    assert sep.stats.nonfinite_samples == 22
    if caller_rate is None:
        clean = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        np.testing.assert_allclose(y[0, sep.latency_samples:], clean, atol=1e-6)


def test_channel_errors(identity_model):
    sep = StreamingSeparator(identity_model)
    with pytest.raises(UserError, match=r"^input has 3 channels; the separator takes 1 or 2, so pick them first "
                                        r"\(e\.g\. block\[:, :2\]\)$"):
        sep.process(np.zeros((10, 3), np.float32))
    with pytest.raises(UserError, match="input has 1 channel but the separator was made for 2"):
        sep.process(np.zeros(10, np.float32))
    with pytest.raises(UserError, match="the separator takes 1 or 2 channels"):
        StreamingSeparator(identity_model, channels=3)


def test_stem_and_gain_errors(scaled_model):
    with pytest.raises(UserError, match="unknown stem 'piano'; this model offers vocals, drums, bass, other, "
                                        "accompaniment"):
        StreamingSeparator(scaled_model, stems="vocals,piano")
    with pytest.raises(UserError, match="must look like STEM=DB"):
        StreamingSeparator(scaled_model, gains="vocals")
    with pytest.raises(UserError, match="must be a number of dB or -inf"):
        StreamingSeparator(scaled_model, gains=["drums=loud"])
    with pytest.raises(UserError, match="not an output stem; the output stems are vocals"):
        StreamingSeparator(scaled_model, stems="vocals", gains={"drums": -6})


# --- models and providers ----------------------------------------------------------------------------

def test_missing_and_garbage_model_files(tmp_path):
    with pytest.raises(UserError, match="'.*nope.onnx' not found: not a file and not a bundled model"):
        StreamingSeparator(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(UserError, match="is not a readable ONNX model"):
        StreamingSeparator(garbage)


def test_a_missing_bundled_model_is_explained(monkeypatch, tmp_path):
    from realtime_split import registry

    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path)  # a build without the models
    with pytest.raises(UserError, match=r"no bundled default model in this build .*; pass model='PATH.onnx'"):
        StreamingSeparator()


def test_bundled_default_model_streams_four_stems_within_the_latency_targets():
    sep = StreamingSeparator()  # no model given: the one shipped in realtime_split/models/
    assert sep.stems == ("vocals", "drums", "bass", "other") and sep.model_sample_rate == 44100
    assert sep.latency_samples <= 0.025 * 44100
    assert StreamingSeparator(latency="low").latency_samples <= 0.012 * 44100
    t = np.arange(20000) / 44100
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32)
    y = np.concatenate([sep.process(x), sep.flush()], axis=1)[:, sep.latency_samples:]
    assert np.isfinite(y).all() and y.shape == (4, len(x), 2)
    # The four stems add up to the mix again, up to the model's error (at least 10 dB below it).
    residual = y.sum(axis=0) - x
    assert 10 * np.log10(np.sum(x ** 2) / np.sum(residual ** 2)) > 10


def test_model_without_metadata(tmp_path):
    from onnx_models import make_model_without_metadata

    path = make_model_without_metadata(tmp_path / "plain.onnx")
    with pytest.raises(ModelFormatError, match="is missing; is this a realtime-split model"):
        StreamingSeparator(path)


def test_metadata_geometry_longer_than_window(tmp_path):
    info = make_info(presets={"balanced": Geometry(window=512, hop=256, crossfade=128, lookahead=256)})
    path = make_identity_model(tmp_path / "bad.onnx", info=info)
    with pytest.raises(ModelFormatError, match=r"hop \+ crossfade \+ lookahead \(640\) exceeds the window \(512\)"):
        StreamingSeparator(path)


def test_explicit_hop_too_long_for_the_window(identity_model):
    with pytest.raises(UserError, match="exceeds the window"):
        StreamingSeparator(identity_model, hop=4096)


def test_wrong_input_name_and_output_rank(tmp_path):
    def save(name, inp, out):
        graph = helper.make_graph([helper.make_node("Identity", [inp.name], [out.name])], name, [inp], [out])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        for key, value in make_info().to_metadata().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        return tmp_path / f"{name}.onnx"

    f = TensorProto.FLOAT
    wrong_name = save("x", helper.make_tensor_value_info("x", f, ["b", 2, "t"]),
                      helper.make_tensor_value_info("stems", f, ["b", 2, "t"]))
    with pytest.raises(ModelFormatError, match=r"model input must be 'mix' float32 \[batch, 2, time\]"):
        StreamingSeparator(wrong_name)
    wrong_rank = save("rank", helper.make_tensor_value_info("mix", f, ["b", 2, "t"]),
                      helper.make_tensor_value_info("stems", f, ["b", 2, "t"]))
    with pytest.raises(ModelFormatError, match=r"model output must be 'stems' float32 \[batch, 4, 2, time\]"):
        StreamingSeparator(wrong_rank)
    fixed_batch = save("fixed", helper.make_tensor_value_info("mix", f, [1, 2, "t"]),
                       helper.make_tensor_value_info("stems", f, [1, 4, 2, "t"]))
    with pytest.raises(ModelFormatError, match="with dynamic batch and time"):
        StreamingSeparator(fixed_batch)


def test_providers(identity_model):
    assert StreamingSeparator(identity_model, provider="cpu").provider == "CPUExecutionProvider"
    assert StreamingSeparator(identity_model).provider in ort.get_available_providers()
    with pytest.raises(UserError, match="provider='tpu' is unknown"):
        StreamingSeparator(identity_model, provider="tpu")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; the missing-CUDA message cannot be checked")
    with pytest.raises(UserError, match=r"pip install realtime-split\[gpu\]"):
        StreamingSeparator(identity_model, provider="cuda")


def test_runtime_never_imports_tensorflow():
    code = ("import sys, realtime_split, realtime_split.separator, realtime_split.resampling; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_inference_thread_count_is_the_callers_choice(identity_model):
    from realtime_split.inference import default_threads, session_options

    assert session_options(1).intra_op_num_threads == 1
    assert session_options().intra_op_num_threads == default_threads() >= 1
    sep = StreamingSeparator(identity_model, threads=1)
    x = np.random.default_rng(3).standard_normal((1000, 2)).astype(np.float32)
    y = np.concatenate([sep.process(x), sep.flush()], axis=1)[:, sep.latency_samples:]
    np.testing.assert_allclose(y[0], x, atol=1e-6)
    with pytest.raises(UserError, match="threads"):
        StreamingSeparator(identity_model, threads=0)


# --- output that is final ahead of the input (real-time hosts) -------------------------------------

@pytest.mark.parametrize("caller_rate, quality", [(None, "LD"), (48000, "LD"), (96000, "LD"), (48000, "HQ")])
@pytest.mark.parametrize("stems", ["vocals", "vocals,accompaniment"])
def test_ahead_gives_now_what_process_returns_later(conv_model, caller_rate, quality, stems):
    """After each block, ``ahead()`` holds the next ``frames_ahead`` output frames, equal to what the following
    ``process`` calls return; ``ready_after`` says how many, as a function of the input so far."""
    rate = caller_rate or 44100
    sep = StreamingSeparator(conv_model, stems=stems, sample_rate=caller_rate, resample_quality=quality)
    x = noise(rate // 2, seed=21)
    sizes = random_sizes(5, 200)
    whole = StreamingSeparator(conv_model, stems=stems, sample_rate=caller_rate, resample_quality=quality)
    reference = np.concatenate([whole.process(x), whole.flush()], axis=1)  # as the stream plays it, not aligned
    done, seen_ahead = 0, 0
    for size in sizes:
        if done + size > len(x):
            break
        sep.process(x[done:done + size])
        done += size
        assert sep.frames_ahead == sep.ready_after(done) - done
        got = sep.ahead()
        assert got.shape == (len(sep.stems), sep.frames_ahead, 2)
        n = min(got.shape[1], reference.shape[1] - done)
        np.testing.assert_array_equal(got[:, :n], reference[:, done:done + n])
        skipped = sep.ahead(skip=3)
        np.testing.assert_array_equal(skipped, got[:, 3:])
        seen_ahead = max(seen_ahead, got.shape[1])
    hop = sep.geometry.hop * rate // 44100
    if quality == "LD":
        assert hop // 2 < seen_ahead <= hop + 2  # up to a hop is final early
    else:
        assert seen_ahead == 0  # soxr releases nothing early


def test_ready_after_repeats_with_its_period(identity_model):
    for rate in (None, 48000):
        sep = StreamingSeparator(identity_model, sample_rate=rate)
        period = sep.ready_period()
        for p in (0, 1, 255, 256, 1000):
            assert sep.ready_after(p + period) - (p + period) == sep.ready_after(p) - p
        assert all(sep.ready_after(p) >= p for p in range(2000))


@pytest.fixture(scope="module")
def native48_model(tmp_path_factory) -> Path:
    """The identity model, trained at 44.1 kHz, that also runs unresampled at 48 kHz (``native_rates``)."""
    info = dataclasses.replace(make_info(), native_rates=(48000,))
    return make_identity_model(tmp_path_factory.mktemp("native") / "native48.onnx", info)


def test_a_native_rate_runs_the_network_unresampled_with_the_presets_latency_in_its_samples(native48_model):
    sep = StreamingSeparator(native48_model, stems="vocals", sample_rate=48000)
    assert sep.model_sample_rate == 48000
    assert sep.latency_samples == TEST_PRESETS["balanced"].latency
    x = noise(6000)
    y = np.concatenate([sep.process(x[i:i + 300]) for i in range(0, len(x), 300)], axis=1)
    d = sep.latency_samples
    np.testing.assert_allclose(y[0, d:], x[:len(x) - d], atol=1e-6)  # no resampler's filter in the path


@pytest.mark.parametrize("caller_rate, quality", [(48000, "HQ"), (96000, "LD")])
def test_other_rates_and_soxr_recipes_still_resample_to_the_trained_rate(native48_model, caller_rate, quality):
    """A soxr recipe asks for transparency over delay (whole files use HQ): the network runs at the rate it
    was trained at."""
    sep = StreamingSeparator(native48_model, stems="vocals", sample_rate=caller_rate, resample_quality=quality)
    assert sep.model_sample_rate == 44100 and sep.latency_samples > TEST_PRESETS["balanced"].latency
