"""``python -m training``, run from a checkout of the repository (training is not installed with the package)."""

import sys

from .train import main

sys.exit(main())
