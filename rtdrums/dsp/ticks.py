"""A cycle counter for compiled code: timing stages inside the block call without allocating.

`now()` reads the CPU's time-stamp counter (LLVM's readcyclecounter): a few cycles, no system
call, no allocation. `ticks_per_second()` calibrates it against the wall clock once, in Python.
"""

from __future__ import annotations

import time

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _readcyclecounter(typingctx):
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@njit(cache=True, nogil=True)
def now():
    """The time-stamp counter (ticks; see ticks_per_second)."""
    return _readcyclecounter()


def ticks_per_second(seconds: float = 0.05) -> float:
    """Ticks of now() per second of wall-clock time, measured over `seconds`."""
    now()
    t0, c0 = time.perf_counter(), now()
    while time.perf_counter() - t0 < seconds:
        pass
    t1, c1 = time.perf_counter(), now()
    return (c1 - c0) / (t1 - t0)
