"""`rtdrums bench --effects FILE`: each chain's cost per block on the engine's real outputs, and
whether pedalboard's process releases the interpreter lock and what it allocates per call."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np

from .effects import EffectChains
from .outputs import OUTPUTS
from .engine import Engine
from .offline import run_blocks


def chain_rows(spec: dict, preset, x: np.ndarray, sample_rate: int, block: int) -> list[dict]:
    """Microseconds per block of each chain (its share of the live callback's work, copies
    included), run on its own output of the engine (the bench groove), block by block, as live."""
    stems, _ = run_blocks(Engine(preset, sample_rate, max_block=block), x, block)
    chains = EffectChains(spec, sample_rate, block)
    budget = 1e6 * block / sample_rate
    rows = []
    for output in chains.boards:
        col = OUTPUTS.index(output)
        t = chains.time_chain(output, x if col == 4 else stems[:, col])
        rows.append({"output": output, "chain": chains.names()[output], "block": block,
                     "median_us": float(np.median(t)), "p99_us": float(np.percentile(t, 99)),
                     "max_us": float(t.max()), "budget_us": budget,
                     "share": float(np.median(t)) / budget})
    return rows


def deviceless_session(spec: dict | None, preset: str, sample_rate: int, block: int):
    """A LiveSession set up as `prepare()` does, without devices or MIDI: its Python callback
    (`_process`) can be fed blocks directly. Routes each output of OUTPUTS to the channel of its
    place (1..7; the sampler, which plays nothing here, stays silent on 6)."""
    from .host.config import LiveConfig
    from .host.session import LiveSession, load_engine
    from .sampler.build import build_sampler
    cfg = LiveConfig(preset=preset, sample_rate=sample_rate, block=block, effects=spec, midi=False,
                     route={s: [i + 1] for i, s in enumerate(OUTPUTS) if s != "sampler"})
    s = LiveSession(cfg)
    s.preset, s.engine = load_engine(preset, sample_rate, block)
    s.sampler = build_sampler(None, s.preset, sample_rate, block)
    s.stem_names, s.drum_names = tuple(s.engine.stem_names), tuple(s.engine.drum_names)
    s.stem_latency = int(s.engine.stem_latency)
    s.route = cfg.route
    s._alloc()
    s._prepare_effects()
    return s


def callback_rows(spec: dict, preset: str, x: np.ndarray, sample_rate: int, block: int) -> list[dict]:
    """Microseconds per call of the live Python callback's block work, without and with the
    chains, on the same input."""
    rows = []
    for label, fx in (("no effects", None), ("with the chains", spec)):
        s = deviceless_session(fx, preset, sample_rate, block)
        xin = np.ascontiguousarray(x[:len(x) // block * block, None], np.float32)
        out = np.zeros((block, len(OUTPUTS)), np.float32)
        t = np.empty(len(xin) // block)
        for i in range(len(t)):
            t0 = time.perf_counter_ns()
            s._process(xin[i * block:(i + 1) * block], out, 0, block)
            t[i] = time.perf_counter_ns() - t0
        t /= 1e3
        rows.append({"callback": label, "block": block, "median_us": float(np.median(t)),
                     "p99_us": float(np.percentile(t, 99)), "budget_us": 1e6 * block / sample_rate})
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


def gil_share(board, sample_rate: int, seconds: float = 0.3) -> tuple[float, float]:
    """How fast a pure-Python counting thread runs while one long process call runs in this
    thread, relative to while this thread sleeps: near 1 = the lock is released during process,
    near 0 = held; and the same during a C call known to hold the lock (sum over a range), for
    comparison. Runs on all cores (the bench pins itself to one)."""
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


def _gil_share(board, sample_rate: int, seconds: float) -> tuple[float, float]:
    x = (0.1 * np.random.default_rng(0).standard_normal(int(sample_rate * 5))).astype(np.float32)
    count, stop = [0], [False]

    def spin():
        while not stop[0]:
            count[0] += 1

    th = threading.Thread(target=spin, daemon=True)
    th.start()
    time.sleep(0.05)
    def rate(call) -> float:
        c0, t0 = count[0], time.perf_counter()
        call()
        return (count[0] - c0) / (time.perf_counter() - t0)

    def process_for(s: float) -> None:                # long enough for the scheduler to tell
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < s:
            board.process(x, sample_rate, reset=False)

    busy = rate(lambda: process_for(seconds))
    holding = rate(lambda: sum(range(10_000_000)))
    idle = rate(lambda: time.sleep(seconds))
    stop[0] = True
    th.join()
    return (busy / idle, holding / idle) if idle else (float("nan"), float("nan"))


def run(spec: dict, preset, x: np.ndarray, sample_rate: int, blocks=(64, 128),
        preset_name: str = "default") -> None:
    """preset: the loaded Preset; preset_name: its name or folder, for the callback rows."""
    print(f"{'output':<9} {'chain':<34} {'block':>5} {'median':>9} {'p99':>9} {'max':>9} "
          f"{'budget':>9} {'share':>6}")
    for block in blocks:
        for r in chain_rows(spec, preset, x, sample_rate, block):
            print(f"{r['output']:<9} {r['chain'][:34]:<34} {r['block']:>5} {r['median_us']:>7.1f}us "
                  f"{r['p99_us']:>7.1f}us {r['max_us']:>7.1f}us {r['budget_us']:>7.0f}us "
                  f"{100 * r['share']:>5.1f}%")
    print(f"\nlive Python callback (LiveSession._process, no device), {len(x) / sample_rate:.0f} s:")
    for block in blocks:
        for r in callback_rows(spec, preset_name, x, sample_rate, block):
            print(f"  {r['callback']:<16} block {r['block']:>4}: median {r['median_us']:.0f} us, "
                  f"p99 {r['p99_us']:.0f} us of {r['budget_us']:.0f} us")
    chains = EffectChains(spec, sample_rate, max(blocks))
    for output, board in chains.boards.items():
        released, held = gil_share(board, sample_rate)
        print(f"{output}: process allocates {allocation_per_call(board, sample_rate, max(blocks)):.0f} "
              f"bytes per call (its result); a Python thread runs at {released:.2f} of its idle "
              f"speed during process ({held:.2f} during a C call that holds the lock)")
