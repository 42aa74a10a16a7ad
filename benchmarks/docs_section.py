"""Writing one benchmark script's section of docs/benchmarks.md, leaving the other sections alone."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"


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


def publish(title: str, section: str, skip_reason: str | None = None) -> None:
    """Print a benchmark's section, then record it in docs/benchmarks.md unless ``skip_reason`` says
    why this run must not replace the published figures."""
    print(section)
    if skip_reason:
        print(f"({DOCS.relative_to(REPO)} left unchanged: {skip_reason})", file=sys.stderr)
    else:
        update_section(title, section)
        print(f"updated {DOCS.relative_to(REPO)}", file=sys.stderr)
