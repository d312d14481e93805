"""Counting what an engine's block call allocates (tests/test_engine.py, tests/test_lean.py)."""

from __future__ import annotations

import itertools
import tracemalloc
from typing import NamedTuple

import numpy as np

from rtdrums.events import EVENT_DTYPE

SIZES = [1, 7, 64, 128, 1000, 333]       # block sizes, cycled: with and without frames and events


class BlockAllocations(NamedTuple):
    calls: int            # process_into calls counted
    events: int           # events they returned
    nrt_allocs: int       # Numba runtime allocations during them
    nrt_kept: int         # of which not freed
    meminfo_kept: int     # MemInfos not freed
    python_bytes: int     # growth of Python-level traced memory


def block_allocations(engine, x: np.ndarray) -> BlockAllocations:
    """Feed x through engine.process_into (max_block >= 1000) in blocks of SIZES, once to warm up
    (the first pass leaves a few kB of Python objects behind: numba's dispatcher and the
    interpreter's free lists settling, 5-7 kB measured; later passes do not), then after reset()
    once more, counted. Numba's runtime makes one MemInfo per array argument each time Python
    calls compiled code (unboxing; freed on return); the engine's tables and state cross as one
    bundle, so a block call that allocates nothing in its body shows exactly three per call (its
    block, stems and events), all freed."""
    from numba.core.runtime import _nrt_python, rtsys

    engine.warm()
    stems = np.zeros((engine.max_block, len(engine.stem_names)), np.float32)
    events = np.zeros(256, EVENT_DTYPE)
    sizes = itertools.cycle(SIZES)
    blocks, pos = [], 0
    while pos < len(x):
        n = next(sizes)
        blocks.append(np.ascontiguousarray(x[pos:pos + n]))
        pos += n
    for b in blocks:
        engine.process_into(b, stems, events)
    engine.reset()
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        tracemalloc.start()
        before_py = tracemalloc.get_traced_memory()[0]
        before = rtsys.get_allocation_stats()
        n_events = sum(engine.process_into(b, stems, events) for b in blocks)
        after = rtsys.get_allocation_stats()
        after_py = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()
    return BlockAllocations(len(blocks), n_events, after.alloc - before.alloc,
                            (after.alloc - after.free) - (before.alloc - before.free),
                            (after.mi_alloc - after.mi_free) - (before.mi_alloc - before.mi_free),
                            after_py - before_py)
