"""The bundled models: names, which one serves a preset when the user names none, ``--list-models``.

A temporary folder stands in for ``realtime_split/models/``: a ``fast.onnx`` with the four presets
and a ``quality.onnx`` with only ``quality`` and ``offline``, both real ONNX files. They are scaled
identity models with different scales (fast: vocals 0.5 x mix, quality: vocals 0.25 x mix), so an
output file shows which model made it. The last test opens the real shipped ``fast`` model.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

import onnx_models
from cli_helpers import command, read, subprocess_env, write_music
from onnx_models import make_identity_model, make_scaled_identity_model
from realtime_split import StreamingSeparator, UserError, registry
from realtime_split.cli import main
from realtime_split.model_format import Geometry

FAST_VOCALS, QUALITY_VOCALS = 0.5, 0.25
QUALITY_PRESETS = {"quality": Geometry(window=4096, hop=1024, crossfade=256, lookahead=512),  # 1792: 40.6 ms
                   "offline": Geometry(window=4096, hop=2048, crossfade=512, lookahead=1024)}  # 3584: 81.3 ms
SCORES = {"offline": {"vocals": 7.1, "drums": 5.0}}


def build_models(folder: Path, quality: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fast = dataclasses.replace(onnx_models.test_info(), name="fast-test", description="tiny fast test model")
    make_scaled_identity_model(folder / "fast.onnx", [FAST_VOCALS, 0.25, 0.125, 0.125], fast)
    if quality:
        info = dataclasses.replace(onnx_models.test_info(presets=QUALITY_PRESETS, scores=json.dumps(SCORES)),
                                   default_preset="quality", name="quality-test", description="tiny quality model")
        make_scaled_identity_model(folder / "quality.onnx", [QUALITY_VOCALS, 0.25, 0.25, 0.25], info)
    return folder


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """Both models bundled, as the package will ship them."""
    monkeypatch.setattr(registry, "MODELS_DIR", build_models(tmp_path / "models"))
    return registry.MODELS_DIR


@pytest.fixture
def fast_only(tmp_path, monkeypatch) -> Path:
    """A build without the quality model (today's package)."""
    monkeypatch.setattr(registry, "MODELS_DIR", build_models(tmp_path / "models", quality=False))
    return registry.MODELS_DIR


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str) -> str:
    line = err.strip()
    assert line.startswith("realtime-split: error: ") and "\n" not in line, err
    return line


# --- names -------------------------------------------------------------------------------------------

def test_a_bundled_name_and_a_model_file_both_resolve(models, tmp_path, monkeypatch):
    assert registry.resolve_model("quality") == models / "quality.onnx"
    mine = make_identity_model(tmp_path / "mine.onnx")
    assert registry.resolve_model(str(mine)) == mine and registry.resolve_model(mine) == mine
    # A folder called "fast" where the user stands does not hide the bundled model.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").mkdir()
    assert registry.resolve_model("fast") == models / "fast.onnx"


def test_an_unknown_name_is_one_line_listing_the_bundled_models(models, tmp_path, capsys):
    with pytest.raises(UserError) as caught:
        registry.resolve_model("qualty")
    assert str(caught.value) == "model 'qualty' not found: not a file and not a bundled model (bundled: fast, quality)"

    write_music(tmp_path / "song.wav", seconds=0.2)
    code, _, err = run_cli(capsys, "--input", tmp_path / "song.wav", "--model", "qualty", "--output", tmp_path / "out")
    assert code == 2 and "'qualty' not found" in one_line_error(err) and "bundled: fast, quality" in err
    assert not (tmp_path / "out").exists()


def test_a_directory_is_refused_as_a_directory(models, tmp_path):
    with pytest.raises(UserError) as caught:
        registry.resolve_model(tmp_path)
    message = str(caught.value)
    assert "is a directory" in message and "not found" not in message and "\n" not in message
    assert "(bundled: fast, quality)" in message


