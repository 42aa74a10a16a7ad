"""Marks for tests that need a package of the ``train`` extra, so the fast tier runs on ``pip install -e ".[dev]"``.

A test that needs one skips with the package's name, what it is for and how to install it, instead of
failing with ``ModuleNotFoundError``. ``find_spec`` looks for the package without importing it.
"""

from __future__ import annotations

import importlib.util

import pytest


def needs(module: str, why: str) -> pytest.MarkDecorator:
    """Skip unless ``module`` is installed; ``why`` says what the test uses it for."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not installed ({why}): pip install -e '.[train]'")


STEMPEG = needs("stempeg", "it reads MUSDB18 .stem.mp4 files")
MUSEVAL = needs("museval", "it computes BSSEval SDR")
SCIPY = needs("scipy", "its polyphase resampler changes the speed of training windows")
