"""The training command names itself ``python -m training`` (run from a checkout; nothing installs a script for it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_help_names_the_command_python_m_training():
    result = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m training [-h] ")
    assert "python -m training --config training/configs/default.toml" in result.stdout  # the example
    assert "realtime-split-train" not in result.stdout + result.stderr


def test_no_document_or_entry_point_names_the_removed_realtime_split_train_command():
    documents = [p for p in ROOT.rglob("*.md") if ".git" not in p.parts and p.name != "CHANGELOG.md"]
    assert len(documents) > 5
    documents.append(ROOT / "pyproject.toml")  # no entry point of that name either
    assert [str(p.relative_to(ROOT)) for p in documents if "realtime-split-train" in p.read_text()] == []