def test_the_model_help_lists_the_bundled_names(models, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "a bundled model (fast, quality; see --list-models)" in " ".join(capsys.readouterr().out.split())


# --- the default model per preset ----------------------------------------------------------------------

@pytest.mark.parametrize("preset, with_quality, without_quality", [
    (None, "fast", "fast"), ("low", "fast", "fast"), ("balanced", "fast", "fast"),
    ("quality", "quality", "fast"), ("offline", "quality", "fast"),
])
def test_the_default_model_serves_the_preset(tmp_path, preset, with_quality, without_quality):
    both = build_models(tmp_path / "both")
    fast = build_models(tmp_path / "fast-only", quality=False)
    assert registry.default_model(preset, both) == both / f"{with_quality}.onnx"
    assert registry.default_model(preset, fast) == fast / f"{without_quality}.onnx"


def test_the_library_picks_a_model_by_name_or_by_latency(models):
    assert StreamingSeparator().model_path == models / "fast.onnx"
    offline = StreamingSeparator(latency="offline")
    assert offline.model_path == models / "quality.onnx" and offline.latency_samples == 3584
    named = StreamingSeparator("quality")  # its own default preset, not balanced (which it lacks)
    assert (named.preset, named.latency_samples) == ("quality", 1792)
    fast_quality = StreamingSeparator("fast", latency="quality")  # the fast model's quality preset stays reachable
    assert fast_quality.model_path == models / "fast.onnx" and fast_quality.latency_samples == 896


def test_without_the_quality_model_everything_falls_back_to_fast(fast_only, tmp_path, capsys):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)

    code, _, err = run_cli(capsys, "--input", tmp_path / "song.wav", "--stem", "vocals", "--output", tmp_path / "v.wav")

    assert code == 0 and err == "realtime-split: model fast (fast-test), preset offline\n"
    np.testing.assert_allclose(read(tmp_path / "v.wav")[0], FAST_VOCALS * mix, atol=1e-5)
    assert StreamingSeparator(latency="offline").model_path == fast_only / "fast.onnx"


# --- the command line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, vocals, announced", [
    ([], QUALITY_VOCALS, "model quality (quality-test), preset offline"),
    (["--latency", "quality"], QUALITY_VOCALS, "model quality (quality-test), preset quality"),
    (["--latency", "low"], FAST_VOCALS, "model fast (fast-test), preset low"),
    (["--hop", "300"], FAST_VOCALS, "model fast (fast-test), preset balanced, hop 300"),
    (["--model", "fast", "--latency", "quality"], FAST_VOCALS, None),  # named: nothing to announce
])
def test_files_use_the_model_for_their_preset_and_say_which(models, tmp_path, capsys, options, vocals, announced):
    mix = write_music(tmp_path / "song.wav", seconds=0.5)

    code, out, err = run_cli(capsys, "--input", tmp_path / "song.wav", "--stem", "vocals",
                             "--output", tmp_path / "v.wav", *options)

    assert code == 0, err
    assert err == (f"realtime-split: {announced}\n" if announced else "")
    np.testing.assert_allclose(read(tmp_path / "v.wav")[0], vocals * mix, atol=1e-5)


def test_a_preset_the_model_lacks_names_its_presets_and_points_to_fast(models, tmp_path, capsys):
    write_music(tmp_path / "song.wav", seconds=0.2)
    song = tmp_path / "song.wav"

    code, _, err = run_cli(capsys, "--input", song, "--model", "quality", "--latency", "low",
                           "--output", tmp_path / "o")
    assert code == 2 and one_line_error(err) == ("realtime-split: error: model 'quality' has no latency preset 'low'; "
                                                 "choose one of quality, offline, or pass --model fast, which has it")
    # A preset no bundled model has gets the list alone.
    code, _, err = run_cli(capsys, "--input", song, "--latency", "fastest", "--output", tmp_path / "o")
    assert code == 2 and one_line_error(err).endswith(
        "model 'fast' has no latency preset 'fastest'; choose one of low, balanced, quality, offline")
    assert not (tmp_path / "o").exists()


def test_list_models_shows_presets_latencies_size_and_scores(models, capsys):
    code, out, err = run_cli(capsys, "--list-models")

    assert code == 0 and err == ""
    fast, quality = out.strip().split("\n\n")
    assert fast.splitlines()[:3] == ["fast (fast-test)", "  tiny fast test model",
                                     "  stems: vocals, drums, bass, other at 44100 Hz"]
    assert "  presets: low 5.1 ms, balanced 10.2 ms (default), quality 20.3 ms, offline 37.7 ms" in fast.splitlines()
    assert f"({models / 'fast.onnx'})" in fast and " MB " in fast and "SDR" not in fast
    assert quality.splitlines()[0] == "quality (quality-test)"
    assert "  presets: quality 40.6 ms (default), offline 81.3 ms" in quality.splitlines()
    assert quality.splitlines()[-1] == "  median SDR at offline: vocals 7.1 dB, drums 5.0 dB"


