"""Shared fixtures: small real ONNX models written to real files once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onnx_models import make_conv_model, make_identity_model, make_scaled_identity_model

# Keep numba's on-disk cache and ONNX Runtime quiet and deterministic in tests.
os.environ.setdefault("ORT_LOGGING_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def identity_model(model_dir) -> Path:
    """Every stem equals the input mixture."""
    return make_identity_model(model_dir / "identity.onnx")


@pytest.fixture(scope="session")
def scaled_model(model_dir) -> Path:
    """vocals = 0.5 mix, drums = 0.25 mix, bass = 0.125 mix, other = 0.125 mix: stems sum to the mix."""
    return make_scaled_identity_model(model_dir / "scaled.onnx", [0.5, 0.25, 0.125, 0.125])


@pytest.fixture(scope="session")
def conv_model(model_dir) -> Path:
    """A random per-stem FIR filter: output depends on every sample in the window."""
    return make_conv_model(model_dir / "conv.onnx")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"training data not found at {SHARED_DATA} (only developer machines have it)")
    return SHARED_DATA
