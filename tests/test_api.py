"""The library API without the command line: arrays, files, the errors an application catches.

Real ONNX Runtime sessions on the test models (tests/onnx_models.py), real audio files. The
scaled model makes every stem a known multiple of the mix (vocals 0.5, drums 0.25, bass 0.125,
other 0.125), the conv model makes each output depend on a whole window.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import realtime_split
from cli_helpers import music, read, write_music
from realtime_split import (
    AudioIOError,
    FileResult,
    ParameterError,
    Progress,
    Separator,
    StreamingSeparator,
    UserError,
    bundled_models,
    separate,
    separate_file,
)
from realtime_split.cli import command_line

RATE = 44100


def streamed(sep: StreamingSeparator, x: np.ndarray) -> np.ndarray:
    """What a stream gives for ``x``, with the separator's latency cut off the front."""
    return np.concatenate([sep.process(x), sep.flush()], axis=1)[:, sep.latency_samples:]


# --- arrays -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("latency", ["offline", "balanced"])
def test_separating_an_array_gives_the_streaming_separators_output_aligned(conv_model, latency):
    x = music(3.5, RATE, 2, seed=4)  # longer than one 65536-frame block: the block joins are inside

    got = separate(x, RATE, model=conv_model, latency=latency)

    expected = streamed(StreamingSeparator(conv_model, latency=latency), x)
    assert list(got.stems) == ["vocals", "drums", "bass", "other"]
    assert got.sample_rate == RATE and got.preset == latency
    assert got.latency_samples == StreamingSeparator(conv_model, latency=latency).latency_samples > 0
    for i, stem in enumerate(got.stems.values()):
        assert stem.shape == x.shape and stem.dtype == np.float32
        np.testing.assert_allclose(stem, expected[i], atol=1e-6)


def test_a_mono_array_at_another_rate_is_resampled_and_keeps_its_shape(conv_model):
    x = music(1.0, 48000, 1, seed=5)[:, 0]  # (n,): one channel, no channel axis
    separator = Separator(conv_model, stems="vocals,accompaniment")

    got = separator.separate(x, 48000)

    reference = StreamingSeparator(conv_model, stems="vocals,accompaniment", latency="offline", sample_rate=48000,
                                   channels=1, resample_quality="HQ")  # whole arrays resample transparently
    expected = streamed(reference, x)
    assert got.latency_samples == reference.latency_samples and got.sample_rate == 48000
    assert got.stems["vocals"].shape == x.shape
    np.testing.assert_allclose(got.stems["vocals"], expected[0, :, 0], atol=1e-6)
    np.testing.assert_allclose(got.stems["accompaniment"], expected[1, :, 0], atol=1e-6)


def test_one_separator_serves_arrays_of_several_rates_and_forgets_each(conv_model):
    separator = Separator(conv_model, stems="vocals")
    a, b = music(0.3, RATE, 2, seed=1), music(0.3, 22050, 2, seed=2)
    first = separator.separate(a, RATE).stems["vocals"]
    other = separator.separate(b, 22050).stems["vocals"]
    again = separator.separate(a, RATE).stems["vocals"]  # a reused engine starts from silence again
    np.testing.assert_allclose(first, streamed(StreamingSeparator(conv_model, stems="vocals", latency="offline"),
                                               a)[0], atol=1e-6)
    assert other.shape == b.shape
    np.testing.assert_array_equal(again, first)


# --- files ----------------------------------------------------------------------------------------------------------

def test_separate_file_writes_each_stem_and_reports_progress_to_completion(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.flac", seconds=4.0, seed=3)  # several blocks
    events: list[Progress] = []

    result = separate_file(tmp_path / "song.flac", tmp_path / "stems", model=scaled_model, stems="vocals,bass",
                           progress=events.append)

    assert isinstance(result, FileResult)
    assert result.outputs == {"vocals": tmp_path / "stems/vocals.wav", "bass": tmp_path / "stems/bass.wav"}
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == ["bass.wav", "vocals.wav"]
    np.testing.assert_allclose(read(result.outputs["vocals"])[0], 0.5 * mix, atol=1e-5)
    np.testing.assert_allclose(read(result.outputs["bass"])[0], 0.125 * mix, atol=1e-5)
    assert (result.seconds, result.sample_rate, result.channels) == (pytest.approx(4.0), RATE, 2)
    assert result.latency_samples > 0 and result.preset == "offline" and result.ended_early is None

    done = [e.seconds_done for e in events]
    assert len(events) >= 4 and done[0] == 0 and done == sorted(done)
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    assert all(e.result is None for e in events[:-1])
    last = events[-1]
    assert last.finished and last.result is result and last.fraction == 1.0
    assert last.seconds_done == pytest.approx(last.seconds_total) == pytest.approx(4.0)
    assert all(e.input == tmp_path / "song.flac" and e.outputs == tuple(result.outputs.values()) for e in events)


def test_the_mix_of_the_stems_into_one_file(tmp_path, scaled_model):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)

    result = Separator(scaled_model, gains={"vocals": float("-inf")}).separate_file(
        tmp_path / "song.wav", tmp_path / "karaoke.wav", mix=True)

    assert result.mix and result.outputs == {"mix": tmp_path / "karaoke.wav"}
    np.testing.assert_allclose(read(tmp_path / "karaoke.wav")[0], 0.5 * mix, atol=1e-5)  # drums + bass + other