def test_a_broken_bundled_file_is_one_line_naming_it(models, capsys):
    (models / "broken.onnx").write_bytes(b"not a model" * 10)

    code, _, err = run_cli(capsys, "--list-models")

    assert code == 2 and "broken.onnx' is not a readable ONNX model" in one_line_error(err)


# --- the shipped model ---------------------------------------------------------------------------------------

def test_the_shipped_fast_model_loads_by_name():
    assert "fast" in registry.bundled_names()
    sep = StreamingSeparator("fast", stems="vocals")
    assert sep.model_path == registry.MODELS_DIR / "fast.onnx" == registry.default_model("low")
    assert set(sep.info.presets) >= {"low", "balanced", "quality", "offline"}
    assert sep.preset == "balanced" and round(1000 * sep.latency_seconds, 1) == 24.7


def test_the_shipped_fast_model_runs_unresampled_at_48_khz_and_files_still_resample(capsys):
    """At 48 kHz a live stream feeds the network directly (the model card measures the cost); a whole file
    asks for soxr HQ, so it is separated at the 44.1 kHz the model was trained at."""
    live = StreamingSeparator("fast", stems="vocals", sample_rate=48000)
    assert live.info.native_rates == (48000,) and live.model_sample_rate == 48000
    assert live.latency_samples == live.geometry.latency and round(1000 * live.latency_seconds, 1) == 22.7
    whole_file = StreamingSeparator("fast", stems="vocals", sample_rate=48000, resample_quality="HQ")
    assert whole_file.model_sample_rate == 44100
    code, out, _ = run_cli(capsys, "--list-models")
    assert code == 0 and "at 44100 Hz (live and streamed audio at 48000 Hz: unresampled" in out


def test_rates_stamped_into_a_model_change_only_its_metadata_and_are_checked(models, capsys):
    from export.stamp_rates import main as stamp_rates

    before = onnx.load(str(models / "fast.onnx"))
    assert stamp_rates([str(models / "fast.onnx"), "48000"]) == 0
    after = onnx.load(str(models / "fast.onnx"))
    assert after.graph.SerializeToString() == before.graph.SerializeToString()
    assert registry.read_info(models / "fast.onnx").native_rates == (48000,)
    assert stamp_rates([str(models / "fast.onnx"), "44100"]) == 2  # the model's own rate
    assert "other than sample_rate 44100" in capsys.readouterr().err
    assert registry.read_info(models / "fast.onnx").native_rates == (48000,)  # untouched by the refusal
    assert stamp_rates([str(models / "fast.onnx"), ""]) == 0
    assert registry.read_info(models / "fast.onnx").native_rates == ()


def test_scores_stamped_from_an_evaluation_report_show_in_the_listing(models, tmp_path, capsys):
    from export.stamp_scores import stamp

    report = tmp_path / "evaluation.json"
    report.write_text(json.dumps({"presets": {"offline": {"median": {
        "vocals": {"sdr": 7.123, "si_sdr": 6.0}, "drums": {"sdr": 5.0, "si_sdr": 4.0}}}}}))
    before = onnx.load(str(models / "fast.onnx"))

    assert stamp(models / "fast.onnx", report) == {"offline": {"vocals": 7.12, "drums": 5.0}}

    after = onnx.load(str(models / "fast.onnx"))
    assert after.graph.SerializeToString() == before.graph.SerializeToString()  # only the metadata changed
    code, out, _ = run_cli(capsys, "--list-models")
    assert code == 0 and "  median SDR at offline: vocals 7.1 dB, drums 5.0 dB" in out.split("quality (")[0]


