"""Writing one benchmark script's section of docs/benchmarks.md, leaving the other sections alone."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def update_section(title: str, section: str, docs: Path = DOCS) -> None:
    """Replace the ``title`` section (a ``## `` heading line, up to the next one) with ``section``, or append it."""
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    docs.parent.mkdir(exist_ok=True)
    docs.write_text(text.rstrip("\n") + "\n")
