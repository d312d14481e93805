"""Running the streaming engine over a whole signal, block by block, exactly as live."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .engine import Engine
from .events import EVENT_DTYPE

DEFAULT_BLOCK = 128


class Separation(NamedTuple):
    stems: np.ndarray        # (n, n_stems) float32, aligned to the input (stem latency removed)
    events: np.ndarray       # EVENT_DTYPE, in stream samples of the input
    names: tuple[str, ...]   # stem names
    outputs: np.ndarray | None = None   # (n, 5) kick snare hihat residual dry after their effect
                                        # chains, as live plays them, aligned to the input


def run_blocks(engine: Engine, x: np.ndarray, block: int = DEFAULT_BLOCK,
               progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feed x (mono) through the engine in blocks; returns raw (stems, events) as streamed."""
    x = np.ascontiguousarray(x, np.float32)
    stems = np.zeros((len(x), len(engine.stem_names)), np.float32)
    events = []
    for start in range(0, len(x), block):
        chunk = x[start:start + block]
        out, ev = engine.process(chunk)
        stems[start:start + len(chunk)] = out
        if len(ev):
            events.append(ev.copy())
        if progress:
            progress(len(chunk))
    return stems, (np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE))


def activation_trace(engine: Engine, x: np.ndarray, components: bool = False):
    """Activations after every frame of x (frames x (drums + residual)), from a fresh start (the
    engine is left reset).

    With components=True, returns (trace, h): h holds every component's activation per frame.
    """
    h, _ = engine.analyse(x)
    g = engine.tables.group_start
    trace = np.stack([h[:, g[i]:g[i + 1]].sum(axis=1) for i in range(len(g) - 1)], axis=1)
    return (trace, h) if components else trace


def separate(engine: Engine, x: np.ndarray, block: int = DEFAULT_BLOCK,
             progress: Callable[[int], None] | None = None, effects=None) -> Separation:
    """Stems aligned with x (the engine is flushed with stem_latency zeros) and all events.

    effects (rtdrums.effects.EffectChains at `block`): also the outputs after their chains, run
    on the streamed stems and input block by block as live runs them, then aligned like the stems
    (the dry output is not delayed live, so it is cut to x as it is)."""
    lat = engine.stem_latency
    padded = np.concatenate([np.asarray(x, np.float32), np.zeros(lat, np.float32)])
    stems, events = run_blocks(engine, padded, block, progress)
    events = events[events["onset"] < len(x)]
    outputs = None
    if effects is not None:
        fx_stems, fx_dry = effects.run(stems, padded)
        outputs = np.column_stack([fx_stems[lat:], fx_dry[:len(x)]])
    return Separation(stems[lat:], events, engine.stem_names, outputs)
