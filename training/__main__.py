"""``python -m training``: the same as the ``realtime-split-train`` command."""

import sys

from .train import main

sys.exit(main())
