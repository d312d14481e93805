"""Many engines side by side: one engine per channel, the channels spread over worker threads.

The compiled block call releases the GIL (numba nogil), so threads run engines truly in parallel.
Each round, every channel processes one block (as an audio host's cycle would); a round's time is
from its start to the last channel's end, and a round is in time when it takes less than the
block's budget (rtdrums bench --channels asks for half of it).
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import numpy as np

from .engine import Engine
from .events import EVENT_DTYPE


class ChannelRun(NamedTuple):
    stems: list[np.ndarray]        # per channel (n, n_stems) float32, as streamed
    events: list[np.ndarray]       # per channel EVENT_DTYPE
    round_s: np.ndarray            # (rounds,) seconds from a round's start to its last channel's end
    cpu_s: np.ndarray              # (rounds,) CPU seconds the threads spent in the round's block calls


def engine_bytes(engine: Engine, shared: Engine | None = None) -> int:
    """Memory of one engine's arrays: its tables, state and output buffers; with shared, only
    those it does not share with that engine (Engine(share=))."""
    skip = {id(a) for a in shared.tables} if shared is not None else set()
    arrays = [a for a in engine.tables if id(a) not in skip] + list(engine.state) + [engine._stems, engine._events]
    return int(sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)))


def run_channels(engines: list[Engine], inputs: list[np.ndarray], block: int, threads: int,
                 keep: bool = True) -> ChannelRun:
    """Feed inputs[c] (mono float32, all of one length) through engines[c] in blocks, round by
    round, channel c on thread c % threads (thread 0 is the calling thread); keep=False keeps no
    stems or events (timing only). The threads meet once per round, at a barrier whose last
    arrival stamps the round's end, which is the next round's start: a round's time includes
    waking the threads for it, as an audio host's cycle does, and one thread needs no waking."""
    n = len(inputs[0])
    rounds = -(-n // block)
    threads = max(1, min(threads, len(engines)))
    stems = [np.zeros((n if keep else 0, len(e.stem_names)), np.float32) for e in engines]
    events: list[list[np.ndarray]] = [[] for _ in engines]
    cpu = np.zeros((rounds, threads))
    stamps = np.zeros(rounds + 1)
    done = [0]

    def stamp() -> None:
        stamps[done[0]] = time.perf_counter()
        done[0] += 1
    barrier = threading.Barrier(threads, action=stamp)

    def work(t: int) -> None:
        mine = range(t, len(engines), threads)
        out = {c: np.zeros((block, len(engines[c].stem_names)), np.float32) for c in mine}
        ev = {c: np.zeros(256, EVENT_DTYPE) for c in mine}
        barrier.wait()                         # all ready: the first round starts
        for r in range(rounds):
            c0 = time.thread_time()
            for c in mine:
                chunk = inputs[c][r * block:(r + 1) * block]
                k = engines[c].process_into(chunk, out[c], ev[c])
                if keep:
                    stems[c][r * block:r * block + len(chunk)] = out[c][:len(chunk)]
                    if k:
                        events[c].append(ev[c][:k].copy())
            cpu[r, t] = time.thread_time() - c0
            barrier.wait()

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(1, threads)]
    for w in workers:
        w.start()
    work(0)
    for w in workers:
        w.join()
    return ChannelRun(stems, [np.concatenate(e) if e else np.zeros(0, EVENT_DTYPE) for e in events],
                      np.diff(stamps), cpu.sum(axis=1))
