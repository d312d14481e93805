"""Feeding an engine a signal in blocks of random sizes, as a host with an irregular period does."""

from __future__ import annotations

import numpy as np


def process_in_random_chunks(engine, x: np.ndarray, seed: int = 3, largest: int = 700):
    """(stems, events) of x fed in chunks of 1 to largest - 1 samples (a fixed random sequence)."""
    rng = np.random.default_rng(seed)
    stems, events, at = [], [], 0
    while at < len(x):
        n = int(rng.integers(1, largest))
        s, ev = engine.process(x[at:at + n])
        stems.append(s.copy())
        events.append(ev.copy())
        at += n
    return np.concatenate(stems), np.concatenate(events)
