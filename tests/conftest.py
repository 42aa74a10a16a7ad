"""Shared fixtures: small real ONNX models written to real files once per session.

Also the fast tier (``python3 -m pytest -q -m "not slow"``): a module marked slow as a whole
(``pytestmark = pytest.mark.slow`` at its top) is not even imported when ``-m`` deselects all of
its tests, since importing some of them starts TensorFlow; and no test outside the slow tier may
import TensorFlow (the check below names the one that does).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from jack_harness import PERIOD, RATE, JackServer, jackd_path
from onnx_models import make_conv_model, make_identity_model, make_scaled_identity_model, test_info

# Keep numba's on-disk cache and ONNX Runtime quiet and deterministic in tests.
os.environ.setdefault("ORT_LOGGING_LEVEL", "3")

# Tests send SIGINT and SIGHUP to the programs they start and expect Ctrl-C's and a hang-up's behaviour. A test
# session started in the background by a non-interactive shell (SIGINT ignored) or under nohup (SIGHUP ignored)
# would hand those dispositions down to every program it starts, which then ignore the signals. Handlers, unlike
# SIG_IGN, are reset to the default by exec, so the programs start as they would from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda *_: None)  # the test process itself keeps ignoring hang-ups

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def identity_model(model_dir) -> Path:
    """Every stem equals the input mixture."""
    return make_identity_model(model_dir / "identity.onnx")


SCALES = [0.5, 0.25, 0.125, 0.125]


@pytest.fixture(scope="session")
def scaled_model(model_dir) -> Path:
    """vocals = 0.5 mix, drums = 0.25 mix, bass = 0.125 mix, other = 0.125 mix: stems sum to the mix."""
    return make_scaled_identity_model(model_dir / "scaled.onnx", SCALES)


@pytest.fixture(scope="session")
def scaled_native48_model(model_dir) -> Path:
    """The scaled model, trained at 44.1 kHz, also run unresampled at 48 kHz (``native_rates``, as the fast model)."""
    info = dataclasses.replace(test_info(), native_rates=(48000,))
    return make_scaled_identity_model(model_dir / "scaled-native48.onnx", SCALES, info)


@pytest.fixture(scope="session")
def conv_model(model_dir) -> Path:
    """A random per-stem FIR filter: output depends on every sample in the window."""
    return make_conv_model(model_dir / "conv.onnx")


@pytest.fixture(scope="module")
def jack_server():
    """A JACK server (jackd2, dummy backend) for the live tests of one module, at ``RATE`` and ``PERIOD``."""
    if jackd_path() is None:
        pytest.skip("jackd not found: live audio tests need a real JACK server (apt-get install jackd2)")
    try:
        import jack  # noqa: F401
    except ImportError:
        pytest.skip("JACK-Client not installed (pip install JACK-Client): it plays and records the test signals")
    with JackServer(rate=RATE, period=PERIOD) as server:
        yield server


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"training data not found at {SHARED_DATA} (only developer machines have it)")
    return SHARED_DATA


# The fast tier ------------------------------------------------------------------------------------------------------

_MARK = re.compile(r"pytest\.mark\.(\w+)")
_NOT_MARKERS = {"parametrize", "skipif", "skip", "xfail", "usefixtures", "filterwarnings"}


def _deselects_every_test(markexpr: str, text: str) -> bool:
    """Whether ``-m markexpr`` deselects every test of a module whose source is ``text``: its module-level marks
    (``pytestmark = ...``) plus any subset of the marks named anywhere else in it select nothing."""
    found = re.search(r"^pytestmark = (.*)$", text, re.M)
    if not found:
        return False
    try:
        from _pytest.mark.expression import Expression  # pytest's own -m parser; not public API
        expression = Expression.compile(markexpr)
    except Exception:  # another pytest, or an expression pytest itself will report: collect as usual
        return False
    module = set(_MARK.findall(found.group(1))) - _NOT_MARKERS
    others = sorted(set(_MARK.findall(text)) - module - _NOT_MARKERS)
    for k in range(len(others) + 1):
        for extra in itertools.combinations(others, k):
            marks = module | set(extra)
            if expression.evaluate(lambda name, /, _marks=marks, **_: name in _marks):
                return False
    return True


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    markexpr = config.getoption("markexpr")
    if markexpr and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        if _deselects_every_test(markexpr, collection_path.read_text()):
            return True
    return None


@pytest.fixture(autouse=True)
def _fast_tests_do_not_import_tensorflow(request):
    """A test outside the slow tier that starts TensorFlow in-process makes the fast tier slow: fail it."""
    before = "tensorflow" in sys.modules
    yield
    if not before and "tensorflow" in sys.modules and request.node.get_closest_marker("slow") is None:
        pytest.fail(f"{request.node.nodeid} imported TensorFlow: mark it @pytest.mark.slow", pytrace=False)


_imported_tensorflow: list[str] = []  # the first test module after whose collection TensorFlow was loaded


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if not _imported_tensorflow and "tensorflow" in sys.modules and report.nodeid.endswith(".py"):
        _imported_tensorflow.append(report.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """In a run that deselects the slow tier, a test module that imports TensorFlow when collected stops it."""
    markexpr = session.config.getoption("markexpr")
    if markexpr and _imported_tensorflow and _deselects_every_test(markexpr, "pytestmark = pytest.mark.slow"):
        pytest.exit(f"{_imported_tensorflow[0]} imports TensorFlow when collected, outside the slow tier; mark "
                    "that module slow as a whole (pytestmark = pytest.mark.slow) or import TensorFlow in its tests",
                    returncode=pytest.ExitCode.USAGE_ERROR)
