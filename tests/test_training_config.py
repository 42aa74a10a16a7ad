"""Training configuration: presets that meet the latency targets, TOML round trip, overrides, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import realtime_split
from realtime_split.model_format import ModelInfo, parse_metadata
from realtime_split.registry import read_info
from training.config import CONFIG_DIR, Config, ConfigError, load_config, to_toml
from training.train import build_parser, overrides_from_args

RATE = 44100


def test_default_toml_is_the_builtin_default():
    assert load_config(CONFIG_DIR / "default.toml") == Config()


# The fast model's training run as docs/model-card.md gives it: default.toml, its data and five overrides,
# plus the live presets' shorter windows (set on the export afterwards: export/stamp_presets.py). fast.toml
# holds only these differences and extends default.toml.
FAST_RECIPE = ["--config", str(CONFIG_DIR / "default.toml"),
               "--data", "musdb:../shared/data/musdb18-preview", "--data", "folder:../shared/data/mir-1k",
               "--validation", "musdb:../shared/data/musdb18-preview#valid",
               "--set", "data.weights=[0.75,0.25]", "--set", "augment.band_limit=0.15",
               "--set", "train.lr_schedule=cosine", "--epochs", "55", "--steps-per-epoch", "200", "--out", "runs/fast",
               "--set", "streaming.presets.low.window=4096", "--set", "streaming.presets.balanced.window=4096"]


def test_fast_toml_is_the_fast_models_recipe_default_toml_plus_its_data_and_overrides():
    args = build_parser().parse_args(FAST_RECIPE)
    recipe = load_config(args.config, overrides_from_args(args))
    fast = load_config(CONFIG_DIR / "fast.toml")
    assert fast == recipe
    assert fast != load_config(CONFIG_DIR / "default.toml")
    assert (fast.train.epochs, fast.train.lr_schedule, fast.augment.band_limit, fast.data.weights) == (
        55, "cosine", 0.15, [0.75, 0.25])
    # ... and it describes the bundled model: its metadata was written from the same settings.
    shipped = read_info(Path(realtime_split.__file__).parent / "models" / "fast.onnx")
    info = fast.model_info()
    assert (shipped.sample_rate, shipped.stems, shipped.length_multiple, shipped.default_preset) == (
        info.sample_rate, info.stems, info.length_multiple, info.default_preset)
    assert shipped.presets == info.presets and (shipped.name, shipped.description) == (info.name, info.description)
    architecture = json.loads(shipped.extra["architecture"])
    assert architecture == {k: v for k, v in json.loads(info.extra["architecture"]).items() if k in architecture}
    assert "training/configs/fast.toml" in (Path(__file__).parents[1] / "docs" / "model-card.md").read_text()


def test_default_presets_meet_the_latency_targets_and_share_one_window():
    info = load_config(CONFIG_DIR / "default.toml").model_info()
    assert info.sample_rate == RATE and info.stems == ("vocals", "drums", "bass", "other")
    assert info.length_multiple == 32 * 2 ** 6 and info.presets["low"].window % info.length_multiple == 0
    assert len({g.window for g in info.presets.values()}) == 1
    assert info.presets["low"].latency <= 529            # <= 12 ms at 44.1 kHz
    assert info.presets["balanced"].latency <= 1102      # <= 25 ms
    assert info.presets["quality"].latency <= RATE * 0.055
    offline = info.presets["offline"]
    assert offline.context == offline.lookahead and offline.keep_length > info.presets["quality"].keep_length
    start, stop = info.loss_region()
    assert 0 < start < stop <= info.presets["low"].window


def test_a_live_preset_may_run_on_a_shorter_window_and_training_keeps_its_loss_region():
    shared = load_config(CONFIG_DIR / "tiny.toml")
    short = load_config(CONFIG_DIR / "tiny.toml", ["streaming.presets.low.window=128"])
    low, balanced = short.model_info().presets["low"], short.model_info().presets["balanced"]
    assert (low.window, low.latency, low.context) == (128, 64, 64)  # the same latency, less past
    assert balanced.window == short.window == 256  # the other presets keep the training window
    # The shorter window is aligned at the training window's end (its lookahead places it), so training
    # crops and loss region stay as they were: only the runtime's geometry changes.
    assert short.loss_region() == shared.loss_region() and short.window == shared.window


def test_model_info_round_trips_through_onnx_metadata():
    info = load_config(CONFIG_DIR / "tiny.toml").model_info()
    parsed = parse_metadata(info.to_metadata())
    assert isinstance(parsed, ModelInfo)
    assert parsed.presets == info.presets and parsed.length_multiple == info.length_multiple == 8
    assert parsed.stems == info.stems and parsed.sample_rate == 8000


def test_saved_toml_reads_back_equal(tmp_path):
    config = load_config(CONFIG_DIR / "tiny.toml", ["model.stems=['vocals', 'accompaniment']",
                                                    "augment.gain_db=[-2, 2]", 'data.sources=["folder:/data/x"]',
                                                    "streaming.name=my \"model\""])
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config))
    assert load_config(path) == config


def test_overrides_convert_types_and_accept_bare_words():
    config = load_config(CONFIG_DIR / "tiny.toml", ["train.epochs=7", "train.loss=mse", "train.learning_rate=1",
                                                    "model.fast.stride=4", "model.fast.depth=2",
                                                    "streaming.window=256"])
    assert config.train.epochs == 7 and config.train.loss == "mse"
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.model.length_multiple == 16


def test_learned_frontend_multiplies_the_length_multiple():
    config = load_config(CONFIG_DIR / "tiny.toml", ["model.fast.frontend=learned", "model.fast.frontend_kernel=8"])
    assert config.model.length_multiple == 4 * 8


@pytest.mark.parametrize("override, message", [
    ("train.epochz=3", r"unknown key 'epochz'"),
    ("train.epochs='many'", r"train: epochs: expected int"),
    ("streaming.window=250", r"window 250 is not a multiple of the U-Net's total stride 8"),
    ("streaming.presets.low.hop=300", r"streaming\.presets\.low: hop \+ crossfade \+ lookahead .* exceeds the window"),
    ("model.fast.mask=relu", r"model\.fast\.mask must be one of sigmoid, softmax"),
    ("model.stems=['vocals', 'piano']", r"unknown stem \['piano'\]"),
    ("train.loss=l3", r"train\.loss must be one of"),
    ("streaming.default_preset='fast'", r"default_preset 'fast' is not a preset"),
    ("epochs=3", r"expected SECTION\.KEY=VALUE"),
    ("train.stem_weights=[2.0, 1.0]", r"train\.stem_weights needs one positive weight per stem \(vocals, drums"),
    ("augment.borrow_vocals=1.5", r"augment\.borrow_vocals is a probability"),
    ("streaming.presets.low.window=512", r"streaming\.presets\.low\.window 512: give 0 \(the training window\) or a "
                                         r"shorter window up to streaming\.window 256"),
    ("streaming.presets.low.window=100", r"streaming\.presets\.low: window 100 is not a multiple of 8"),
    ("streaming.presets.balanced.window=64", r"streaming\.presets\.balanced: hop \+ crossfade \+ lookahead \(128\) "
                                            r"exceeds the window \(64\)"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_DIR / "tiny.toml", [override])


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)


def test_unknown_learning_rate_schedule_is_refused():
    with pytest.raises(ConfigError, match="lr_schedule"):
        load_config(CONFIG_DIR / "tiny.toml", ["train.lr_schedule=step"])


def test_quality_config_streams_within_250_ms_and_trains_on_its_listening_window():
    config = load_config(CONFIG_DIR / "quality.toml")
    info = config.model_info()
    assert info.frontend is not None
    assert (info.frontend.n_fft, info.frontend.hop, info.frontend.bins) == (4096, 1024, 1024)
    assert info.length_multiple == 1024 * 2 ** 6 and info.default_preset == "quality"
    listening, offline = info.presets["quality"], info.presets["offline"]
    assert listening.window == config.window and listening.latency <= RATE * 0.250
    assert offline.window == listening.window and offline.context == offline.lookahead  # a centered region
    assert config.loss_region() == (offline.keep_start, listening.keep_start + listening.keep_length)


def test_near_config_streams_within_100_ms_and_trains_only_where_its_presets_keep():
    # Issue 29: a preset at <= 100 ms at 44.1 kHz, and the loss on the windows it streams, every kept
    # sample with the preset's lookahead of future.
    config = load_config(CONFIG_DIR / "near.toml")
    info = config.model_info()
    near, offline = info.presets["near"], info.presets["offline"]
    assert info.default_preset == "near" and near.window == offline.window == config.window
    assert near.latency <= RATE * 0.100 and near.lookahead >= info.frontend.n_fft // 2
    start, stop = config.loss_region()
    assert (start, stop) == (offline.keep_start, near.keep_start + near.keep_length) and stop == config.window - 2048
    assert offline.keep_start + offline.keep_length == stop  # both presets keep regions ending at the same place


@pytest.mark.parametrize("override, message", [
    ("model.quality.bins=12", r"model\.quality\.bins must be a multiple of 2 \*\* depth = 8"),
    ("model.quality.bins=64", r"model\.quality\.n_fft/stft_hop/bins: bins must be in 1\.\.33"),
    ("streaming.window=600", r"window 600 is not a multiple of the U-Net's total stride 128"),
])
def test_bad_spectral_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_DIR / "tiny-stft.toml", [override])


@pytest.mark.parametrize("config, override, message", [
    ("tiny.toml", "model.depth=7", r"model: unknown key 'depth' \(it belongs in \[model\.fast\] or "
                                   r"\[model\.quality\]\)"),
    ("tiny-stft.toml", "model.quality.mask=softmax", r"model\.quality: 'mask' is not read by the quality model "
                                                     r"\(a \[model\.fast\] key\)"),
    ("tiny.toml", "model.quality.depth=3", r"give one model kind's section, not \[model\.fast\] and "
                                           r"\[model\.quality\]"),
    ("tiny.toml", "model.fast.n_ff=3", r"model\.fast: unknown key 'n_ff'"),
    ("tiny.toml", "init_from.kind=spleeter", r"init_from\.kind = \"spleeter\" needs a \[model\.quality\] model"),
    ("tiny.toml", "init_from.kind=checkpoint", r"init_from\.path names the best\.keras of a kind = \"checkpoint\""),
    ("tiny.toml", "init_from.kind=warm", r"init_from\.kind must be one of none, spleeter, checkpoint"),
])
def test_a_key_in_the_wrong_section_is_named_with_its_section(config, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_DIR / config, [override])


def test_each_shipped_config_has_one_model_kind_and_a_typed_start():
    quality, near, fast = (load_config(CONFIG_DIR / f"{name}.toml") for name in ("quality", "near", "fast"))
    assert (quality.model.kind, quality.model.fast, quality.init_from.kind) == ("quality", None, "spleeter")
    assert (near.model.kind, near.model.quality.filters, near.model.quality.depth) == ("quality", 8, 5)
    assert (fast.model.kind, fast.model.quality, fast.init_from.kind) == ("fast", None, "none")
    assert "[model.fast]" in to_toml(fast) and "[model.quality]" not in to_toml(fast)


def test_a_config_extends_another_table_by_table(tmp_path):
    (tmp_path / "base.toml").write_text('[train]\nepochs = 3\nbatch_size = 8\n[augment]\nmono = 0.2\n')
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n[train]\nbatch_size = 2\n')
    child = load_config(tmp_path / "child.toml")
    assert (child.train.epochs, child.train.batch_size, child.augment.mono) == (3, 2, 0.2)
    (tmp_path / "loop.toml").write_text('extends = "loop.toml"\n')
    with pytest.raises(ConfigError, match=r"loop\.toml: extends 'loop\.toml' includes itself"):
        load_config(tmp_path / "loop.toml")


# A quality run's config.toml as training wrote it before issue 30: one flat [model] table for every
# architecture (keys the spectral builder never read included) and train.init_from as a string.
OLD_QUALITY_RUN = """
[model]
stems = ["vocals", "drums", "bass", "other"]
depth = 6
filters = 16
max_filters = 512
kernel_size = 5
stride = 2
dropout = 0.5
dropout_stages = 3
mask = "softmax"
frontend = "stft"
frontend_filters = 256
n_fft = 4096
stft_hop = 1024
bins = 1024
time_kernel = 3
units = 256

