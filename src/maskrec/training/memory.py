"""Keep glibc from hoarding freed memory during CPU training.

Every batch allocates logits of a different size (masked positions x items). glibc's
malloc raises its mmap threshold after such frees and then serves these blocks from the
heap, which fragments and never shrinks: on MovieLens 100K at max_len 200 the resident
size grew to 2.6 GiB in 8 epochs, against 1.05 GiB with a fixed 64 KiB threshold (same
results). Fixing the threshold keeps large blocks in mmap, returned to the OS on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


@functools.cache
def limit_heap_fragmentation(threshold: int = 64 * 1024) -> bool:
    """Set glibc's mmap threshold (once per process); returns whether it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return False
    applied = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    logger.debug("glibc mmap threshold set to %d bytes: %s", threshold, applied)
    return applied
