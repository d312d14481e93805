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
    round, channel c on thread c % threads; keep=False keeps no stems or events (timing only)."""
    n = len(inputs[0])
    rounds = -(-n // block)
    threads = max(1, min(threads, len(engines)))
    stems = [np.zeros((n if keep else 0, len(e.stem_names)), np.float32) for e in engines]
    events: list[list[np.ndarray]] = [[] for _ in engines]
    ends = np.zeros((rounds, threads))
    cpu = np.zeros((rounds, threads))
    starts = np.zeros(rounds)
    start_round = threading.Barrier(threads + 1)
    end_round = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        mine = range(t, len(engines), threads)
        out = {c: np.zeros((block, len(engines[c].stem_names)), np.float32) for c in mine}
        ev = {c: np.zeros(256, EVENT_DTYPE) for c in mine}
        for r in range(rounds):
            start_round.wait()
            c0 = time.thread_time()
            for c in mine:
                chunk = inputs[c][r * block:(r + 1) * block]
                k = engines[c].process_into(chunk, out[c], ev[c])
                if keep:
                    stems[c][r * block:r * block + len(chunk)] = out[c][:len(chunk)]
                    if k:
                        events[c].append(ev[c][:k].copy())
            ends[r, t] = time.perf_counter()
            cpu[r, t] = time.thread_time() - c0
            end_round.wait()

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for r in range(rounds):
        starts[r] = time.perf_counter()
        start_round.wait()
        end_round.wait()
    for w in workers:
        w.join()
    return ChannelRun(stems, [np.concatenate(e) if e else np.zeros(0, EVENT_DTYPE) for e in events],
                      ends.max(axis=1) - starts, cpu.sum(axis=1))