def test_presets_stamped_from_the_models_config_change_only_its_streaming_and_drop_its_scores(tmp_path, capsys):
    from export.stamp_presets import main as stamp_presets
    from training.config import CONFIG_DIR, load_config

    tiny = CONFIG_DIR / "tiny.toml"
    info = load_config(tiny).model_info()
    info = dataclasses.replace(info, extra={**info.extra, "scores": json.dumps(SCORES)})
    model = make_scaled_identity_model(tmp_path / "tiny.onnx", [FAST_VOCALS, 0.25, 0.125, 0.125], info)
    before = onnx.load(str(model))
    config = tmp_path / "tiny-short-low.toml"  # the same model, its low preset on half the window
    config.write_text(tiny.read_text().replace("hop = 32\ncrossfade = 8\nlookahead = 24\n",
                                               "hop = 32\ncrossfade = 8\nlookahead = 24\nwindow = 128\n"))

    assert stamp_presets([str(model), str(config)]) == 0
    assert "per-preset scores removed" in capsys.readouterr().err
    assert onnx.load(str(model)).graph.SerializeToString() == before.graph.SerializeToString()
    stamped = registry.read_info(model)
    assert stamped.presets == load_config(config).model_info().presets and stamped.presets["low"].window == 128
    assert "scores" not in stamped.extra  # measured on the old geometry, so no longer true
    sep = StreamingSeparator(model, latency="low")  # the runtime streams it on the new window
    assert sep.geometry.window == 128 and sep.latency_samples == 64
    mix = (0.1 * np.random.default_rng(1).standard_normal((4000, 2))).astype(np.float32)
    out = np.concatenate([sep.process(mix), sep.flush()], axis=1)[:, sep.latency_samples:][:, :len(mix)]
    np.testing.assert_allclose(out[0], FAST_VOCALS * mix, atol=1e-5)

    assert stamp_presets([str(model), str(CONFIG_DIR / "default.toml")]) == 2  # another model's config
    assert "describes another model" in capsys.readouterr().err
    assert registry.read_info(model).presets == stamped.presets  # untouched by the refusal


@pytest.mark.slow
def test_the_shipped_quality_model_loads_by_name_and_serves_files_and_the_listening_preset():
    assert "quality" in registry.bundled_names()
    shipped = registry.MODELS_DIR / "quality.onnx"
    assert registry.default_model("offline") == registry.default_model("quality") == shipped
    sep = StreamingSeparator("quality", stems="vocals,accompaniment")
    assert sep.info.frontend is not None and sep.info.stems == ("vocals", "drums", "bass", "other")
    assert sep.preset == "quality" and sep.latency_seconds <= 0.250
    assert set(sep.info.presets) == {"quality", "offline"}
    mix = (0.1 * np.random.default_rng(0).standard_normal((20000, 2))).astype(np.float32)
    out = np.concatenate([sep.process(mix), sep.flush()], axis=1)[:, sep.latency_samples:]
    # accompaniment = mix - vocals, exactly, and the two add back up to the input
    assert np.max(np.abs(out[0] + out[1] - mix)) < 1e-5


@pytest.mark.slow
def test_the_help_states_the_bundled_models_preset_latencies(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    def ms(name: str, preset: str) -> str:
        return f"{1000 * registry.read_info(registry.resolve_model(name)).presets[preset].latency / 44100:.1f} ms"

    def live_ms(preset: str, period: int) -> str:
        """What a live session's bridge delays by at the model's rate (the figure the JACK tests measure)."""
        from realtime_split.live.bridge import RealtimeBridge

        bridge = RealtimeBridge(StreamingSeparator("fast", latency=preset), 44100, period, 2, live_input=True)
        return f"{1000 * bridge.delay / 44100:.1f}"

    for model in registry.bundled_models():
        for preset in model.info.presets:
            if preset == "offline":
                continue
            expected = f"{preset} {ms(model.name, preset)}"
            if model.name == "fast" and preset in ("low", "balanced"):
                expected += f" (live {live_ms(preset, 256)} / {live_ms(preset, 128)} ms at 256 / 128 frames)"
            assert expected in help_text, expected


def test_list_models_into_a_pipe_closed_early_stops_quietly():
    """``realtime-split --list-models | head -1``: when the reader has gone, no traceback, SIGPIPE's exit code."""
    proc = subprocess.Popen([*command(), "--list-models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=subprocess_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # gone before the command has started up, so its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""
