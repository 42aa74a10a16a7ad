"""Load a training run: the Keras checkpoint and the config that says what the model is."""

from __future__ import annotations

import zipfile
from pathlib import Path

from realtime_split.errors import UserError
from realtime_split.model_format import ModelInfo


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def resolve(checkpoint: Path, config: Path | None) -> tuple[Path, Path]:
    """Check both paths before TensorFlow is imported, so a typo fails in a second, not after ten."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise UserError(f"checkpoint {checkpoint} not found; "
                        "pass --checkpoint runs/NAME/best.keras from a training run")
    if not zipfile.is_zipfile(checkpoint):  # Keras would call it "file not found"
        raise UserError(f"{checkpoint} is not a Keras .keras archive; pass the best.keras written by training")
    config = Path(config) if config else checkpoint.parent / "config.toml"
    if not config.is_file():
        raise UserError(f"training config {config} not found; pass --config runs/NAME/config.toml")
    return checkpoint, config


def load_config(config: Path):
    from training.config import load_config as load

    return load(config)  # raises ConfigError (a UserError) naming the bad key


def data_summary(config) -> str:
    """What the model was trained on, without the local paths: ``musdb:musdb18-preview (train split)``."""
    from training.datasets import parse_spec

    sources = [f"{kind}:{path.name}" for kind, path in map(parse_spec, config.data.sources)]
    return ", ".join(sources) + " (train split)" if sources else "not recorded in the config"


def load_keras(checkpoint: Path):
    import keras

    import training.models.quality  # noqa: F401  registers RatioMasks, the custom layer of training/

    try:
        return keras.saving.load_model(str(checkpoint), compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors... for unusable files
        raise UserError(f"cannot load Keras checkpoint {checkpoint} ({_first_line(exc)}); "
                        "pass the best.keras written by training") from None


def load_run(checkpoint: Path, config: Path) -> tuple[object, ModelInfo, str, int]:
    """``(keras model, ModelInfo, training data summary, trainable parameters)`` for one run."""
    from training.models import count_params

    cfg = load_config(config)
    model = load_keras(checkpoint)
    return model, cfg.model_info(), data_summary(cfg), count_params(model)
