"""`rtdrums bench --effects FILE`: each chain's cost per block on the engine's real outputs, and
whether pedalboard's process releases the interpreter lock and what it allocates per call."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np

from .effects import OUTPUTS, EffectChains
from .engine import Engine
from .offline import run_blocks


def chain_rows(spec: dict, preset, x: np.ndarray, sample_rate: int, block: int) -> list[dict]:
    """Microseconds per block of each chain, run on its own output of the engine (the bench
    groove), block by block with state kept, as live."""
    stems, _ = run_blocks(Engine(preset, sample_rate, max_block=block), x, block)
    chains = EffectChains(spec, sample_rate, block)
    budget = 1e6 * block / sample_rate
    rows = []
    for output, board in chains.boards.items():
        col = OUTPUTS.index(output)
        sig = np.ascontiguousarray(x if col == 4 else stems[:, col], np.float32)
        n = len(sig) // block
        t = np.empty(n)
        for i in range(n):
            chunk = sig[i * block:(i + 1) * block]
            t0 = time.perf_counter_ns()
            board.process(chunk, sample_rate, reset=False)
            t[i] = time.perf_counter_ns() - t0
        t /= 1e3
        rows.append({"output": output, "chain": chains.names()[output], "block": block,
                     "median_us": float(np.median(t)), "p99_us": float(np.percentile(t, 99)),
                     "max_us": float(t.max()), "budget_us": budget,
                     "share": float(np.median(t)) / budget})
    return rows


def allocation_per_call(board, sample_rate: int, block: int, calls: int = 200) -> float:
    """Bytes that stay allocated per process call while its results are kept (traced by
    tracemalloc, which NumPy reports its data buffers to)."""
    x = np.zeros(block, np.float32)
    board.process(x, sample_rate, reset=False)
    keep = []
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(calls):
        keep.append(board.process(x, sample_rate, reset=False))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before - 8 * calls) / calls        # minus the list's own growth (a pointer)


def gil_share(board, sample_rate: int, seconds: float = 0.3) -> float:
    """How fast a pure-Python counting thread runs while one long process call runs in this
    thread, relative to while this thread sleeps: near 1 = the lock is released during process,
    near 0 = held. Runs on two cores (the bench pins itself to one), where the machine has them."""
    import os
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if pinned is not None:
        try:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        except OSError:
            pass
    try:
        return _gil_share(board, sample_rate, seconds)
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


def _gil_share(board, sample_rate: int, seconds: float) -> float:
    x = (0.1 * np.random.default_rng(0).standard_normal(int(sample_rate * 30))).astype(np.float32)
    count, stop = [0], [False]

    def spin():
        while not stop[0]:
            count[0] += 1

    th = threading.Thread(target=spin, daemon=True)
    th.start()
    time.sleep(0.05)
    c0, t0 = count[0], time.perf_counter()
    board.process(x, sample_rate, reset=True)
    busy = (count[0] - c0) / (time.perf_counter() - t0)
    c0, t0 = count[0], time.perf_counter()
    time.sleep(seconds)
    idle = (count[0] - c0) / (time.perf_counter() - t0)
    stop[0] = True
    th.join()
    return busy / idle if idle else float("nan")


def run(spec: dict, preset, x: np.ndarray, sample_rate: int, blocks=(64, 128)) -> None:
    print(f"{'output':<9} {'chain':<34} {'block':>5} {'median':>9} {'p99':>9} {'max':>9} "
          f"{'budget':>9} {'share':>6}")
    for block in blocks:
        for r in chain_rows(spec, preset, x, sample_rate, block):
            print(f"{r['output']:<9} {r['chain'][:34]:<34} {r['block']:>5} {r['median_us']:>7.1f}us "
                  f"{r['p99_us']:>7.1f}us {r['max_us']:>7.1f}us {r['budget_us']:>7.0f}us "
                  f"{100 * r['share']:>5.1f}%")
    chains = EffectChains(spec, sample_rate, max(blocks))
    for output, board in chains.boards.items():
        print(f"{output}: process allocates {allocation_per_call(board, sample_rate, max(blocks)):.0f} "
              f"bytes per call (its result); a Python thread runs at "
              f"{gil_share(board, sample_rate):.2f} of its idle speed during process")