def test_several_files_get_a_folder_each_and_one_result_each(tmp_path, scaled_model):
    write_music(tmp_path / "a.wav", seconds=0.3, seed=1)
    write_music(tmp_path / "b.wav", seconds=0.2, seed=2)
    finished = []

    results = Separator(scaled_model, stems="drums").separate_files(
        [tmp_path / "a.wav", tmp_path / "b.wav"], tmp_path / "out",
        progress=lambda p: p.finished and finished.append(p.input.name))

    assert [r.outputs for r in results] == [{"drums": tmp_path / "out/a/drums.wav"},
                                            {"drums": tmp_path / "out/b/drums.wav"}]
    assert finished == ["a.wav", "b.wav"]


# --- errors an application catches ------------------------------------------------------------------------------------

def six_channels(tmp_path):
    sf.write(tmp_path / "six.wav", music(0.2, RATE, 6), RATE, subtype="FLOAT")
    return tmp_path / "six.wav"


@pytest.mark.parametrize("call, kind, parameter, names", [
    (lambda d, m: Separator(d / "absent.onnx"), ValueError, "model", "model '"),
    (lambda d, m: Separator(m, stems="vocals,kazoo"), ValueError, "stems", "stems='vocals,kazoo'"),
    (lambda d, m: Separator(m, gains="vocals=loud"), ValueError, "gains", "gains='vocals=-6'"),
    (lambda d, m: Separator(m, provider="tpu"), ValueError, "provider", "provider='tpu' is unknown"),
    (lambda d, m: Separator(m).separate(np.zeros((10, 2), np.int64)), ValueError, "audio", "audio has dtype int64"),
    (lambda d, m: Separator(m).separate(np.zeros((10, 3), np.float32)), ValueError, "audio", "audio[:, :2]"),
    (lambda d, m: separate_file(d / "nope.wav", d / "out", model=m), OSError, "input", "nope.wav"),
    (lambda d, m: separate_file(six_channels(d), d / "out", model=m), ValueError, "channels", "channels='1,2'"),
    (lambda d, m: separate_file(six_channels(d), d / "out", model=m, channels="7,8"), ValueError, "channels",
     "channels='7,8'"),
    (lambda d, m: separate_file(d / "song.wav", d / "out", model=m, format="xyz"), ValueError, "format", "format="),
    (lambda d, m: separate_file(d / "song.wav", d / "out", model=m, subtype="VORBIS"), ValueError, "subtype",
     "subtype='VORBIS'"),
    (lambda d, m: separate_file(d / "song.wav", d / "stems.wav", model=m), ValueError, "output", "mix=True"),
    (lambda d, m: separate_file(d / "song.wav", d / "song.wav", model=m, stems="vocals"), ValueError, "output",
     "output="),
    (lambda d, m: separate_file(d / "song.wav", d / "a_file/out/", model=m), OSError, "output", "output="),
])
def test_library_errors_are_value_or_os_errors_that_name_the_parameter(tmp_path, scaled_model, call, kind,
                                                                       parameter, names):
    write_music(tmp_path / "song.wav", seconds=0.2)
    (tmp_path / "a_file").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())

    with pytest.raises(UserError) as caught:
        call(tmp_path, scaled_model)

    error = caught.value
    assert isinstance(error, kind) and isinstance(error, ParameterError if kind is ValueError else AudioIOError)
    assert error.parameter == parameter
    message = str(error)
    assert names in message and "--" not in message and "\n" not in message, message  # a parameter, no flag
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "six.wav") == before  # nothing written


def test_the_command_line_shows_parameters_as_its_flags():
    assert command_line("stems='vocals,kazoo': unknown stem 'kazoo'") == "--stem vocals,kazoo: unknown stem 'kazoo'"
    assert command_line("input_device='usb headset' matches no input device") == \
        "--input-device 'usb headset' matches no input device"
    assert command_line("output='-' cannot be wav; pass one as format=, or write a file") == \
        "--output - cannot be wav; pass one as --format, or write a file"
    assert command_line("pick other devices (input_device=, output_device=; see list_devices())") == \
        "pick other devices (--input-device, --output-device; see --list-devices)"
    assert command_line("or pass mix=True to write their mix") == \
        "or pass --gain STEM=DB (e.g. vocals=-inf) to write their mix"
    assert command_line("e.g. vocals=-inf, a remodel=3, hop=16: too small") == \
        "e.g. vocals=-inf, a remodel=3, --hop 16: too small"


# --- the bundled models -------------------------------------------------------------------------------------------

def test_the_registry_of_bundled_models_is_public():
    models = {m.name: m for m in bundled_models()}
    assert {"fast", "quality"} <= set(models)
    assert models["fast"].path.is_file() and "balanced" in models["fast"].info.presets
    assert set(realtime_split.__all__) <= set(dir(realtime_split)) | {"LiveSession"}
    assert realtime_split.LiveSession.__name__ == "LiveSession"  # loaded on first use