[train]
init_from = "spleeter"
freeze_batch_norm = true
"""


def test_an_older_runs_config_reads_with_the_same_meaning(tmp_path, capsys):
    old = tmp_path / "config.toml"
    old.write_text(OLD_QUALITY_RUN)
    config = load_config(old, ["streaming.window=65536"])
    assert config.model == load_config(CONFIG_DIR / "quality.toml").model
    assert config.init_from.kind == "spleeter" and config.train.freeze_batch_norm
    assert "read in the layout before issue 30 as [model.quality]" in capsys.readouterr().err
    old.write_text('[model]\nfrontend = "none"\ndepth = 3\nn_fft = 64\n[train]\ninit_from = "runs/a/best.keras"\n')
    fast = load_config(old)
    assert (fast.model.fast.frontend, fast.model.fast.depth) == ("none", 3)
    assert (fast.init_from.kind, fast.init_from.path) == ("checkpoint", "runs/a/best.keras")
    old.write_text('[model]\nfrontend = "stream"\nunits = 8\n')
    with pytest.raises(ConfigError, match="branch experiments/streaming-unet"):
        load_config(old)


@pytest.mark.parametrize("name", ["fast", "quality"])
def test_config_architecture_agrees_with_the_bundled_models_metadata(name):
    """Every design key the bundled file and its config both name has one value; the file's other keys are
    ones this kind's builder never read (the flat table of older exports)."""
    shipped = json.loads(read_info(Path(realtime_split.__file__).parent / "models" / f"{name}.onnx")
                         .extra["architecture"])
    config = json.loads(load_config(CONFIG_DIR / f"{name}.toml").model_info().extra["architecture"])
    assert {k: shipped[k] for k in config if k in shipped} == {k: config[k] for k in config if k in shipped}
    assert set(config) <= set(shipped)
    unread = set(shipped) - set(config)
    assert unread == (set() if name == "fast" else
                      {"mask", "mask_overshoot", "head_filters", "head_kernel", "frontend_filters", "frontend_kernel"})
