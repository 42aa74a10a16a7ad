"""The model contract: what export writes is what the runtime reads, and broken metadata is refused clearly."""

from __future__ import annotations

import dataclasses
import json

import pytest

from onnx_models import TEST_PRESETS, test_info as make_info
from realtime_split.errors import ModelFormatError, UserError
from realtime_split.model_format import PREFIX, Geometry, ms_to_samples, parse_metadata


def props(**changes) -> dict[str, str]:
    """Valid metadata with some keys replaced (value None removes the key)."""
    p = make_info(quantized="no").to_metadata()
    for key, value in changes.items():
        if value is None:
            p.pop(PREFIX + key)
        else:
            p[PREFIX + key] = value
    return p


def presets_json(**geometry) -> str:
    return json.dumps({"balanced": geometry})


def test_metadata_round_trip_keeps_everything():
    info = make_info(quantized="no", trained_on="musdb18")
    assert parse_metadata(info.to_metadata()) == info
    assert parse_metadata(info.to_metadata()).extra == {"quantized": "no", "trained_on": "musdb18"}


def test_metadata_is_string_to_string_under_the_prefix():
    for key, value in make_info().to_metadata().items():
        assert key.startswith(PREFIX) and isinstance(value, str)


def test_model_format_error_is_a_user_error():
    assert issubclass(ModelFormatError, UserError)


def test_geometry_latency_and_kept_region():
    g = TEST_PRESETS["balanced"]  # window 2048, hop 256, crossfade 64, lookahead 128
    assert g.latency == 256 + 64 + 128
    assert g.context == 2048 - 448
    assert (g.keep_start, g.keep_length) == (1600, 320)


def test_presets_and_explicit_hop():
    info = make_info()
    assert info.geometry() == TEST_PRESETS["balanced"]
    assert info.geometry("offline") == TEST_PRESETS["offline"]
    g = info.geometry("balanced", hop=32)
    assert (g.window, g.hop, g.crossfade, g.lookahead) == (2048, 32, 32, 128)


def test_loss_region_covers_every_preset_kept_region():
    start, stop = make_info().loss_region()
    for g in TEST_PRESETS.values():
        assert start <= g.keep_start and g.keep_start + g.keep_length <= stop


def test_ms_to_samples():
    assert ms_to_samples(10, 44100) == 441
    assert ms_to_samples(5.8, 44100) == 255


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format_version": None}, "format_version' is missing"),
        ({"format_version": "5"}, "version 5 is not supported"),
        ({"format_version": "3", "native_rates": "48000"}, "'native_rates' needs format_version 4"),
        ({"native_rates": "48k"}, "comma-separated rates in Hz"),
        ({"native_rates": "44100"}, "other than sample_rate 44100"),
        ({"native_rates": "48000,48000"}, "distinct positive rates"),
        ({"sample_rate": "fast"}, "key 'realtime_split.sample_rate' must be a whole number of Hz, found 'fast'"),
        ({"sample_rate": "0"}, "must be positive"),
        ({"channels": "1"}, "channels 2"),
        ({"stems": None}, "stems' is missing"),
        ({"stems": "vocals,vocals"}, "distinct stem names"),
        ({"presets": "{not json"}, "key 'realtime_split.presets' must be a JSON object of geometries, found '{not"),
        ({"presets": None}, r"^m\.onnx: metadata key 'realtime_split\.presets' is missing; is this a [^()]*\(see docs"
                            r"/model-format\.md\)$"),  # said once, not nested in "invalid metadata value (...)"
        ({"stems": ""}, "'stems' must list distinct stem names, e.g. 'vocals,drums,bass,other'; found ''"),
        ({"channels": "two"}, "key 'realtime_split.channels' must be 2, found 'two'"),
        ({"presets": "[]"}, "must be a JSON object"),
        ({"presets": presets_json(window=2048, hop=256)}, "needs integer window, hop, crossfade and lookahead"),
        ({"presets": presets_json(window=2048, hop=0, crossfade=0, lookahead=0)}, "hop must be at least 1"),
        ({"presets": presets_json(window=2048, hop=-1, crossfade=0, lookahead=0)}, "non-negative"),
        ({"presets": presets_json(window=2048, hop=64, crossfade=128, lookahead=0)}, "must not exceed hop"),
        ({"presets": presets_json(window=256, hop=256, crossfade=64, lookahead=64)}, "exceeds the window"),
        ({"presets": presets_json(window=2000, hop=256, crossfade=64, lookahead=64)}, "not a multiple of 64"),
        ({"default_preset": "quality", "presets": presets_json(window=2048, hop=256, crossfade=0, lookahead=0)},
         "default preset 'quality'"),
    ],
)
def test_each_invalid_metadata_is_refused_with_its_reason(changes, message):
    with pytest.raises(ModelFormatError, match=message):
        parse_metadata(props(**changes), source="m.onnx")


def test_native_rates_survive_the_metadata_round_trip_and_default_to_none():
    info = dataclasses.replace(make_info(), native_rates=(48000, 96000))
    meta = info.to_metadata()
    assert meta[PREFIX + "native_rates"] == "48000,96000" and meta[PREFIX + "format_version"] == "4"
    assert parse_metadata(meta).native_rates == (48000, 96000)
    assert parse_metadata(props()).native_rates == ()
    assert "native_rates" not in parse_metadata(meta).extra


def test_error_names_the_file():
    with pytest.raises(ModelFormatError, match=r"^m\.onnx: "):
        parse_metadata(props(format_version=None), source="m.onnx")


def test_unknown_preset_and_bad_hop_are_refused():
    info = make_info()
    with pytest.raises(ModelFormatError, match="unknown latency preset 'fastest'; choose one of low, balanced"):
        info.geometry("fastest")
    with pytest.raises(ModelFormatError, match="hop=4096: .*exceeds the window"):
        info.geometry("balanced", hop=4096)
    with pytest.raises(ModelFormatError, match="hop must be at least 1"):
        info.geometry("balanced", hop=0)


def test_geometry_from_dict_rejects_non_numbers():
    with pytest.raises(ModelFormatError, match="needs integer"):
        Geometry.from_dict({"window": "big", "hop": 1, "crossfade": 0, "lookahead": 0}, "preset 'x'")
