"""Memory an audio callback writes, mapped before the callback runs (page residency)."""

import numpy as np


def resident_zeros(shape: tuple[int, ...] | int, dtype=np.float32) -> np.ndarray:
    """Zeros whose memory pages are already mapped, for buffers an audio callback writes.

    ``np.zeros`` maps pages lazily, so the callback's first write to each page would
    page-fault into the kernel; numpy also asks for 2 MB transparent huge pages on big
    arrays, and zeroing one of those on the audio thread costs an xrun. Writing every
    page once here moves those faults to setup time.
    """
    array = np.zeros(shape, dtype)
    array.fill(0)
    return array
