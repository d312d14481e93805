"""Handing freed memory back to the system between the stages of a training.

glibc keeps the heap memory that freed arrays held (decoded samples, renders, threads' scratch)
for its own reuse; a later stage's large arrays are mapped afresh, so the process's peak is the
sum of both. malloc_trim(0) returns the free pages. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_freed() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim; else nothing)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
